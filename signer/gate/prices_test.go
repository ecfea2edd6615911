package gate

import (
	"context"
	"encoding/json"
	"math/big"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/internal/apiauth"
	"github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/internal/testkit"
	"github.com/cordonhq/cordon/signer/policy"
)

func TestPricesHandler(t *testing.T) {
	now := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	auth, err := apiauth.New([]apiauth.Token{
		{Name: "pricer", Token: config.SecretValue("pricer-token-0123456789"), Scopes: []string{"prices"}},
		{Name: "exchange", Token: config.SecretValue(exchangeToken), Scopes: []string{"withdraw"}}}, nil, apiauth.Options{})
	require.NoError(t, err)
	var got []policy.PriceUpdate
	h := PricesHandler(auth, func(_ context.Context, ps []policy.PriceUpdate) error { got = append(got, ps...); return nil },
		func() time.Time { return now })
	post := func(token, body string) (int, string) { return testkit.PostJSON(h, PricesEndpoint, token, body) }
	code, body := post("pricer-token-0123456789", `{"prices":[{"chain":"ETH","asset":"native","usd":"2500.25","at":"2026-12-02T08:59:00Z"}]}`)
	require.Equal(t, http.StatusAccepted, code, body)
	require.Equal(t, []policy.PriceUpdate{{Chain: "eth", Network: "mainnet", Asset: "native", USD: "2500.25", At: now.Add(-time.Minute)}}, got)
	code, _ = post(exchangeToken, `{"prices":[]}`)
	require.Equal(t, http.StatusForbidden, code, "the withdrawals token cannot set prices")
	for name, b := range map[string]string{
		"zero":      `{"prices":[{"chain":"eth","usd":"0","at":"2026-12-02T08:59:00Z"}]}`,
		"negative":  `{"prices":[{"chain":"eth","usd":"-1","at":"2026-12-02T08:59:00Z"}]}`,
		"float":     `{"prices":[{"chain":"eth","usd":"1e3","at":"2026-12-02T08:59:00Z"}]}`,
		"future":    `{"prices":[{"chain":"eth","usd":"1","at":"2026-12-02T09:05:00Z"}]}`,
		"no time":   `{"prices":[{"chain":"eth","usd":"1"}]}`,
		"btc token": `{"prices":[{"chain":"btc","asset":"0x00000000000000000000000000000000000000aa","usd":"1","at":"2026-12-02T08:59:00Z"}]}`,
		"chain":     `{"prices":[{"chain":"sol","usd":"1","at":"2026-12-02T08:59:00Z"}]}`,
		"empty":     `{"prices":[]}`,
	} {
		code, _ := post("pricer-token-0123456789", b)
		require.Equal(t, http.StatusBadRequest, code, name)
	}
	require.Len(t, got, 1, "nothing refused was published")

	// What is published is what the gate's price table applies.
	ps, err := policy.NewPrices(policy.PricesConfig{Assets: []policy.AssetPrice{{Chain: "eth", Asset: "native", Decimals: 18}}}, now)
	require.NoError(t, err)
	v, why := ps.Value("eth", "mainnet", "native", big.NewInt(1e18), now)
	require.False(t, v.Known(), "no price yet: unknown, %s", why)
	b, _ := json.Marshal(&got[0])
	require.NoError(t, ps.Apply(b, now))
	v, _ = ps.Value("eth", "mainnet", "native", big.NewInt(2e18), now)
	require.Equal(t, "5000.50", v.String())
	v, why = ps.Value("eth", "mainnet", "native", big.NewInt(2e18), now.Add(time.Hour))
	require.False(t, v.Known(), "an hour later the price is stale: %s", why)
}
