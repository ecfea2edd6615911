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

// SinkUnderTest is one fresh, empty Sink with the hooks the Sink suite
// needs.
type SinkUnderTest struct {
	Sink follow.Sink
	// FailAfter arms the sink so that the next Publish carrying more than
	// n events durably stores its first n events (in order), no other, and
	// returns an error: an acknowledgement lost part-way. Nil when the sink
	// cannot be made to fail; the properties that need it are skipped.
	FailAfter func(n int)
	// Events reads back every block event the sink stored for the stream
	// of c/network, in stored order, repeats of a retried write included.
	Events func(ctx context.Context, c chain.Chain, network string) ([]chain.BlockEvent, error)
}

// followerWindow is the window a Follower with the default
// MaxReorgDepth (64) asks its checkpoint for.
const followerWindow = 65

// Sink proves the follow.Sink contract on the sinks newSink returns, a
// fresh and empty one for each property:
//
//   - EmptyStream: a stream nothing was published to has the checkpoint
//     {NextSeq: 1, no headers}, the sequence number its first event takes.
//   - AddedBlocks: after every Publish of block_added events the checkpoint
//     names the next sequence number and exactly the newest min(window, n)
//     canonical headers, oldest first, for small and large windows.
//   - Reorg: block_removed events take their blocks out of the checkpoint's
//     canonical window (to a shorter branch too), so the window ends at the
//     fork point until the new branch is added, and spans it afterwards.
//   - LongStream: the window is right when the newest events are more
//     removals than the window holds (a sink reading its tail back in
//     chunks must look further back).
//   - StreamsApart: interleaved streams of two networks and two chains
//     never mix: each checkpoint and read-back holds only its own events.
//   - FailedPublish (needs FailAfter): a Publish that fails after storing
//     k of its events returns an error, the checkpoint then reflects
//     exactly those k, and publishing on from that checkpoint (as the
//     Follower does, also after the chain moved to another branch) leaves a
//     stream with no gap and no sequence number holding two different
//     events.
//   - FollowerRestart: a Follower (follow.New, on a scripted chain that
//     grows and reorganizes) publishes a stream that replays to the chain's
//     canonical branch, also (with FailAfter) when a Publish of removals or
//     of added blocks fails part-way and the chain changes before the
//     retry, so only a Follower that reloads the sink's checkpoint gets it
//     right; a Follower restarted on the unchanged chain resumes from the
//     same checkpoint and adds nothing; one restarted after a reorg while it
//     was down repairs the stream.
//
// Every stored stream is also replayed with Replay, which checks the
// sequence and parent links event by event.
func Sink(t *testing.T, newSink func(t *testing.T) SinkUnderTest) {
	t.Run("EmptyStream", func(t *testing.T) { sinkEmpty(t, newSink(t)) })
	t.Run("AddedBlocks", func(t *testing.T) { sinkAdded(t, newSink(t)) })
	t.Run("Reorg", func(t *testing.T) { sinkReorg(t, newSink(t)) })
	t.Run("LongStream", func(t *testing.T) { sinkLong(t, newSink(t)) })
	t.Run("StreamsApart", func(t *testing.T) { sinkApart(t, newSink(t)) })
	t.Run("FailedPublish", func(t *testing.T) { sinkFailed(t, newSink) })
	t.Run("FollowerRestart", func(t *testing.T) { sinkFollower(t, newSink(t)) })
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// model is the stream a correct sink holds: the canonical headers and the
// next sequence number, built the way a Follower builds events.
type model struct {
	c         chain.Chain
	network   string
	canonical []chain.Header
	next      uint64
	nonce     int
}

func newModel(c chain.Chain, network string) *model { return &model{c: c, network: network, next: 1} }

// added returns block_added updates for n new blocks on the tip, without
// applying them.
func (m *model) added(n int) []chain.Update {
	us := make([]chain.Update, 0, n)
	var tip chain.Header
	if k := len(m.canonical); k > 0 {
		tip = m.canonical[k-1]
	}
	for i := range n {
		m.nonce++
		h := chain.Header{Chain: m.c, Network: m.network, Time: 1_700_000_000 + int64(m.nonce),
			Hash: fmt.Sprintf("%s-%s-%d", m.c, m.network, m.nonce)}
		if len(m.canonical) > 0 || i > 0 {
			h.Height, h.ParentHash = tip.Height+1, tip.Hash
		}
		tip = h
		tx := chain.Transaction{V: chain.SchemaVersion, Chain: m.c, Network: m.network, Hash: "tx-" + h.Hash,
			BlockHeight: h.Height, BlockHash: h.Hash, BlockTime: h.Time}
		tr := chain.Transfer{V: chain.SchemaVersion, Chain: m.c, Network: m.network, Asset: chain.AssetNative,
			Standard: chain.StandardNative, TxHash: tx.Hash, From: "from", To: "to", Amount: chain.AmountFromUint64(h.Height + 1),
			BlockHeight: h.Height, BlockHash: h.Hash, BlockTime: h.Time}
		us = append(us, chain.Update{
			Event: chain.BlockEvent{V: chain.SchemaVersion, Type: chain.BlockAdded, Seq: m.next + uint64(i), Header: h, TxCount: 1, TransferCount: 1},
			Block: &chain.Block{Header: h, Transactions: []chain.Transaction{tx}, Transfers: []chain.Transfer{tr}}})
	}
	return us
}

// removed returns block_removed updates for the n newest blocks, newest
// first, without applying them.
func (m *model) removed(n int) []chain.Update {
	us := make([]chain.Update, 0, n)
	for i := range n {
		h := m.canonical[len(m.canonical)-1-i]
		us = append(us, chain.Update{Event: chain.BlockEvent{V: chain.SchemaVersion, Type: chain.BlockRemoved, Seq: m.next + uint64(i), Header: h}})
	}
	return us
}

// apply records that us were stored.
func (m *model) apply(us []chain.Update) {
	for _, u := range us {
		switch u.Event.Type {
		case chain.BlockAdded:
			m.canonical = append(m.canonical, u.Event.Header)
		case chain.BlockRemoved:
			m.canonical = m.canonical[:len(m.canonical)-1]
		}
		m.next++
	}
}

func (m *model) tail(window int) []chain.Header { return newest(m.canonical, window) }

// newest returns the last n headers of hs.
func newest(hs []chain.Header, n int) []chain.Header {
	if len(hs) <= n {
		return hs
	}
	return hs[len(hs)-n:]
}

// publish publishes us, which must succeed, and applies them to m.
func publish(ctx context.Context, t *testing.T, s SinkUnderTest, m *model, us []chain.Update) {
	t.Helper()
	require.NoError(t, s.Sink.Publish(ctx, us), "publish %d events from seq %d", len(us), us[0].Event.Seq)
	m.apply(us)
}

// requireCheckpoint checks the sink's checkpoint of m's stream against m
// for each window, and the stored stream against m.
func requireCheckpoint(ctx context.Context, t *testing.T, s SinkUnderTest, m *model, windows ...int) {
	t.Helper()
	for _, w := range windows {
		cp, err := s.Sink.Checkpoint(ctx, m.c, m.network, w)
		require.NoError(t, err)
		require.Equal(t, m.next, cp.NextSeq, "next seq of %s/%s (window %d)", m.c, m.network, w)
		requireHeaders(t, m.tail(w), cp.Tail, "newest canonical headers of %s/%s (window %d)", m.c, m.network, w)
	}
	requireStored(ctx, t, s, m)
}

// requireStored replays the stored stream: it must obey the stream
// contract and end at m's canonical chain.
func requireStored(ctx context.Context, t *testing.T, s SinkUnderTest, m *model) {
	t.Helper()
	evs, err := s.Events(ctx, m.c, m.network)
	require.NoError(t, err)
	for _, ev := range evs {
		require.Equal(t, chain.StreamKey(m.c, m.network), ev.Stream(), "read-back of %s/%s holds seq %d of another stream", m.c, m.network, ev.Seq)
	}
	got, _, err := Replay(evs)
	require.NoError(t, err, "stored stream of %s/%s", m.c, m.network)
	requireHeaders(t, m.canonical, got, "canonical chain the stored stream of %s/%s leaves", m.c, m.network)
}

func requireHeaders(t *testing.T, want, got []chain.Header, msgAndArgs ...any) {
	t.Helper()
	if len(want) == 0 && len(got) == 0 {
		return // nil and empty are the same window
	}
	require.Equal(t, want, got, msgAndArgs...)
}

func sinkEmpty(t *testing.T, s SinkUnderTest) {
	ctx := testContext(t)
	for _, w := range []int{1, followerWindow} {
		cp, err := s.Sink.Checkpoint(ctx, chain.ETH, "conformance", w)
		require.NoError(t, err)
		require.Equal(t, uint64(1), cp.NextSeq, "an empty stream's first event has seq 1")
		require.Empty(t, cp.Tail)
	}
	evs, err := s.Events(ctx, chain.ETH, "conformance")
	require.NoError(t, err)
	require.Empty(t, evs)
}

func sinkAdded(t *testing.T, s SinkUnderTest) {
	ctx := testContext(t)
	m := newModel(chain.ETH, "conformance")
	for _, n := range []int{1, 4, 7, 20} {
		publish(ctx, t, s, m, m.added(n))
		requireCheckpoint(ctx, t, s, m, 1, 3, 10, followerWindow)
	}
	require.Len(t, m.canonical, 32)
}

func sinkReorg(t *testing.T, s SinkUnderTest) {
	ctx := testContext(t)
	m := newModel(chain.BTC, "conformance")
	publish(ctx, t, s, m, m.added(10))
	windows := []int{1, 3, 6, followerWindow}

	// A reorg as the Follower publishes it: the removals, then the branch.
	publish(ctx, t, s, m, m.removed(3))
	requireCheckpoint(ctx, t, s, m, windows...)
	require.Equal(t, uint64(6), m.canonical[len(m.canonical)-1].Height, "the window ends at the fork point")
	publish(ctx, t, s, m, m.added(4))
	requireCheckpoint(ctx, t, s, m, windows...)

	// One more on top of the new branch, reaching below its fork point.
	publish(ctx, t, s, m, m.removed(5))
	requireCheckpoint(ctx, t, s, m, windows...)
	publish(ctx, t, s, m, m.added(6))
	requireCheckpoint(ctx, t, s, m, windows...)

	// A reorg to a shorter branch: removals only.
	publish(ctx, t, s, m, m.removed(2))
	requireCheckpoint(ctx, t, s, m, windows...)
	require.Equal(t, uint64(9), m.canonical[len(m.canonical)-1].Height)
	require.Equal(t, uint64(31), m.next)
}

func sinkLong(t *testing.T, s SinkUnderTest) {
	ctx := testContext(t)
	m := newModel(chain.ETH, "conformance")
	for range 3 {
		publish(ctx, t, s, m, m.added(50))
	}
	// 70 removals (in two reorgs' worth) are more than a small window and
	// the part of the tail that holds it.
	publish(ctx, t, s, m, m.removed(35))
	publish(ctx, t, s, m, m.removed(35))
	requireCheckpoint(ctx, t, s, m, 1, 4, followerWindow)
	require.Equal(t, uint64(79), m.canonical[len(m.canonical)-1].Height)
	publish(ctx, t, s, m, m.added(5))
	requireCheckpoint(ctx, t, s, m, 1, 4, followerWindow)
	require.Equal(t, uint64(226), m.next)
}

func sinkApart(t *testing.T, s SinkUnderTest) {
	ctx := testContext(t)
	a, b, c := newModel(chain.ETH, "conformance-a"), newModel(chain.ETH, "conformance-b"), newModel(chain.BTC, "conformance-a")
	steps := []struct {
		m  *model
		us func(*model) []chain.Update
	}{
		{a, func(m *model) []chain.Update { return m.added(5) }},
		{b, func(m *model) []chain.Update { return m.added(3) }},
		{c, func(m *model) []chain.Update { return m.added(7) }},
		{a, func(m *model) []chain.Update { return m.removed(2) }},
		{b, func(m *model) []chain.Update { return m.added(4) }},
		{a, func(m *model) []chain.Update { return m.added(3) }},
		{c, func(m *model) []chain.Update { return m.removed(1) }},
	}
	for _, st := range steps {
		publish(ctx, t, s, st.m, st.us(st.m))
		for _, m := range []*model{a, b, c} {
			requireCheckpoint(ctx, t, s, m, 2, followerWindow)
		}
	}
	requireCheckpoint(ctx, t, s, newModel(chain.BTC, "conformance-b"), 1, followerWindow)
}

func sinkFailed(t *testing.T, newSink func(t *testing.T) SinkUnderTest) {
	windows := []int{1, 3, followerWindow}
	cases := []struct {
		name  string
		batch func(*model) []chain.Update // the batch that fails
		keep  int                         // events of it stored
	}{
		{"none_of_6_added", func(m *model) []chain.Update { return m.added(6) }, 0},
		{"2_of_6_added", func(m *model) []chain.Update { return m.added(6) }, 2},
		{"5_of_6_added", func(m *model) []chain.Update { return m.added(6) }, 5},
		{"1_of_3_removed", func(m *model) []chain.Update { return m.removed(3) }, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSink(t)
			if s.FailAfter == nil {
				t.Skip("the sink under test cannot fail a Publish part-way (no FailAfter)")
			}
			ctx := testContext(t)
			m := newModel(chain.ETH, "conformance")
			publish(ctx, t, s, m, m.added(8))
			us := tc.batch(m)
			s.FailAfter(tc.keep)
			require.Error(t, s.Sink.Publish(ctx, us), "a Publish that stored %d of %d events must fail", tc.keep, len(us))
			m.apply(us[:tc.keep])
			requireCheckpoint(ctx, t, s, m, windows...)

			// Resume like the Follower: from the checkpoint, and on a
			// chain that moved meanwhile (the tip replaced, then growth).
			publish(ctx, t, s, m, m.removed(1))
			publish(ctx, t, s, m, m.added(4))
			requireCheckpoint(ctx, t, s, m, windows...)
		})
	}
}

// observedSink wraps the sink under test for the Follower property: it
// counts failed publishes, can slow the next Publish down (so the Follower
// gathers the next batch meanwhile), and runs a hook at the next failure,
// before the Follower learns of it.
type observedSink struct {
	follow.Sink

	mu       sync.Mutex
	failed   int
	slowNext time.Duration
	onFail   func(failed []chain.Update)
}

func (o *observedSink) Publish(ctx context.Context, us []chain.Update) error {
	o.mu.Lock()
	slow := o.slowNext
	o.slowNext = 0
	o.mu.Unlock()
	if slow > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(slow):
		}
	}
	err := o.Sink.Publish(ctx, us)
	if err != nil {
		o.mu.Lock()
		o.failed++
		hook := o.onFail
		o.onFail = nil
		o.mu.Unlock()
		if hook != nil {
			hook(us)
		}
	}
	return err
}

func (o *observedSink) arm(slow time.Duration, onFail func([]chain.Update)) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.slowNext, o.onFail = slow, onFail
}

func (o *observedSink) failures() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.failed
}

func sinkFollower(t *testing.T, s SinkUnderTest) {
	const network = "conformance-follower"
	sc := newScriptChain(chain.ETH, network, 40)
	obs := &observedSink{Sink: s.Sink}
	cfg := follow.Config{Chain: chain.ETH, Network: network, Parallel: 4, BatchBlocks: 5, MaxReorgDepth: 8,
		PollInterval: 5 * time.Millisecond}
	window := cfg.MaxReorgDepth + 1
	ctx := testContext(t)

	var done chan error // the running Follower's end
	// run starts a Follower and returns a stop function that ends it.
	run := func() (*follow.Follower, func()) {
		rctx, cancel := context.WithCancel(ctx)
		f := follow.New(cfg, sc, obs, nil, nil, nil, nil)
		done = make(chan error, 1)
		go func() { done <- f.Run(rctx) }()
		return f, func() {
			cancel()
			require.ErrorIs(t, <-done, context.Canceled)
		}
	}
	// caughtUp waits until the sink's checkpoint ends at the chain's tip,
	// checking the stored stream on the way.
	caughtUp := func() {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			want := sc.canonical() // read again: a hook may change the chain
			tip := want[len(want)-1]
			cp, err := s.Sink.Checkpoint(ctx, chain.ETH, network, window)
			require.NoError(t, err)
			if got, ok := cp.Tip(); ok && got == tip {
				return
			}
			evs, err := s.Events(ctx, chain.ETH, network)
			require.NoError(t, err)
			_, _, err = Replay(evs)
			require.NoError(t, err, "the Follower's stream")
			select {
			case err := <-done:
				t.Fatalf("the Follower stopped: %v", err)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("the stream did not reach the chain's tip %d %s: checkpoint %+v", tip.Height, tip.Hash, cp)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	// requireStream checks the sink's stream against the scripted chain.
	requireStream := func() chain.Checkpoint {
		t.Helper()
		evs, err := s.Events(ctx, chain.ETH, network)
		require.NoError(t, err)
		got, repeats, err := Replay(evs)
		require.NoError(t, err, "the Follower's stream")
		require.Equal(t, sc.canonical(), got, "the Follower's stream replays to the chain's canonical branch")
		cp, err := s.Sink.Checkpoint(ctx, chain.ETH, network, window)
		require.NoError(t, err)
		require.Equal(t, uint64(len(evs)-repeats)+1, cp.NextSeq, "the checkpoint's next seq")
		requireHeaders(t, newest(got, window), cp.Tail, "the checkpoint's window")
		return cp
	}

	_, stop := run()
	caughtUp()
	sc.reorg(4, 2)
	caughtUp()
	if s.FailAfter != nil {
		// A Publish of 4 removals stores 2, and before the Follower
		// retries the chain flips back to the branch they removed, one
		// block longer. Only a Follower that reloads its checkpoint
		// publishes that branch again; one that trusted its own view would
		// publish the new block under a sequence number the sink already
		// holds.
		branch := sc.canonical()
		obs.arm(0, func([]chain.Update) {
			sc.restore(branch)
			sc.extend(1)
		})
		s.FailAfter(2)
		sc.reorg(4, 2)
		caughtUp()
		require.Equal(t, 1, obs.failures(), "the Publish of 4 removals did not fail")

		// A Publish of added blocks stores the first, and before the
		// Follower retries the chain replaces that block. The slow first
		// Publish of the backfill lets the next batch gather more than one
		// block.
		obs.arm(50*time.Millisecond, func(failed []chain.Update) {
			tip := sc.canonical()
			sc.reorg(int(tip[len(tip)-1].Height-failed[0].Event.Height+1), 1)
		})
		s.FailAfter(1)
		sc.extend(12)
		caughtUp()
		require.Equal(t, 2, obs.failures(), "no Publish of added blocks failed")
	}
	sc.extend(12)
	caughtUp()
	stop()
	before := requireStream()

	// Restarted on the unchanged chain: the same checkpoint, nothing added.
	f, stop := run()
	deadline := time.Now().Add(10 * time.Second)
	for !f.Status().Loaded {
		require.True(t, time.Now().Before(deadline), "the restarted Follower did not load its checkpoint")
		time.Sleep(time.Millisecond)
	}
	st := f.Status()
	tip, _ := before.Tip()
	require.Equal(t, before.NextSeq, st.NextSeq, "the restarted Follower's next seq")
	require.Equal(t, tip.Hash, st.Hash, "the restarted Follower's tip")
	time.Sleep(20 * cfg.PollInterval)
	stop()
	require.Equal(t, before, requireStream(), "a restart on an unchanged chain changed the checkpoint")

	// Reorganized while no Follower ran: the next one repairs the stream.
	sc.reorg(3, 1)
	_, stop = run()
	caughtUp()
	stop()
	after := requireStream()
	require.Greater(t, after.NextSeq, before.NextSeq)
}
