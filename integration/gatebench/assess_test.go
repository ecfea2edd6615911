package gatebench

import (
	"context"
	"testing"
	"time"

	"github.com/cordonhq/cordon/signer/policy"
	"github.com/cordonhq/cordon/signer/risk"
)

// BenchmarkGateAssess is issue 14's first target: the risk and policy
// decision for one withdrawal, gate.Core.Assess (the intent, its dollar
// value, the risk layer's screening, registry lookup, velocity windows,
// history and context checks, then the CEL policy), with the world of
// loadWorld loaded: 10,000,000 indicators in the real intel index,
// 1,000,000 accounts' history, 1,000,000 registered deposit addresses.
// No Kafka. Of every 100 withdrawals 1 goes to a listed address (denied)
// and 1 to another account's deposit address; the rest half to a
// destination the account used, half to a new one. Time moves on by a
// millisecond per withdrawal. Each call is timed: p50 and p99 are of
// single assessments.
//
//   - cmd: the risk layer as cmd/cordon wires it today (Screener and
//     Registry, no counterparties source);
//   - counterparties: with 100 counterparties per destination from a
//     warm cache, each screened against the index (what turning on the
//     ClickHouse counterparties lookup adds on a cache hit).
func BenchmarkGateAssess(b *testing.B) {
	w := loadWorld(b)
	qs := w.requests(b, 10_000, mixed{flagged: 1, deposit: 1})
	for _, tc := range []struct {
		name string
		risk *risk.Risk
	}{{"cmd", w.risk}, {"counterparties", w.riskCP}} {
		b.Run(tc.name, func(b *testing.B) {
			c := w.core(b, tc.risk)
			ctx := context.Background()
			// Warm: the counterparties cache holds every destination.
			for i := range qs {
				if _, err := c.Assess(ctx, &qs[i], "exchange", w.now); err != nil {
					b.Fatal(err)
				}
			}
			lat := make([]time.Duration, 0, b.N)
			actions := map[policy.Action]int{}
			findings := 0
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				q := &qs[i%len(qs)]
				now := w.now.Add(time.Duration(i+1) * time.Millisecond)
				start := time.Now()
				a, err := c.Assess(ctx, q, "exchange", now)
				lat = append(lat, time.Since(start))
				if err != nil {
					b.Fatal(err)
				}
				actions[a.Decision.Action]++
				findings += len(a.Findings)
			}
			b.StopTimer()
			if b.N >= 1000 && (actions[policy.Deny] == 0 || actions[policy.Approve] == 0) {
				b.Fatalf("decisions %v: want denials (listed destinations) and approvals", actions)
			}
			b.ReportMetric(float64(percentile(lat, 0.5).Nanoseconds()), "p50-ns")
			b.ReportMetric(float64(percentile(lat, 0.99).Nanoseconds()), "p99-ns")
			b.ReportMetric(float64(percentile(lat, 0.999).Nanoseconds()), "p99.9-ns")
			b.ReportMetric(float64(findings)/float64(b.N), "findings/op")
			b.ReportMetric(w.indexMB, "intel-MiB")
			b.ReportMetric(w.riskMB, "risk-MiB")
			if b.N >= 1000 {
				w.logLoad(b)
				b.Logf("%d assessments: %v; max %s", b.N, actions, percentile(lat, 1))
			}
		})
	}
}
