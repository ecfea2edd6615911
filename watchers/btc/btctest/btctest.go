package btctest

import (
	"context"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/watchers/btc/btcnode"
)

// Node starts a btcd node on network (regtest or simnet) for the test, its data in a temporary
// directory, mining to miningAddr. Without a btcd binary the test is
// skipped, or fails when CORDON_TEST_REQUIRE_TOOLS is set (make test sets
// it after installing btcd into bin/).
func Node(tb testing.TB, network, miningAddr string) *btcnode.Node {
	tb.Helper()
	return NodeWith(tb, btcnode.Config{Network: network, MiningAddr: miningAddr})
}

// NodeWith starts btcd with cfg (its Bin and Dir filled in), as Node does.
func NodeWith(tb testing.TB, cfg btcnode.Config) *btcnode.Node {
	tb.Helper()
	bin, err := btcnode.FindBtcd()
	if err != nil {
		if os.Getenv("CORDON_TEST_REQUIRE_TOOLS") != "" {
			tb.Fatal(err)
		}
		tb.Skip(err)
	}
	cfg.Bin, cfg.Dir = bin, tb.TempDir()
	n, err := btcnode.Start(context.Background(), cfg)
	require.NoError(tb, err)
	tb.Cleanup(n.Stop)
	return n
}
