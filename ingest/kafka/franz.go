package kafka

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// franz-go serves what kafka-go lacks: Kafka transactions, reads with
// isolation read_committed, the admin API and the embedded broker. Its
// types stay inside this package.

// franzOpts are the franz-go client options of cfg (brokers, client id,
// TLS, SASL).
func franzOpts(cfg Config, suffix string) ([]kgo.Opt, error) {
	id := cfg.ClientID
	if id == "" {
		id = "cordon"
	}
	opts := []kgo.Opt{kgo.SeedBrokers(cfg.Brokers...), kgo.ClientID(id + suffix)}
	tlsCfg, err := cfg.TLS.Client("kafka.tls")
	if err != nil {
		return nil, fmt.Errorf("kafka tls: %w", err)
	}
	if tlsCfg != nil {
		opts = append(opts, kgo.DialTLSConfig(tlsCfg))
	}
	switch cfg.SASL.Mechanism {
	case "":
	case "plain":
		opts = append(opts, kgo.SASL(plain.Auth{User: cfg.SASL.Username, Pass: cfg.SASL.Password.Value()}.AsMechanism()))
	case "scram-sha-256":
		opts = append(opts, kgo.SASL(scram.Auth{User: cfg.SASL.Username, Pass: cfg.SASL.Password.Value()}.AsSha256Mechanism()))
	case "scram-sha-512":
		opts = append(opts, kgo.SASL(scram.Auth{User: cfg.SASL.Username, Pass: cfg.SASL.Password.Value()}.AsSha512Mechanism()))
	default:
		return nil, fmt.Errorf("kafka sasl mechanism %q: want plain, scram-sha-256 or scram-sha-512", cfg.SASL.Mechanism)
	}
	return opts, nil
}

// newFranz is a franz-go client of cfg with extra options.
func newFranz(cfg Config, suffix string, extra ...kgo.Opt) (*kgo.Client, error) {
	opts, err := franzOpts(cfg, suffix)
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	return cl, nil
}
