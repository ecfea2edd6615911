package kafka

import (
	"fmt"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/internal/recordauth"
)

// Topics names the topics cordon writes.
type Topics struct {
	Blocks       string `yaml:"blocks"`
	Transactions string `yaml:"transactions"`
	Transfers    string `yaml:"transfers"`
	// Outputs and Spends hold Bitcoin's transaction outputs and spent
	// outpoints.
	Outputs string `yaml:"outputs"`
	Spends  string `yaml:"spends"`
	Alerts  string `yaml:"alerts"`
	// Intel is the compacted indicator topic (keyed by indicator id).
	Intel string `yaml:"intel"`
	// Addresses is the compacted address registry (keyed by
	// chain/network/address).
	Addresses string `yaml:"addresses"`
	// Deposits is the compacted topic of deposit events (keyed by deposit
	// id); Decisions the operators' decisions on held deposits.
	Deposits  string `yaml:"deposits"`
	Decisions string `yaml:"decisions"`
	// CreditState is the crediting service's own compacted state (the
	// kept deposits, the checkpoint; keyed by deposit id or "checkpoint").
	CreditState string `yaml:"credit_state"`
	// Withdrawals is the compacted topic of withdrawal events (keyed by
	// withdrawal id): the exchange's withdrawal service reads it.
	// GateState is the withdrawal gate's own compacted state.
	Withdrawals string `yaml:"withdrawals"`
	GateState   string `yaml:"gate_state"`
	// Prices is the compacted topic of asset prices in dollars (keyed by
	// chain/network/asset) the exchange publishes through POST /v1/prices.
	Prices string `yaml:"prices"`
	// Audit is the withdrawal gate's hash-chained audit log (one
	// partition, kept forever, keyed by sequence number).
	Audit string `yaml:"audit"`
	// Sharing is partner sharing's own compacted state: the objects of
	// the TAXII collections served, the versions held of partners'
	// objects and the sync positions (sharing/alliance).
	Sharing string `yaml:"sharing"`
	// SignRequests are the builder's signing requests (keyed by request
	// id) for the signer; SignerState is the signer's own compacted
	// state (its decisions, its breaker, its read positions) and
	// SignResults its answers (keyed by request id).
	SignRequests string `yaml:"sign_requests"`
	SignerState  string `yaml:"signer_state"`
	SignResults  string `yaml:"sign_results"`
	// DetectState is detection's own compacted state: its wallets'
	// history, the recent blocks' undo log, its read positions
	// (detect/live).
	DetectState string `yaml:"detect_state"`
	// NotifyDead holds the alert deliveries that failed their last
	// attempt (keyed by webhook/delivery; detect/notify).
	NotifyDead string `yaml:"notify_dead"`
	// Incidents is the incidents' history: opened, alerts joined, notes,
	// closed, evidence sealed (docs/detect.md), keyed by incident id.
	Incidents string `yaml:"incidents"`
}

// DefaultTopics are the default topic names.
func DefaultTopics() Topics {
	return Topics{Blocks: "cordon.blocks", Transactions: "cordon.transactions", Transfers: "cordon.transfers",
		Outputs: "cordon.outputs", Spends: "cordon.spends", Alerts: "cordon.alerts", Intel: "cordon.intel",
		Addresses: "cordon.addresses", Deposits: "cordon.deposits", Decisions: "cordon.deposit-decisions",
		CreditState: "cordon.credit-state", Withdrawals: "cordon.withdrawals", GateState: "cordon.gate-state", Audit: "cordon.audit",
		Prices: "cordon.prices", Sharing: "cordon.sharing",
		SignRequests: "cordon.sign-requests", SignerState: "cordon.signer-state", SignResults: "cordon.sign-results",
		DetectState: "cordon.detect-state", NotifyDead: "cordon.notify-dead-letters",
		Incidents: "cordon.incidents"}
}

// Fill gives every unnamed topic its default name.
func (t *Topics) Fill() {
	def := DefaultTopics()
	for _, f := range []struct {
		name *string
		def  string
	}{
		{&t.Blocks, def.Blocks}, {&t.Transactions, def.Transactions}, {&t.Transfers, def.Transfers}, {&t.Outputs, def.Outputs},
		{&t.Spends, def.Spends}, {&t.Alerts, def.Alerts}, {&t.Intel, def.Intel}, {&t.Addresses, def.Addresses},
		{&t.Deposits, def.Deposits}, {&t.Decisions, def.Decisions}, {&t.CreditState, def.CreditState},
		{&t.Withdrawals, def.Withdrawals}, {&t.GateState, def.GateState},
		{&t.Audit, def.Audit}, {&t.Prices, def.Prices}, {&t.Sharing, def.Sharing},
		{&t.SignRequests, def.SignRequests}, {&t.SignerState, def.SignerState}, {&t.SignResults, def.SignResults},
		{&t.DetectState, def.DetectState}, {&t.NotifyDead, def.NotifyDead}, {&t.Incidents, def.Incidents},
	} {
		if *f.name == "" {
			*f.name = f.def
		}
	}
}

// TLSConfig enables TLS to the brokers.
type TLSConfig = config.TLS

// SASLConfig enables SASL authentication.
type SASLConfig struct {
	// Mechanism is "", "plain", "scram-sha-256" or "scram-sha-512".
	Mechanism string `yaml:"mechanism"`
	Username  string `yaml:"username"`
	// Password is a secret reference (env:NAME, file:PATH or a literal).
	Password config.Secret `yaml:"password"`
}

// Config configures the producer and stream reader. Its YAML keys are
// the kafka section of cordon's configuration file.
type Config struct {
	Brokers  []string   `yaml:"brokers"`
	ClientID string     `yaml:"client_id"`
	Topics   Topics     `yaml:"topics"`
	TLS      TLSConfig  `yaml:"tls"`
	SASL     SASLConfig `yaml:"sasl"`
	// CreateTopics creates missing topics at start (see Ensure) with
	// ReplicationFactor and Partitions (0: each topic's own count from
	// Topics.Specs); without it, missing topics are an error.
	CreateTopics      bool `yaml:"create_topics"`
	Partitions        int  `yaml:"partitions"`
	ReplicationFactor int  `yaml:"replication_factor"`
	// BatchSize and Linger bound how long kafka-go waits to fill a batch.
	BatchSize int           `yaml:"batch_size"`
	Linger    time.Duration `yaml:"linger"`
	// MaxAttempts is the number of tries of one write before Publish fails.
	MaxAttempts  int           `yaml:"max_attempts"`
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// Compression is "", "none", "gzip", "snappy", "lz4" or "zstd".
	Compression string `yaml:"compression"`
	// PartBytes is the largest value of one part record (a block's
	// transactions, transfers, outputs or spends are split into parts);
	// default DefaultPartBytes.
	PartBytes int `yaml:"part_bytes"`
	// Auth signs the records this process writes to the signed topics
	// (Topics.Signer) and verifies those it reads; records that fail are
	// reported to Refused and skipped. Set from the record_auth section.
	Auth    *recordauth.Keyring `yaml:"-"`
	Refused func(Refusal)       `yaml:"-"`
}

func (c *Config) fill() {
	if c.ClientID == "" {
		c.ClientID = "cordon"
	}
	c.Topics.Fill()
	if c.ReplicationFactor <= 0 {
		c.ReplicationFactor = 1
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 1000
	}
	if c.Linger <= 0 {
		c.Linger = 100 * time.Microsecond
	}
	if c.PartBytes <= 0 {
		c.PartBytes = DefaultPartBytes
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 10
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 30 * time.Second
	}
}

func (c *Config) compression() (kafkago.Compression, error) {
	switch c.Compression {
	case "", "none":
		return 0, nil
	case "gzip":
		return kafkago.Gzip, nil
	case "snappy":
		return kafkago.Snappy, nil
	case "lz4":
		return kafkago.Lz4, nil
	case "zstd":
		return kafkago.Zstd, nil
	}
	return 0, fmt.Errorf("compression %q: want none, gzip, snappy, lz4 or zstd", c.Compression)
}

func (c *Config) transport() (*kafkago.Transport, error) {
	t := &kafkago.Transport{ClientID: c.ClientID, DialTimeout: 10 * time.Second, MetadataTTL: 10 * time.Second}
	tc, err := c.TLS.Client("kafka.tls")
	if err != nil {
		return nil, err
	}
	t.TLS = tc
	mech, err := c.SASL.build()
	if err != nil {
		return nil, fmt.Errorf("kafka.sasl: %w", err)
	}
	t.SASL = mech
	return t, nil
}

func (s SASLConfig) build() (sasl.Mechanism, error) {
	switch s.Mechanism {
	case "":
		return nil, nil
	case "plain":
		return plain.Mechanism{Username: s.Username, Password: s.Password.Value()}, nil
	case "scram-sha-256":
		return scram.Mechanism(scram.SHA256, s.Username, s.Password.Value())
	case "scram-sha-512":
		return scram.Mechanism(scram.SHA512, s.Username, s.Password.Value())
	}
	return nil, fmt.Errorf("mechanism %q: want plain, scram-sha-256 or scram-sha-512", s.Mechanism)
}
