package dispatch

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/signer/vault"
)

// RunKafka runs d on Kafka until ctx ends: the block stream read from
// its start (blocks, transactions, transfers, outputs, spends, put together by
// kafka.Assembler) and the signer's results (cordon.sign-results, read
// whole and followed).
func RunKafka(ctx context.Context, kc kafka.Config, d *Dispatcher) error {
	kc.Topics.Fill()
	tp := kc.Topics
	if err := kafka.Ensure(ctx, kc, tp.Blocks, tp.Transactions, tp.Transfers, tp.Outputs, tp.Spends, tp.SignResults); err != nil {
		return fmt.Errorf("dispatch: %w", err)
	}
	blocks := make(chan chain.Update, 256)
	results := make(chan vault.Result, 256)
	parent := ctx
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return feedBlocks(ctx, kc, d.Streams(), blocks, d) })
	g.Go(func() error {
		err := kafka.ReadLog(ctx, kc, tp.SignResults, kafka.LogOptions{Follow: true, ClientID: "dispatch-results"}, func(r *kafka.Record) error {
			var res vault.Result
			if len(r.Value) == 0 || json.Unmarshal(r.Value, &res) != nil || res.ID != string(r.Key) {
				d.log.Error("dispatch: an unreadable result", "partition", r.Partition, "offset", r.Offset)
				return nil //nolint:nilerr // signed by the signer and unreadable: logged, skipped
			}
			select {
			case results <- res:
			case <-ctx.Done():
			}
			return nil
		})
		if ctx.Err() != nil {
			return nil //nolint:nilerr // stopping
		}
		return fmt.Errorf("dispatch: results: %w", err)
	})
	g.Go(func() error {
		err := d.Run(ctx, Inputs{Blocks: blocks, Results: results})
		if err == nil && ctx.Err() == nil {
			err = fmt.Errorf("dispatch: stopped")
		}
		return err
	})
	err := g.Wait()
	if parent.Err() != nil {
		return nil //nolint:nilerr // stopping: what failed was cut short by it
	}
	return err
}

// feedBlocks reads the block stream from its start and hands the blocks
// of streams to out in stream order, and a zero Update once it read what
// the topics held when it started.
func feedBlocks(ctx context.Context, kc kafka.Config, streams []string, out chan<- chain.Update, d *Dispatcher) error {
	tp := kc.Topics
	topics := []string{tp.Blocks, tp.Transactions, tp.Transfers, tp.Outputs, tp.Spends}
	parts, err := kafka.Partitions(ctx, kc, topics...)
	if err != nil {
		return fmt.Errorf("dispatch: %w", err)
	}
	ends, err := kafka.Ends(ctx, kc, topics...)
	if err != nil {
		return fmt.Errorf("dispatch: %w", err)
	}
	start := map[string]map[int32]int64{}
	behind := map[string]int64{}
	for t, ps := range parts {
		start[t] = map[int32]int64{}
		for _, p := range ps {
			start[t][p] = -1
			if e := ends[t][p]; e > 0 {
				behind[kafka.Position(t, int(p))] = e
			}
		}
	}
	rd, err := kafka.NewReader(kc, start)
	if err != nil {
		return fmt.Errorf("dispatch: %w", err)
	}
	defer rd.Close()
	asm := kafka.NewAssembler(tp, nil)
	asm.Transactions = true
	next := map[string]uint64{}
	applied := func(s string) (uint64, bool) { n, ok := next[s]; return n, ok }
	done := false
	check := func() bool {
		if done || len(behind) > 0 {
			return true
		}
		done = true
		select {
		case out <- chain.Update{}:
			return true
		case <-ctx.Done():
			return false
		}
	}
	if !check() {
		return nil
	}
	for {
		recs, err := rd.Poll(ctx, 500*time.Millisecond)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("dispatch: blocks: %w", err)
		}
		for _, r := range recs {
			if err := asm.Add(r, applied); err != nil {
				d.log.Error("dispatch: an unreadable block record", "err", err)
			}
			k := kafka.Position(r.Topic, r.Partition)
			if e, ok := behind[k]; ok && r.Offset+1 >= e {
				delete(behind, k)
			}
		}
		for _, s := range asm.Streams() {
			seq, ok := next[s]
			if !ok {
				if seq, ok = asm.First(s); !ok {
					continue
				}
			}
			for {
				ev, blk, ok := asm.Ready(s, seq)
				if !ok {
					break
				}
				if slices.Contains(streams, s) {
					select {
					case out <- chain.Update{Event: ev, Block: blk}:
					case <-ctx.Done():
						return nil
					}
				}
				asm.Done(s, seq)
				seq++
				next[s] = seq
			}
		}
		if !check() {
			return nil
		}
	}
}
