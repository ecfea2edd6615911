package follow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/cordonhq/cordon/internal/chain"
)

// ErrReorgTooDeep stops a Follower when the fork point of a reorganization
// lies deeper than the configured maximum or outside its window.
var ErrReorgTooDeep = errors.New("reorg deeper than the configured maximum")

// ErrNotFound is returned by a Source when the node does not (yet) have a
// block at the requested height.
var ErrNotFound = errors.New("block not found")

// ErrNotAgreed is returned by a Source whose endpoints do not agree on the
// block at a height: no block hash is reported by the quorum. It wraps
// ErrNotFound, so a fetch waits and retries; the Follower never takes it
// for a missing block (a shorter chain) when it checks its tip or searches
// a fork point, and never removes a published block because of it.
var ErrNotAgreed = fmt.Errorf("%w: no block hash reached the endpoint quorum", ErrNotFound)

// ReorgError carries the details of a reorganization the Follower refused
// to follow.
type ReorgError struct {
	Height   uint64 // height of the block whose parent did not match
	Depth    int    // blocks walked back without finding the fork point
	MaxDepth int
}

func (e *ReorgError) Error() string {
	return fmt.Sprintf("no common ancestor within %d blocks below height %d (max_reorg_depth %d): %v",
		e.Depth, e.Height, e.MaxDepth, ErrReorgTooDeep)
}

func (e *ReorgError) Unwrap() error { return ErrReorgTooDeep }

// Source is a chain node as the Follower needs it.
type Source interface {
	// Head returns the height of the node's best block.
	Head(ctx context.Context) (uint64, error)
	// HeaderAt returns the node's canonical header at height.
	HeaderAt(ctx context.Context, height uint64) (chain.Header, error)
	// BlockAt fetches and normalizes the node's canonical block at height.
	BlockAt(ctx context.Context, height uint64) (*chain.Block, error)
}

// Finalizer is a Source whose node names a finalized block (Ethereum's
// "finalized" tag). The follower stamps its height on the block events it
// publishes; 0 means the node has none yet.
type Finalizer interface {
	Finalized(ctx context.Context) (uint64, error)
}

// Sink receives events in order. Publish returns only once every event is
// durably stored. An error means none, some or all were stored: the
// Follower then reloads its Checkpoint from the Sink before publishing
// anything else, so a stream never holds two different events with one
// sequence number.
type Sink interface {
	Publish(ctx context.Context, updates []chain.Update) error
	// Checkpoint reads back where the published stream of chain/network
	// ends: the next sequence number and up to window newest canonical
	// headers.
	Checkpoint(ctx context.Context, c chain.Chain, network string, window int) (chain.Checkpoint, error)
}

// Alerter receives the alert raised when the Follower stops on a reorg it
// will not follow.
type Alerter interface {
	Alert(ctx context.Context, a chain.Alert) error
}

// Config tunes a Follower. A chain network's entry in the config file
// holds its keys (start_height, parallel, max_reorg_depth, batch_blocks,
// poll_interval); Chain and Network are set by whoever builds the
// Follower.
type Config struct {
	Chain   chain.Chain `yaml:"-"`
	Network string      `yaml:"-"`
	// StartHeight is where an empty stream starts: a block height in
	// decimal (StartAt), or StartHead for the node's head; empty is 0.
	StartHeight string `yaml:"start_height"`
	// Parallel is the number of concurrent block fetches during backfill.
	Parallel int `yaml:"parallel"`
	// MaxReorgDepth is the deepest reorganization followed.
	MaxReorgDepth int `yaml:"max_reorg_depth"`
	// BatchBlocks caps the blocks handed to the Sink in one Publish.
	BatchBlocks int `yaml:"batch_blocks"`
	// PollInterval is how often the head is polled when no wake-up arrives.
	PollInterval time.Duration `yaml:"poll_interval"`
	// RangeBlocks caps the heights one backfill round fetches.
	RangeBlocks uint64 `yaml:"-"`
}

// StartHead is the StartHeight that starts an empty stream at the node's
// head.
const StartHead = "head"

// StartAt is the StartHeight that starts an empty stream at height h.
func StartAt(h uint64) string { return strconv.FormatUint(h, 10) }

// ParseStart reads a StartHeight: the height to start at, or head when
// the stream starts at the node's head.
func ParseStart(s string) (height uint64, head bool, err error) {
	switch s {
	case "":
		return 0, false, nil
	case StartHead:
		return 0, true, nil
	}
	h, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("start height %q: want a block height or %q", s, StartHead)
	}
	return h, false, nil
}

func (c *Config) fill() {
	if c.Parallel <= 0 {
		c.Parallel = 8
	}
	if c.MaxReorgDepth <= 0 {
		c.MaxReorgDepth = 64
	}
	if c.BatchBlocks <= 0 {
		c.BatchBlocks = 64
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 2 * time.Second
	}
	if c.RangeBlocks == 0 {
		c.RangeBlocks = 10_000
	}
}

// Follower publishes a chain's canonical block stream.
type Follower struct {
	cfg     Config
	src     Source
	sink    Sink
	alerter Alerter
	log     *slog.Logger
	metrics *Metrics
	wake    <-chan struct{}

	// start is where an empty stream starts (cfg.StartHeight), atHead
	// until the head is read; startErr is a StartHeight that is neither.
	start    uint64
	atHead   bool
	startErr error

	window  []chain.Header // newest canonical headers, oldest first
	nextSeq uint64
	// finalized is the node's finalized height as last read (Finalizer).
	finalized uint64
	loaded    bool // window and nextSeq reflect the sink

	statusMu sync.Mutex
	status   Status
}

// Status is a snapshot of a Follower's progress, for status displays and
// readiness checks.
type Status struct {
	Loaded    bool   // the checkpoint has been read from the sink
	Height    uint64 // newest published height
	Hash      string // newest published hash
	NextSeq   uint64
	NodeHead  uint64 // the node's head at the last check
	Blocks    uint64 // block_added events published by this process
	Removed   uint64 // block_removed events published by this process
	Txs       uint64
	Transfers uint64 // transfers (Ethereum) and outputs (Bitcoin)
	Reorgs    uint64
	LastError string // the last step error, cleared by a successful step
}

// Status returns a snapshot of the Follower's progress.
func (f *Follower) Status() Status {
	f.statusMu.Lock()
	defer f.statusMu.Unlock()
	return f.status
}

func (f *Follower) update(fn func(*Status)) {
	f.statusMu.Lock()
	defer f.statusMu.Unlock()
	fn(&f.status)
	if t, ok := f.tip(); ok {
		f.status.Height, f.status.Hash = t.Height, t.Hash
	}
	f.status.NextSeq = f.nextSeq
	f.status.Loaded = f.loaded
}

// New returns a Follower that resumes from the sink's checkpoint. wake,
// when not nil, signals that the node may have a new head (a
// subscription); polling continues regardless. alerter, metrics and log may
// be nil.
func New(cfg Config, src Source, sink Sink, wake <-chan struct{}, alerter Alerter, metrics *Metrics, log *slog.Logger) *Follower {
	cfg.fill()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &Follower{cfg: cfg, src: src, sink: sink, alerter: alerter, metrics: metrics, wake: wake,
		log: log.With("chain", string(cfg.Chain), "network", cfg.Network)}
	f.start, f.atHead, f.startErr = ParseStart(cfg.StartHeight)
	return f
}

// load reads the checkpoint back from the sink.
func (f *Follower) load(ctx context.Context) error {
	cp, err := f.sink.Checkpoint(ctx, f.cfg.Chain, f.cfg.Network, f.windowSize())
	if err != nil {
		return fmt.Errorf("load checkpoint: %w", err)
	}
	if len(cp.Tail) == 0 && f.atHead {
		head, err := f.src.Head(ctx)
		if err != nil {
			return fmt.Errorf("read head to start at: %w", err)
		}
		f.start, f.atHead = head, false
	}
	f.nextSeq = max(cp.NextSeq, 1)
	f.window = append(f.window[:0], cp.Tail...)
	f.trim()
	f.loaded = true
	f.update(func(*Status) {})
	t, _ := f.tip()
	f.log.Info("resuming stream", "next_height", f.nextHeight(), "next_seq", f.nextSeq, "tip_hash", t.Hash)
	return nil
}

// Tip returns the newest published header.
func (f *Follower) tip() (chain.Header, bool) {
	if len(f.window) == 0 {
		return chain.Header{}, false
	}
	return f.window[len(f.window)-1], true
}

func (f *Follower) nextHeight() uint64 {
	if t, ok := f.tip(); ok {
		return t.Height + 1
	}
	return f.start
}

// windowSize keeps one header more than the deepest reorg followed, so the
// fork point itself is still known.
func (f *Follower) windowSize() int { return f.cfg.MaxReorgDepth + 1 }

func (f *Follower) trim() {
	if n := len(f.window) - f.windowSize(); n > 0 {
		f.window = append(f.window[:0], f.window[n:]...)
	}
}

// Run follows the chain until ctx ends or a reorg too deep to follow.
func (f *Follower) Run(ctx context.Context) error {
	f.log.Info("follower starting", "parallel", f.cfg.Parallel, "max_reorg_depth", f.cfg.MaxReorgDepth,
		"start_height", f.cfg.StartHeight)
	if f.startErr != nil {
		return fmt.Errorf("follow: %w", f.startErr)
	}
	backoff := newBackoff()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var caughtUp bool
		var err error
		if !f.loaded {
			err = f.load(ctx)
		} else {
			caughtUp, err = f.step(ctx)
		}
		f.update(func(s *Status) {
			s.LastError = ""
			if err != nil {
				s.LastError = err.Error()
			}
		})
		switch {
		case err == nil:
			backoff.reset()
		case errors.Is(err, ErrReorgTooDeep):
			f.raise(ctx, err)
			return err
		case ctx.Err() != nil:
			return ctx.Err()
		default:
			f.log.Warn("follow step failed; retrying", "err", err, "retry_in", backoff.peek())
			if err := sleep(ctx, backoff.next()); err != nil {
				return err
			}
			continue
		}
		if caughtUp {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-f.wake:
			case <-time.After(f.cfg.PollInterval):
			}
		}
	}
}

// step publishes what the node has beyond the tip; it reports whether the
// stream has caught up with the node's head.
func (f *Follower) step(ctx context.Context) (bool, error) {
	head, err := f.src.Head(ctx)
	if err != nil {
		return false, fmt.Errorf("read head: %w", err)
	}
	f.metrics.observeHead(f.cfg, head)
	f.update(func(s *Status) { s.NodeHead = head })
	next := f.nextHeight()
	if next > head {
		// Nothing new by height; the tip itself may have been replaced.
		return true, f.checkTip(ctx)
	}
	if fz, ok := f.src.(Finalizer); ok {
		// Read before the blocks, so a published block never claims a
		// finality the node had not reached when it was fetched. A
		// failure keeps the last height: finality only grows.
		if h, err := fz.Finalized(ctx); err != nil {
			f.log.Debug("follow: read the finalized block", "err", err)
		} else {
			f.finalized = max(f.finalized, h)
		}
	}
	end := min(head, next+f.cfg.RangeBlocks-1)
	return false, f.sync(ctx, next, end)
}

// checkTip detects a reorganization that replaced the tip without making
// the chain longer.
func (f *Follower) checkTip(ctx context.Context) error {
	t, ok := f.tip()
	if !ok {
		return nil
	}
	h, err := f.src.HeaderAt(ctx, t.Height)
	if errors.Is(err, ErrNotFound) && !errors.Is(err, ErrNotAgreed) {
		// The node's chain became shorter than ours: a reorg to a shorter
		// branch. Treat the missing height like a mismatch.
		return f.reorg(ctx, t.Height)
	}
	if err != nil {
		return fmt.Errorf("check tip %d: %w", t.Height, err)
	}
	if h.Hash != t.Hash {
		return f.reorg(ctx, t.Height)
	}
	return nil
}

// sync fetches heights [from, to] in parallel and publishes them in order.
//
// One publish is in flight at a time while the next batch accumulates, so
// batches grow to whatever arrives during a publish (up to BatchBlocks):
// small at the head, for latency, and large in a backfill, for throughput.
// The state (window, sequence) advances only when a publish is
// acknowledged; a failed publish makes the Follower reload it from the sink.
func (f *Follower) sync(parent context.Context, from, to uint64) error {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	results := fetchOrdered(ctx, from, to, f.cfg.Parallel, f.fetch)

	var batch []chain.Update  // accumulating
	var flying []chain.Update // being published
	var done chan error       // result of the publish in flight, nil when none
	var started time.Time

	launch := func() {
		flying, batch = batch, nil
		done = make(chan error, 1)
		started = time.Now()
		go func(us []chain.Update) { done <- f.sink.Publish(ctx, us) }(flying)
	}
	// finish applies the result of the publish in flight.
	finish := func(err error) error {
		done = nil
		if err != nil {
			f.loaded = false
			return fmt.Errorf("publish %d events from height %d: %w", len(flying), flying[0].Event.Height, err)
		}
		f.metrics.observePublish(f.cfg, flying, time.Since(started))
		for _, u := range flying {
			f.window = append(f.window, u.Event.Header)
		}
		f.nextSeq += uint64(len(flying))
		f.trim()
		f.update(func(s *Status) {
			s.Blocks += uint64(len(flying))
			for _, u := range flying {
				s.Txs += uint64(len(u.Block.Transactions))
				s.Transfers += uint64(len(u.Block.Transfers) + len(u.Block.Outputs))
			}
		})
		flying = nil
		return nil
	}
	// land waits for the publish in flight, if any, and applies its result.
	land := func() error {
		if done == nil {
			return nil
		}
		return finish(<-done) // Publish returns once ctx ends, at the latest
	}
	// drain publishes everything still held.
	drain := func() error {
		if err := land(); err != nil {
			return err
		}
		if len(batch) > 0 {
			launch()
			return land()
		}
		return nil
	}
	tentativeTip := func() (chain.Header, bool) {
		if n := len(batch); n > 0 {
			return batch[n-1].Event.Header, true
		}
		if n := len(flying); n > 0 {
			return flying[n-1].Event.Header, true
		}
		return f.tip()
	}

	for {
		var r fetchResult
		var ok bool
		select {
		case r, ok = <-results:
		case err := <-done:
			if err := finish(err); err != nil {
				return err
			}
			if len(batch) > 0 {
				launch()
			}
			continue
		case <-ctx.Done():
			_ = land()
			return ctx.Err()
		}
		if !ok {
			return drain()
		}
		if r.err != nil {
			if err := drain(); err != nil {
				return err
			}
			return r.err
		}
		b := r.block
		if t, ok := tentativeTip(); ok && b.ParentHash != t.Hash {
			if err := drain(); err != nil {
				return err
			}
			cancel() // stop fetching the abandoned branch
			return f.reorg(parent, b.Height)
		}
		ev := chain.BlockEvent{V: chain.SchemaVersion, Type: chain.BlockAdded,
			Seq:    f.nextSeq + uint64(len(flying)+len(batch)),
			Header: b.Header, TxCount: len(b.Transactions), TransferCount: len(b.Transfers),
			OutputCount: len(b.Outputs), SpendCount: len(b.Spends), Miner: b.Miner, BaseFee: b.BaseFee,
			Finalized: f.finalized}
		batch = append(batch, chain.Update{Event: ev, Block: b})
		switch {
		case done == nil:
			launch() // nothing in flight: publish now, for head latency
		case len(batch) >= f.cfg.BatchBlocks:
			if err := land(); err != nil { // backpressure
				return err
			}
			launch()
		}
	}
}

// fetch retries one height until it is fetched or ctx ends: a watcher never
// skips a block.
func (f *Follower) fetch(ctx context.Context, h uint64) (*chain.Block, error) {
	backoff := newBackoff()
	for {
		b, err := f.src.BlockAt(ctx, h)
		if err == nil {
			if b.Height != h {
				err = fmt.Errorf("source returned height %d for %d", b.Height, h)
			} else {
				return b, nil
			}
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		f.metrics.fetchError(f.cfg)
		f.log.Warn("fetch block failed; retrying", "height", h, "err", err, "retry_in", backoff.peek())
		if err := sleep(ctx, backoff.next()); err != nil {
			return nil, err
		}
	}
}

// reorg handles a block at height whose parent is not the tip: it finds the
// fork point in the node's canonical chain and publishes the removals.
func (f *Follower) reorg(ctx context.Context, height uint64) error {
	tip, _ := f.tip()
	fork := -1
	depth := 0
	for i := len(f.window) - 1; i >= 0; i-- {
		w := f.window[i]
		if w.Height >= height {
			continue // above the mismatching block: removed regardless
		}
		h, err := f.src.HeaderAt(ctx, w.Height)
		if err != nil && (!errors.Is(err, ErrNotFound) || errors.Is(err, ErrNotAgreed)) {
			return fmt.Errorf("search fork point at height %d: %w", w.Height, err)
		}
		if err == nil && h.Hash == w.Hash {
			fork = i
			break
		}
		depth++
		if depth > f.cfg.MaxReorgDepth {
			break
		}
	}
	if fork < 0 {
		if len(f.window) > 0 && f.window[0].Height == 0 && depth <= f.cfg.MaxReorgDepth {
			// Even genesis differs: a different chain, never a reorg.
			depth = f.cfg.MaxReorgDepth + 1
		}
		f.metrics.reorgTooDeep(f.cfg)
		return &ReorgError{Height: height, Depth: depth, MaxDepth: f.cfg.MaxReorgDepth}
	}
	removed := f.window[fork+1:]
	updates := make([]chain.Update, 0, len(removed))
	for i := len(removed) - 1; i >= 0; i-- {
		updates = append(updates, chain.Update{Event: chain.BlockEvent{V: chain.SchemaVersion, Type: chain.BlockRemoved,
			Seq: f.nextSeq + uint64(len(updates)), Header: removed[i]}})
	}
	if len(updates) > 0 {
		if err := f.sink.Publish(ctx, updates); err != nil {
			f.loaded = false
			return fmt.Errorf("publish removal of %d blocks: %w", len(updates), err)
		}
		f.nextSeq += uint64(len(updates))
	}
	forkPoint := f.window[fork]
	f.window = f.window[:fork+1]
	f.metrics.observeReorg(f.cfg, len(updates), forkPoint.Height)
	f.update(func(s *Status) { s.Reorgs++; s.Removed += uint64(len(updates)) })
	f.log.Warn("chain reorganized", "old_tip_height", tip.Height, "old_tip_hash", tip.Hash,
		"fork_height", forkPoint.Height, "fork_hash", forkPoint.Hash, "depth", len(updates))
	return nil
}

func (f *Follower) raise(ctx context.Context, err error) {
	f.log.Error("stopping: reorganization too deep to follow; an operator must check the nodes", "err", err)
	if f.alerter == nil {
		return
	}
	var re *ReorgError
	details := map[string]string{}
	if errors.As(err, &re) {
		details["height"] = fmt.Sprint(re.Height)
		details["depth"] = fmt.Sprint(re.Depth)
		details["max_reorg_depth"] = fmt.Sprint(re.MaxDepth)
	}
	if t, ok := f.tip(); ok {
		details["tip_height"] = fmt.Sprint(t.Height)
		details["tip_hash"] = t.Hash
	}
	a := chain.Alert{V: chain.SchemaVersion, ID: fmt.Sprintf("%s/reorg_too_deep/%s", chain.StreamKey(f.cfg.Chain, f.cfg.Network), details["tip_hash"]),
		Type: "reorg_too_deep", Severity: "critical", Chain: f.cfg.Chain, Network: f.cfg.Network, Time: time.Now().UTC(),
		Message: err.Error(), Details: details}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if aerr := f.alerter.Alert(actx, a); aerr != nil {
		f.log.Error("publish reorg alert", "err", aerr)
	}
}
