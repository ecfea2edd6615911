package eth

import (
	"context"
	"testing"

	"github.com/ethereum/go-ethereum/common/hexutil"

	"github.com/cordonhq/cordon/watchers/eth/devnet"
)

// BenchmarkVerifyReceiptsRootDevnet measures the receipts-root check alone
// (verify_receipts_root) on a devnet block of 300 transactions (payments,
// token and NFT transfers, failing calls: real receipts with logs), next to
// the transactions-root check of the same block.
func BenchmarkVerifyReceiptsRootDevnet(b *testing.B) {
	ctx := context.Background()
	dev, err := devnet.Start(devnet.Config{Seed: "receipts-bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer dev.Close()
	tr, err := devnet.NewTraffic(ctx, dev, devnet.TrafficConfig{Seed: 5}, nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := tr.SendRandom(ctx, 300); err != nil {
		b.Fatal(err)
	}
	dev.Commit()
	h := newHTTPCaller(dev.HTTPURL(), nil)
	var blk *rpcBlock
	if err := h.call(ctx, &blk, "eth_getBlockByNumber", hexutil.EncodeUint64(dev.Head().Number.Uint64()), true); err != nil {
		b.Fatal(err)
	}
	var rcs []rpcReceipt
	if err := h.call(ctx, &rcs, "eth_getBlockReceipts", blk.Hash); err != nil {
		b.Fatal(err)
	}
	if err := verifyReceiptsRoot(blk, rcs, 0); err != nil {
		b.Fatal(err)
	}
	logs := 0
	for _, r := range rcs {
		logs += len(r.Logs)
	}
	b.Logf("%d transactions, %d logs", len(blk.Transactions), logs)
	for _, bc := range []struct {
		name string
		fn   func() error
	}{
		{"receipts", func() error { return verifyReceiptsRoot(blk, rcs, 0) }},
		{"transactions", func() error { return verifyTxRoot(blk) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := bc.fn(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(blk.Transactions)*b.N)/b.Elapsed().Seconds(), "tx/s")
		})
	}
}
