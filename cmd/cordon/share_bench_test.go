package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/intel"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/sharing/alliance"
)

// BenchmarkAllianceUrgent measures, over 1,000 urgent listings and then
// their 1,000 revocations published one at a time through A's API, the
// time from the request to the address being flagged (cleared) by B's
// screening: A commits, posts to B's inbox and B's pull long-polls A, so
// whichever is first counts. Reported: p50, p99 and max in ms.
func BenchmarkAllianceUrgent(b *testing.B) {
	al := newAlliance(b, 1, true)
	A, B := al.member("exchange-a"), al.member("exchange-b")
	const n = 1000
	measure := func(name string, do func(addr string), want string) {
		lat := make([]time.Duration, 0, n)
		for i := range n {
			addr := addrN(10000 + i)
			start := time.Now()
			do(addr)
			for flaggedBy(B, addr) != want {
				if time.Since(start) > 30*time.Second {
					b.Fatalf("%s %d: not seen at B after 30s", name, i)
				}
				time.Sleep(200 * time.Microsecond)
			}
			lat = append(lat, time.Since(start))
		}
		slices.Sort(lat)
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		b.ReportMetric(ms(lat[n/2]), name+"-p50-ms")
		b.ReportMetric(ms(lat[n*99/100]), name+"-p99-ms")
		b.ReportMetric(ms(lat[n-1]), name+"-max-ms")
	}
	for range b.N {
		measure("listing", func(addr string) {
			al.publish(A, alliance.Listing{Chain: chain.ETH, Network: "devnet", Values: []string{addr}, Category: "hack", Confidence: 90,
				TLP: intel.TLPGreen, Urgent: true})
		}, "exchange-a")
		measure("revocation", func(addr string) {
			al.revoke(A, alliance.Revocation{Chain: chain.ETH, Network: "devnet", Values: []string{addr}})
		}, "")
	}
}

// BenchmarkAllianceInitialSync measures B's first pull of a collection of
// 1,000,000 indicators A published (as 100 listings of 10,000, before B
// starts): from B's start until B took every one (in its indicator
// topic and index), and the requests a steady pull of the unchanged
// collection then costs in 10 s.
func BenchmarkAllianceInitialSync(b *testing.B) {
	total, per := 1_000_000, alliance.MaxListing
	if n, err := strconv.Atoi(os.Getenv("CORDON_BENCH_SYNC_N")); err == nil && n > 0 {
		total = n
	}
	al := newAlliance(b, 1, false)
	A, B := al.member("exchange-a"), al.member("exchange-b")
	al.start(A)
	svc := A.sys.sharing.svc.Load()
	ctx := context.Background()
	t0 := time.Now()
	for i := 0; i < total; i += per {
		vals := make([]string, per)
		for j := range vals {
			vals[j] = fmt.Sprintf("0x%040x", 0x1000000+i+j)
		}
		_, err := svc.Publish(ctx, alliance.Listing{Chain: chain.ETH, Network: "devnet", Values: vals, Category: "hack", Confidence: 60, TLP: intel.TLPGreen})
		require.NoError(b, err)
		if (i+per)%100_000 == 0 {
			b.Logf("A published %d in %s", i+per, time.Since(t0).Round(time.Millisecond))
		}
	}
	b.Logf("A published %d in %s", total, time.Since(t0).Round(time.Millisecond))
	b.ResetTimer()
	start := time.Now()
	al.start(B)
	for {
		st := B.sys.sharing.svc.Load().Stats(nil)
		if len(st) == 1 && st[0].Received >= int64(total) && B.sys.indicators.store.Index.Len() >= total {
			break
		}
		require.Less(b, time.Since(start), 10*time.Minute)
		time.Sleep(50 * time.Millisecond)
	}
	took := time.Since(start)
	b.StopTimer()
	b.ReportMetric(took.Seconds(), "sync-s")
	b.ReportMetric(float64(total)/took.Seconds(), "indicators/s")
	pulls := func() float64 {
		return testutilCounter(b, B, "cordon_sharing_pulls_total")
	}
	before := pulls()
	time.Sleep(10 * time.Second)
	b.ReportMetric(pulls()-before, "steady-requests/10s")
}

// testutilCounter sums a counter's samples from m's /metrics.
func testutilCounter(tb testing.TB, m *devMember, name string) float64 {
	tb.Helper()
	_, body := httpGet(tb, "http://"+m.sys.srv.Addr()+"/metrics")
	var sum float64
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, name+"{") || strings.HasPrefix(line, name+" ") {
			var v float64
			if _, err := fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v); err == nil {
				sum += v
			}
		}
	}
	return sum
}
