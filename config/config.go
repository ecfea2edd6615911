package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/cordonhq/cordon/credit"
	"github.com/cordonhq/cordon/detect/live"
	"github.com/cordonhq/cordon/detect/retrohunt"
	"github.com/cordonhq/cordon/ingest/clickhouse"
	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/intel"
	"github.com/cordonhq/cordon/internal/apiauth"
	"github.com/cordonhq/cordon/internal/chain"
	iconfig "github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/internal/recordauth"
	"github.com/cordonhq/cordon/sharing/alliance"
	"github.com/cordonhq/cordon/signer/dispatch"
	"github.com/cordonhq/cordon/signer/gate"
	"github.com/cordonhq/cordon/watchers/btc"
	"github.com/cordonhq/cordon/watchers/eth"
	"github.com/cordonhq/cordon/watchers/follow"
	"github.com/cordonhq/cordon/watchers/rpcpool"
)

// Config is the whole configuration of `cordon run`.
type Config struct {
	// Roles are the parts of the system this instance runs (RoleWatcher,
	// RoleLoader, RoleCredit, RoleAPI; default all): run the internet-
	// facing watchers apart from crediting and the API, each with its own
	// Kafka principal and record keys (docs/security.md).
	Roles []string     `yaml:"roles"`
	Log   Log          `yaml:"log"`
	HTTP  HTTP         `yaml:"http"`
	Kafka kafka.Config `yaml:"kafka"`
	// Chains lists the chains to follow, one entry per network.
	Chains Chains `yaml:"chains"`
	// ClickHouse is the analysts' store; the loader runs when addrs is set.
	ClickHouse ClickHouse `yaml:"clickhouse"`
	// API is cordon's authenticated HTTP API (screening); off without
	// listen.
	API API `yaml:"api"`
	// Intel tunes the indicator side.
	Intel Intel `yaml:"intel"`
	// Credit is the deposit confirmation policy.
	Credit credit.Config `yaml:"credit"`
	// RecordAuth holds the keys that sign and verify the Kafka records
	// carrying authority (docs/security.md); Fill puts the keyring in
	// Kafka.Auth.
	RecordAuth recordauth.Config `yaml:"record_auth"`
	// Gate is the withdrawal gate (role gate): approvers, assets,
	// policy, risk, breaker and audit log (docs/gate/README.md).
	Gate gate.Config `yaml:"gate"`
	// Sharing is partner sharing (role share): who we are to the
	// alliance, the TAXII listener, the partners (docs/sharing/README.md).
	Sharing alliance.Config `yaml:"sharing"`
	// Dispatch builds the gate's approved withdrawals into transactions of
	// the hot wallets, asks the signer (cordon signer) to sign them,
	// broadcasts and follows them (role gate; off without wallets;
	// docs/signing.md).
	Dispatch dispatch.Config `yaml:"dispatch"`
	// Detect is detection (role detect): the rules on the block stream
	// and their thresholds, the operators' own rules (docs/detect.md).
	Detect live.Config `yaml:"detect"`
}

// The roles an instance can run.
const (
	RoleWatcher = "watcher" // the chain watchers (chains)
	RoleLoader  = "loader"  // the ClickHouse loader and the retro-hunt (clickhouse.addrs)
	RoleCredit  = "credit"  // the crediting service
	RoleAPI     = "api"     // the HTTP API and the deposits view (api.listen)
	RoleGate    = "gate"    // the withdrawal gate, on the API's listener (gate)
	RoleShare   = "share"   // partner sharing: the TAXII server and the partners' sync (sharing)
	RoleDetect  = "detect"  // detection: the rules on the block stream (detect)
)

// AllRoles are the default roles: every role but the gate, which runs
// only where it is named (it needs its approvers configured).
var AllRoles = []string{RoleWatcher, RoleLoader, RoleCredit, RoleAPI}

// KnownRoles are every role an instance may run.
var KnownRoles = []string{RoleWatcher, RoleLoader, RoleCredit, RoleAPI, RoleGate, RoleShare, RoleDetect}

// Runs tells whether the instance runs role.
func (c *Config) Runs(role string) bool { return slices.Contains(c.Roles, role) }

// Intel tunes the indicator side: the retro-hunt (which runs with the
// ClickHouse loader) looks back retro_hunt_window for transfers between
// newly listed addresses and registered ones, every retro_hunt_interval.
type Intel struct {
	RetroHunt retrohunt.Config `yaml:",inline"`
}

// API configures the authenticated HTTP API.
type API struct {
	// Listen is host:port; empty turns the API off.
	Listen string `yaml:"listen"`
	// Tokens are the integrations' bearer tokens, each {name, token,
	// scopes} (the token a secret reference of at least 16 characters;
	// scopes from apiauth.TokenScopes). A plain string, the form before
	// scopes, is refused with a message saying how to migrate.
	Tokens []Token `yaml:"tokens"`
	// APIConfig holds the bounds of one request (max_body_bytes,
	// max_batch), for every handler of the API.
	intel.APIConfig `yaml:",inline"`
	// Operators are named people holding apiauth.OperatorScopes: they
	// decide on held deposits and change registered addresses; their
	// names are recorded with what they do. Tokens cannot.
	Operators []Operator `yaml:"operators"`
	// CertFile and KeyFile serve HTTPS.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Token is an integration's bearer token and its scopes.
type Token = apiauth.Token

// Operator is a named person allowed to decide on held deposits.
type Operator = apiauth.Operator

// ClickHouse configures the analysts' store and the loader from Kafka
// into it: the connection (addrs, database, username, password; empty
// addrs disables the loader), the loader's consumer group and its
// batching (batch_records, linger), all flat under clickhouse.
type ClickHouse struct {
	clickhouse.Config `yaml:",inline"`
	// GroupID is the Kafka consumer group of the loader.
	GroupID string                  `yaml:"group_id"`
	Loader  clickhouse.LoaderConfig `yaml:",inline"`
}

// Log configures logging.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text or json
}

// HTTP configures cordon's own HTTP server (health, readiness, metrics).
type HTTP struct {
	Listen string `yaml:"listen"`
}

// Chains lists the followed chains by family.
type Chains struct {
	ETH []ETH `yaml:"eth"`
	BTC []BTC `yaml:"btc"`
}

// Follow is the follower part of a chain network's entry: the keys
// every network has (start_height, parallel, max_reorg_depth,
// batch_blocks, poll_interval). Fill sets its Chain and Network.
type Follow = follow.Config

// BTC configures one Bitcoin network: the source's keys (network,
// endpoints, request_timeout, health_interval, max_lag) and the
// follower's, flat in one entry.
type BTC struct {
	btc.Config `yaml:",inline"`
	Follow     `yaml:",inline"`
}

// ETH configures one Ethereum network: the source's keys (network,
// chain_id, endpoints, request_timeout, health_interval, max_lag,
// verify_header_hash, verify_tx_root) and the follower's, flat in one
// entry.
type ETH struct {
	eth.Config `yaml:",inline"`
	Follow     `yaml:",inline"`
}

var identifierRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// BTCNetworks are the Bitcoin networks cordon knows.
var BTCNetworks = []string{"mainnet", "testnet", "signet", "regtest", "simnet"}

func (b *BTC) fill() {
	fillFollow(&b.Follow, Follow{StartHeight: follow.StartHead, Parallel: 8, MaxReorgDepth: 32, BatchBlocks: 8, PollInterval: time.Second})
	iconfig.OrDefault(&b.RequestTimeout, 30*time.Second)
	iconfig.OrDefault(&b.HealthInterval, 10*time.Second)
	iconfig.OrDefault(&b.MaxLag, 3)
	b.Chain, b.Follow.Network = chain.BTC, b.Config.Network
	// One rpcclient client per concurrent request, and two more for the
	// head polls and health checks beside a full backfill.
	b.Clients = b.Parallel + 2
}

// fillFollow sets every unset key of f to its value in d.
func fillFollow(f *Follow, d Follow) {
	iconfig.OrDefault(&f.StartHeight, d.StartHeight)
	iconfig.OrDefault(&f.Parallel, d.Parallel)
	iconfig.OrDefault(&f.MaxReorgDepth, d.MaxReorgDepth)
	iconfig.OrDefault(&f.BatchBlocks, d.BatchBlocks)
	iconfig.OrDefault(&f.PollInterval, d.PollInterval)
}

// Defaults returns a Config with every default filled in.
func Defaults() Config {
	return Config{
		Roles: slices.Clone(AllRoles),
		Gate:  gate.DefaultConfig(),
		ClickHouse: ClickHouse{Config: clickhouse.Config{Database: "cordon", Username: "default"}, GroupID: "cordon-clickhouse",
			Loader: clickhouse.LoaderConfig{BatchRecords: 5000, Linger: 200 * time.Millisecond}},
		Log:    Log{Level: "info", Format: "text"},
		API:    API{APIConfig: intel.APIConfig{MaxBodyBytes: 1 << 20, MaxBatch: 1000}},
		Intel:  Intel{RetroHunt: retrohunt.Config{Window: 90 * 24 * time.Hour, Interval: time.Minute}},
		Credit: credit.Config{RetainBlocks: 10_000, TokenDust: "10000", TwoOperators: credit.TwoOperators{Categories: []string{"sanctions"}}},
		HTTP:   HTTP{Listen: "127.0.0.1:9464"},
		Kafka: kafka.Config{ClientID: "cordon", CreateTopics: true, ReplicationFactor: 3, BatchSize: 1000,
			Linger: 100 * time.Microsecond, MaxAttempts: 10, WriteTimeout: 30 * time.Second, Compression: "lz4", PartBytes: 256 << 10,
			Topics: kafka.DefaultTopics()},
	}
}

// fill sets the defaults of an Ethereum network's unset keys.
func (e *ETH) fill() {
	fillFollow(&e.Follow, Follow{StartHeight: follow.StartHead, Parallel: 8, MaxReorgDepth: 64, BatchBlocks: 64, PollInterval: 2 * time.Second})
	iconfig.OrDefault(&e.Pool.RequestTimeout, 10*time.Second)
	iconfig.OrDefault(&e.Pool.HealthInterval, 5*time.Second)
	iconfig.OrDefault(&e.Pool.MaxLag, 16)
	e.Chain, e.Follow.Network = chain.ETH, e.Config.Network
	header, txRoot := e.Verifies() // the root check means nothing without the hash check
	e.VerifyHeaderHash, e.VerifyTxRoot = &header, &txRoot
}

// Load reads the file at path, applies environment overrides from env
// (os.Environ form), resolves secrets and validates.
func Load(path string, env []string) (Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	return Parse(raw, env)
}

// Parse is Load on the file's bytes.
func Parse(raw []byte, env []string) (Config, error) {
	cfg := Defaults()
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	if err := iconfig.ApplyEnv(&cfg, env); err != nil {
		return Config{}, err
	}
	if err := cfg.Fill(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Fill sets the defaults of unset per-chain keys, resolves secret
// references and validates. Parse calls it; code that builds a Config
// itself (cordon dev) calls it too.
func (c *Config) Fill() error {
	for i := range c.Chains.ETH {
		c.Chains.ETH[i].fill()
	}
	for i := range c.Chains.BTC {
		c.Chains.BTC[i].fill()
	}
	c.Detect.Notify.Fill()
	if err := iconfig.ResolveSecrets(c); err != nil {
		return err
	}
	return c.Validate()
}

// Validate checks every key and reports all problems, each with its key.
func (c *Config) Validate() error {
	var problems iconfig.Problems
	bad := problems.Add
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q: want debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format", "%q: want text or json", c.Log.Format)
	}
	if _, _, err := net.SplitHostPort(c.HTTP.Listen); err != nil {
		bad("http.listen", "%q: want host:port", c.HTTP.Listen)
	}
	if len(c.Roles) == 0 {
		bad("roles", "empty: name at least one of %s", strings.Join(KnownRoles, ", "))
	}
	for i, r := range c.Roles {
		if !slices.Contains(KnownRoles, r) {
			bad(fmt.Sprintf("roles[%d]", i), "%q: want one of %s", r, strings.Join(KnownRoles, ", "))
		}
	}
	if c.Runs(RoleGate) {
		if c.API.Listen == "" || !c.Runs(RoleAPI) {
			bad("roles", "gate takes withdrawals on the API: run it with the api role and api.listen")
		}
		c.Gate.Validate(&problems, "gate")
		if len(c.Dispatch.Wallets.BTC)+len(c.Dispatch.Wallets.ETH) > 0 {
			c.Dispatch.Validate(&problems, "dispatch")
			c.validateDispatchNodes(bad)
		}
	}
	if c.Runs(RoleShare) {
		if c.API.Listen == "" || !c.Runs(RoleAPI) {
			bad("roles", "share takes its operators' listings on the API: run it with the api role and api.listen")
		}
		c.Sharing.Validate(&problems, "sharing")
	}
	c.Credit.Validate(&problems, "credit")
	c.Detect.Validate(&problems, "detect")
	for i, pol := range c.Credit.Policies {
		if pol.Quorum == 0 {
			continue
		}
		type net struct{ n, q int }
		var nets []net
		switch pol.Chain {
		case "eth":
			for _, e := range c.Chains.ETH {
				nets = append(nets, net{len(e.Endpoints), e.Quorum})
			}
		case "btc":
			for _, b := range c.Chains.BTC {
				nets = append(nets, net{len(b.Endpoints), b.Quorum})
			}
		}
		for _, nt := range nets {
			q := nt.q
			if q == 0 {
				q = rpcpool.Quorum(nt.n)
			}
			switch {
			case pol.Quorum > nt.n:
				bad(fmt.Sprintf("credit.policies[%d].quorum", i), "%d: more than the %d endpoints of a %s network: no deposit could be credited", pol.Quorum, nt.n, pol.Chain)
			case pol.Quorum > q:
				bad(fmt.Sprintf("credit.policies[%d].quorum", i), "%d: above the %s network's quorum %d, which the depth and the block read back rest on: raise the chain's quorum key instead", pol.Quorum, pol.Chain, q)
			}
		}
	}
	c.Kafka.Auth = c.RecordAuth.Keyring(&problems, "record_auth")
	for _, f := range follows(*c) {
		if uint64(f.depth)*4 > c.Credit.RetainBlocks {
			bad("credit.retain_blocks", "%d: keep it at least 4× %s.max_reorg_depth (%d)", c.Credit.RetainBlocks, f.key, f.depth)
		}
	}
	if rh := c.Intel.RetroHunt; rh.Window < time.Hour {
		bad("intel.retro_hunt_window", "%s: at least 1h", rh.Window)
	}
	if rh := c.Intel.RetroHunt; rh.Interval < time.Second {
		bad("intel.retro_hunt_interval", "%s: at least 1s", rh.Interval)
	}
	if a := c.API; a.Listen != "" {
		if _, _, err := net.SplitHostPort(a.Listen); err != nil {
			bad("api.listen", "%q: want host:port", a.Listen)
		}
		if len(a.Tokens) == 0 && len(a.Operators) == 0 {
			bad("api.tokens", "at least one token (or operator) is required when api.listen is set")
		}
		apiauth.Validate(&problems, "api", a.Tokens, a.Operators)
		if a.MaxBodyBytes < 1024 || a.MaxBodyBytes > 64<<20 {
			bad("api.max_body_bytes", "%d: want 1024 to 67108864", a.MaxBodyBytes)
		}
		if a.MaxBatch < 1 || a.MaxBatch > 100_000 {
			bad("api.max_batch", "%d: want 1 to 100000", a.MaxBatch)
		}
		if (a.CertFile == "") != (a.KeyFile == "") {
			bad("api.cert_file", "cert_file and key_file go together")
		}
	}
	k := c.Kafka
	if len(k.Brokers) == 0 {
		bad("kafka.brokers", "at least one broker (host:port) is required")
	}
	for i, b := range k.Brokers {
		if _, port, err := net.SplitHostPort(b); err != nil || port == "" {
			bad(fmt.Sprintf("kafka.brokers[%d]", i), "%q: want host:port", b)
		}
	}
	if k.Partitions < 0 {
		bad("kafka.partitions", "%d: must be 0 (each topic's own count) or more", k.Partitions)
	}
	if k.ReplicationFactor < 1 {
		bad("kafka.replication_factor", "%d: must be at least 1", k.ReplicationFactor)
	}
	if k.BatchSize < 1 {
		bad("kafka.batch_size", "%d: must be at least 1", k.BatchSize)
	}
	if k.MaxAttempts < 1 {
		bad("kafka.max_attempts", "%d: must be at least 1", k.MaxAttempts)
	}
	if k.Linger < 0 || k.Linger > time.Second {
		bad("kafka.linger", "%s: must be between 0 and 1s", k.Linger)
	}
	if k.PartBytes < 4096 || k.PartBytes > 16<<20 {
		bad("kafka.part_bytes", "%d: must be between 4096 and 16777216 (and below the brokers' message.max.bytes)", k.PartBytes)
	}
	switch k.Compression {
	case "", "none", "gzip", "snappy", "lz4", "zstd":
	default:
		bad("kafka.compression", "%q: want none, gzip, snappy, lz4 or zstd", k.Compression)
	}
	topics := map[string]string{}
	for key, v := range map[string]string{"blocks": k.Topics.Blocks, "transactions": k.Topics.Transactions,
		"transfers": k.Topics.Transfers, "outputs": k.Topics.Outputs, "spends": k.Topics.Spends, "alerts": k.Topics.Alerts} {
		if v == "" {
			bad("kafka.topics."+key, "must not be empty")
		} else if other, dup := topics[v]; dup {
			bad("kafka.topics."+key, "%q is also kafka.topics.%s", v, other)
		}
		topics[v] = key
	}
	if (k.TLS.CertFile == "") != (k.TLS.KeyFile == "") {
		bad("kafka.tls.cert_file", "cert_file and key_file must be set together")
	}
	for key, f := range map[string]string{"ca_file": k.TLS.CAFile, "cert_file": k.TLS.CertFile, "key_file": k.TLS.KeyFile} {
		if f != "" {
			if _, err := os.Stat(f); err != nil {
				bad("kafka.tls."+key, "%v", err)
			}
		}
	}
	switch k.SASL.Mechanism {
	case "":
	case "plain", "scram-sha-256", "scram-sha-512":
		if k.SASL.Username == "" {
			bad("kafka.sasl.username", "required with mechanism %s", k.SASL.Mechanism)
		}
		if k.SASL.Password.Value() == "" {
			bad("kafka.sasl.password", "required with mechanism %s", k.SASL.Mechanism)
		}
	default:
		bad("kafka.sasl.mechanism", "%q: want plain, scram-sha-256 or scram-sha-512", k.SASL.Mechanism)
	}
	chc := c.ClickHouse
	if (chc.TLS.CertFile == "") != (chc.TLS.KeyFile == "") {
		bad("clickhouse.tls.cert_file", "cert_file and key_file must be set together")
	}
	for key, f := range map[string]string{"ca_file": chc.TLS.CAFile, "cert_file": chc.TLS.CertFile, "key_file": chc.TLS.KeyFile} {
		if f != "" {
			if _, err := os.Stat(f); err != nil {
				bad("clickhouse.tls."+key, "%v", err)
			}
		}
	}
	for i, a := range chc.Addrs {
		if _, port, err := net.SplitHostPort(a); err != nil || port == "" {
			bad(fmt.Sprintf("clickhouse.addrs[%d]", i), "%q: want host:port of the native protocol (9000 by default)", a)
		}
	}
	if len(chc.Addrs) > 0 {
		if !identifierRE.MatchString(chc.Database) {
			bad("clickhouse.database", "%q: want letters, digits and underscores", chc.Database)
		}
		if chc.GroupID == "" {
			bad("clickhouse.group_id", "required")
		}
		if l := chc.Loader; l.BatchRecords < 1 || l.BatchRecords > 1_000_000 {
			bad("clickhouse.batch_records", "%d: must be between 1 and 1000000", l.BatchRecords)
		}
		if l := chc.Loader; l.Linger <= 0 || l.Linger > time.Minute {
			bad("clickhouse.linger", "%s: must be between 0 and 1m", l.Linger)
		}
	}
	// An instance of the api and share roles alone (a sharing front)
	// follows no chain.
	if len(c.Chains.ETH) == 0 && len(c.Chains.BTC) == 0 && (c.Runs(RoleWatcher) || c.Runs(RoleCredit) || c.Runs(RoleGate) || c.Runs(RoleLoader)) {
		bad("chains", "no chain configured: add at least one entry under chains.eth or chains.btc")
	}
	btcNets := map[string]bool{}
	for i, b := range c.Chains.BTC {
		p := fmt.Sprintf("chains.btc[%d]", i)
		network := b.Config.Network
		if !slices.Contains(BTCNetworks, network) {
			bad(p+".network", "%q: want one of %s", network, strings.Join(BTCNetworks, ", "))
		} else if btcNets[network] {
			bad(p+".network", "%q is configured twice", network)
		}
		btcNets[network] = true
		if len(b.Endpoints) == 0 {
			bad(p+".endpoints", "at least one endpoint is required")
		}
		names := map[string]bool{}
		for j, ep := range b.Endpoints {
			q := fmt.Sprintf("%s.endpoints[%d]", p, j)
			u, err := url.Parse(ep.URL.Value())
			if err != nil || u.Host == "" {
				bad(q+".url", "not a URL")
			} else if s := u.Scheme; s != "http" && s != "https" {
				bad(q+".url", "scheme %q: want http or https (bitcoind and btcd JSON-RPC)", s)
			}
			hasURLPass := false
			if u != nil && u.User != nil {
				_, hasURLPass = u.User.Password()
			}
			if ep.Password.Value() == "" && ep.CookieFile == "" && !hasURLPass {
				bad(q, "no credentials: set user and password, or cookie_file (bitcoind's .cookie)")
			}
			if ep.Password.Value() != "" && ep.User == "" {
				bad(q+".user", "required with password")
			}
			// cookie_file may be missing at start: bitcoind deletes it when
			// it stops and writes it again when it starts; rpcclient re-reads it.
			name := ep.Name
			if name == "" && u != nil {
				name = u.Hostname()
			}
			if names[name] {
				bad(q+".name", "%q is used by another endpoint of this chain", name)
			}
			names[name] = true
		}
		validateQuorum(b.Quorum, len(b.Endpoints), bad, p)
		validateFollow(b.Follow, b.RequestTimeout, b.HealthInterval, bad, p)
	}
	networks := map[string]bool{}
	for i, e := range c.Chains.ETH {
		p := fmt.Sprintf("chains.eth[%d]", i)
		network := e.Config.Network
		if network == "" {
			bad(p+".network", "required (for example mainnet, sepolia)")
		} else if strings.ContainsAny(network, "/ \t") {
			bad(p+".network", "%q: must not contain '/' or spaces", network)
		} else if networks[network] {
			bad(p+".network", "%q is configured twice", network)
		}
		networks[network] = true
		if e.ChainID == 0 {
			bad(p+".chain_id", "required (1 for mainnet); endpoints serving another chain are refused")
		}
		if len(e.Endpoints) == 0 {
			bad(p+".endpoints", "at least one endpoint is required")
		}
		names := map[string]bool{}
		for j, ep := range e.Endpoints {
			q := fmt.Sprintf("%s.endpoints[%d]", p, j)
			u, err := url.Parse(ep.URL.Value())
			if err != nil || u.Host == "" {
				bad(q+".url", "not a URL")
			} else if s := u.Scheme; s != "http" && s != "https" && s != "ws" && s != "wss" {
				bad(q+".url", "scheme %q: want http, https, ws or wss", s)
			}
			name := ep.Name
			if name == "" && u != nil {
				name = u.Hostname()
			}
			if names[name] {
				bad(q+".name", "%q is used by another endpoint of this chain", name)
			}
			names[name] = true
		}
		if header, txRoot := e.Verifies(); txRoot && !header {
			bad(p+".verify_tx_root", "needs verify_header_hash: without it the root is not bound to the block hash")
		}
		if header, _ := e.Verifies(); e.VerifiesReceipts() && !header {
			bad(p+".verify_receipts_root", "needs verify_header_hash: without it the root is not bound to the block hash")
		}
		validateQuorum(e.Quorum, len(e.Endpoints), bad, p)
		validateFollow(e.Follow, e.Pool.RequestTimeout, e.Pool.HealthInterval, bad, p)
	}
	return problems.Err()
}

// validateQuorum checks a chain network's quorum key: 0 (the default, a
// majority of three or more endpoints) or between 1 and the number of
// endpoints.
// validateDispatchNodes checks that every hot wallet's network is a
// chain the instance follows: the dispatcher builds and broadcasts
// through its endpoints.
func (c *Config) validateDispatchNodes(bad func(key, format string, args ...any)) {
	for i, w := range c.Dispatch.Wallets.BTC {
		if !slices.ContainsFunc(c.Chains.BTC, func(b BTC) bool { return b.Config.Network == w.Network }) {
			bad(fmt.Sprintf("dispatch.wallets.btc[%d].network", i), "%q: no chains.btc entry of that network (its endpoints build and broadcast)", w.Network)
		}
	}
	for i, w := range c.Dispatch.Wallets.ETH {
		if !slices.ContainsFunc(c.Chains.ETH, func(e ETH) bool { return e.Config.Network == w.Network }) {
			bad(fmt.Sprintf("dispatch.wallets.eth[%d].network", i), "%q: no chains.eth entry of that network (its endpoints build and broadcast)", w.Network)
		}
	}
}

func validateQuorum(q, endpoints int, bad func(key, format string, args ...any), p string) {
	if q < 0 || q > endpoints {
		bad(p+".quorum", "%d: want between 1 and the %d configured endpoints (0 or unset: a majority of three or more, else 1)", q, endpoints)
	}
}

// validateFollow checks the follower keys, and the endpoint pool's
// periods, of the chain network at key p.
func validateFollow(f Follow, requestTimeout, healthInterval time.Duration, bad func(key, format string, args ...any), p string) {
	if _, _, err := follow.ParseStart(f.StartHeight); err != nil || f.StartHeight == "" {
		bad(p+".start_height", "%q: want a block height or \"head\"", f.StartHeight)
	}
	if f.Parallel < 1 || f.Parallel > 256 {
		bad(p+".parallel", "%d: must be between 1 and 256", f.Parallel)
	}
	if f.MaxReorgDepth < 1 || f.MaxReorgDepth > 10_000 {
		bad(p+".max_reorg_depth", "%d: must be between 1 and 10000", f.MaxReorgDepth)
	}
	if f.BatchBlocks < 1 || f.BatchBlocks > 1000 {
		bad(p+".batch_blocks", "%d: must be between 1 and 1000", f.BatchBlocks)
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"poll_interval", f.PollInterval}, {"request_timeout", requestTimeout}, {"health_interval", healthInterval}} {
		if d.v <= 0 {
			bad(p+"."+d.key, "%s: must be positive", d.v)
		}
	}
}

type followDepth struct {
	key   string
	depth int
}

// follows are the max_reorg_depth of every configured chain.
func follows(c Config) []followDepth {
	out := make([]followDepth, 0, len(c.Chains.ETH)+len(c.Chains.BTC))
	for i, e := range c.Chains.ETH {
		out = append(out, followDepth{fmt.Sprintf("chains.eth[%d]", i), e.MaxReorgDepth})
	}
	for i, b := range c.Chains.BTC {
		out = append(out, followDepth{fmt.Sprintf("chains.btc[%d]", i), b.MaxReorgDepth})
	}
	return out
}
