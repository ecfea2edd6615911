package registry

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/cordonhq/cordon/internal/chain"
)

// BenchmarkRegistry registers CORDON_BENCH_ADDRESSES deposit addresses
// (default 10,000,000; one account per 4 addresses) and reports the live
// heap per address and the lookup time.
func BenchmarkRegistry(b *testing.B) {
	n := 10_000_000
	if v, err := strconv.Atoi(os.Getenv("CORDON_BENCH_ADDRESSES")); err == nil && v > 0 {
		n = v
	}
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	base := heap()
	g := NewIndex()
	start := time.Now()
	for i := range n {
		g.Put(&Entry{Chain: chain.ETH, Network: "mainnet", Address: fmt.Sprintf("0x%040x", i), Account: "acct-" + strconv.Itoa(i/4),
			Asset: "*", Kind: KindDeposit})
	}
	load := time.Since(start)
	used := heap() - base
	const lookups = 1_000_000
	start = time.Now()
	hits := 0
	for i := range lookups {
		if _, ok := g.Lookup(chain.ETH, "mainnet", fmt.Sprintf("0x%040x", (i*7919)%(2*n))); ok {
			hits++
		}
	}
	per := time.Since(start) / lookups
	b.Logf("%d addresses (%d accounts) registered in %s: %.1f bytes per address, account names included; lookup %s (with formatting), %d hits",
		n, n/4, load.Round(time.Millisecond), float64(used)/float64(n), per, hits)
	b.ReportMetric(float64(used)/float64(n), "B/address")
	runtime.KeepAlive(g)
}
