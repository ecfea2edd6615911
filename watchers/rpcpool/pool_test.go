package rpcpool_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/watchers/follow"
	"github.com/cordonhq/cordon/watchers/rpcpool"
)

// fakeNode is a scripted endpoint for the pool's own logic; the watchers'
// tests exercise the pool against real nodes.
type fakeNode struct {
	head      uint64
	wrong     bool
	failCheck bool
	failCalls bool
	notFound  bool
	calls     atomic.Int64
}

func newPool(t testing.TB, nodes map[string]*fakeNode, order []string) (*rpcpool.Pool[*fakeNode], *rpcpool.Metrics) {
	var eps []*rpcpool.Endpoint[*fakeNode]
	for _, name := range order {
		eps = append(eps, rpcpool.NewEndpoint(name, "http://secret-"+name, nodes[name]))
	}
	m := rpcpool.NewMetrics(nil)
	p, err := rpcpool.New(rpcpool.Config{Label: "test/net", Penalty: time.Hour, MaxLag: 5}, eps,
		func(_ context.Context, ep *rpcpool.Endpoint[*fakeNode]) (uint64, error) {
			n := ep.Conn
			switch {
			case n.wrong:
				return 0, fmt.Errorf("%w: other genesis", rpcpool.ErrWrongChain)
			case n.failCheck:
				return 0, errors.New("connection refused to http://secret-" + ep.Name)
			}
			return n.head, nil
		}, m, nil)
	require.NoError(t, err)
	return p, m
}

func call(p *rpcpool.Pool[*fakeNode]) (string, error) {
	var used string
	err := p.Do(context.Background(), "getblock", func(_ context.Context, ep *rpcpool.Endpoint[*fakeNode]) error {
		ep.Conn.calls.Add(1)
		if ep.Conn.notFound {
			return follow.ErrNotFound
		}
		if ep.Conn.failCalls {
			return errors.New("bad reply from http://secret-" + ep.Name)
		}
		used = ep.Name
		return nil
	})
	return used, err
}

func TestPoolOrderFailoverAndPenalty(t *testing.T) {
	nodes := map[string]*fakeNode{
		"wrong":   {head: 500, wrong: true},
		"lagging": {head: 90},
		"flaky":   {head: 100, failCalls: true},
		"good":    {head: 99},
		"down":    {failCheck: true},
	}
	p, m := newPool(t, nodes, []string{"wrong", "lagging", "flaky", "good", "down"})
	p.CheckHealth(context.Background())

	// Highest head first: flaky fails and is penalized, good serves.
	used, err := call(p)
	require.NoError(t, err)
	require.Equal(t, "good", used)
	require.EqualValues(t, 1, nodes["flaky"].calls.Load())
	require.Zero(t, nodes["wrong"].calls.Load(), "an endpoint of another chain is never used")
	// Penalized flaky is now tried after good.
	used, err = call(p)
	require.NoError(t, err)
	require.Equal(t, "good", used)
	require.EqualValues(t, 1, nodes["flaky"].calls.Load())
	require.Equal(t, 1.0, testutil.ToFloat64(m.Requests().WithLabelValues("test/net", "flaky", "getblock", "error")))

	// Every usable endpoint failing: one error naming each, URLs redacted.
	for _, n := range nodes {
		n.failCalls = true
	}
	_, err = call(p)
	require.Error(t, err)
	for _, name := range []string{"lagging", "flaky", "good", "down"} {
		require.Contains(t, err.Error(), "endpoint "+name)
	}
	require.NotContains(t, err.Error(), "secret")
	require.NotContains(t, err.Error(), "endpoint wrong")

	// Not found everywhere is follow.ErrNotFound, not a failure.
	for _, n := range nodes {
		n.failCalls, n.notFound = false, true
	}
	_, err = call(p)
	require.ErrorIs(t, err, follow.ErrNotFound)
}

func TestPoolAllWrongChain(t *testing.T) {
	p, _ := newPool(t, map[string]*fakeNode{"a": {wrong: true}}, []string{"a"})
	p.CheckHealth(context.Background())
	_, err := call(p)
	require.ErrorContains(t, err, "no usable endpoint")
}

func TestPoolRejectsDuplicateNames(t *testing.T) {
	n := &fakeNode{}
	_, err := rpcpool.New(rpcpool.Config{}, []*rpcpool.Endpoint[*fakeNode]{rpcpool.NewEndpoint("x", "", n), rpcpool.NewEndpoint("x", "", n)},
		nil, nil, nil)
	require.ErrorContains(t, err, `two endpoints are named "x"`)
}
