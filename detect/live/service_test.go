package live_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/detect/contain"
	"github.com/cordonhq/cordon/detect/live"
	"github.com/cordonhq/cordon/detect/rules"
	"github.com/cordonhq/cordon/detect/rules/rulestest"
	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/ingest/kafka/kafkatest"
	"github.com/cordonhq/cordon/internal/chain"
)

type reg map[string]string

func (r reg) Kind(_ chain.Chain, _ string, a string) (string, bool) { k, ok := r[a]; return k, ok }

type screen map[string]bool

func (s screen) Hits(_ chain.Chain, _ string, a string) []chain.Hit {
	if !s[a] {
		return nil
	}
	return []chain.Hit{{Address: a, Indicator: "ind", Category: "theft", Source: "test", Confidence: 90}}
}

const (
	hot    = "0x1111aaaa00000000000000000000000000002222"
	friend = "0x7777dddd00000000000000000000000000008888"
	thief  = "0x9999eeee0000000000000000000000000000aaaa"
)

var cfg = rules.Config{Velocity: rules.VelocityConfig{MaxCount: 6, Window: 2 * time.Minute}}

// history is a stream with outflows, large ones, flagged contact, and
// reorganizations that remove blocks holding alerts.
func history(rng *rand.Rand, n int) []chain.Update {
	s := &rulestest.Stream{}
	var out, tail []chain.Update
	add := func(fork string) {
		var xs []rulestest.Xfer
		switch rng.IntN(6) {
		case 0:
			xs = append(xs, rulestest.Xfer{From: friend, To: hot, Amount: "100000"})
		case 1:
			xs = append(xs, rulestest.Xfer{From: hot, To: thief, Amount: fmt.Sprint(1 + rng.IntN(50))})
		case 2:
			xs = append(xs, rulestest.Xfer{From: hot, To: friend, Amount: fmt.Sprint(100 + rng.IntN(20000)), Fee: "3"})
		default:
			xs = append(xs, rulestest.Xfer{From: hot, To: friend, Amount: fmt.Sprint(100 + rng.IntN(50))})
		}
		u := s.Block(fork, xs...)
		out, tail = append(out, u), append(tail, u)
	}
	for i := 0; len(out) < n; i++ {
		if len(tail) > 8 && rng.IntN(8) == 0 {
			for range 1 + rng.IntN(3) {
				u := tail[len(tail)-1]
				tail = tail[:len(tail)-1]
				out = append(out, s.Remove(u))
			}
		}
		add(fmt.Sprintf("f%d", i))
	}
	return out
}

type rec struct {
	ID        string
	Retracted bool
}

func alerts(t testing.TB, ctx context.Context, kc kafka.Config) []rec {
	var out []rec
	require.NoError(t, kafka.ReadLog(ctx, kc, kc.Topics.Alerts, kafka.LogOptions{ClientID: "test-alerts"}, func(r *kafka.Record) error {
		var a chain.Alert
		require.NoError(t, json.Unmarshal(r.Value, &a))
		require.Equal(t, a.ID, string(r.Key))
		out = append(out, rec{a.ID, a.Retracted})
		return nil
	}))
	slices.SortFunc(out, func(a, b rec) int {
		if a.ID != b.ID {
			return map[bool]int{true: -1, false: 1}[a.ID < b.ID]
		}
		return map[bool]int{true: 1, false: -1}[a.Retracted]
	})
	return out
}

func newKafka(t testing.TB, ctx context.Context) (kafka.Config, *kafka.Producer) {
	kc := kafka.Config{Auth: kafkatest.Keys(), Brokers: kafkatest.Brokers(t), CreateTopics: true, Partitions: 3, Topics: kafka.DefaultTopics()}
	p, err := kafka.New(kc, nil, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	require.NoError(t, p.EnsureTopics(ctx))
	return kc, p
}

func service(t testing.TB, kc kafka.Config) *live.Service {
	s, err := live.NewService(live.ServiceConfig{Kafka: kc, Rules: cfg, Registry: reg{hot: "hot"}, Screener: screen{thief: true}})
	require.NoError(t, err)
	return s
}

func run(ctx context.Context, s *live.Service) (stop func() error) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	return func() error { cancel(); return <-done }
}

// TestRestartsRaiseTheSameAlerts: detection killed and restarted at
// random points (often mid-restore or mid-round) on a real
// Kafka-protocol broker writes exactly the alert records of a run that
// never stopped — none twice, none missed — and every alert of a block a
// reorganization removed is retracted.
func TestRestartsRaiseTheSameAlerts(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	ups := history(rand.New(rand.NewPCG(3, 4)), 300)

	// The uninterrupted run.
	kcA, pA := newKafka(t, ctx)
	require.NoError(t, pA.Publish(ctx, ups))
	sA := service(t, kcA)
	stop := run(ctx, sA)
	require.Eventually(t, func() bool { return sA.Stats().Blocks == len(ups) }, time.Minute, 50*time.Millisecond)
	require.NoError(t, stop())
	want := alerts(t, ctx, kcA)
	st := sA.Stats()
	require.Positive(t, st.Retracted, "the history retracts alerts")
	require.Positive(t, st.BySeverity["critical"])
	require.Len(t, want, st.Alerts+st.Retracted)
	retracted := map[string]bool{}
	for _, r := range want {
		if r.Retracted {
			retracted[r.ID] = true
		}
	}
	for id := range retracted {
		require.Contains(t, want, rec{id, false}, "a retraction of an alert never raised")
	}

	// The same history published in chunks while detection restarts.
	kcB, pB := newKafka(t, ctx)
	rng := rand.New(rand.NewPCG(5, 6))
	published, restarts := 0, 0
	for published < len(ups) || restarts < 25 {
		if published < len(ups) {
			n := min(len(ups)-published, 1+rng.IntN(40))
			require.NoError(t, pB.Publish(ctx, ups[published:published+n]))
			published += n
		}
		stop := run(ctx, service(t, kcB))
		time.Sleep(time.Duration(rng.IntN(400)) * time.Millisecond)
		require.NoError(t, stop())
		restarts++
	}
	sB := service(t, kcB)
	stop = run(ctx, sB)
	var got []rec
	require.Eventually(t, func() bool { got = alerts(t, ctx, kcB); return len(got) >= len(want) }, time.Minute, 200*time.Millisecond)
	time.Sleep(time.Second)
	require.NoError(t, stop())
	require.Equal(t, want, alerts(t, ctx, kcB))
}

// gate is a breaker shared by every run, as the real gate is.
type gate struct {
	mu    sync.Mutex
	trips map[string]int // by reason
}

func (g *gate) Trip(_ context.Context, t contain.Trip) (string, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.trips[t.Reason]++
	return fmt.Sprintf("br_%d", len(g.trips)), nil
}

func (g *gate) Find(_ context.Context, marker string) (string, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for r := range g.trips {
		if strings.Contains(r, marker) {
			return "br_found", nil
		}
	}
	return "", nil
}

// TestContainmentAcrossRestarts: every critical alert trips the breaker
// exactly once and leaves a containment record naming it, however often
// detection restarts between committing an alert and recording what its
// task did.
func TestContainmentAcrossRestarts(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	ups := history(rand.New(rand.NewPCG(7, 8)), 200)
	cc := contain.Config{Actions: []contain.Action{{Name: "stop", Trip: contain.TripAsset}}}
	cc.Fill()
	g := &gate{trips: map[string]int{}}
	kc, p := newKafka(t, ctx)
	svc := func() *live.Service {
		s, err := live.NewService(live.ServiceConfig{Kafka: kc, Rules: cfg, Registry: reg{hot: "hot"}, Screener: screen{thief: true},
			Contain: &contain.Runner{Config: cc, Breaker: g}})
		require.NoError(t, err)
		return s
	}
	rng := rand.New(rand.NewPCG(9, 10))
	for published := 0; published < len(ups); {
		n := min(len(ups)-published, 1+rng.IntN(30))
		require.NoError(t, p.Publish(ctx, ups[published:published+n]))
		published += n
		stop := run(ctx, svc())
		time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
		require.NoError(t, stop())
	}
	stop := run(ctx, svc())
	var critical, records map[string]bool
	require.Eventually(t, func() bool {
		critical, records = map[string]bool{}, map[string]bool{}
		require.NoError(t, kafka.ReadLog(ctx, kc, kc.Topics.Alerts, kafka.LogOptions{ClientID: "test-contain"}, func(r *kafka.Record) error {
			var a chain.Alert
			require.NoError(t, json.Unmarshal(r.Value, &a))
			switch {
			case a.Type == "containment":
				require.False(t, records[a.Details["alert"]], "two containment records for %s", a.Details["alert"])
				records[a.Details["alert"]] = true
				require.Contains(t, a.Message, "taken: breaker br_")
			case a.Severity == rules.SeverityCritical && !a.Retracted:
				critical[a.ID] = true
			}
			return nil
		}))
		return len(critical) > 0 && len(records) == len(critical)
	}, time.Minute, 200*time.Millisecond)
	require.NoError(t, stop())
	require.Equal(t, critical, records)
	g.mu.Lock()
	defer g.mu.Unlock()
	require.Len(t, g.trips, len(critical))
	for reason, n := range g.trips {
		require.Equal(t, 1, n, "tripped twice: %s", reason)
	}
}
