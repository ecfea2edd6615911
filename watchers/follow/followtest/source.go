package followtest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/watchers/follow"
)

// SourceUnderTest is a Source connected to a real node, and the means to
// change that node's chain.
type SourceUnderTest struct {
	Source follow.Source
	// Chain and Network are what every header and record of the source
	// must name.
	Chain   chain.Chain
	Network string
	// Mine makes the node's best chain exactly n blocks longer. Each new
	// block carries transactions (besides the coinbase, on Bitcoin).
	Mine func(n int) error
	// Reorg replaces the node's newest depth blocks with a branch of
	// depth+1 new blocks, each different from the one it replaces.
	Reorg func(depth int) error
}

// Source proves the follow.Source contract (and follow.Finalizer, when the
// source implements it) on the source newSource returns. The properties run
// in order on the one node, each from the head it finds:
//
//   - HeadersLink: HeaderAt(h) for the lowest heights and the newest 40 up
//     to Head names the source's chain and network and height h, and its
//     parent hash is HeaderAt(h-1)'s hash.
//   - HeadGrowsWithMining: Head never goes back and grows by exactly the
//     blocks mined; the new headers extend the old tip, which stays.
//   - BlocksMatchHeaders: BlockAt(h) carries HeaderAt(h) (hash, parent,
//     height, time), and each of its transactions, transfers, outputs and
//     spends names that block's hash, height, time, chain and network and a
//     transaction of the block.
//   - ConcurrentFetches: BlockAt called from several goroutines at once (as
//     the Follower's backfill does) returns the same blocks as serial calls.
//   - AboveHead: HeaderAt and BlockAt above the head fail with an error
//     that is follow.ErrNotFound, which the Follower takes for "not yet"
//     and for a chain that became shorter.
//   - Reorg: after the node reorganizes, HeaderAt and BlockAt at the forked
//     heights return the new branch, linked to the unchanged fork point,
//     and no record of a new block names an abandoned one.
//   - ContextEnded: a cancelled or expired context makes Head, HeaderAt,
//     BlockAt (and Finalized) return promptly with an error that is the
//     context's, every time: a reply that races the context never wins.
//   - Finalized (a Finalizer only; checked after every Mine and Reorg too):
//     the finalized height is never above Head and names a block the
//     source has.
//   - FollowerTracksNode: a Follower on the source (into a MemorySink)
//     publishes exactly the node's canonical chain across mining and a
//     reorganization.
func Source(t *testing.T, newSource func(t *testing.T) SourceUnderTest) {
	s := newSource(t)
	r := &sourceRun{SourceUnderTest: s}
	ctx := testContext(t)
	r.mine(ctx, t, 3) // every property below finds mined blocks under the head
	t.Run("HeadersLink", func(t *testing.T) { r.headersLink(testContext(t), t) })
	t.Run("HeadGrowsWithMining", func(t *testing.T) { r.headGrows(testContext(t), t) })
	t.Run("BlocksMatchHeaders", func(t *testing.T) { r.blocksMatch(testContext(t), t) })
	t.Run("ConcurrentFetches", func(t *testing.T) { r.concurrent(testContext(t), t) })
	t.Run("AboveHead", func(t *testing.T) { r.aboveHead(testContext(t), t) })
	t.Run("Reorg", func(t *testing.T) { r.reorg(testContext(t), t) })
	t.Run("ContextEnded", func(t *testing.T) { r.contextEnded(testContext(t), t) })
	t.Run("Finalized", func(t *testing.T) { r.finalized(testContext(t), t) })
	t.Run("FollowerTracksNode", func(t *testing.T) { r.follower(testContext(t), t) })
}

type sourceRun struct {
	SourceUnderTest
	lastHead uint64 // the highest head read, to prove Head never goes back
}

// head reads the head; it must not be below one read before, except right
// after a Reorg, which resets lastHead.
func (r *sourceRun) head(ctx context.Context, t *testing.T) uint64 {
	t.Helper()
	h, err := r.Source.Head(ctx)
	require.NoError(t, err, "Head")
	require.GreaterOrEqual(t, h, r.lastHead, "Head went back without a reorganization")
	r.lastHead = h
	r.checkFinalized(ctx, t, h)
	return h
}

func (r *sourceRun) mine(ctx context.Context, t *testing.T, n int) {
	t.Helper()
	before := r.head(ctx, t)
	require.NoError(t, r.Mine(n), "mine %d blocks", n)
	require.Equal(t, before+uint64(n), r.head(ctx, t), "Head after mining %d blocks on %d", n, before)
}

func (r *sourceRun) header(ctx context.Context, t *testing.T, h uint64) chain.Header {
	t.Helper()
	hd, err := r.Source.HeaderAt(ctx, h)
	require.NoError(t, err, "HeaderAt(%d)", h)
	require.Equal(t, h, hd.Height, "HeaderAt(%d) height", h)
	require.Equal(t, r.Chain, hd.Chain, "HeaderAt(%d) chain", h)
	require.Equal(t, r.Network, hd.Network, "HeaderAt(%d) network", h)
	require.NotEmpty(t, hd.Hash, "HeaderAt(%d) hash", h)
	return hd
}

// headers returns HeaderAt(from..to) and checks their parent links.
func (r *sourceRun) headers(ctx context.Context, t *testing.T, from, to uint64) []chain.Header {
	t.Helper()
	var out []chain.Header
	for h := from; h <= to; h++ {
		hd := r.header(ctx, t, h)
		if n := len(out); n > 0 {
			require.Equal(t, out[n-1].Hash, hd.ParentHash, "HeaderAt(%d) does not link to HeaderAt(%d)", h, h-1)
			require.NotEqual(t, out[n-1].Hash, hd.Hash, "HeaderAt(%d) and HeaderAt(%d) share a hash", h, h-1)
		}
		out = append(out, hd)
	}
	return out
}

func (r *sourceRun) headersLink(ctx context.Context, t *testing.T) {
	head := r.head(ctx, t)
	r.headers(ctx, t, 0, min(head, 3))
	from := uint64(0)
	if head > 40 {
		from = head - 40
	}
	r.headers(ctx, t, from, head)
}

func (r *sourceRun) headGrows(ctx context.Context, t *testing.T) {
	h0 := r.head(ctx, t)
	old := r.headers(ctx, t, h0-2, h0)
	r.mine(ctx, t, 1)
	r.mine(ctx, t, 3)
	r.head(ctx, t)
	got := r.headers(ctx, t, h0-2, h0+4)
	require.Equal(t, old, got[:3], "mining changed the blocks below the old tip")
}

// requireBlock checks BlockAt(h) against the header and returns it.
func (r *sourceRun) requireBlock(ctx context.Context, t *testing.T, want chain.Header) *chain.Block {
	t.Helper()
	b, err := r.Source.BlockAt(ctx, want.Height)
	require.NoError(t, err, "BlockAt(%d)", want.Height)
	require.NotNil(t, b, "BlockAt(%d)", want.Height)
	require.Equal(t, want, b.Header, "BlockAt(%d) header is not HeaderAt(%d)", want.Height, want.Height)
	requireRecords(t, b)
	return b
}

// requireRecords checks that every record of b names b and one of its
// transactions.
func requireRecords(t *testing.T, b *chain.Block) {
	t.Helper()
	type rec struct {
		kind, tx, hash, network string
		c                       chain.Chain
		height                  uint64
		time                    int64
	}
	txs := map[string]bool{}
	recs := make([]rec, 0, len(b.Transactions)+len(b.Transfers)+len(b.Outputs)+len(b.Spends))
	for _, x := range b.Transactions {
		require.False(t, txs[x.Hash], "block %d lists transaction %s twice", b.Height, x.Hash)
		txs[x.Hash] = true
		recs = append(recs, rec{"transaction", x.Hash, x.BlockHash, x.Network, x.Chain, x.BlockHeight, x.BlockTime})
	}
	for _, x := range b.Transfers {
		recs = append(recs, rec{"transfer", x.TxHash, x.BlockHash, x.Network, x.Chain, x.BlockHeight, x.BlockTime})
	}
	for _, x := range b.Outputs {
		recs = append(recs, rec{"output", x.TxHash, x.BlockHash, x.Network, x.Chain, x.BlockHeight, x.BlockTime})
	}
	for _, x := range b.Spends {
		recs = append(recs, rec{"spend", x.TxHash, x.BlockHash, x.Network, x.Chain, x.BlockHeight, x.BlockTime})
	}
	for _, x := range recs {
		where := fmt.Sprintf("%s of tx %s in block %d %s", x.kind, x.tx, b.Height, b.Hash)
		require.Equal(t, b.Hash, x.hash, "%s: block hash", where)
		require.Equal(t, b.Height, x.height, "%s: block height", where)
		require.Equal(t, b.Time, x.time, "%s: block time", where)
		require.Equal(t, b.Chain, x.c, "%s: chain", where)
		require.Equal(t, b.Network, x.network, "%s: network", where)
		require.True(t, txs[x.tx], "%s: not a transaction of the block", where)
	}
}

func (r *sourceRun) blocksMatch(ctx context.Context, t *testing.T) {
	r.mine(ctx, t, 2)
	head := r.head(ctx, t)
	var records int
	for _, hd := range r.headers(ctx, t, head-3, head) {
		b := r.requireBlock(ctx, t, hd)
		require.NotEmpty(t, b.Transactions, "mined block %d has no transactions", hd.Height)
		records += len(b.Transfers) + len(b.Outputs) + len(b.Spends)
	}
	require.Positive(t, records, "four mined blocks without one transfer, output or spend: nothing was checked")
	r.requireBlock(ctx, t, r.header(ctx, t, 0))
}

func (r *sourceRun) concurrent(ctx context.Context, t *testing.T) {
	head := r.head(ctx, t)
	from := uint64(0)
	if head > 7 {
		from = head - 7
	}
	want := r.headers(ctx, t, from, head)
	const workers = 4
	got := make([][]*chain.Block, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			got[w] = make([]*chain.Block, len(want))
			for i := range want {
				j := (i + w*3) % len(want) // each worker in another order
				b, err := r.Source.BlockAt(ctx, want[j].Height)
				if err != nil {
					errs[w] = fmt.Errorf("BlockAt(%d): %w", want[j].Height, err)
					return
				}
				got[w][j] = b
			}
		})
	}
	wg.Wait()
	for w := range workers {
		require.NoError(t, errs[w], "worker %d", w)
		for i, b := range got[w] {
			require.Equal(t, want[i], b.Header, "worker %d: BlockAt(%d) header", w, want[i].Height)
			require.Len(t, b.Transactions, len(got[0][i].Transactions), "worker %d: BlockAt(%d) transactions", w, want[i].Height)
			requireRecords(t, b)
		}
	}
}

func (r *sourceRun) aboveHead(ctx context.Context, t *testing.T) {
	head := r.head(ctx, t)
	for _, h := range []uint64{head + 1, head + 2, head + 1000} {
		_, err := r.Source.HeaderAt(ctx, h)
		require.ErrorIs(t, err, follow.ErrNotFound, "HeaderAt(%d) above the head %d", h, head)
		b, err := r.Source.BlockAt(ctx, h)
		require.ErrorIs(t, err, follow.ErrNotFound, "BlockAt(%d) above the head %d", h, head)
		require.Nil(t, b, "BlockAt(%d) above the head returned a block", h)
	}
}

func (r *sourceRun) reorg(ctx context.Context, t *testing.T) {
	const depth = 3
	r.mine(ctx, t, depth+1)
	h0 := r.head(ctx, t)
	fork := h0 - depth
	old := r.headers(ctx, t, fork, h0)
	oldHashes := map[string]bool{}
	for _, hd := range old[1:] {
		oldHashes[hd.Hash] = true
	}

	require.NoError(t, r.Reorg(depth), "reorg %d blocks", depth)
	r.lastHead = 0
	require.Equal(t, h0+1, r.head(ctx, t), "Head after replacing %d blocks with %d", depth, depth+1)
	got := r.headers(ctx, t, fork, h0+1)
	require.Equal(t, old[0], got[0], "the fork point %d changed", fork)
	for i, hd := range got[1:] {
		require.False(t, oldHashes[hd.Hash], "HeaderAt(%d) still returns a block of the abandoned branch", hd.Height)
		if i < depth {
			require.NotEqual(t, old[i+1].Hash, hd.Hash, "HeaderAt(%d) not replaced", hd.Height)
		}
		b := r.requireBlock(ctx, t, hd)
		for _, tx := range b.Transactions {
			require.False(t, oldHashes[tx.BlockHash], "a transaction of block %d names an abandoned block", hd.Height)
		}
	}
}

func (r *sourceRun) contextEnded(ctx context.Context, t *testing.T) {
	head := r.head(ctx, t)
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	expired, cancel2 := context.WithDeadline(ctx, time.Now().Add(-time.Second))
	defer cancel2()
	for _, c := range []struct {
		name string
		ctx  context.Context
		want error
	}{{"cancelled", cancelled, context.Canceled}, {"expired", expired, context.DeadlineExceeded}} {
		calls := []struct {
			name string
			call func(context.Context) error
		}{
			{"Head", func(ctx context.Context) error { _, err := r.Source.Head(ctx); return err }},
			{"HeaderAt", func(ctx context.Context) error { _, err := r.Source.HeaderAt(ctx, head); return err }},
			{"BlockAt", func(ctx context.Context) error { _, err := r.Source.BlockAt(ctx, head); return err }},
		}
		if fz, ok := r.Source.(follow.Finalizer); ok {
			calls = append(calls, struct {
				name string
				call func(context.Context) error
			}{"Finalized", func(ctx context.Context) error { _, err := fz.Finalized(ctx); return err }})
		}
		for _, call := range calls {
			for range 25 { // a call must not win a race against the context now and then
				start := time.Now()
				err := call.call(c.ctx)
				require.ErrorIs(t, err, c.want, "%s with a %s context", call.name, c.name)
				require.Less(t, time.Since(start), 5*time.Second, "%s with a %s context took long", call.name, c.name)
			}
		}
	}
}

// checkFinalized checks a Finalizer against the head just read.
func (r *sourceRun) checkFinalized(ctx context.Context, t *testing.T, head uint64) {
	t.Helper()
	fz, ok := r.Source.(follow.Finalizer)
	if !ok {
		return
	}
	f, err := fz.Finalized(ctx)
	require.NoError(t, err, "Finalized")
	after, err := r.Source.Head(ctx)
	require.NoError(t, err, "Head")
	require.LessOrEqual(t, f, max(head, after), "the finalized height is above the head")
	if f > 0 {
		_, err := r.Source.HeaderAt(ctx, f)
		require.NoError(t, err, "HeaderAt(finalized %d)", f)
	}
}

func (r *sourceRun) finalized(ctx context.Context, t *testing.T) {
	fz, ok := r.Source.(follow.Finalizer)
	if !ok {
		t.Skip("the source is not a follow.Finalizer")
	}
	r.mine(ctx, t, 1)
	f, err := fz.Finalized(ctx)
	require.NoError(t, err)
	t.Logf("finalized height %d, head %d", f, r.lastHead)
}

func (r *sourceRun) follower(ctx context.Context, t *testing.T) {
	head := r.head(ctx, t)
	start := head - 4
	sink := NewMemorySink()
	cfg := follow.Config{Chain: r.Chain, Network: r.Network, StartHeight: follow.StartAt(start), Parallel: 3, BatchBlocks: 4,
		MaxReorgDepth: 8, PollInterval: 20 * time.Millisecond}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	f := follow.New(cfg, r.Source, sink, nil, nil, nil, nil)
	done := make(chan error, 1)
	go func() { done <- f.Run(rctx) }()

	// caughtUp waits until the stream ends at the node's tip and returns
	// the node's canonical headers from start.
	caughtUp := func() []chain.Header {
		t.Helper()
		h := r.head(ctx, t)
		want := r.headers(ctx, t, start, h)
		deadline := time.Now().Add(30 * time.Second)
		for {
			cp, err := sink.Checkpoint(ctx, r.Chain, r.Network, 1)
			require.NoError(t, err)
			if tip, ok := cp.Tip(); ok && tip == want[len(want)-1] {
				return want
			}
			select {
			case err := <-done:
				t.Fatalf("the Follower stopped: %v", err)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("the Follower did not reach the node's tip %d: %+v", h, f.Status())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	caughtUp()
	r.mine(ctx, t, 2)
	caughtUp()
	require.NoError(t, r.Reorg(2))
	r.lastHead = 0
	r.mine(ctx, t, 1)
	want := caughtUp()
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)

	evs, err := sink.Events(ctx, r.Chain, r.Network)
	require.NoError(t, err)
	got, _, err := Replay(evs)
	require.NoError(t, err, "the Follower's stream")
	require.Equal(t, want, got, "the Follower's stream replays to the node's canonical chain")
	var removed int
	for _, ev := range evs {
		if ev.Type == chain.BlockRemoved {
			removed++
		}
	}
	require.Positive(t, removed, "the reorganization did not reach the stream")
}
