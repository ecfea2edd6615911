package follow

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/internal/chain"
)

// memChain is an in-memory chain whose canonical branch can be rewritten,
// for narrow unit tests of the Follower's bookkeeping. The integration
// tests in watchers/eth run the Follower against a real node.
type memChain struct {
	mu     sync.Mutex
	blocks []chain.Header // canonical, index = height
	nonce  int
	failP  float64 // probability that a BlockAt call fails
	rng    *rand.Rand
}

func newMemChain(seed uint64) *memChain {
	c := &memChain{rng: rand.New(rand.NewPCG(seed, 1))}
	c.blocks = []chain.Header{{Chain: chain.ETH, Network: "mem", Height: 0, Hash: "g", ParentHash: ""}}
	return c
}

func (c *memChain) extend(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for range n {
		c.nonce++
		tip := c.blocks[len(c.blocks)-1]
		c.blocks = append(c.blocks, chain.Header{Chain: chain.ETH, Network: "mem", Height: tip.Height + 1,
			Hash: fmt.Sprintf("h%d-%d", tip.Height+1, c.nonce), ParentHash: tip.Hash, Time: int64(c.nonce)})
	}
}

// reorg drops depth blocks and adds depth+extra new ones.
func (c *memChain) reorg(depth, extra int) {
	c.mu.Lock()
	c.blocks = c.blocks[:len(c.blocks)-depth]
	c.mu.Unlock()
	c.extend(depth + extra)
}

func (c *memChain) Head(context.Context) (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return uint64(len(c.blocks) - 1), nil
}

func (c *memChain) HeaderAt(ctx context.Context, h uint64) (chain.Header, error) {
	if err := ctx.Err(); err != nil {
		return chain.Header{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if h >= uint64(len(c.blocks)) {
		return chain.Header{}, ErrNotFound
	}
	return c.blocks[h], nil
}

func (c *memChain) BlockAt(ctx context.Context, h uint64) (*chain.Block, error) {
	c.mu.Lock()
	fail := c.failP > 0 && c.rng.Float64() < c.failP
	c.mu.Unlock()
	if fail {
		return nil, errors.New("injected fetch failure")
	}
	hd, err := c.HeaderAt(ctx, h)
	if err != nil {
		return nil, err
	}
	return &chain.Block{Header: hd, Transfers: []chain.Transfer{{TxHash: "t" + hd.Hash, BlockHash: hd.Hash}}}, nil
}

func (c *memChain) canonical() []chain.Header {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]chain.Header(nil), c.blocks...)
}

// memSink stores events like a log; it can fail a publish after storing
// part of it, as a Kafka write whose acknowledgement is lost.
type memSink struct {
	mu     sync.Mutex
	events []chain.BlockEvent
	failP  float64
	rng    *rand.Rand
}

func (s *memSink) Publish(ctx context.Context, us []chain.Update) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failP > 0 && s.rng.Float64() < s.failP {
		keep := s.rng.IntN(len(us) + 1) // some, none or all were stored
		for _, u := range us[:keep] {
			s.events = append(s.events, u.Event)
		}
		return errors.New("injected publish failure")
	}
	for _, u := range us {
		s.events = append(s.events, u.Event)
	}
	return nil
}

func (s *memSink) Checkpoint(_ context.Context, c chain.Chain, network string, window int) (chain.Checkpoint, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var st chain.StreamState
	var last uint64
	for _, ev := range s.events {
		if ev.Seq <= last {
			continue
		}
		last = ev.Seq
		st.Apply(ev)
	}
	tail := st.Chain
	if len(tail) > window {
		tail = tail[len(tail)-window:]
	}
	return chain.Checkpoint{NextSeq: last + 1, Tail: tail}, nil
}

// apply replays the sink like a consumer and checks the stream contract.
func (s *memSink) apply(t *testing.T) []chain.Header {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var st chain.StreamState
	var last uint64
	for _, ev := range s.events {
		if ev.Seq <= last {
			continue
		}
		require.Equal(t, last+1, ev.Seq, "gap in sequence")
		last = ev.Seq
		n := len(st.Chain)
		switch ev.Type {
		case chain.BlockAdded:
			if n > 0 {
				require.Equal(t, st.Chain[n-1].Hash, ev.ParentHash, "seq %d does not extend the tip", ev.Seq)
			}
		case chain.BlockRemoved:
			require.Equal(t, st.Chain[n-1].Hash, ev.Hash, "seq %d removes a block that is not the tip", ev.Seq)
		}
		st.Apply(ev)
	}
	return st.Chain
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestRandomReorgsAndFailures interleaves growth, reorgs of random depth,
// failing fetches, partially stored publishes and follower restarts; the
// stream must always apply to exactly the final canonical chain.
func TestRandomReorgsAndFailures(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 2))
			c := newMemChain(seed)
			c.failP = 0.05
			sink := &memSink{failP: 0.05, rng: rand.New(rand.NewPCG(seed, 3))}
			cfg := Config{Chain: chain.ETH, Network: "mem", Parallel: 1 + rng.IntN(8), MaxReorgDepth: 12,
				BatchBlocks: 1 + rng.IntN(16), PollInterval: time.Millisecond, RangeBlocks: uint64(5 + rng.IntN(50))}
			for round := 0; round < 8; round++ {
				ctx, cancel := context.WithCancel(context.Background())
				f := New(cfg, c, sink, nil, nil, nil, nil)
				done := make(chan error, 1)
				go func() { done <- f.Run(ctx) }()
				for range 10 {
					if rng.IntN(3) == 0 && len(c.canonical()) > 12 {
						c.reorg(1+rng.IntN(10), rng.IntN(3))
					} else {
						c.extend(1 + rng.IntN(20))
					}
					time.Sleep(time.Duration(rng.IntN(3)) * time.Millisecond)
				}
				cancel() // a crash at a random point
				require.ErrorIs(t, <-done, context.Canceled)
			}
			// A final run catches up with the chain as it is now.
			c.failP = 0
			sink.mu.Lock()
			sink.failP = 0
			sink.mu.Unlock()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			f := New(cfg, c, sink, nil, nil, nil, nil)
			go func() { _ = f.Run(ctx) }()
			want := c.canonical()
			waitFor(t, func() bool { st := f.Status(); return st.Loaded && st.Hash == want[len(want)-1].Hash })
			cancel()
			require.Equal(t, want, sink.apply(t))
		})
	}
}

func TestReorgTooDeepStops(t *testing.T) {
	c := newMemChain(1)
	c.extend(30)
	sink := &memSink{}
	alerts := &memAlerter{}
	f := New(Config{Chain: chain.ETH, Network: "mem", MaxReorgDepth: 4, PollInterval: time.Millisecond}, c, sink, nil, alerts, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	waitFor(t, func() bool { return f.Status().Height == 30 })
	c.reorg(6, 1)
	var err error
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("follower did not stop")
	}
	var re *ReorgError
	require.ErrorAs(t, err, &re)
	require.ErrorIs(t, err, ErrReorgTooDeep)
	require.Equal(t, 4, re.MaxDepth)
	require.Len(t, alerts.got, 1)
	require.Equal(t, "reorg_too_deep", alerts.got[0].Type)
	// Nothing was removed: the stream still ends at the old tip.
	got := sink.apply(t)
	require.Equal(t, uint64(30), got[len(got)-1].Height)
}

type memAlerter struct{ got []chain.Alert }

func (m *memAlerter) Alert(_ context.Context, a chain.Alert) error {
	m.got = append(m.got, a)
	return nil
}

func TestTipReplacedWithoutGrowth(t *testing.T) {
	c := newMemChain(1)
	c.extend(10)
	sink := &memSink{}
	f := New(Config{Chain: chain.ETH, Network: "mem", PollInterval: time.Millisecond}, c, sink, nil, nil, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = f.Run(ctx) }()
	waitFor(t, func() bool { return f.Status().Height == 10 })
	c.reorg(2, 0) // same height, new tip
	want := c.canonical()
	waitFor(t, func() bool { return f.Status().Hash == want[10].Hash })
	cancel()
	require.Equal(t, want, sink.apply(t))
}

// TestReorgFoundWhileBackfilling restarts a follower after the chain was
// reorganized and grew: the mismatch is found by the first fetched block,
// not by the tip check.
func TestReorgFoundWhileBackfilling(t *testing.T) {
	c := newMemChain(1)
	c.extend(20)
	sink := &memSink{}
	run := func() {
		f := New(Config{Chain: chain.ETH, Network: "mem", Parallel: 4, PollInterval: time.Millisecond}, c, sink, nil, nil, nil, nil)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() { _ = f.Run(ctx) }()
		want := c.canonical()
		waitFor(t, func() bool { return f.Status().Hash == want[len(want)-1].Hash })
		require.Equal(t, uint64(len(want)-1), f.Status().Height)
	}
	run()
	c.reorg(5, 10)
	run()
	require.Equal(t, c.canonical(), sink.apply(t))
}

func TestRangeInOrder(t *testing.T) {
	c := newMemChain(1)
	c.extend(200)
	var got []uint64
	require.NoError(t, Range(context.Background(), c, 5, 150, 7, func(b *chain.Block) error {
		got = append(got, b.Height)
		return nil
	}))
	require.Len(t, got, 146)
	for i, h := range got {
		require.Equal(t, uint64(5+i), h)
	}
}

func TestStartAtHead(t *testing.T) {
	c := newMemChain(1)
	c.extend(50)
	sink := &memSink{}
	f := New(Config{Chain: chain.ETH, Network: "mem", StartHeight: StartHead, PollInterval: time.Millisecond}, c, sink, nil, nil, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = f.Run(ctx) }()
	waitFor(t, func() bool { return f.Status().Height == 50 })
	c.extend(1)
	waitFor(t, func() bool { return f.Status().Height == 51 })
	cancel()
	got := sink.apply(t)
	require.Equal(t, uint64(50), got[0].Height, "an empty stream starts at the head it found")
}

func TestStartHeight(t *testing.T) {
	for _, tc := range []struct {
		in     string
		height uint64
		head   bool
	}{{"", 0, false}, {"0", 0, false}, {StartAt(440), 440, false}, {StartHead, 0, true}} {
		h, head, err := ParseStart(tc.in)
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.height, h, tc.in)
		require.Equal(t, tc.head, head, tc.in)
	}
	_, _, err := ParseStart("soon")
	require.EqualError(t, err, `start height "soon": want a block height or "head"`)
	f := New(Config{Chain: chain.ETH, Network: "mem", StartHeight: "-1"}, newMemChain(1), &memSink{}, nil, nil, nil, nil)
	require.ErrorContains(t, f.Run(context.Background()), `follow: start height "-1"`)
}

// disagreeing is a memChain whose endpoints stop agreeing on the blocks
// from a height on: HeaderAt and BlockAt there return ErrNotAgreed.
type disagreeing struct {
	*memChain
	mu    sync.Mutex
	from  uint64 // 0: every height agreed
	asked int    // HeaderAt calls at a disagreed height
}

func (d *disagreeing) split(from uint64) {
	d.mu.Lock()
	d.from = from
	d.mu.Unlock()
}

func (d *disagreeing) disagreed(h uint64) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.from > 0 && h >= d.from {
		d.asked++
		return true
	}
	return false
}

func (d *disagreeing) HeaderAt(ctx context.Context, h uint64) (chain.Header, error) {
	if d.disagreed(h) {
		return chain.Header{}, fmt.Errorf("height %d: %w", h, ErrNotAgreed)
	}
	return d.memChain.HeaderAt(ctx, h)
}

func (d *disagreeing) BlockAt(ctx context.Context, h uint64) (*chain.Block, error) {
	if d.disagreed(h) {
		return nil, fmt.Errorf("height %d: %w", h, ErrNotAgreed)
	}
	return d.memChain.BlockAt(ctx, h)
}

// TestNotAgreedWaits: heights the endpoints do not agree on are never
// taken for a shorter chain — no published block is removed — and the
// follower goes on once they agree again.
func TestNotAgreedWaits(t *testing.T) {
	d := &disagreeing{memChain: newMemChain(3)}
	d.extend(20)
	sink := &memSink{}
	f := New(Config{Chain: chain.ETH, Network: "mem", MaxReorgDepth: 8, PollInterval: time.Millisecond}, d, sink, nil, nil, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	waitFor(t, func() bool { return f.Status().Height == 20 })
	d.split(15)
	waitFor(t, func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.asked >= 3
	})
	require.Zero(t, f.Status().Removed, "a height not agreed was taken for a shorter chain")
	d.split(0)
	d.extend(2)
	waitFor(t, func() bool { return f.Status().Height == 22 })
	cancel()
	<-done
	require.Equal(t, d.canonical(), sink.apply(t))
}
