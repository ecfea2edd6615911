package rpcpool_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/watchers/follow"
	"github.com/cordonhq/cordon/watchers/rpcpool"
)

// fakeNode is a scripted endpoint for the pool's own logic; the watchers'
// tests exercise the pool against real nodes.
type fakeNode struct {
	head      uint64
	hash      string        // the block hash it reports (hashOf); "" is not found
	slowCheck time.Duration // added to each health check
	wrong     bool
	failCheck bool
	failCalls bool
	notFound  bool
	calls     atomic.Int64
}

func newPool(t testing.TB, nodes map[string]*fakeNode, order []string) (*rpcpool.Pool[*fakeNode], *rpcpool.Metrics) {
	return newPoolQ(t, nodes, order, 1)
}

func newPoolQ(t testing.TB, nodes map[string]*fakeNode, order []string, quorum int) (*rpcpool.Pool[*fakeNode], *rpcpool.Metrics) {
	var eps []*rpcpool.Endpoint[*fakeNode]
	for _, name := range order {
		eps = append(eps, rpcpool.NewEndpoint(name, "http://secret-"+name, nodes[name]))
	}
	m := rpcpool.NewMetrics(nil)
	p, err := rpcpool.New(rpcpool.Config{Label: "test/net", Chain: "btc", Network: "net", Penalty: time.Hour, MaxLag: 5, Quorum: quorum}, eps,
		func(_ context.Context, ep *rpcpool.Endpoint[*fakeNode]) (uint64, error) {
			n := ep.Conn
			time.Sleep(n.slowCheck)
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

// TestPoolOrderFailoverAndPenalty runs with a quorum of 1: one endpoint
// is trusted, and the highest head goes first.
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

func TestQuorumDefault(t *testing.T) {
	for n, want := range map[int]int{1: 1, 2: 1, 3: 2, 4: 3, 5: 3, 6: 4, 7: 4} {
		require.Equal(t, want, rpcpool.Quorum(n), "n=%d", n)
	}
	n := &fakeNode{}
	eps := []*rpcpool.Endpoint[*fakeNode]{rpcpool.NewEndpoint("a", "", n), rpcpool.NewEndpoint("b", "", n)}
	_, err := rpcpool.New(rpcpool.Config{Quorum: 3}, eps, nil, nil, nil)
	require.ErrorContains(t, err, "quorum 3: want between 1 and the 2 configured endpoints")
	_, err = rpcpool.New(rpcpool.Config{Quorum: -1}, eps, nil, nil, nil)
	require.ErrorContains(t, err, "quorum -1")
	p, err := rpcpool.New(rpcpool.Config{}, append(eps, rpcpool.NewEndpoint("c", "", n)), nil, nil, nil)
	require.NoError(t, err)
	q, total := p.Quorum()
	require.Equal(t, [2]int{2, 3}, [2]int{q, total})
}

// TestRankingIgnoresClaimedHead: an endpoint claiming a head 100 blocks
// above the others' is not asked first, does not set the agreed head, and
// does not make the honest endpoints look lagging (with one endpoint
// trusted, it did all three).
func TestRankingIgnoresClaimedHead(t *testing.T) {
	nodes := map[string]*fakeNode{
		"liar":     {head: 200, slowCheck: 20 * time.Millisecond},
		"honest-a": {head: 100},
		"honest-b": {head: 99},
	}
	p, _ := newPoolQ(t, nodes, []string{"liar", "honest-a", "honest-b"}, 0) // the default: 2 of 3
	p.CheckHealth(context.Background())
	head, ok := p.AgreedHead()
	require.True(t, ok)
	require.EqualValues(t, 100, head, "the agreed head is the second highest")
	for range 3 {
		used, err := call(p)
		require.NoError(t, err)
		require.NotEqual(t, "liar", used)
	}
	require.Zero(t, nodes["liar"].calls.Load(), "the endpoint claiming the highest head was asked first")
	require.EqualValues(t, 3, nodes["honest-a"].calls.Load(), "honest-a (at the agreed head) is not first, or was set aside as lagging")

	// Trusting one endpoint, the same claim wins: what the quorum prevents.
	for _, n := range nodes {
		n.calls.Store(0)
	}
	p1, _ := newPoolQ(t, nodes, []string{"liar", "honest-a", "honest-b"}, 1)
	p1.CheckHealth(context.Background())
	used, err := call(p1)
	require.NoError(t, err)
	require.Equal(t, "liar", used)
}

type memAlerter struct {
	mu  sync.Mutex
	got []chain.Alert
}

func (m *memAlerter) Alert(_ context.Context, a chain.Alert) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.got = append(m.got, a)
	return nil
}

func hashOf(_ context.Context, ep *rpcpool.Endpoint[*fakeNode]) (string, error) {
	ep.Conn.calls.Add(1)
	if ep.Conn.hash == "" {
		return "", follow.ErrNotFound
	}
	if ep.Conn.failCalls {
		return "", errors.New("connection reset by http://secret-" + ep.Name)
	}
	return ep.Conn.hash, nil
}

func TestAgree(t *testing.T) {
	ctx := context.Background()
	nodes := map[string]*fakeNode{"a": {hash: "x"}, "b": {hash: "x"}, "liar": {hash: "y"}}
	p, m := newPoolQ(t, nodes, []string{"a", "liar", "b"}, 0)
	al := &memAlerter{}
	p.SetAlerter(al)

	ag, err := p.Agree(ctx, rpcpool.Question[*fakeNode]{Method: "getblockhash", Height: 7, HashOf: hashOf})
	require.NoError(t, err)
	require.Equal(t, "x", ag.Hash)
	require.Len(t, ag.Agreeing, 2)
	require.Equal(t, []rpcpool.Report{{Endpoint: "a", Hash: "x"}, {Endpoint: "liar", Hash: "y"}, {Endpoint: "b", Hash: "x"}}, ag.Reports)
	require.Equal(t, 1.0, testutil.ToFloat64(m.Disagreements().WithLabelValues("test/net", "liar")))
	require.Len(t, al.got, 1)
	require.Equal(t, "rpc_endpoint_dissent", al.got[0].Type)
	require.Equal(t, "critical", al.got[0].Severity)
	require.Equal(t, "liar", al.got[0].Details["endpoint"])
	require.Contains(t, al.got[0].Message, "endpoint liar")
	// The dissenter is penalized: never asked first.
	used, err := call(p)
	require.NoError(t, err)
	require.NotEqual(t, "liar", used)

	// The liar again at the next height: counted, not alerted again.
	_, err = p.Agree(ctx, rpcpool.Question[*fakeNode]{Method: "getblockhash", Height: 8, HashOf: hashOf})
	require.NoError(t, err)
	require.Len(t, al.got, 1)

	// Three answers, three hashes: not agreed, an alert names each.
	nodes["b"].hash = "z"
	_, err = p.Agree(ctx, rpcpool.Question[*fakeNode]{Method: "getblockhash", Height: 9, HashOf: hashOf})
	require.ErrorIs(t, err, follow.ErrNotAgreed)
	require.ErrorIs(t, err, follow.ErrNotFound, "the follower waits and retries")
	var de *rpcpool.DisagreementError
	require.ErrorAs(t, err, &de)
	require.Len(t, al.got, 2)
	a := al.got[1]
	require.Equal(t, "rpc_not_agreed", a.Type)
	require.Equal(t, map[string]string{"height": "9", "quorum": "2", "endpoint.a": "x", "endpoint.liar": "y", "endpoint.b": "z"}, a.Details)
	for _, name := range []string{"a", "liar", "b"} {
		require.Contains(t, a.Message, name)
	}
	_, err = p.Agree(ctx, rpcpool.Question[*fakeNode]{Method: "getblockhash", Height: 9, HashOf: hashOf})
	require.ErrorIs(t, err, follow.ErrNotAgreed)
	require.Len(t, al.got, 2, "one alert per height")

	// Only one endpoint has the block so far: not agreed, no alert.
	nodes["liar"].hash, nodes["b"].hash = "", ""
	_, err = p.Agree(ctx, rpcpool.Question[*fakeNode]{Method: "getblockhash", Height: 10, HashOf: hashOf})
	require.ErrorIs(t, err, follow.ErrNotFound)
	require.NotErrorIs(t, err, follow.ErrNotAgreed, "a quorum has no block there: the chain is shorter")
	nodes["b"].hash = "x2"
	nodes["liar"].failCalls, nodes["liar"].hash = true, "w"
	_, err = p.Agree(ctx, rpcpool.Question[*fakeNode]{Method: "getblockhash", Height: 11, HashOf: hashOf})
	require.ErrorIs(t, err, follow.ErrNotAgreed)
	require.Len(t, al.got, 3)
	require.NotContains(t, fmt.Sprint(al.got[2]), "secret", "URLs are redacted")
}

// TestAgreedHeight: the head a call agrees on is the quorum-th highest
// answer, whatever one endpoint claims.
func TestAgreedHeight(t *testing.T) {
	nodes := map[string]*fakeNode{"a": {head: 10}, "b": {head: 12}, "liar": {head: 1000}}
	p, _ := newPoolQ(t, nodes, []string{"liar", "a", "b"}, 0)
	h, err := p.AgreedHeight(context.Background(), "getblockcount", func(_ context.Context, ep *rpcpool.Endpoint[*fakeNode]) (uint64, error) {
		return ep.Conn.head, nil
	})
	require.NoError(t, err)
	require.EqualValues(t, 12, h)
	nodes["a"].failCalls, nodes["b"].failCalls = true, true
	_, err = p.AgreedHeight(context.Background(), "getblockcount", func(_ context.Context, ep *rpcpool.Endpoint[*fakeNode]) (uint64, error) {
		if ep.Conn.failCalls {
			return 0, errors.New("down")
		}
		return ep.Conn.head, nil
	})
	require.ErrorContains(t, err, "1 of 3 endpoints answered, quorum is 2")
}

// TestDoNotFoundBesideFailure: one endpoint without the block and another
// failing is a failure, never a missing block (the follower would take a
// missing block at its tip for a shorter chain).
func TestDoNotFoundBesideFailure(t *testing.T) {
	nodes := map[string]*fakeNode{"lagging": {head: 10, notFound: true}, "down": {head: 10, failCalls: true}}
	p, _ := newPool(t, nodes, []string{"lagging", "down"})
	_, err := call(p)
	require.Error(t, err)
	require.NotErrorIs(t, err, follow.ErrNotFound)
	nodes["down"].failCalls, nodes["down"].notFound = false, true
	_, err = call(p)
	require.ErrorIs(t, err, follow.ErrNotFound, "every endpoint without the block is a missing block")
}

// TestRedactCannotMiss: a key in an endpoint's URL is removed from an
// error however the error quotes it — the whole URL, its path alone, the
// key escaped, a query value, a password.
func TestRedactCannotMiss(t *testing.T) {
	const key = "Zk3q9xT2mW8pL4vB"
	for _, c := range []struct{ url, msg string }{
		{"https://eth-mainnet.example/v2/" + key, `Post "https://eth-mainnet.example/v2/` + key + `": dial tcp: timeout`},
		{"https://eth-mainnet.example/v2/" + key, `404 Not Found: /v2/` + key},
		{"https://eth-mainnet.example/v2/" + key, `websocket: bad handshake for eth-mainnet.example/v2/` + key},
		{"https://eth-mainnet.example/rpc?apikey=" + key, `GET /rpc?apikey=` + key + ` failed`},
		{"https://eth-mainnet.example/rpc?apikey=" + key, `the key ` + key + ` is over its quota`},
		{"http://cordon:" + key + "@10.0.0.7:8332", `401 for user cordon with password ` + key},
		{"https://eth-mainnet.example/v2/" + key + "%2F", `escaped: ` + url.QueryEscape("https://eth-mainnet.example/v2/"+key+"%2F")},
	} {
		got := rpcpool.Redact(errors.New(c.msg), c.url)
		require.NotContains(t, got, key, "%s in %q", c.url, c.msg)
	}
	require.Equal(t, "dial tcp 10.0.0.7:8332: refused", rpcpool.Redact(errors.New("dial tcp 10.0.0.7:8332: refused"), "http://cordon:"+key+"@10.0.0.7:8332"),
		"what is not secret stays")
}
