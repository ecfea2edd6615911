package follow

import (
	"context"
	"time"

	"github.com/cordonhq/cordon/internal/chain"
)

type fetchResult struct {
	block *chain.Block
	err   error
}

// fetchOrdered fetches heights [from, to] with parallel workers and yields
// the results strictly in height order. At most 2×parallel results are
// buffered: the dispatcher blocks when the consumer falls behind. The
// channel closes after the last height, or early when ctx ends.
func fetchOrdered(ctx context.Context, from, to uint64, parallel int,
	fetch func(context.Context, uint64) (*chain.Block, error)) <-chan fetchResult {

	type job struct {
		height uint64
		out    chan fetchResult
	}
	jobs := make(chan job)
	order := make(chan chan fetchResult, 2*parallel)
	out := make(chan fetchResult)

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
