package follow

import (
	"context"
	"fmt"
	"time"

	"github.com/cordonhq/cordon/internal/chain"
)

type fetchResult struct {
	block *chain.Block
	err   error
}

// fetchOrdered fetches heights [from, to] with parallel workers and yields
// the results strictly in height order. At most 2×parallel results (plus
// the one being handed over) are held: the dispatcher blocks when the
// consumer falls behind. The
// channel closes after the last height, or early when ctx ends.
func fetchOrdered(ctx context.Context, from, to uint64, parallel int,
	fetch func(context.Context, uint64) (*chain.Block, error)) <-chan fetchResult {

	type job struct {
		height uint64
		out    chan fetchResult
	}
	jobs := make(chan job)
	order := make(chan chan fetchResult, parallel)
	// Finished blocks wait here in order, so the consumer can take every
	// ready block into one publish without a scheduling round trip.
	out := make(chan fetchResult, parallel)

	go func() { // dispatcher
		defer close(jobs)
		defer close(order)
		for h := from; h <= to; h++ {
			j := job{height: h, out: make(chan fetchResult, 1)}
			select {
			case order <- j.out:
			case <-ctx.Done():
				return
			}
			select {
			case jobs <- j:
			case <-ctx.Done():
				return
			}
			if h == to { // to may be MaxUint64
				return
			}
		}
	}()
	for range parallel {
		go func() { // worker
			for j := range jobs {
				b, err := fetch(ctx, j.height)
				j.out <- fetchResult{block: b, err: err} // buffered: never blocks
			}
		}()
	}
	go func() { // sequencer
		defer close(out)
		for slot := range order {
			var r fetchResult
			select {
			case r = <-slot:
			case <-ctx.Done():
				return
			}
			select {
			case out <- r:
			case <-ctx.Done():
				return
			}
			if r.err != nil {
				return
			}
		}
	}()
	return out
}

type backoff struct{ cur time.Duration }

func newBackoff() *backoff { return &backoff{cur: 100 * time.Millisecond} }

func (b *backoff) peek() time.Duration { return b.cur }

func (b *backoff) next() time.Duration {
	d := b.cur
	b.cur = min(2*b.cur, 10*time.Second)
	return d
}

func (b *backoff) reset() { b.cur = 100 * time.Millisecond }

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Range fetches heights [from, to] with parallel fetches and calls yield
// with each block in height order. It checks that every block names the
// previous one as its parent and fails if the chain changed underneath. It
// is the engine of one-shot exports; the Follower handles reorgs instead.
func Range(ctx context.Context, src Source, from, to uint64, parallel int, yield func(*chain.Block) error) error {
	if parallel <= 0 {
		parallel = 8
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fetch := func(ctx context.Context, h uint64) (*chain.Block, error) {
		var err error
		for attempt := range 4 {
			var b *chain.Block
			if b, err = src.BlockAt(ctx, h); err == nil {
				if b.Height != h {
					return nil, fmt.Errorf("source returned height %d for %d", b.Height, h)
				}
				return b, nil
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if serr := sleep(ctx, time.Duration(attempt+1)*200*time.Millisecond); serr != nil {
				return nil, serr
			}
		}
		return nil, fmt.Errorf("block %d: %w", h, err)
	}
	var prev *chain.Block
	next := from
	for r := range fetchOrdered(ctx, from, to, parallel, fetch) {
		if r.err != nil {
			return r.err
		}
		if prev != nil && r.block.ParentHash != prev.Hash {
			return fmt.Errorf("chain reorganized during the export: block %d names parent %s, but block %d is %s; export again, or stop further below the head",
				r.block.Height, r.block.ParentHash, prev.Height, prev.Hash)
		}
		if err := yield(r.block); err != nil {
			return err
		}
		prev = r.block
		next = r.block.Height + 1
		if r.block.Height == to {
			return nil
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return fmt.Errorf("fetch stopped at height %d before %d", next, to)
}
