package config

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/internal/recordauth"
)

const minimal = `
kafka:
  brokers: [kafka-1:9092, kafka-2:9092]
chains:
  eth:
    - network: mainnet
      chain_id: 1
      endpoints:
        - name: geth
          url: ws://10.0.0.5:8546
`

func TestParseMinimalFillsDefaults(t *testing.T) {
	cfg, err := Parse([]byte(minimal), nil)
	require.NoError(t, err)
	require.Equal(t, []string{"kafka-1:9092", "kafka-2:9092"}, cfg.Kafka.Brokers)
	e := cfg.Chains.ETH[0]
	require.Equal(t, "head", e.StartHeight)
	require.Equal(t, 8, e.Parallel)
	require.Equal(t, 64, e.MaxReorgDepth)
	require.Equal(t, 2*time.Second, e.PollInterval)
	require.True(t, *e.VerifyHeaderHash)
	require.Equal(t, "ws://10.0.0.5:8546", e.Endpoints[0].URL.Value())
	require.Equal(t, "cordon.blocks", cfg.Kafka.Topics.Blocks)
}

func TestParseErrorsNameTheKey(t *testing.T) {
	cases := []struct {
		name, yaml, want string
	}{
		{"unknown key", minimal + "\nbogus: 1\n", "field bogus not found"},
		{"bad level", minimal + "\nlog: {level: loud}\n", "log.level"},
		{"no brokers", strings.Replace(minimal, "brokers: [kafka-1:9092, kafka-2:9092]", "brokers: []", 1), "kafka.brokers"},
		{"bad broker", strings.Replace(minimal, "kafka-2:9092", "kafka-2", 1), "kafka.brokers[1]"},
		{"bad scheme", strings.Replace(minimal, "ws://10.0.0.5:8546", "ftp://x:1", 1), "chains.eth[0].endpoints[0].url"},
		{"no chain id", strings.Replace(minimal, "chain_id: 1", "chain_id: 0", 1), "chains.eth[0].chain_id"},
		{"bad start", minimal + "      start_height: soon\n", "chains.eth[0].start_height"},
		{"bad parallel", minimal + "      parallel: 1000\n", "chains.eth[0].parallel"},
		{"bad sasl", strings.Replace(minimal, "kafka:\n", "kafka:\n  sasl: {mechanism: kerberos}\n", 1), "kafka.sasl.mechanism"},
		{"sasl no password", strings.Replace(minimal, "kafka:\n", "kafka:\n  sasl: {mechanism: plain, username: u}\n", 1), "kafka.sasl.password"},
		{"duplicate topic", strings.Replace(minimal, "kafka:\n", "kafka:\n  topics: {transfers: cordon.blocks}\n", 1), "kafka.topics.transfers"},
		{"missing env secret", strings.Replace(minimal, "kafka:\n", "kafka:\n  sasl: {mechanism: plain, username: u, password: \"env:CORDON_TEST_NOPE\"}\n", 1), "kafka.sasl.password: environment variable CORDON_TEST_NOPE is not set"},
		{"bad duration", minimal + "      poll_interval: fast\n", "line 11: cannot unmarshal !!str `fast` into time.Duration"},
		{"quorum above the endpoints", minimal + "      quorum: 2\n", "chains.eth[0].quorum: 2: want between 1 and the 1 configured endpoints"},
		{"negative quorum", minimal + "      quorum: -1\n", "chains.eth[0].quorum"},
		{"bad custom rule", minimal + "\ndetect: {rules: {custom: [{name: x, when: 'amount +'}]}}\n", "detect.rules.custom[0].when"},
		{"custom rule not bool", minimal + "\ndetect: {rules: {custom: [{name: x, when: 'amount'}]}}\n", "detect.rules.custom[0].when"},
		{"webhook over http", minimal + "\ndetect: {notify: {webhooks: [{name: soc, url: 'http://soc.example/h', secret: 0123456789abcdef}]}}\n", "detect.notify.webhooks[0].url"},
		{"webhook short secret", minimal + "\ndetect: {notify: {webhooks: [{name: soc, url: 'https://soc.example/h', secret: short}]}}\n", "detect.notify.webhooks[0].secret"},
		{"silence forever", minimal + "\ndetect: {notify: {silences: [{rule: drain, reason: x}]}}\n", "detect.notify.silences[0].until"},
		{"receipts root without header hash", minimal + "      verify_header_hash: false\n      verify_tx_root: false\n      verify_receipts_root: true\n", "chains.eth[0].verify_receipts_root: needs verify_header_hash"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), nil)
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestEnvOverrides(t *testing.T) {
	env := []string{
		"CORDON_KAFKA_BROKERS=a:1, b:2",
		"CORDON_KAFKA_LINGER=5ms",
		"CORDON_CHAINS_ETH_0_PARALLEL=3",
		"CORDON_CHAINS_ETH_0_ENDPOINTS_1_URL=https://provider.example/v3/KEY",
		"CORDON_CHAINS_ETH_0_VERIFY_HEADER_HASH=false",
		"PATH=/usr/bin",
	}
	cfg, err := Parse([]byte(minimal), env)
	require.NoError(t, err)
	require.Equal(t, []string{"a:1", "b:2"}, cfg.Kafka.Brokers)
	require.Equal(t, 5*time.Millisecond, cfg.Kafka.Linger)
	require.Equal(t, 3, cfg.Chains.ETH[0].Parallel)
	require.Len(t, cfg.Chains.ETH[0].Endpoints, 2)
	require.Equal(t, "https://provider.example/v3/KEY", cfg.Chains.ETH[0].Endpoints[1].URL.Value())
	require.False(t, *cfg.Chains.ETH[0].VerifyHeaderHash)

	_, err = Parse([]byte(minimal), []string{"CORDON_KAFKA_BROKRES=x:1"})
	require.ErrorContains(t, err, "CORDON_KAFKA_BROKRES names no configuration key")
	_, err = Parse([]byte(minimal), []string{"CORDON_CHAINS_ETH_0_PARALLEL=many"})
	require.ErrorContains(t, err, "chains.eth[0].parallel (from CORDON_CHAINS_ETH_0_PARALLEL)")
}

func TestSecretsResolvedAndRedacted(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	require.NoError(t, os.WriteFile(pw, []byte("s3cret\n"), 0o600))
	t.Setenv("CORDON_TEST_TOKEN", "tok")
	y := strings.Replace(minimal, "kafka:\n", "kafka:\n  sasl: {mechanism: scram-sha-512, username: u, password: \"file:"+pw+"\"}\n", 1) +
		"          headers: {Authorization: \"env:CORDON_TEST_TOKEN\"}\n"
	cfg, err := Parse([]byte(y), nil)
	require.NoError(t, err)
	require.Equal(t, "s3cret", cfg.Kafka.SASL.Password.Value())
	require.Equal(t, "tok", cfg.Chains.ETH[0].Endpoints[0].Headers["Authorization"].Value())
	require.Equal(t, "[redacted]", cfg.Kafka.SASL.Password.String())
	require.NotContains(t, cfg.Kafka.SASL.Password.LogValue().String(), "s3cret")
}

func TestExampleConfigIsValid(t *testing.T) {
	t.Setenv("KAFKA_PASSWORD", "pw")
	t.Setenv("ALCHEMY_URL", "https://eth-mainnet.example/v2/key")
	t.Setenv("BITCOIND_RPC_PASSWORD", "pw")
	t.Setenv("CLICKHOUSE_PASSWORD", "pw")
	t.Setenv("SECRET_API_TOKEN", "a-token-of-32-characters-0123456")
	t.Setenv("SECRET_REGISTER_TOKEN", "register-token-of-32-characters0")
	t.Setenv("SECRET_LEDGER_TOKEN", "ledger-token-of-32-characters-01")
	t.Setenv("SECRET_OPERATOR_ANN", "ann-token-of-32-characters-01234")
	t.Setenv("SHARING_SIGNING_KEY", base64.StdEncoding.EncodeToString(make([]byte, 32)))
	raw, err := os.ReadFile("../cordon.example.yaml")
	require.NoError(t, err)
	var env []string
	for _, r := range []string{"API", "CREDIT", "INTEL"} {
		priv, pub, err := recordauth.GenerateKey()
		require.NoError(t, err)
		t.Setenv("SECRET_RECORD_KEY_"+r, priv)
		env = append(env, "CORDON_RECORD_AUTH_TRUST_"+r+"="+pub)
	}
	_, err = Parse(raw, nil)
	require.ErrorContains(t, err, "record_auth.trust.api[0]", "the placeholders fail until real keys are put in")
	cfg, err := Parse(raw, env)
	require.NoError(t, err)
	// The gate section validates too, on an instance that runs the gate.
	gpriv, gpub, err := recordauth.GenerateKey()
	require.NoError(t, err)
	gcfg, err := Parse(raw, append(slices.Clone(env), "CORDON_ROLES=api,gate", "CORDON_RECORD_AUTH_KEYS_GATE="+gpriv,
		"CORDON_RECORD_AUTH_TRUST_GATE="+gpub))
	require.NoError(t, err)
	require.True(t, gcfg.Runs(RoleGate))
	// And the sharing section, on an instance that shares.
	scfg, err := Parse(raw, append(slices.Clone(env), "CORDON_ROLES=api,share"))
	require.NoError(t, err)
	require.True(t, scfg.Runs(RoleShare))
	require.Equal(t, "exchange-b", scfg.Sharing.Partners[0].Name)
	require.Len(t, gcfg.Gate.Approvers, 5)
	require.True(t, cfg.Kafka.Auth.Trusts(recordauth.Intel))
	_, canSign := cfg.Kafka.Auth.Signer(recordauth.Credit)
	require.True(t, canSign)
	require.Len(t, cfg.Chains.BTC, 1)
	require.Equal(t, "pw", cfg.Chains.BTC[0].Endpoints[0].Password.Value())
	require.Equal(t, []string{"clickhouse-1:9440"}, cfg.ClickHouse.Addrs)
	require.True(t, cfg.ClickHouse.TLS.Enabled)
	// The example's node endpoints are plain http and ws on a LAN; its
	// Kafka and ClickHouse use TLS, its listeners loopback.
	for _, w := range cfg.Warnings() {
		require.True(t, strings.HasPrefix(w.Key, "chains."), "%s", w)
	}
	require.Equal(t, "[redacted]", cfg.ClickHouse.Password.String())
	require.Equal(t, "a-token-of-32-characters-0123456", cfg.API.Tokens[0].Token.Value())
	require.Equal(t, []string{"deposits:read"}, cfg.API.Tokens[2].Scopes)
}

func TestAPIConfig(t *testing.T) {
	base := "kafka: {brokers: [\"k:9092\"]}\nchains: {btc: [{network: mainnet, endpoints: [{url: \"http://n:8332\", user: u, password: p}]}]}\n"
	tok := func(name, token, scopes string) string {
		return "{name: " + name + ", token: \"" + token + "\", scopes: [" + scopes + "]}"
	}
	good := tok("exchange", "0123456789abcdef", "screen")
	api := func(extra string) string { return "api: {listen: \":8480\", tokens: [" + good + "]" + extra + "}" }
	for _, tc := range []struct{ yaml, want string }{
		{"api: {listen: \"x\", tokens: [" + good + "]}", `api.listen: "x": want host:port`},
		{"api: {listen: \":8480\"}", "api.tokens: at least one token"},
		{"api: {listen: \":8480\", tokens: [" + tok("exchange", "short", "screen") + "]}", "api.tokens[0].token: shorter than 16"},
		{"api: {listen: \":8480\", tokens: [\"0123456789abcdef\"]}",
			"api.tokens[0]: a bare token string is no longer accepted (it would hold every scope): write {name: NAME, token: \"env:VAR\", scopes: ["},
		{"api: {listen: \":8480\", tokens: [" + tok("exchange", "0123456789abcdef", "sreen") + "]}",
			`api.tokens[0].scopes[0]: "sreen": want one of screen, screen:details, register, deposits:read, withdraw, approve`},
		{"api: {listen: \":8480\", tokens: [" + tok("exchange", "0123456789abcdef", "screen, decide") + "]}",
			`api.tokens[0].scopes[1]: "decide" is an operator's scope: add the person under api.operators`},
		{"api: {listen: \":8480\", tokens: [" + tok("exchange", "0123456789abcdef", "register:reassign") + "]}",
			`api.tokens[0].scopes[0]: "register:reassign" is an operator's scope`},
		{"api: {listen: \":8480\", tokens: [" + tok("exchange", "0123456789abcdef", "") + "]}", "api.tokens[0].scopes: empty"},
		{"api: {listen: \":8480\", tokens: [" + tok("exchange", "0123456789abcdef", "screen, screen") + "]}", `api.tokens[0].scopes[1]: "screen" is listed twice`},
		{"api: {listen: \":8480\", tokens: [{token: \"0123456789abcdef\", scopes: [screen]}]}", "api.tokens[0].name: required"},
		{"api: {listen: \":8480\", tokens: [{name: x, token: \"0123456789abcdef\", scopes: [screen], admin: true}]}", "field admin not found"},
		{"api: {listen: \":8480\", tokens: [" + good + ", " + tok("exchange", "0123456789abcdeZ", "register") + "]}",
			`api.tokens[1].name: "exchange" is also api.tokens[0]'s name`},
		{api(", max_batch: 0"), "api.max_batch: 0"},
		{api(", max_body_bytes: 10"), "api.max_body_bytes: 10"},
		{api(", cert_file: a.crt"), "cert_file and key_file"},
		{api(", operators: [{name: \"a b\", token: \"0123456789abcdeX\"}]"), `api.operators[0].name: "a b"`},
		{api(", operators: [{name: ann, token: \"0123456789abcdef\"}]"), "api.operators[0].token: used twice"},
		{api(", operators: [{name: ann, token: short}]"), "api.operators[0].token: shorter than 16"},
		{api(", operators: [{name: exchange, token: \"0123456789abcdeX\"}]"), `api.operators[0].name: "exchange" is also api.tokens[0]'s name`},
		{api(", operators: [{name: ann, token: \"0123456789abcdeX\"}, {name: ann, token: \"0123456789abcdeY\"}]"),
			`api.operators[1].name: "ann" is also api.operators[0]'s name`},
		{api(", operators: [{name: ann, token: \"0123456789abcdeX\", scopes: [decide]}]"), "field scopes not found"},
		{"credit: {policies: [{chain: btc, asset: \"*\", confirmations: 3, finalized: true}]}", "credit.policies[0].finalized: only eth"},
		{"credit: {retain_blocks: 10}", "credit.retain_blocks: 10: at least 1000"},
	} {
		_, err := Parse([]byte(base+tc.yaml), nil)
		require.ErrorContains(t, err, tc.want, tc.yaml)
	}
	cfg, err := Parse([]byte(base+api(", operators: [{name: ann@sec, token: \"0123456789abcdeX\"}]")), nil)
	require.NoError(t, err)
	require.Equal(t, 1000, cfg.API.MaxBatch)
	require.Equal(t, "ann@sec", cfg.API.Operators[0].Name)
	require.Equal(t, []string{"screen"}, cfg.API.Tokens[0].Scopes)
	require.Equal(t, uint64(10_000), cfg.Credit.RetainBlocks)
	// Environment overrides reach a token's keys, and may add one.
	cfg, err = Parse([]byte(base+api("")), []string{"CORDON_API_TOKENS_0_SCOPES=screen,screen:details",
		"CORDON_API_TOKENS_1_NAME=ledger", "CORDON_API_TOKENS_1_TOKEN=ledger-token-0123456789", "CORDON_API_TOKENS_1_SCOPES=deposits:read"})
	require.NoError(t, err)
	require.Equal(t, []string{"screen", "screen:details"}, cfg.API.Tokens[0].Scopes)
	require.Equal(t, "ledger", cfg.API.Tokens[1].Name)
	_, err = Parse([]byte(base+"credit: {retain_blocks: 1000}"), []string{"CORDON_CHAINS_BTC_0_MAX_REORG_DEPTH=500"})
	require.ErrorContains(t, err, "credit.retain_blocks: 1000: keep it at least 4× chains.btc[0].max_reorg_depth (500)")
	require.Equal(t, "cordon.deposit-decisions", cfg.Kafka.Topics.Decisions)
}

func TestClickHouseConfig(t *testing.T) {
	base := "kafka: {brokers: [\"k:9092\"]}\nchains: {btc: [{network: mainnet, endpoints: [{url: \"http://n:8332\", user: u, password: p}]}]}\n"
	cfg, err := Parse([]byte(base), []string{"CORDON_CLICKHOUSE_ADDRS=a:9000,b:9000"})
	require.NoError(t, err)
	require.Equal(t, []string{"a:9000", "b:9000"}, cfg.ClickHouse.Addrs)
	require.Equal(t, "cordon-clickhouse", cfg.ClickHouse.GroupID)
	for _, tc := range []struct{ yaml, want string }{
		{"clickhouse: {addrs: [\"ch\"]}", `clickhouse.addrs[0]: "ch": want host:port`},
		{"clickhouse: {addrs: [\"ch:9000\"], database: \"x-y\"}", `clickhouse.database: "x-y": want letters`},
		{"clickhouse: {addrs: [\"ch:9000\"], batch_records: -1}", "clickhouse.batch_records: -1"},
	} {
		_, err := Parse([]byte(base+tc.yaml), nil)
		require.ErrorContains(t, err, tc.want)
	}
}

func TestBTCConfig(t *testing.T) {
	base := `
kafka: {brokers: ["k:9092"]}
chains:
  btc:
    - network: %s
      endpoints: [%s]
`
	cfg, err := Parse([]byte(fmt.Sprintf(base, "testnet", `{url: "http://n:18332", user: u, password: p}`)),
		[]string{"CORDON_CHAINS_BTC_0_ENDPOINTS_0_PASSWORD=from-env", "CORDON_CHAINS_BTC_0_PARALLEL=3"})
	require.NoError(t, err)
	b := cfg.Chains.BTC[0]
	require.Equal(t, "from-env", b.Endpoints[0].Password.Value())
	require.Equal(t, 3, b.Parallel)
	require.Equal(t, 32, b.MaxReorgDepth)
	require.Equal(t, "head", b.StartHeight)

	for _, tc := range []struct{ network, endpoint, want string }{
		{"bitcoin", `{url: "http://n:8332", user: u, password: p}`, `chains.btc[0].network: "bitcoin": want one of mainnet, testnet, signet, regtest, simnet`},
		{"mainnet", `{url: "http://n:8332"}`, "chains.btc[0].endpoints[0]: no credentials"},
		{"mainnet", `{url: "http://n:8332", password: p}`, "chains.btc[0].endpoints[0].user: required with password"},
		{"mainnet", `{url: "ws://n:8332", user: u, password: p}`, `chains.btc[0].endpoints[0].url: scheme "ws": want http or https`},
		{"mainnet", `{url: "http://n:8332", user: u, password: p}, {url: "http://n:8332", user: u, password: p}`, `chains.btc[0].endpoints[1].name: "n" is used by another endpoint`},
	} {
		_, err := Parse([]byte(fmt.Sprintf(base, tc.network, tc.endpoint)), nil)
		require.Error(t, err, tc.want)
		require.Contains(t, err.Error(), tc.want)
	}
	// User and password in the URL are credentials too.
	_, err = Parse([]byte(fmt.Sprintf(base, "mainnet", `{url: "http://u:p@n:8332"}`)), nil)
	require.NoError(t, err)
}

// FuzzParse feeds arbitrary YAML: Parse must return a config or an error,
// never panic.
func FuzzParse(f *testing.F) {
	f.Add([]byte(minimal))
	f.Add([]byte("kafka: {brokers: [x:1]}\nchains: {eth: [{network: a, chain_id: 1, endpoints: [{url: http://x:1}]}]}"))
	f.Add([]byte("chains:\n  eth:\n    - endpoints: [{url: 5}]\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		cfg, err := Parse(raw, []string{"CORDON_CHAINS_ETH_0_PARALLEL=2"})
		if err == nil && len(cfg.Chains.ETH) == 0 && len(cfg.Chains.BTC) == 0 {
			t.Fatal("a valid config without chains")
		}
	})
}

// TestComponentConfigsComposed checks that each chain network's entry
// decodes into the source's and the follower's own Config types, which
// cmd passes through unchanged.
func TestComponentConfigsComposed(t *testing.T) {
	base := "kafka: {brokers: [\"k:9092\"]}\nclickhouse: {addrs: [\"ch:9000\"], password: pw}\n" +
		"chains: {btc: [{network: testnet, parallel: 5, endpoints: [{url: \"http://n:18332\", user: u, password: p}]}]," +
		" eth: [{network: sepolia, chain_id: 11155111, max_lag: 4, endpoints: [{name: a, url: \"http://a:8545\"}]}]}\n"
	cfg, err := Parse([]byte(base), []string{"CORDON_CHAINS_ETH_0_START_HEIGHT=100", "CORDON_CHAINS_BTC_0_REQUEST_TIMEOUT=1m"})
	require.NoError(t, err)
	e := cfg.Chains.ETH[0]
	require.Equal(t, "sepolia", e.Follow.Network)
	require.Equal(t, "eth", string(e.Chain))
	require.Equal(t, "100", e.StartHeight)
	require.Equal(t, uint64(4), e.Pool.MaxLag)
	require.Equal(t, 10*time.Second, e.Pool.RequestTimeout)
	require.Equal(t, "http://a:8545", e.Endpoints[0].URL.Value())
	b := cfg.Chains.BTC[0]
	require.Equal(t, "testnet", b.Follow.Network)
	require.Equal(t, "btc", string(b.Chain))
	require.Equal(t, 7, b.Clients, "parallel fetches and two more")
	require.Equal(t, time.Minute, b.RequestTimeout)
	require.Equal(t, "pw", cfg.ClickHouse.Password.Value())
	require.Equal(t, 5000, cfg.ClickHouse.Loader.BatchRecords)

	for _, key := range []string{"clients", "receipt_batch", "chain", "range_blocks", "penalty"} {
		_, err := Parse([]byte(minimal+"      "+key+": 1\n"), nil)
		require.ErrorContains(t, err, "field "+key+" not found", key)
	}
	_, err = Parse([]byte(minimal), []string{"CORDON_CHAINS_ETH_0_PENALTY=1s"})
	require.ErrorContains(t, err, "CORDON_CHAINS_ETH_0_PENALTY names no configuration key")
}
