package eth

import (
	"testing"
)

// BenchmarkNormalizeMainnet measures transactions + receipts → records on a
// real mainnet block (19,431,837, 322 transactions), on one goroutine.
func BenchmarkNormalizeMainnet(b *testing.B) {
	m := loadMainnet(b, "mainnet-19431837")
	txs := len(m.block.Transactions)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := normalize("mainnet", m.block, m.receipts, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(txs*b.N)/b.Elapsed().Seconds(), "tx/s")
}

// BenchmarkDecodeNormalizeMainnet adds what the watcher does before
// normalizing: decoding the JSON replies and checking the header hash.
func BenchmarkDecodeNormalizeMainnet(b *testing.B) {
	m := loadMainnet(b, "mainnet-19431837")
	rawReceipts := readGz(b, "testdata/mainnet-19431837.receipts.json.gz")
	txs := len(m.block.Transactions)
	b.SetBytes(int64(len(m.raw) + len(rawReceipts)))
	b.ReportAllocs()
	for b.Loop() {
		blk, err := decodeBlock(m.raw)
		if err != nil {
			b.Fatal(err)
		}
		if err := verifyHeaderHash(&blk.rpcBlockHeader); err != nil {
			b.Fatal(err)
		}
		rs, err := decodeReceipts(rawReceipts)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := normalize("mainnet", blk, rs, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(txs*b.N)/b.Elapsed().Seconds(), "tx/s")
}

// BenchmarkVerifyTxRootMainnet measures the transactions-root check alone
// (verify_tx_root): go-ethereum's decoder, hashing and the trie.
func BenchmarkVerifyTxRootMainnet(b *testing.B) {
	m := loadMainnet(b, "mainnet-19431837")
	txs := len(m.block.Transactions)
	b.ReportAllocs()
	for b.Loop() {
		if err := verifyTxRoot(m.block); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(txs*b.N)/b.Elapsed().Seconds(), "tx/s")
}
