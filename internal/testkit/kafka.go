package testkit

import (
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
)

// Kafka starts an embedded Kafka-protocol cluster for the test and returns
// its broker addresses.
func Kafka(tb testing.TB, opts ...kfake.Opt) []string {
	tb.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	require.NoError(tb, err)
	tb.Cleanup(c.Close)
	return c.ListenAddrs()
}
