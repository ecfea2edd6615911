package eth_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/watchers/eth"
	"github.com/cordonhq/cordon/watchers/eth/devnet"
	"github.com/cordonhq/cordon/watchers/follow"
	"github.com/cordonhq/cordon/watchers/rpcpool"
)

// rpcProxy forwards JSON-RPC to the devnet and lets a test corrupt the
// exchange the way a broken or hostile endpoint would.
type rpcProxy struct {
	target string
	// rewrite may change a request's method/params or answer it itself.
	rewrite func(method string, params []json.RawMessage) (newParams []json.RawMessage, reply []byte)
	// mangle may change the reply of a method.
	mangle func(method string, reply []byte) []byte
	calls  atomic.Int64
}

type rpcReq struct {
	JSONRPC string            `json:"jsonrpc"`
	ID      json.RawMessage   `json:"id"`
	Method  string            `json:"method"`
	Params  []json.RawMessage `json:"params"`
}

func (p *rpcProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	p.calls.Add(1)
	var req rpcReq
	if json.Unmarshal(body, &req) != nil || req.Method == "" { // batches pass through
		p.forward(w, body, "")
		return
	}
	if p.rewrite != nil {
		params, reply := p.rewrite(req.Method, req.Params)
		if reply != nil {
			_, _ = fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,%s}`, req.ID, reply)
			return
		}
		if params != nil {
			req.Params = params
			body, _ = json.Marshal(req)
		}
	}
	p.forward(w, body, req.Method)
}

func (p *rpcProxy) forward(w http.ResponseWriter, body []byte, method string) {
	resp, err := http.Post(p.target, "application/json", bytes.NewReader(body)) //nolint:noctx // test proxy
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if p.mangle != nil && method != "" {
		out = p.mangle(method, out)
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)
}

func startProxy(t testing.TB, p *rpcProxy) string {
	t.Helper()
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestFailoverPastBadEndpoints puts five broken endpoints before a good
// one: one answers every block request with another block, one returns
// malformed JSON, one forges a header field, one alters a transaction's
// value under an intact header, one is slower than the request timeout. The stream must
// still be exactly the canonical chain, and each failure must be counted
// against the endpoint that caused it.
func TestFailoverPastBadEndpoints(t *testing.T) {
	h := newHarness(t, 11)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for range 15 {
		require.NoError(t, h.traffic.Step(ctx, 8))
	}
	target := h.dev.HTTPURL()
	liar := &rpcProxy{target: target, rewrite: func(method string, params []json.RawMessage) ([]json.RawMessage, []byte) {
		if method == "eth_getBlockByNumber" && string(params[0]) != `"0x0"` && string(params[0]) != `"0x1"` {
			return []json.RawMessage{json.RawMessage(`"0x1"`), params[1]}, nil // a reply for the wrong block
		}
		return nil, nil
	}}
	malformed := &rpcProxy{target: target, mangle: func(method string, reply []byte) []byte {
		if method == "eth_getBlockByNumber" || method == "eth_getBlockReceipts" {
			return reply[:len(reply)/2]
		}
		return reply
	}}
	forger := &rpcProxy{target: target, mangle: func(method string, reply []byte) []byte {
		if method == "eth_getBlockByNumber" {
			// Claim another state root: the header no longer hashes to
			// the claimed hash.
			return bytes.Replace(reply, []byte(`"stateRoot":"0x`), []byte(`"stateRoot":"0xff`), 1)
		}
		return reply
	}}
	tamperer := &rpcProxy{target: target, mangle: func(method string, reply []byte) []byte {
		if method == "eth_getBlockByNumber" {
			// Header untouched; a zero-value transaction now claims to
			// move 1 wei (what a fake deposit would look like).
			return bytes.Replace(reply, []byte(`"value":"0x0"`), []byte(`"value":"0x1"`), 1)
		}
		return reply
	}}
	slow := &rpcProxy{target: target, rewrite: func(method string, _ []json.RawMessage) ([]json.RawMessage, []byte) {
		if method == "eth_getBlockReceipts" {
			time.Sleep(800 * time.Millisecond)
		}
		return nil, nil
	}}
	reg := prometheus.NewRegistry()
	pm := rpcpool.NewMetrics(reg)
	// One endpoint trusted (quorum 1): this is about each reply's own
	// checks; TestLyingEndpointOutvoted is about outvoting a liar.
	src, err := eth.NewSource(ctx, eth.Config{Network: network, ChainID: devnet.ChainID, Quorum: 1,
		Pool: eth.PoolConfig{RequestTimeout: 300 * time.Millisecond, Penalty: 50 * time.Millisecond},
		Endpoints: []eth.EndpointConfig{
			{Name: "liar", URL: config.SecretValue(startProxy(t, liar))},
			{Name: "malformed", URL: config.SecretValue(startProxy(t, malformed))},
			{Name: "forger", URL: config.SecretValue(startProxy(t, forger))},
			{Name: "tamperer", URL: config.SecretValue(startProxy(t, tamperer))},
			{Name: "slow", URL: config.SecretValue(startProxy(t, slow))},
			{Name: "good", URL: config.SecretValue(target)},
		}}, eth.NewMetrics(reg, pm), nil)
	require.NoError(t, err)
	defer src.Close()
	h.src = src
	f := h.follower(follow.Config{Parallel: 4}, nil)
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	waitPublished(t, h, 60*time.Second)
	cancel()
	<-done
	checkCanonical(t, h, consume(t, h.prod))

	for _, ep := range []string{"liar", "malformed", "forger", "tamperer", "slow"} {
		errs := testutil.ToFloat64(pm.Requests().WithLabelValues("eth/"+network, ep, "block", "error"))
		require.Positive(t, errs, "endpoint %s: no failure recorded", ep)
	}
	require.Positive(t, testutil.ToFloat64(pm.Requests().WithLabelValues("eth/"+network, "good", "block", "ok")))
}

// TestBlockReceiptsFallback serves a node without eth_getBlockReceipts:
// the watcher must fall back to per-transaction receipts.
func TestBlockReceiptsFallback(t *testing.T) {
	h := newHarness(t, 12)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for range 5 {
		require.NoError(t, h.traffic.Step(ctx, 10))
	}
	old := &rpcProxy{target: h.dev.HTTPURL(), rewrite: func(method string, _ []json.RawMessage) ([]json.RawMessage, []byte) {
		if method == "eth_getBlockReceipts" {
			return nil, []byte(`"error":{"code":-32601,"message":"the method eth_getBlockReceipts does not exist/is not available"}`)
		}
		return nil, nil
	}}
	src, err := eth.NewSource(ctx, eth.Config{Network: network, ChainID: devnet.ChainID,
		Endpoints: []eth.EndpointConfig{{Name: "old", URL: config.SecretValue(startProxy(t, old))}}}, nil, nil)
	require.NoError(t, err)
	defer src.Close()
	h.src = src
	f := h.follower(follow.Config{Parallel: 2}, nil)
	go func() { _ = f.Run(ctx) }()
	waitPublished(t, h, 30*time.Second)
	cancel()
	checkCanonical(t, h, consume(t, h.prod))
}

// TestWrongChainRefused configures chain id 1 against the devnet: the
// endpoint must never be used.
func TestWrongChainRefused(t *testing.T) {
	h := newHarness(t, 13)
	ctx := context.Background()
	src, err := eth.NewSource(ctx, eth.Config{Network: "mainnet", ChainID: 1,
		Endpoints: []eth.EndpointConfig{{Name: "devnet", URL: config.SecretValue(h.dev.HTTPURL())}}}, nil, nil)
	require.NoError(t, err)
	defer src.Close()
	src.Pool().CheckHealth(ctx)
	_, err = src.BlockAt(ctx, 1)
	require.Error(t, err)
	require.Contains(t, err.Error(), "no usable endpoint")
}

// TestReorgTooDeepAlert makes a reorg deeper than max_reorg_depth: the
// watcher stops and an alert lands in the alerts topic.
func TestReorgTooDeepAlert(t *testing.T) {
	h := newHarness(t, 14)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for range 10 {
		require.NoError(t, h.traffic.Step(ctx, 3))
	}
	f := h.follower(follow.Config{MaxReorgDepth: 3}, nil)
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	waitPublished(t, h, 30*time.Second)
	require.NoError(t, h.traffic.Reorg(ctx, 6))
	select {
	case err := <-done:
		require.ErrorIs(t, err, follow.ErrReorgTooDeep)
	case <-time.After(30 * time.Second):
		t.Fatal("watcher did not stop on a reorg deeper than max_reorg_depth")
	}
	var alerts []chain.Alert
	require.NoError(t, h.prod.ReadAll(ctx, h.prod.Topics().Alerts, func(r kafka.Record) error {
		var a chain.Alert
		require.NoError(t, json.Unmarshal(r.Value, &a))
		alerts = append(alerts, a)
		return nil
	}))
	require.Len(t, alerts, 1)
	require.Equal(t, "reorg_too_deep", alerts[0].Type)
	require.Equal(t, "critical", alerts[0].Severity)
	require.True(t, strings.HasPrefix(alerts[0].ID, "eth/devnet/reorg_too_deep/"))
}
