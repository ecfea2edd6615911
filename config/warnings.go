package config

import (
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/cordonhq/cordon/internal/recordauth"
)

// Warning is a setting that works but leaves a path open to an attacker
// on the network: cordon starts, and logs it (docs/security.md).
type Warning struct {
	// Key is the config key to change.
	Key     string
	Message string
}

func (w Warning) String() string { return w.Key + ": " + w.Message }

// Warnings lists the settings of a loaded (filled and valid) Config that
// weaken its security: plain-text Kafka, SASL without TLS, ClickHouse or
// chain endpoints in plain text, skipped certificate verification, and
// listeners on non-loopback addresses without TLS or authentication.
// Loopback peers (localhost, 127.0.0.0/8, ::1) never warn: nothing on the
// network sees that traffic.
func (c *Config) Warnings() []Warning {
	var out []Warning
	warn := func(key, format string, args ...any) {
		out = append(out, Warning{Key: key, Message: fmt.Sprintf(format, args...)})
	}
	k := c.Kafka
	if remote := remoteHosts(k.Brokers); len(remote) > 0 && !k.TLS.Enabled {
		warn("kafka.tls.enabled", "false with brokers %s off this host: records travel unencrypted and unauthenticated", strings.Join(remote, ", "))
		switch k.SASL.Mechanism {
		case "plain":
			warn("kafka.sasl.mechanism", "plain without TLS: user %s's password crosses the network readable", k.SASL.Username)
		case "scram-sha-256", "scram-sha-512":
			warn("kafka.sasl.mechanism", "%s without TLS: the login is protected, the session after it is not (anyone on the path can read and alter records)", k.SASL.Mechanism)
		}
	}
	if k.TLS.InsecureSkipVerify {
		warn("kafka.tls.insecure_skip_verify", "true: any server can pose as the brokers")
	}
	ch := c.ClickHouse
	if len(ch.Addrs) > 0 {
		if remote := remoteHosts(ch.Addrs); len(remote) > 0 && !ch.TLS.Enabled {
			warn("clickhouse.tls.enabled", "false with servers %s off this host: rows and the password travel unencrypted", strings.Join(remote, ", "))
		}
		if ch.TLS.InsecureSkipVerify {
			warn("clickhouse.tls.insecure_skip_verify", "true: any server can pose as ClickHouse (and answer crediting's sender look-ups)")
		}
	}
	if a := c.API; a.Listen != "" && c.Runs(RoleAPI) && a.CertFile == "" && !loopbackListen(a.Listen) {
		warn("api.cert_file", "empty while api.listen %s is reachable from the network: bearer tokens and decisions travel in plain text", a.Listen)
	}
	if !loopbackListen(c.HTTP.Listen) {
		warn("http.listen", "%s is reachable from the network: metrics and readiness are served to anyone, without authentication", c.HTTP.Listen)
	}
	for i, e := range c.Chains.ETH {
		for j, ep := range e.Endpoints {
			plainEndpoint(warn, fmt.Sprintf("chains.eth[%d].endpoints[%d].url", i, j), ep.URL.Value())
		}
	}
	for i, b := range c.Chains.BTC {
		for j, ep := range b.Endpoints {
			plainEndpoint(warn, fmt.Sprintf("chains.btc[%d].endpoints[%d].url", i, j), ep.URL.Value())
		}
	}
	// Amount rules of a chain's default policy are in its coin's units:
	// a credited token without a policy of its own gets none that mean
	// anything (dust is credit.token_dust; tiers, review and
	// two_operators_above would be compared in the wrong units).
	own := map[string]bool{}
	def := map[string]bool{}
	for _, p := range c.Credit.Policies {
		own[p.Chain+"/"+strings.ToLower(p.Asset)] = true
		if p.Asset == "*" && (len(p.Tiers) > 0 || p.Review != "" || p.TwoOperatorsAbove != "") {
			def[p.Chain] = true
		}
	}
	for ch, toks := range c.Credit.Tokens {
		for i, t := range toks {
			if def[ch] && !own[ch+"/"+strings.ToLower(t)] {
				warn(fmt.Sprintf("credit.tokens.%s[%d]", ch, i), "%s has no policy of its own: the %s/* policy's tiers, review and two_operators_above are in the chain's coin, not in this token's units — give it a policy", t, ch)
			}
		}
	}
	// Keys of roles the instance does not run are keys a compromise of
	// this instance would hand over.
	for _, r := range []struct{ role, key string }{{RoleAPI, "api"}, {RoleCredit, "credit"}} {
		if c.RecordAuth.HasKey(recordauth.Role(r.key)) && !c.Runs(r.role) {
			warn("record_auth.keys."+r.key, "held by an instance that does not run the %s role: keep each private key only where its role runs", r.role)
		}
	}
	return out
}

// plainEndpoint warns about a chain endpoint reached in plain text off
// this host. It names the host only: the URL may carry a key.
func plainEndpoint(warn func(key, format string, args ...any), key, raw string) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "ws") || isLoopback(u.Hostname()) {
		return
	}
	warn(key, "%s to %s: blocks and credentials travel in plain text, and anyone on the path can change what cordon reads (use https or wss, or a TLS proxy)",
		u.Scheme, u.Hostname())
}

// remoteHosts are the host:port addresses whose host is not loopback.
func remoteHosts(addrs []string) []string {
	var out []string
	for _, a := range addrs {
		host, _, err := net.SplitHostPort(a)
		if err != nil {
			host = a
		}
		if !isLoopback(host) {
			out = append(out, a)
		}
	}
	return out
}

// loopbackListen tells whether a listen address (host:port) is bound to
// loopback only; an empty host or 0.0.0.0 / :: listens on every interface.
func loopbackListen(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	return err == nil && isLoopback(host)
}

func isLoopback(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}
