package config

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/credit"
	iconfig "github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/watchers/btc"
	"github.com/cordonhq/cordon/watchers/eth"
)

const loopbackOnly = `
kafka:
  brokers: [127.0.0.1:9092, "localhost:9093"]
chains:
  eth:
    - network: mainnet
      chain_id: 1
      endpoints:
        - name: geth
          url: ws://127.0.0.1:8546
`

func TestWarnings(t *testing.T) {
	base, err := Parse([]byte(loopbackOnly), nil)
	require.NoError(t, err)
	require.Empty(t, base.Warnings(), "everything on loopback: nothing to warn about")
	remoteKafka := func(c *Config) { c.Kafka.Brokers = []string{"kafka-1.internal:9092", "127.0.0.1:9092"} }
	cases := []struct {
		name   string
		change func(*Config)
		want   []string // keys, in order
		says   string   // in the first warning
	}{
		{"plain-text kafka", remoteKafka, []string{"kafka.tls.enabled"}, "kafka-1.internal:9092"},
		{"kafka over tls", func(c *Config) { remoteKafka(c); c.Kafka.TLS.Enabled = true }, nil, ""},
		{"sasl plain without tls", func(c *Config) {
			remoteKafka(c)
			c.Kafka.SASL.Mechanism, c.Kafka.SASL.Username = "plain", "watcher"
		}, []string{"kafka.tls.enabled", "kafka.sasl.mechanism"}, ""},
		{"sasl scram without tls", func(c *Config) { remoteKafka(c); c.Kafka.SASL.Mechanism = "scram-sha-512" },
			[]string{"kafka.tls.enabled", "kafka.sasl.mechanism"}, ""},
		{"sasl plain over tls", func(c *Config) {
			remoteKafka(c)
			c.Kafka.TLS.Enabled, c.Kafka.SASL.Mechanism = true, "plain"
		}, nil, ""},
		{"sasl plain on loopback", func(c *Config) { c.Kafka.SASL.Mechanism = "plain" }, nil, ""},
		{"kafka skips verification", func(c *Config) {
			remoteKafka(c)
			c.Kafka.TLS.Enabled, c.Kafka.TLS.InsecureSkipVerify = true, true
		}, []string{"kafka.tls.insecure_skip_verify"}, "pose as the brokers"},
		{"clickhouse in plain text", func(c *Config) { c.ClickHouse.Addrs = []string{"10.1.2.3:9000"} },
			[]string{"clickhouse.tls.enabled"}, "10.1.2.3:9000"},
		{"clickhouse over tls", func(c *Config) { c.ClickHouse.Addrs, c.ClickHouse.TLS.Enabled = []string{"10.1.2.3:9440"}, true }, nil, ""},
		{"a token under the chain's amount rules", func(c *Config) {
			c.Credit.Policies = []credit.PolicyConfig{{Chain: "eth", Asset: "*", Confirmations: 12, Review: "1000"}}
			c.Credit.Tokens = map[string][]string{"eth": {"0xdAC17F958D2ee523a2206206994597C13D831ec7"}}
		}, []string{"credit.tokens.eth[0]"}, "has no policy of its own"},
		{"a token with its own policy", func(c *Config) {
			c.Credit.Policies = []credit.PolicyConfig{{Chain: "eth", Asset: "*", Confirmations: 12, Review: "1000"},
				{Chain: "eth", Asset: "0xdac17f958d2ee523a2206206994597c13d831ec7", Confirmations: 12}}
			c.Credit.Tokens = map[string][]string{"eth": {"0xdAC17F958D2ee523a2206206994597C13D831ec7"}}
		}, nil, ""},
		{"crediting's key on a watcher", func(c *Config) {
			c.Roles = []string{RoleWatcher}
			c.RecordAuth.Keys.Credit = iconfig.SecretValue("x")
		}, []string{"record_auth.keys.credit"}, "does not run the credit role"},
		{"clickhouse on loopback", func(c *Config) { c.ClickHouse.Addrs = []string{"[::1]:9000"} }, nil, ""},
		{"clickhouse skips verification", func(c *Config) {
			c.ClickHouse.Addrs = []string{"ch:9440"}
			c.ClickHouse.TLS.Enabled, c.ClickHouse.TLS.InsecureSkipVerify = true, true
		}, []string{"clickhouse.tls.insecure_skip_verify"}, ""},
		{"clickhouse skip verify unused", func(c *Config) { c.ClickHouse.TLS.InsecureSkipVerify = true }, nil, ""},
		{"api on every interface without tls", func(c *Config) { c.API.Listen = ":8443" }, []string{"api.cert_file"}, ":8443"},
		{"api on a public address without tls", func(c *Config) { c.API.Listen = "203.0.113.7:8443" }, []string{"api.cert_file"}, ""},
		{"api with tls", func(c *Config) { c.API.Listen, c.API.CertFile, c.API.KeyFile = "0.0.0.0:8443", "api.crt", "api.key" }, nil, ""},
		{"api on loopback", func(c *Config) { c.API.Listen = "127.0.0.1:8443" }, nil, ""},
		{"api role not run", func(c *Config) { c.API.Listen, c.Roles = ":8443", []string{RoleWatcher} }, nil, ""},
		{"metrics on every interface", func(c *Config) { c.HTTP.Listen = ":9464" }, []string{"http.listen"}, "without authentication"},
		{"metrics on a LAN address", func(c *Config) { c.HTTP.Listen = "10.0.0.4:9464" }, []string{"http.listen"}, ""},
		{"metrics on ipv6 loopback", func(c *Config) { c.HTTP.Listen = "[::1]:9464" }, nil, ""},
		{"eth endpoint in plain text", func(c *Config) {
			c.Chains.ETH[0].Endpoints = append(c.Chains.ETH[0].Endpoints,
				eth.EndpointConfig{URL: iconfig.SecretValue("https://mainnet.example/v3/KEY")},
				eth.EndpointConfig{URL: iconfig.SecretValue("http://rpc.example:8545/KEY")})
		}, []string{"chains.eth[0].endpoints[2].url"}, "http to rpc.example"},
		{"btc endpoint in plain text", func(c *Config) {
			c.Chains.BTC = []BTC{{Config: btc.Config{Network: "mainnet", Endpoints: []btc.EndpointConfig{
				{URL: iconfig.SecretValue("http://127.0.0.1:8332")}, {URL: iconfig.SecretValue("http://10.0.0.9:8332")}}}}}
		}, []string{"chains.btc[0].endpoints[1].url"}, "10.0.0.9"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(loopbackOnly), nil)
			require.NoError(t, err)
			tc.change(&c)
			got := c.Warnings()
			var keys []string
			for _, w := range got {
				keys = append(keys, w.Key)
				require.NotContains(t, w.String(), "KEY", "a warning never shows an endpoint's URL")
			}
			require.Equal(t, tc.want, keys, "%v", got)
			if tc.says != "" {
				require.Contains(t, got[0].String(), tc.says)
			}
		})
	}
}
