package kafkatest

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"

	"testing"

	"github.com/cordonhq/cordon/internal/recordauth"
	"github.com/cordonhq/cordon/internal/testkit"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
)

// Brokers starts an embedded Kafka-protocol cluster for the test and returns
// its broker addresses.
func Brokers(tb testing.TB, opts ...kfake.Opt) []string {
	tb.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	require.NoError(tb, err)
	tb.Cleanup(c.Close)
	return c.ListenAddrs()
}

// Serve is a helper process's body: a Kafka broker (kfake). It prints
// one READY line with the broker addresses and serves until its standard
// input closes.
func Serve() {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		fmt.Println("ERR", err)
		return
	}
	defer cluster.Close()
	testkit.Ready(strings.Join(cluster.ListenAddrs(), ","))
	testkit.WaitStdin()
}

// Keys is a record keyring for every role, derived from fixed seeds so
// that a test's helper processes sign and verify with the same keys. For
// tests only: anyone can derive these keys.
func Keys() *recordauth.Keyring {
	k := recordauth.NewKeyring()
	for _, r := range recordauth.Roles {
		seed := sha256.Sum256([]byte("cordon test record key " + string(r)))
		s, err := recordauth.NewSigner(r, base64.StdEncoding.EncodeToString(seed[:]))
		if err != nil {
			panic(err)
		}
		k.AddSigner(s)
	}
	return k
}
