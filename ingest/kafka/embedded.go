package kafka

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Embedded is an in-process Kafka-protocol broker (franz-go's kfake: the
// real protocol, consumer groups, transactions), for `cordon dev`.
type Embedded struct {
	c *kfake.Cluster
}

// StartEmbedded starts a one-broker cluster keeping its data in dir (it
// survives a restart); port 0 picks a free one.
func StartEmbedded(dir string, port int) (*Embedded, error) {
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.DataDir(dir)}
	if port != 0 {
		opts = append(opts, kfake.Ports(port))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("start embedded kafka: %w", err)
	}
	return &Embedded{c: c}, nil
}

// Brokers are the broker addresses.
func (e *Embedded) Brokers() []string { return e.c.ListenAddrs() }

// Close stops the broker.
func (e *Embedded) Close() { e.c.Close() }
