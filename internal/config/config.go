package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the whole configuration of `cordon run`.
type Config struct {
	Log   Log   `yaml:"log"`
	HTTP  HTTP  `yaml:"http"`
	Kafka Kafka `yaml:"kafka"`
	// Chains lists the chains to follow, one entry per network.
	Chains Chains `yaml:"chains"`
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

// Kafka configures the brokers and topics.
type Kafka struct {
	Brokers           []string      `yaml:"brokers"`
	ClientID          string        `yaml:"client_id"`
	Topics            Topics        `yaml:"topics"`
	CreateTopics      bool          `yaml:"create_topics"`
	Partitions        int           `yaml:"partitions"`
	ReplicationFactor int           `yaml:"replication_factor"`
	BatchSize         int           `yaml:"batch_size"`
	Linger            time.Duration `yaml:"linger"`
	MaxAttempts       int           `yaml:"max_attempts"`
	WriteTimeout      time.Duration `yaml:"write_timeout"`
	Compression       string        `yaml:"compression"`
	TLS               TLS           `yaml:"tls"`
	SASL              SASL          `yaml:"sasl"`
}

// Topics names the Kafka topics.
type Topics struct {
	Blocks       string `yaml:"blocks"`
	Transactions string `yaml:"transactions"`
	Transfers    string `yaml:"transfers"`
	Alerts       string `yaml:"alerts"`
}

// TLS configures TLS to Kafka.
type TLS struct {
	Enabled            bool   `yaml:"enabled"`
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// SASL configures SASL authentication to Kafka.
type SASL struct {
	Mechanism string `yaml:"mechanism"`
	Username  string `yaml:"username"`
	Password  Secret `yaml:"password"`
}

// Chains lists the followed chains by family.
type Chains struct {
	ETH []ETH `yaml:"eth"`
}

// ETH configures one Ethereum network.
type ETH struct {
	Network   string     `yaml:"network"`
	ChainID   uint64     `yaml:"chain_id"`
	Endpoints []Endpoint `yaml:"endpoints"`
	// StartHeight is where an empty stream starts: a height, or "head".
	StartHeight      string        `yaml:"start_height"`
	Parallel         int           `yaml:"parallel"`
	MaxReorgDepth    int           `yaml:"max_reorg_depth"`
	BatchBlocks      int           `yaml:"batch_blocks"`
	PollInterval     time.Duration `yaml:"poll_interval"`
	RequestTimeout   time.Duration `yaml:"request_timeout"`
	HealthInterval   time.Duration `yaml:"health_interval"`
	MaxLag           uint64        `yaml:"max_lag"`
	VerifyHeaderHash *bool         `yaml:"verify_header_hash"`
	VerifyTxRoot     *bool         `yaml:"verify_tx_root"`
}

// Endpoint is one node endpoint.
type Endpoint struct {
	Name string `yaml:"name"`
	// URL may hold an API key, so it is a secret reference too.
	URL     Secret            `yaml:"url"`
	Headers map[string]Secret `yaml:"headers"`
}

// Defaults returns a Config with every default filled in.
func Defaults() Config {
	return Config{
		Log:  Log{Level: "info", Format: "text"},
		HTTP: HTTP{Listen: "127.0.0.1:9464"},
		Kafka: Kafka{ClientID: "cordon", CreateTopics: true, Partitions: 6, ReplicationFactor: 3, BatchSize: 1000,
			Linger: time.Millisecond, MaxAttempts: 10, WriteTimeout: 30 * time.Second, Compression: "lz4",
			Topics: Topics{Blocks: "cordon.blocks", Transactions: "cordon.transactions", Transfers: "cordon.transfers", Alerts: "cordon.alerts"}},
	}
}

// fill sets the defaults of an Ethereum network's unset keys.
func (e *ETH) fill() {
	if e.StartHeight == "" {
		e.StartHeight = "head"
	}
	if e.Parallel == 0 {
		e.Parallel = 8
	}
	if e.MaxReorgDepth == 0 {
		e.MaxReorgDepth = 64
	}
	if e.BatchBlocks == 0 {
		e.BatchBlocks = 64
	}
	if e.PollInterval == 0 {
		e.PollInterval = 2 * time.Second
	}
	if e.RequestTimeout == 0 {
		e.RequestTimeout = 10 * time.Second
	}
	if e.HealthInterval == 0 {
		e.HealthInterval = 5 * time.Second
	}
	if e.MaxLag == 0 {
		e.MaxLag = 16
	}
	if e.VerifyHeaderHash == nil {
		t := true
		e.VerifyHeaderHash = &t
	}
	if e.VerifyTxRoot == nil {
		t := *e.VerifyHeaderHash // the root check means nothing without the hash check
		e.VerifyTxRoot = &t
	}
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
	if err := applyEnv(&cfg, env); err != nil {
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
	if err := resolveSecrets(reflect.ValueOf(c).Elem(), ""); err != nil {
		return err
	}
	return c.Validate()
}

// Validate checks every key and reports all problems, each with its key.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
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
	k := c.Kafka
	if len(k.Brokers) == 0 {
		bad("kafka.brokers", "at least one broker (host:port) is required")
	}
	for i, b := range k.Brokers {
		if _, port, err := net.SplitHostPort(b); err != nil || port == "" {
			bad(fmt.Sprintf("kafka.brokers[%d]", i), "%q: want host:port", b)
		}
	}
	if k.Partitions < 1 {
		bad("kafka.partitions", "%d: must be at least 1", k.Partitions)
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
	switch k.Compression {
	case "", "none", "gzip", "snappy", "lz4", "zstd":
	default:
		bad("kafka.compression", "%q: want none, gzip, snappy, lz4 or zstd", k.Compression)
	}
	topics := map[string]string{}
	for key, v := range map[string]string{"blocks": k.Topics.Blocks, "transactions": k.Topics.Transactions,
		"transfers": k.Topics.Transfers, "alerts": k.Topics.Alerts} {
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
	if len(c.Chains.ETH) == 0 {
		bad("chains", "no chain configured: add at least one entry under chains.eth")
	}
	networks := map[string]bool{}
	for i, e := range c.Chains.ETH {
		p := fmt.Sprintf("chains.eth[%d]", i)
		if e.Network == "" {
			bad(p+".network", "required (for example mainnet, sepolia)")
		} else if strings.ContainsAny(e.Network, "/ \t") {
			bad(p+".network", "%q: must not contain '/' or spaces", e.Network)
		} else if networks[e.Network] {
			bad(p+".network", "%q is configured twice", e.Network)
		}
		networks[e.Network] = true
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
		if e.StartHeight != "head" {
			if _, err := strconv.ParseUint(e.StartHeight, 10, 64); err != nil {
				bad(p+".start_height", "%q: want a block height or \"head\"", e.StartHeight)
			}
		}
		if e.Parallel < 1 || e.Parallel > 256 {
			bad(p+".parallel", "%d: must be between 1 and 256", e.Parallel)
		}
		if *e.VerifyTxRoot && !*e.VerifyHeaderHash {
			bad(p+".verify_tx_root", "needs verify_header_hash: without it the root is not bound to the block hash")
		}
		if e.MaxReorgDepth < 1 || e.MaxReorgDepth > 10_000 {
			bad(p+".max_reorg_depth", "%d: must be between 1 and 10000", e.MaxReorgDepth)
		}
		if e.BatchBlocks < 1 || e.BatchBlocks > 1000 {
			bad(p+".batch_blocks", "%d: must be between 1 and 1000", e.BatchBlocks)
		}
		for key, d := range map[string]time.Duration{"poll_interval": e.PollInterval, "request_timeout": e.RequestTimeout, "health_interval": e.HealthInterval} {
			if d <= 0 {
				bad(p+"."+key, "%s: must be positive", d)
			}
		}
	}
	return errors.Join(errs...)
}
