package contain_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/detect/contain"
	"github.com/cordonhq/cordon/internal/chain"
	iconfig "github.com/cordonhq/cordon/internal/config"
)

type breaker struct {
	trips []contain.Trip
	fail  int
}

func (b *breaker) Trip(_ context.Context, t contain.Trip) (string, error) {
	if b.fail > 0 {
		b.fail--
		return "", errors.New("gate down")
	}
	b.trips = append(b.trips, t)
	return "br_" + string(rune('a'+len(b.trips)-1)), nil
}

func (b *breaker) Find(_ context.Context, marker string) (string, error) {
	for i, t := range b.trips {
		if strings.Contains(t.Reason, marker) {
			return "br_" + string(rune('a'+i)), nil
		}
	}
	return "", nil
}

type refusing struct{}

func (refusing) Trip(context.Context, contain.Trip) (string, error) { return "", nil }
func (refusing) Find(context.Context, string) (string, error) {
	return "", fmt.Errorf("%w: no such network", contain.ErrRefused)
}

type publisher struct{ got []contain.Listing }

func (p *publisher) PublishUrgent(_ context.Context, l contain.Listing) ([]string, error) {
	p.got = append(p.got, l)
	return []string{"indicator--1"}, nil
}

func cfg() contain.Config {
	c := contain.Config{Actions: []contain.Action{
		{Name: "stop-asset", Rules: []string{"drain", "paid_lookalike"}, Trip: contain.TripAsset, Publish: true},
		{Name: "stop-all", Rules: []string{"contract_takeover"}, Trip: contain.TripAll},
		{Name: "share-high", MinSeverity: "high", Rules: []string{"flagged_contact"}, Publish: true, TLP: "amber"},
	}}
	c.Fill()
	return c
}

// TestPlanAndRun: alerts of an action's rules and severity set off its
// task, retractions and containment records none; a task trips the
// breaker over the alert's asset with the task id in the reason and
// publishes the addresses that are not ours; run again (after a crash)
// it finds its trip instead of pulling another; without a gate or
// sharing, the action is recorded as not taken.
func TestPlanAndRun(t *testing.T) {
	c := cfg()
	var p iconfig.Problems
	c.Validate(&p, "detect.contain")
	require.NoError(t, p.Err())
	ours := "0x1111000000000000000000000000000000000001"
	thief := "0x9999000000000000000000000000000000000009"
	drain := chain.Alert{ID: "detect/drain/1", Rule: "drain", Type: "drain", Severity: "critical", Chain: chain.ETH, Network: "mainnet",
		Asset: "native", Message: "drained", Addresses: []string{ours, thief}, Time: time.Unix(1_800_000_000, 0).UTC()}
	low := chain.Alert{ID: "detect/flagged_contact/2", Rule: "flagged_contact", Severity: "medium", Addresses: []string{thief}}
	high := low
	high.ID, high.Severity = "detect/flagged_contact/3", "high"
	retracted := drain
	retracted.Retracted = true
	tasks := contain.Plan(c, []chain.Alert{drain, low, high, retracted, contain.Record(contain.Outcome{Task: contain.Task{ID: "x", Alert: drain}})})
	require.Len(t, tasks, 2)
	require.Equal(t, "stop-asset/detect/drain/1", tasks[0].ID)
	require.Equal(t, "share-high/detect/flagged_contact/3", tasks[1].ID)

	br, pub := &breaker{fail: 1}, &publisher{}
	r := &contain.Runner{Config: c, Breaker: br, Publisher: pub, Ours: func(_ chain.Chain, _, a string) bool { return a == ours }}
	ctx := context.Background()
	_, err := r.Run(ctx, tasks[0])
	require.ErrorContains(t, err, "gate down")
	o, err := r.Run(ctx, tasks[0])
	require.NoError(t, err)
	require.Equal(t, []string{"breaker br_a", "published " + thief + " to partners (indicator--1)"}, o.Taken)
	require.Empty(t, o.NotTaken)
	require.Len(t, br.trips, 1)
	require.Equal(t, contain.Trip{Scope: "asset", Chain: "eth", Network: "mainnet", Asset: "native",
		Reason: contain.Marker("stop-asset/detect/drain/1") + " drain: drained"}, br.trips[0])
	require.Equal(t, []string{thief}, pub.got[0].Values)
	require.Equal(t, "hack", pub.got[0].Category)

	o2, err := r.Run(ctx, tasks[0]) // after a crash before its outcome was committed
	require.NoError(t, err)
	require.Len(t, br.trips, 1, "the trip is found, not pulled again")
	require.Equal(t, "breaker br_a", o2.Taken[0])

	rec := contain.Record(o)
	require.Equal(t, "contain/stop-asset/detect/drain/1", rec.ID)
	require.Equal(t, "containment", rec.Type)
	require.Equal(t, drain.ID, rec.Details["alert"])
	require.Contains(t, rec.Message, "taken: breaker br_a")

	long := tasks[0]
	long.ID, long.Alert.Message = "stop-asset/detect/drain/9", strings.Repeat("é", 400)+"\n"
	_, err = r.Run(ctx, long)
	require.NoError(t, err)
	require.LessOrEqual(t, len(br.trips[1].Reason), 500)
	require.True(t, strings.HasPrefix(br.trips[1].Reason, contain.Marker("stop-asset/detect/drain/9")+" drain: éé"))

	// A refusal is an outcome, the action not taken (asking again would
	// be refused again); an outage is an error, tried again.
	ref := &contain.Runner{Config: c, Breaker: refusing{}, Publisher: pub, Ours: r.Ours}
	o4, err := ref.Run(ctx, tasks[0])
	require.NoError(t, err)
	require.Len(t, o4.NotTaken, 1)
	require.Contains(t, o4.NotTaken[0], "breaker: contain: stop-asset/detect/drain/1: list the breaker's trips: refused: no such network")
	require.Len(t, o4.Taken, 1, "the publication still goes out")

	// A lookalike: the poisoner's address is published, never the
	// genuine counterparty it imitates.
	genuine := "0x7777000000000000000000000000000000008888"
	poisoner := "0x7777ffffffffffffffffffffffffffffffff8888"
	paid := chain.Alert{ID: "detect/paid_lookalike/4", Rule: "paid_lookalike", Severity: "critical", Chain: chain.ETH, Network: "mainnet",
		Asset: "native", Addresses: []string{ours, poisoner, genuine}, Details: map[string]string{"looks_like": genuine}}
	pt := contain.Plan(c, []chain.Alert{paid})
	require.Len(t, pt, 1)
	_, err = r.Run(ctx, pt[0])
	require.NoError(t, err)
	require.Equal(t, []string{poisoner}, pub.got[len(pub.got)-1].Values)

	bare := &contain.Runner{Config: c}
	o3, err := bare.Run(ctx, tasks[0])
	require.NoError(t, err)
	require.Empty(t, o3.Taken)
	require.Equal(t, []string{"breaker: no gate configured (detect.contain.gate)", "publish: no sharing configured (detect.contain.share)"}, o3.NotTaken)
	require.Contains(t, contain.Record(o3).Message, "not taken: breaker: no gate configured")
}

func TestValidate(t *testing.T) {
	c := contain.Config{Actions: []contain.Action{{Name: "a b"}, {Name: "x", Trip: "wallet"}, {Name: "y", MinSeverity: "hgih", Publish: true}},
		Gate: contain.Endpoint{URL: "http://127.0.0.1:1"}}
	c.Fill()
	var p iconfig.Problems
	c.Validate(&p, "detect.contain")
	err := p.Err()
	require.Error(t, err)
	for _, want := range []string{"detect.contain.actions[0].name", "detect.contain.actions[0]: does nothing", "detect.contain.actions[1].trip",
		"detect.contain.actions[2].min_severity", "detect.contain.gate.token"} {
		require.ErrorContains(t, err, want)
	}
}
