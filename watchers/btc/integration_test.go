package btc_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/txscript"
	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/ingest/kafka/kafkatest"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/watchers/btc"
	"github.com/cordonhq/cordon/watchers/btc/btcnode"
	"github.com/cordonhq/cordon/watchers/btc/btctest"
	"github.com/cordonhq/cordon/watchers/follow"
)

type harness struct {
	net    string
	node   *btcnode.Node
	wallet *btcnode.Wallet
	prod   *kafka.Producer
	src    *btc.Source
}

func newHarness(t testing.TB, network string, seed uint64) *harness {
	t.Helper()
	ctx := context.Background()
	addr, err := btcnode.MiningAddress(network, fmt.Sprint(seed))
	require.NoError(t, err)
	node := btctest.Node(t, network, addr)
	w, err := btcnode.NewWallet(node, network, fmt.Sprint(seed), seed)
	require.NoError(t, err)
	require.NoError(t, w.Bootstrap())

	prod, err := kafka.New(kafka.Config{Brokers: kafkatest.Brokers(t), CreateTopics: true, Partitions: 3}, nil, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = prod.Close() })
	require.NoError(t, prod.EnsureTopics(ctx))

	src, err := btc.NewSource(btc.Config{Network: network, Clients: 4,
		Endpoints: []btc.EndpointConfig{{Name: "btcd", URL: config.SecretValue(node.URL), User: node.User(), Password: config.SecretValue(node.Password())}}}, nil, nil)
	require.NoError(t, err)
	t.Cleanup(src.Close)
	return &harness{net: network, node: node, wallet: w, prod: prod, src: src}
}

func (h *harness) follower(cfg follow.Config) *follow.Follower {
	cfg.Chain, cfg.Network = chain.BTC, h.net
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 50 * time.Millisecond
	}
	return follow.New(cfg, h.src, h.prod, nil, h.prod, nil, nil)
}

type consumed struct {
	chain           []chain.Header
	outputs, spends map[string]string // key → description, canonical or not
	rawOutputs      int
	rawSpends       int
	removed         int
}

func consume(t testing.TB, p *kafka.Producer, net string) consumed {
	t.Helper()
	ctx := context.Background()
	c := consumed{outputs: map[string]string{}, spends: map[string]string{}}
	st, stats, err := p.ReadStream(ctx, chain.BTC, net)
	require.NoError(t, err)
	c.removed = stats.Removed
	c.chain = st.Chain
	require.NoError(t, p.ReadParts(ctx, p.Topics().Outputs, func(part kafka.Part) error {
		outs, err := kafka.Items[chain.Output](part)
		require.NoError(t, err)
		for _, o := range outs {
			addr := "-"
			if o.Address != nil {
				addr = *o.Address
			}
			c.outputs[o.Key()] = fmt.Sprintf("%s:%s:%s:%v", addr, o.ScriptType, o.Amount, o.Coinbase)
			c.rawOutputs++
		}
		return nil
	}))
	require.NoError(t, p.ReadParts(ctx, p.Topics().Spends, func(part kafka.Part) error {
		spends, err := kafka.Items[chain.Spend](part)
		require.NoError(t, err)
		for _, s := range spends {
			c.spends[s.Key()] = fmt.Sprintf("%s:%d", s.PrevTxHash, s.PrevVout)
			c.rawSpends++
		}
		return nil
	}))
	return c
}

// checkCanonical compares the consumed stream with the node's canonical
// chain, computed independently with rpcclient's decoded blocks and
// txscript: same headers, and exactly the outputs and spends of canonical
// blocks.
func checkCanonical(t testing.TB, h *harness, c consumed, from int64) {
	t.Helper()
	cl := h.node.Client()
	tip, err := cl.GetBlockCount()
	require.NoError(t, err)
	require.Len(t, c.chain, int(tip-from+1), "consumer chain length")
	net := mustNet(t, h.net)
	wantOut, wantSpend := map[string]string{}, map[string]string{}
	canonical := map[string]bool{}
	for height := from; height <= tip; height++ {
		hash, err := cl.GetBlockHash(height)
		require.NoError(t, err)
		require.Equal(t, hash.String(), c.chain[height-from].Hash, "hash at height %d", height)
		canonical[hash.String()] = true
		blk, err := cl.GetBlock(hash)
		require.NoError(t, err)
		for i, tx := range blk.Transactions {
			id := tx.TxHash().String()
			for v, o := range tx.TxOut {
				addr := "-"
				_, addrs, _, err := txscript.ExtractPkScriptAddrs(o.PkScript, net.Params())
				if err == nil && len(addrs) == 1 {
					addr = addrs[0].EncodeAddress()
				}
				typ, _ := btc.ClassifyScript(o.PkScript, &net)
				wantOut[fmt.Sprintf("btc/%s/%s/%s/%d", h.net, hash, id, v)] = fmt.Sprintf("%s:%s:%d:%v", addr, typ, o.Value, i == 0)
			}
			if i == 0 {
				continue
			}
			for v, in := range tx.TxIn {
				wantSpend[fmt.Sprintf("btc/%s/%s/%s/%d", h.net, hash, id, v)] = fmt.Sprintf("%s:%d", in.PreviousOutPoint.Hash, in.PreviousOutPoint.Index)
			}
		}
	}
	gotOut, gotSpend := map[string]string{}, map[string]string{}
	for k, v := range c.outputs {
		if canonical[blockOfKey(k)] {
			gotOut[k] = v
		}
	}
	for k, v := range c.spends {
		if canonical[blockOfKey(k)] {
			gotSpend[k] = v
		}
	}
	require.Equal(t, len(wantOut), len(gotOut), "canonical output count")
	require.Equal(t, wantOut, gotOut, "canonical outputs")
	require.Equal(t, wantSpend, gotSpend, "canonical spends")
	require.Equal(t, c.rawOutputs, len(c.outputs), "an output record was written twice")
	require.Equal(t, c.rawSpends, len(c.spends), "a spend record was written twice")
}

func blockOfKey(k string) string {
	// btc/regtest/<block>/<tx>/<n>
	var parts [5]string
	n := 0
	start := 0
	for i := 0; i <= len(k) && n < 5; i++ {
		if i == len(k) || k[i] == '/' {
			parts[n] = k[start:i]
			n++
			start = i + 1
		}
	}
	return parts[2]
}

func mustNet(t testing.TB, name string) btc.Network {
	n, err := btc.LookupNetwork(name)
	require.NoError(t, err)
	return n
}

func waitSynced(t testing.TB, h *harness, f *follow.Follower, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		tip, err := h.node.Client().GetBlockCount()
		require.NoError(t, err)
		hash, err := h.node.Client().GetBlockHash(tip)
		require.NoError(t, err)
		st := f.Status()
		if st.Height == uint64(tip) && st.Hash == hash.String() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("follower not at the node's tip after %s: %+v", timeout, f.Status())
}

// TestFollowWithReorgs runs the watcher against a real btcd while the
// wallet pays and spends and the chain reorganizes (depths 1 to 4): the
// consumer must end with the node's canonical chain and every output and
// spend of it exactly once.
func TestFollowWithReorgs(t *testing.T) {
	for i, network := range []string{"regtest", "simnet"} {
		t.Run(network, func(t *testing.T) { testFollowWithReorgs(t, network, uint64(i+1)) })
	}
}

func testFollowWithReorgs(t testing.TB, network string, seed uint64) {
	h := newHarness(t, network, seed)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := h.follower(follow.Config{StartHeight: "0", Parallel: 4, BatchBlocks: 8})
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	for round := 1; round <= 16; round++ {
		require.NoError(t, h.wallet.Step(3))
		if round%4 == 0 {
			waitSynced(t, h, f, 30*time.Second) // the watcher holds the blocks the reorg removes
			require.NoError(t, h.wallet.Reorg(round/4))
		}
	}
	waitSynced(t, h, f, 60*time.Second)
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	c := consume(t, h.prod, h.net)
	require.Positive(t, c.removed, "no reorg reached the stream")
	require.Greater(t, len(c.spends), 40, "the wallet's spends")
	t.Logf("%d outputs, %d spends, %d blocks removed", len(c.outputs), len(c.spends), c.removed)
	checkCanonical(t, h, c, 0)
	st := f.Status()
	require.Positive(t, st.Reorgs)
}

// TestRestartResumes stops the watcher mid-way, reorganizes the chain
// while it is down, and starts a new one: it resumes from Kafka alone.
func TestRestartResumes(t *testing.T) {
	h := newHarness(t, "simnet", 3)
	for range 3 {
		ctx, cancel := context.WithCancel(context.Background())
		f := h.follower(follow.Config{StartHeight: "0", Parallel: 3, BatchBlocks: 4})
		done := make(chan error, 1)
		go func() { done <- f.Run(ctx) }()
		for range 3 {
			require.NoError(t, h.wallet.Step(2))
		}
		waitSynced(t, h, f, 60*time.Second)
		cancel()
		<-done
		require.NoError(t, h.wallet.Reorg(2)) // while the watcher is down
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := h.follower(follow.Config{StartHeight: "0", Parallel: 3})
	go func() { _ = f.Run(ctx) }()
	waitSynced(t, h, f, 60*time.Second)
	cancel()
	checkCanonical(t, h, consume(t, h.prod, h.net), 0)
}

var _ = btcutil.Amount(0)
