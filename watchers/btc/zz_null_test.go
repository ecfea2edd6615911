package btc_test

import (
	"context"
	"testing"
	"time"

	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/watchers/btc"
	"github.com/cordonhq/cordon/watchers/follow"
)

type nullSink struct{ d time.Duration }

func (n *nullSink) Publish(ctx context.Context, u []chain.Update) error { return nil }
func (n *nullSink) Checkpoint(ctx context.Context, c chain.Chain, network string, window int) (chain.Checkpoint, error) {
	return chain.Checkpoint{NextSeq: 1}, nil
}

func nullBackfill(b *testing.B, src *btc.Source, from, to uint64, parallel int) time.Duration {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := follow.New(follow.Config{Chain: chain.BTC, Network: "simnet", StartHeight: from, Parallel: parallel,
		BatchBlocks: 8, PollInterval: 10 * time.Millisecond}, src, &nullSink{}, nil, nil, nil, nil)
	started := time.Now()
	go func() { _ = f.Run(ctx) }()
	for f.Status().Height < to {
		time.Sleep(time.Millisecond)
	}
	return time.Since(started)
}

type timedSink struct {
	*kafka.Producer
	total time.Duration
	recs  int
}

func (t *timedSink) Publish(ctx context.Context, u []chain.Update) error {
	s := time.Now()
	err := t.Producer.Publish(ctx, u)
	t.total += time.Since(s)
	for _, x := range u {
		if x.Block != nil {
			t.recs += len(x.Block.Outputs) + len(x.Block.Spends) + len(x.Block.Transactions) + 1
		}
	}
	return err
}
