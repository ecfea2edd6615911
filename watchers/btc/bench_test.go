package btc_test

import (
	"bytes"
	"testing"

	"github.com/btcsuite/btcd/wire"

	"github.com/cordonhq/cordon/watchers/btc"
)

// BenchmarkWireDecode is the reference: btcd's wire decoding alone of block
// 574,200 (3,315 transactions).
func BenchmarkWireDecode(b *testing.B) {
	raw := bigBlocks(b)[1].raw
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	var txs int
	for b.Loop() {
		var blk wire.MsgBlock
		if err := blk.Deserialize(bytes.NewReader(raw)); err != nil {
			b.Fatal(err)
		}
		txs += len(blk.Transactions)
	}
	b.ReportMetric(float64(txs)/b.Elapsed().Seconds(), "tx/s")
}

// BenchmarkNormalizeMainnet is what the watcher does per block: decode,
// check the hash and merkle root, and build every record.
func BenchmarkNormalizeMainnet(b *testing.B) {
	for _, bb := range bigBlocks(b)[:2] {
		b.Run(bb.name[len(bb.name)-8:], func(b *testing.B) {
			net, _ := btc.LookupNetwork("mainnet")
			hash, _ := btc.BlockHash(bb.raw)
			b.ReportAllocs()
			b.SetBytes(int64(len(bb.raw)))
			var txs int
			for b.Loop() {
				blk, err := btc.Normalize(&net, 1, bb.raw, &hash)
				if err != nil {
					b.Fatal(err)
				}
				txs += len(blk.Transactions)
			}
			b.ReportMetric(float64(txs)/b.Elapsed().Seconds(), "tx/s")
		})
	}
}
