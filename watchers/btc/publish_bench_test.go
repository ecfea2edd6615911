package btc_test

import (
	"context"
	"testing"

	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/watchers/btc"
)

// BenchmarkPublishMainnet publishes the records of mainnet block 574,200
// (3,315 transactions, 8,150 outputs, 5,054 spends) to a broker in a
// child process, acknowledged by it: the Kafka side of a backfill.
func BenchmarkPublishMainnet(b *testing.B) {
	net, _ := btc.LookupNetwork("mainnet")
	blk, err := btc.Normalize(&net, 574200, bigBlocks(b)[1].raw, nil)
	if err != nil {
		b.Fatal(err)
	}
	brokers, stop := spawnKafka(b)
	defer stop()
	prod, err := kafka.New(kafka.Config{Brokers: brokers, CreateTopics: true, Partitions: 3,
		Compression: envOr("CORDON_BENCH_COMPRESSION", "lz4")}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer prod.Close()
	ctx := context.Background()
	if err := prod.EnsureTopics(ctx); err != nil {
		b.Fatal(err)
	}
	recs := len(blk.Outputs) + len(blk.Spends) + len(blk.Transactions)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		u := chain.Update{Event: chain.BlockEvent{V: 1, Type: chain.BlockAdded, Seq: uint64(i + 1), Header: blk.Header}, Block: blk}
		if err := prod.Publish(ctx, []chain.Update{u}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(recs*b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(len(blk.Transactions)*b.N)/b.Elapsed().Seconds(), "tx/s")
}
