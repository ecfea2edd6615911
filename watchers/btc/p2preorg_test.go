package btc_test

import (
	"context"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcjson"
	"github.com/btcsuite/btcd/rpcclient"
	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/watchers/btc/btcnode"
	"github.com/cordonhq/cordon/watchers/btc/btctest"
	"github.com/cordonhq/cordon/watchers/follow"
)

// TestReorgFromCompetingNode makes a reorganization the way it happens on
// a real network: a second node, cut off from the watched one, mines a
// longer branch; when the two connect again the watched node switches to
// it. The consumer must end with the watched node's new chain.
func TestReorgFromCompetingNode(t *testing.T) {
	h := newHarness(t, "regtest", 5)
	addrB, err := btcnode.MiningAddress("regtest", "other-miner")
	require.NoError(t, err)
	nodeB := btctest.Node(t, "regtest", addrB)
	walletB, err := btcnode.NewWallet(nodeB, "regtest", "other-miner", 5)
	require.NoError(t, err)

	a, b := h.node.Client(), nodeB.Client()
	connect := func() {
		require.NoError(t, b.AddNode(h.node.P2PAddr(), rpcclient.ANOneTry))
		waitFor(t, func() bool {
			ha, _ := a.GetBestBlockHash()
			hb, _ := b.GetBestBlockHash()
			return ha != nil && hb != nil && *ha == *hb
		}, "the nodes to agree on one chain")
	}
	disconnect := func() {
		require.NoError(t, b.Node(btcjson.NDisconnect, h.node.P2PAddr(), nil))
		waitFor(t, func() bool {
			peers, err := a.GetPeerInfo()
			return err == nil && len(peers) == 0
		}, "the nodes to disconnect")
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := h.follower(follow.Config{StartHeight: "100", Parallel: 4})
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()

	connect() // B syncs A's chain
	for round := range 3 {
		disconnect()
		// A: the watched node extends its chain with payments...
		for range 2 {
			require.NoError(t, h.wallet.Step(2))
		}
		waitSynced(t, h, f, 30*time.Second)
		// ...while B mines a longer branch of its own.
		_, err := walletB.Mine(3 + round)
		require.NoError(t, err)
		connect()
		waitSynced(t, h, f, 30*time.Second)
	}
	cancel()
	<-done
	c := consume(t, h.prod, h.net)
	require.GreaterOrEqual(t, c.removed, 6, "each round removes A's two blocks")
	checkCanonical(t, h, c, 100)
}

func waitFor(t testing.TB, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
