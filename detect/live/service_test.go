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
	"github.com/cordonhq/cordon/detect/incident"
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

// incidentEvents are the events on the incidents topic: every event id
// at most once.
func incidentEvents(t testing.TB, ctx context.Context, kc kafka.Config) []incident.Event {
	var out []incident.Event
	seen := map[string]bool{}
	require.NoError(t, kafka.ReadLog(ctx, kc, kc.Topics.Incidents, kafka.LogOptions{ClientID: "test-incidents"}, func(r *kafka.Record) error {
		var e incident.Event
		require.NoError(t, json.Unmarshal(r.Value, &e))
		require.NoError(t, e.Check())
		require.Equal(t, e.Incident, string(r.Key))
		require.False(t, seen[e.ID], "incident event %s (%s) written twice", e.ID, e.Type)
		seen[e.ID] = true
		out = append(out, e)
		return nil
	}))
	return out
}

func eventIDs(evs []incident.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Type+" "+e.Incident+" "+e.ID)
	}
	slices.Sort(out)
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
	wantIncidents := eventIDs(incidentEvents(t, ctx, kcA))
	require.Contains(t, strings.Join(wantIncidents, "\n"), incident.Opened+" ", "critical alerts open incidents")
	st := sA.Stats()
	require.Positive(t, st.Incidents)
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
	require.Equal(t, wantIncidents, eventIDs(incidentEvents(t, ctx, kcB)), "the same incidents, each event once")
}

// TestOperatorIncident: an incident an operator opened with an address
// gathers the alerts naming it (here the thief's flagged contacts, and
// with them the hot wallet's);
// once the operator closed it, later alerts no longer join.
func TestOperatorIncident(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	kc, p := newKafka(t, ctx)
	opened := incident.Event{V: 1, ID: "op-1", Incident: "incident/report-1", Type: incident.Opened, Time: time.Unix(1, 0).UTC(), Actor: "alice",
		Title: "a partner reports the thief", Severity: "high", Keys: []string{"eth:" + thief}}
	v, err := json.Marshal(&opened)
	require.NoError(t, err)
	require.NoError(t, p.PublishKeyed(ctx, kc.Topics.Incidents, "incident", []kafka.KeyValue{{Key: opened.Incident, Value: v}}))
	ups := history(rand.New(rand.NewPCG(3, 4)), 80)
	require.NoError(t, p.Publish(ctx, ups[:40]))
	s, err := live.NewService(live.ServiceConfig{Kafka: kc, Rules: cfg, Registry: reg{hot: "hot"}, Screener: screen{thief: true},
		Incidents: incident.Config{OpenAt: "none"}})
	require.NoError(t, err)
	stop := run(ctx, s)
	defer func() { require.NoError(t, stop()) }()
	joined := func() int {
		n := 0
		for _, e := range incidentEvents(t, ctx, kc) {
			if e.Type == incident.Joined {
				// the thief's contacts, and then the hot wallet's other
				// alerts (its address joined the incident with them)
				require.Equal(t, opened.Incident, e.Incident, "only the operator's incident exists")
				n++
			}
		}
		return n
	}
	require.Eventually(t, func() bool { return s.Stats().Blocks >= 40 && joined() > 0 }, time.Minute, 100*time.Millisecond)
	closed := incident.Event{V: 1, ID: "op-2", Incident: opened.Incident, Type: incident.Closed, Time: time.Unix(2, 0).UTC(), Actor: "alice", Text: "done"}
	v, err = json.Marshal(&closed)
	require.NoError(t, err)
	require.NoError(t, p.PublishKeyed(ctx, kc.Topics.Incidents, "incident", []kafka.KeyValue{{Key: closed.Incident, Value: v}}))
	require.Eventually(t, func() bool { return s.Stats().Incidents == 0 }, time.Minute, 100*time.Millisecond)
	before := joined()
	require.NoError(t, p.Publish(ctx, ups[40:]))
	require.Eventually(t, func() bool { return s.Stats().Blocks >= len(ups) }, time.Minute, 100*time.Millisecond)
	time.Sleep(time.Second)
	require.Equal(t, before, joined(), "a closed incident gathers no more alerts")
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

// TestForgedAlertTripsNothing: the attack of someone who can write to
// cordon.alerts (an unsigned topic with many writers): a forged critical
// alert naming a rule containment acts on. Detection never reads its
// actions from that topic, only from the tasks it commits with its own
// alerts, so the breaker is never tripped; the real stream's alerts still
// are contained.
func TestForgedAlertTripsNothing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	kc, p := newKafka(t, ctx)
	forged := chain.Alert{V: 1, ID: "detect/drain/forged", Type: "drain", Rule: "drain", Severity: rules.SeverityCritical, Chain: chain.ETH,
		Network: "devnet", Time: time.Now().UTC(), Message: "forged: the hot wallet is being drained", Addresses: []string{hot, friend}}
	v, err := json.Marshal(&forged)
	require.NoError(t, err)
	require.NoError(t, p.PublishKeyed(ctx, kc.Topics.Alerts, "alert", []kafka.KeyValue{{Key: forged.ID, Value: v}}))
	cc := contain.Config{Actions: []contain.Action{{Name: "stop", Trip: contain.TripAll}}}
	cc.Fill()
	g := &gate{trips: map[string]int{}}
	s, err := live.NewService(live.ServiceConfig{Kafka: kc, Rules: cfg, Registry: reg{hot: "hot"}, Screener: screen{thief: true},
		Contain: &contain.Runner{Config: cc, Breaker: g}})
	require.NoError(t, err)
	// benign traffic only: deposits to the hot wallet
	st := &rulestest.Stream{}
	var ups []chain.Update
	for range 20 {
		ups = append(ups, st.Block("", rulestest.Xfer{From: friend, To: hot, Amount: "1000"}))
	}
	require.NoError(t, p.Publish(ctx, ups))
	stop := run(ctx, s)
	require.Eventually(t, func() bool { return s.Stats().Blocks == len(ups) }, time.Minute, 50*time.Millisecond)
	require.NoError(t, p.PublishKeyed(ctx, kc.Topics.Alerts, "alert", []kafka.KeyValue{{Key: forged.ID + "-2", Value: v}}))
	time.Sleep(2 * time.Second)
	require.NoError(t, stop())
	g.mu.Lock()
	defer g.mu.Unlock()
	require.Empty(t, g.trips, "a forged alert tripped the breaker")
	require.Zero(t, s.Stats().Contained)
}
