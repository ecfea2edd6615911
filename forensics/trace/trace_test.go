package trace_test

import (
	"context"
	"crypto/ecdsa"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"
	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/forensics/trace"
	"github.com/cordonhq/cordon/integration/pipetest"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/testkit"
	"github.com/cordonhq/cordon/watchers/eth/devnet"
)

// chainOps sends payments on the devnet from keys the test holds.
type chainOps struct {
	t     *testing.T
	ctx   context.Context
	dev   *devnet.Devnet
	nonce map[string]uint64 // next nonce per sender: the pool's pending nonce can lag a send
	sent  []common.Hash     // sent since the last stage was mined
}

func addr(k *ecdsa.PrivateKey) string {
	return strings.ToLower(crypto.PubkeyToAddress(k.PublicKey).Hex())
}

func eth(milli int64) *big.Int {
	return new(big.Int).Mul(big.NewInt(milli), big.NewInt(params.Ether/1000))
}

// pay sends value from key to to; the payment is mined by the next commit.
func (o *chainOps) pay(from *ecdsa.PrivateKey, to *ecdsa.PrivateKey, value *big.Int) common.Hash {
	o.t.Helper()
	c := o.dev.Client()
	nonce, ok := o.nonce[addr(from)]
	if !ok {
		n, err := c.PendingNonceAt(o.ctx, crypto.PubkeyToAddress(from.PublicKey))
		require.NoError(o.t, err)
		nonce = n
	}
	o.nonce[addr(from)] = nonce + 1
	dst := crypto.PubkeyToAddress(to.PublicKey)
	tx, err := types.SignNewTx(from, types.LatestSignerForChainID(big.NewInt(devnet.ChainID)), &types.DynamicFeeTx{
		ChainID: big.NewInt(devnet.ChainID), Nonce: nonce, GasTipCap: big.NewInt(params.GWei), GasFeeCap: big.NewInt(50 * params.GWei),
		Gas: 21_000, To: &dst, Value: value})
	require.NoError(o.t, err)
	// The pool takes a new head on its own goroutine: just after a block
	// it may still judge the sender's balance by the state before it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		err = c.SendTransaction(o.ctx, tx)
		if err == nil || !strings.Contains(err.Error(), "insufficient funds") || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	require.NoError(o.t, err)
	o.sent = append(o.sent, tx.Hash())
	return tx.Hash()
}

// mined waits until the transactions are in the chain (after a reorg the
// pool takes its abandoned transactions back asynchronously), sealing
// blocks meanwhile.
func (o *chainOps) mined(txs ...common.Hash) {
	o.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, h := range txs {
		for {
			// Mined in a block of the canonical chain (a receipt of the
			// abandoned branch may linger for a moment after a reorg).
			if rc, err := o.dev.Client().TransactionReceipt(o.ctx, h); err == nil {
				if b, err := o.dev.Client().HeaderByNumber(o.ctx, rc.BlockNumber); err == nil && b.Hash() == rc.BlockHash {
					break
				}
			}
			require.True(o.t, time.Now().Before(deadline), "transaction %s was not mined again", h)
			time.Sleep(50 * time.Millisecond)
			o.dev.Commit()
		}
	}
}

// edge is what a test expects of a trace edge.
type edge struct {
	hop      int
	from, to string
	amount   string
}

func edgesOf(res *trace.Result) []edge {
	var out []edge
	for _, e := range res.Edges {
		out = append(out, edge{e.Hop, e.From, e.To, e.Amount})
	}
	return out
}

func nodesOf(res *trace.Result) []string {
	var out []string
	for _, n := range res.Nodes {
		out = append(out, n.Address)
	}
	slices.Sort(out)
	return out
}

// TestTraceLaunderingPattern lays a theft on a real EVM chain — split,
// merge, a peel chain, a deposit into an exchange, activity before the
// funds arrived and after they left, unrelated traffic and a reorg — and
// traces it through the watcher, Kafka and ClickHouse: every hop is found,
// each once, and no unrelated address.
func TestTraceLaunderingPattern(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dev, pipe := pipetest.ETH(t, ctx, 71)
	ops := &chainOps{t: t, ctx: ctx, dev: dev, nonce: map[string]uint64{}}
	k := devnet.Keys("laundering", 16)
	victim, bystander := k[0], k[1]
	thief, a1, a2, a3, m, exch, hot, w := k[2], k[3], k[4], k[5], k[6], k[7], k[8], k[9]
	p1, p2, p3, p4, q1, q2, q3 := k[10], k[11], k[12], k[13], k[14], k[15], devnet.Keys("laundering-2", 1)[0]

	// Fund the victim and a bystander from genesis accounts, before the
	// random traffic starts using those accounts.
	funder := dev.Key(len(dev.Accounts()) - 1) // not the contract deployer (account 0)
	ops.pay(funder, victim, eth(200_000))
	ops.pay(funder, bystander, eth(10_000))
	ops.mined(ops.sent...)
	ops.sent = nil
	traffic, err := devnet.NewTraffic(ctx, dev, devnet.TrafficConfig{TxPerBlock: 6, Seed: 71}, nil)
	require.NoError(t, err)
	// Each stage is mined before the next is sent (the pool may take a
	// payment after the block being sealed), so stages are in
	// increasing blocks.
	step := func() {
		t.Helper()
		require.NoError(t, traffic.Step(ctx, 6)) // unrelated traffic, mined with the test's payments
		ops.mined(ops.sent...)
		ops.sent = nil
	}
	ops.pay(bystander, a3, eth(2_000)) // A3 has history before the theft…
	step()
	ops.pay(a3, w, eth(500)) // …and spends it before the stolen funds arrive: W is unrelated
	step()
	ops.pay(victim, thief, eth(100_000)) // the theft
	step()
	split := []common.Hash{ops.pay(thief, a1, eth(30_000)), ops.pay(thief, a2, eth(30_000)), ops.pay(thief, a3, eth(39_000))}
	step()
	pipe.WaitLoaded(t, ctx, dev.Head().Hash().Hex()) // the split's block is in ClickHouse…
	require.NoError(t, traffic.Reorg(ctx, 1))        // …when it is mined again on another branch
	ops.mined(split...)
	ops.pay(a1, m, eth(29_900)) // merge
	ops.pay(a2, m, eth(29_900))
	ops.pay(a3, exch, eth(38_900)) // a deposit into an exchange…
	step()
	ops.pay(exch, hot, eth(38_800)) // …swept to its hot wallet: beyond a sink
	ops.pay(m, p1, eth(59_000))     // peel chain
	ops.pay(m, q1, eth(700))
	step()
	ops.pay(bystander, m, eth(1_000)) // into M after the funds left: not a source of them
	ops.pay(p1, p2, eth(58_000))
	ops.pay(p1, q2, eth(900))
	step()
	ops.pay(p2, p3, eth(57_000))
	ops.pay(p2, q3, eth(800))
	step()
	ops.pay(p3, p4, eth(56_000)) // hop 6 from the thief
	step()
	pipe.WaitLoaded(t, ctx, dev.Head().Hash().Hex())

	sinks := map[string]trace.Sink{addr(exch): {Address: addr(exch), Label: "Exchange X deposit", Kind: "exchange"}}
	run := func(o trace.Options) *trace.Result {
		t.Helper()
		o.Chain, o.Network, o.Sinks = chain.ETH, pipetest.ETHNetwork, sinks
		res, err := trace.Run(ctx, pipe.Store, o)
		require.NoError(t, err)
		for _, e := range res.Edges { // only canonical blocks
			b, err := dev.Client().BlockByNumber(ctx, new(big.Int).SetUint64(e.BlockNumber))
			require.NoError(t, err)
			require.Equal(t, strings.ToLower(b.Hash().Hex()), e.BlockHash, "edge %s→%s", e.From, e.To)
		}
		return res
	}
	s := func(milli int64) string { return eth(milli).String() }

	fwd := run(trace.Options{From: []string{addr(thief)}, Hops: 5})
	require.Equal(t, []edge{
		{1, addr(thief), addr(a1), s(30_000)}, {1, addr(thief), addr(a2), s(30_000)}, {1, addr(thief), addr(a3), s(39_000)},
		{2, addr(a1), addr(m), s(29_900)}, {2, addr(a2), addr(m), s(29_900)}, {2, addr(a3), addr(exch), s(38_900)},
		{3, addr(m), addr(p1), s(59_000)}, {3, addr(m), addr(q1), s(700)},
		{4, addr(p1), addr(p2), s(58_000)}, {4, addr(p1), addr(q2), s(900)},
		{5, addr(p2), addr(p3), s(57_000)}, {5, addr(p2), addr(q3), s(800)},
	}, edgesOf(fwd))
	want := []string{addr(thief), addr(a1), addr(a2), addr(a3), addr(m), addr(exch), addr(p1), addr(q1), addr(p2), addr(q2), addr(p3), addr(q3)}
	slices.Sort(want)
	require.Equal(t, want, nodesOf(fwd))
	for _, n := range fwd.Nodes {
		require.Equal(t, n.Address == addr(exch), n.Sink != nil, n.Address)
	}

	// The minimum amount drops the peels.
	large := run(trace.Options{From: []string{addr(thief)}, Hops: 6, MinAmount: eth(1_000)})
	require.NotContains(t, nodesOf(large), addr(q1))
	require.NotContains(t, nodesOf(large), addr(q2))
	require.Contains(t, nodesOf(large), addr(p4), "hop 6")
	require.Len(t, large.Edges, 10)

	// Backward from the end of the peel chain: the bystander's payment into
	// M came after the funds left M and is not a source.
	back := run(trace.Options{From: []string{addr(p3)}, Hops: 6, Backward: true})
	require.Equal(t, []edge{
		{1, addr(p2), addr(p3), s(57_000)},
		{2, addr(p1), addr(p2), s(58_000)},
		{3, addr(m), addr(p1), s(59_000)},
		{4, addr(a1), addr(m), s(29_900)}, {4, addr(a2), addr(m), s(29_900)},
		{5, addr(thief), addr(a1), s(30_000)}, {5, addr(thief), addr(a2), s(30_000)},
		{6, addr(victim), addr(thief), s(100_000)},
	}, edgesOf(back))

	// A time window that ends before the merge stops the trace there.
	h, err := dev.Client().HeaderByNumber(ctx, new(big.Int).SetUint64(fwd.Edges[2].BlockNumber))
	require.NoError(t, err)
	early := run(trace.Options{From: []string{addr(thief)}, Hops: 5, Until: time.Unix(int64(h.Time), 0)})
	require.Len(t, early.Edges, 3)

	// The interactive page renders every address in a real browser.
	page := filepath.Join(t.TempDir(), "trace.html")
	f, err := os.Create(page)
	require.NoError(t, err)
	require.NoError(t, trace.Write(f, fwd, "html"))
	require.NoError(t, f.Close())
	dom := testkit.RenderDOM(t, page)
	require.Contains(t, dom, `data-rendered="12"`, "the page's script did not finish")
	var drawn []string
	for _, m := range regexp.MustCompile(`<g class="node [a-z]+" data-address="([^"]+)"`).FindAllStringSubmatch(dom, -1) {
		drawn = append(drawn, m[1])
	}
	slices.Sort(drawn)
	require.Equal(t, want, drawn)
	require.Regexp(t, `<g class="node sink" data-address="`+addr(exch)+`"`, dom)
	require.Equal(t, 12, strings.Count(dom, `class="edge"`), "one path per address pair")
	require.Contains(t, dom, "Exchange X deposit")
}
