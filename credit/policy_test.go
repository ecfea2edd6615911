package credit_test

import (
	"math/big"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/config"
	"github.com/cordonhq/cordon/credit"
	"github.com/cordonhq/cordon/internal/chain"
)

func TestPolicies(t *testing.T) {
	base := "kafka: {brokers: [\"k:9092\"]}\nchains: {btc: [{network: mainnet, endpoints: [{url: \"http://n:8332\", user: u, password: p}]}]}\n"
	cfg, err := config.Parse([]byte(base+`credit:
  policies:
    - {chain: eth, asset: "*", confirmations: 20, tiers: [{min: "100000000000000000000", confirmations: 64}], dust: "1000000000000000", review: "500000000000000000000"}
    - {chain: eth, asset: "0xdAC17F958D2ee523a2206206994597C13D831ec7", confirmations: 30}
  tokens: {eth: ["0xdAC17F958D2ee523a2206206994597C13D831ec7"]}
`), nil)
	require.NoError(t, err)
	pol, tokens, err := credit.Policies(cfg.Credit)
	require.NoError(t, err)
	eth := pol(chain.ETH, "native")
	require.Equal(t, uint64(20), eth.Confirmations)
	require.Equal(t, uint64(64), eth.Required(new(big.Int).Mul(big.NewInt(100), big.NewInt(1e18))))
	require.Equal(t, uint64(20), eth.Required(big.NewInt(1e18)))
	require.Equal(t, "1000000000000000", eth.Dust.String())
	require.Equal(t, uint64(30), pol(chain.ETH, "0xdac17f958d2ee523a2206206994597c13d831ec7").Confirmations, "per token")
	require.Equal(t, uint64(3), pol(chain.BTC, "native").Confirmations, "the default")
	require.True(t, tokens[chain.ETH]["0xdac17f958d2ee523a2206206994597c13d831ec7"])
	other := pol(chain.ETH, "0x6b175474e89094c44da98b954eedeac495271d0f")
	require.Equal(t, uint64(20), other.Confirmations, "a token without its own policy takes the chain's")
	require.Equal(t, "10000", other.Dust.String(), "but the default token dust, not the chain's dust in wei")
	require.Equal(t, []string{"sanctions"}, eth.DualCategories, "sanctions releases take two operators by default")

	for _, tc := range []struct{ yaml, want string }{
		{"credit: {policies: [{chain: sol, asset: '*', confirmations: 1}]}", `credit.policies[0].chain: "sol"`},
		{"credit: {policies: [{chain: eth, asset: '*', confirmations: 0}]}", "credit.policies[0].confirmations: 0"},
		{"credit: {policies: [{chain: eth, asset: '*', confirmations: 5, dust: '1e18'}]}", "credit.policies[0].dust"},
		{"credit: {policies: [{chain: eth, asset: '*', confirmations: 5, tiers: [{min: '10', confirmations: 4}]}]}", "must ask more"},
		{"credit: {policies: [{chain: eth, asset: '*', confirmations: 5}, {chain: eth, asset: '*', confirmations: 6}]}", "a second policy"},
		{"credit: {tokens: {eth: [usdt]}}", "credit.tokens.eth[0]"},
		{"credit: {tokens: {btc: ['0x00']}}", "only eth has tokens"},
		{"credit: {token_dust: '-1'}", "credit.token_dust"},
		{"credit: {policies: [{chain: eth, asset: '*', confirmations: 5, quorum: -1}]}", "credit.policies[0].quorum"},
		{"credit: {policies: [{chain: eth, asset: '*', confirmations: 5, two_operators_above: 'x'}]}", "credit.policies[0].two_operators_above"},
		{"credit: {two_operators: {min_confidence: 101}}", "credit.two_operators.min_confidence"},
	} {
		_, err := config.Parse([]byte(base+tc.yaml), nil)
		require.ErrorContains(t, err, tc.want, tc.yaml)
	}
}
