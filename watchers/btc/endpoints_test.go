package btc_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/watchers/btc"
	"github.com/cordonhq/cordon/watchers/btc/btcnode"
	"github.com/cordonhq/cordon/watchers/btc/btctest"
	"github.com/cordonhq/cordon/watchers/follow"
	"github.com/cordonhq/cordon/watchers/rpcpool"
)

// rpcProxy forwards JSON-RPC calls to a node and lets a test rewrite the
// replies of one method.
type rpcProxy struct {
	target string
	mangle func(method string, reply []byte) []byte
}

func (p *rpcProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var req struct {
		Method string `json:"method"`
	}
	_ = json.Unmarshal(body, &req)
	out, _ := http.NewRequest(http.MethodPost, p.target, bytes.NewReader(body))
	out.Header = r.Header.Clone()
	resp, err := http.DefaultClient.Do(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	reply, _ := io.ReadAll(resp.Body)
	if p.mangle != nil {
		reply = p.mangle(req.Method, reply)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(reply)
}

func startProxy(t testing.TB, p *rpcProxy) string {
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestFailoverPastBadEndpoints puts endpoints that lie in every way before
// the good one: a node of another network, one that is down, one that
// serves another block, one that alters an output, one that answers
// garbage and one that is too slow. The stream must be the node's
// canonical chain, and each bad endpoint must have been tried and refused.
func TestFailoverPastBadEndpoints(t *testing.T) {
	h := newHarness(t, "simnet", 4)
	for range 4 {
		require.NoError(t, h.wallet.Step(3))
	}
	other := btctest.Node(t, "regtest", "")
	target := h.node.URL
	liar := &rpcProxy{target: target, mangle: func(method string, reply []byte) []byte {
		if method == "getblock" { // the genesis block instead: wrong hash
			return []byte(`{"result":"` + genesisHex + `","error":null,"id":1}`)
		}
		return reply
	}}
	tamperer := &rpcProxy{target: target, mangle: func(method string, reply []byte) []byte {
		if method == "getblock" && len(reply) > 200 {
			// Flip a hex digit inside the last transaction (an output
			// value or script): the merkle root no longer matches.
			i := bytes.LastIndex(reply, []byte(`","error"`)) - 30
			c := reply[i]
			reply[i] = map[bool]byte{true: '1', false: '0'}[c == '0']
		}
		return reply
	}}
	malformed := &rpcProxy{target: target, mangle: func(method string, reply []byte) []byte {
		if method == "getblock" {
			return []byte(`{"result":"zz-not-hex","error":null,"id":1}`)
		}
		return reply
	}}
	slow := &rpcProxy{target: target, mangle: func(method string, reply []byte) []byte {
		if method == "getblock" {
			time.Sleep(1500 * time.Millisecond)
		}
		return reply
	}}
	// The good endpoint answers health checks slowest, so every bad one
	// is tried before it.
	good := &rpcProxy{target: target, mangle: func(method string, reply []byte) []byte {
		if method == "getblockcount" {
			time.Sleep(40 * time.Millisecond)
		}
		return reply
	}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	down := "http://" + l.Addr().String()
	l.Close()

	creds := func(name, url string) btc.EndpointConfig {
		return btc.EndpointConfig{Name: name, URL: config.SecretValue(url), User: h.node.User(), Password: config.SecretValue(h.node.Password())}
	}
	reg := prometheus.NewRegistry()
	rm := rpcpool.NewMetrics(reg)
	// One endpoint trusted (quorum 1): this is about each reply's own
	// checks; TestLyingEndpointOutvoted is about outvoting a liar.
	src, err := btc.NewSource(btc.Config{Network: "simnet", Clients: 4, RequestTimeout: 700 * time.Millisecond, Penalty: 50 * time.Millisecond, Quorum: 1,
		Endpoints: []btc.EndpointConfig{
			{Name: "other-network", URL: config.SecretValue(other.URL), User: other.User(), Password: config.SecretValue(other.Password())},
			creds("down", down), creds("liar", startProxy(t, liar)), creds("tamperer", startProxy(t, tamperer)),
			creds("malformed", startProxy(t, malformed)), creds("slow", startProxy(t, slow)), creds("good", startProxy(t, good)),
		}}, btc.NewMetrics(reg, rm), nil)
	require.NoError(t, err)
	defer src.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src.Pool().CheckHealth(ctx) // finds the wrong network
	h.src = src
	f := h.follower(follow.Config{StartHeight: "440", Parallel: 3, BatchBlocks: 4})
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	waitSynced(t, h, f, 90*time.Second)
	cancel()
	<-done
	checkCanonical(t, h, consume(t, h.prod, h.net), 440)

	for _, ep := range []string{"liar", "tamperer", "malformed", "slow"} {
		require.Positive(t, testutil.ToFloat64(rm.Requests().WithLabelValues("btc/simnet", ep, "block", "error")), "endpoint %s: no failure recorded", ep)
	}
	require.Zero(t, testutil.ToFloat64(rm.Requests().WithLabelValues("btc/simnet", "other-network", "block", "ok")))
	require.Zero(t, testutil.ToFloat64(rm.Requests().WithLabelValues("btc/simnet", "other-network", "block", "error")), "an endpoint of another network was used")
	require.Positive(t, testutil.ToFloat64(rm.Requests().WithLabelValues("btc/simnet", "good", "block", "ok")))
}

// genesisHex is simnet's genesis block, a valid block with the wrong hash
// for any other height.
var genesisHex = func() string {
	var b strings.Builder
	n, _ := btc.LookupNetwork("simnet")
	blk := n.Params().GenesisBlock
	var buf bytes.Buffer
	_ = blk.Serialize(&buf)
	for _, c := range buf.Bytes() {
		b.WriteString(string("0123456789abcdef"[c>>4]) + string("0123456789abcdef"[c&15]))
	}
	return b.String()
}()

// TestWrongNetworkRefused configures mainnet against a simnet node: the
// endpoint is never used and the error says why.
func TestWrongNetworkRefused(t *testing.T) {
	addr, err := btcnode.MiningAddress("simnet", "x")
	require.NoError(t, err)
	node := btctest.Node(t, "simnet", addr)
	src, err := btc.NewSource(btc.Config{Network: "mainnet",
		Endpoints: []btc.EndpointConfig{{Name: "simnet-node", URL: config.SecretValue(node.URL), User: node.User(), Password: config.SecretValue(node.Password())}}}, nil, nil)
	require.NoError(t, err)
	defer src.Close()
	src.Pool().CheckHealth(context.Background())
	_, err = src.BlockAt(context.Background(), 0)
	require.ErrorContains(t, err, "no usable endpoint")
}

// TestBadCredentials: a wrong password is an error naming the endpoint,
// not a hang.
func TestBadCredentials(t *testing.T) {
	addr, err := btcnode.MiningAddress("simnet", "y")
	require.NoError(t, err)
	node := btctest.Node(t, "simnet", addr)
	src, err := btc.NewSource(btc.Config{Network: "simnet", RequestTimeout: 5 * time.Second,
		Endpoints: []btc.EndpointConfig{{Name: "n", URL: config.SecretValue(node.URL), User: node.User(), Password: config.SecretValue("wrong")}}}, nil, nil)
	require.NoError(t, err)
	defer src.Close()
	_, err = src.Head(context.Background())
	require.ErrorContains(t, err, "endpoint n")
	require.ErrorContains(t, err, "401")
}

var _ = chain.BTC

// TestCookieAuth authenticates with a cookie file, as bitcoind writes one
// (user:password on one line), instead of a configured password.
func TestCookieAuth(t *testing.T) {
	addr, err := btcnode.MiningAddress("simnet", "z")
	require.NoError(t, err)
	node := btctest.Node(t, "simnet", addr)
	cookie := t.TempDir() + "/.cookie"
	require.NoError(t, os.WriteFile(cookie, []byte(node.User()+":"+node.Password()), 0o600))
	src, err := btc.NewSource(btc.Config{Network: "simnet",
		Endpoints: []btc.EndpointConfig{{Name: "n", URL: config.SecretValue(node.URL), CookieFile: cookie}}}, nil, nil)
	require.NoError(t, err)
	defer src.Close()
	head, err := src.Head(context.Background())
	require.NoError(t, err)
	b, err := src.BlockAt(context.Background(), head)
	require.NoError(t, err)
	require.Equal(t, head, b.Height)
}

// TestMissingCookie: a cookie file that is not there (bitcoind stopped)
// is an error naming the endpoint and the file, and the call fails over.
func TestMissingCookie(t *testing.T) {
	src, err := btc.NewSource(btc.Config{Network: "simnet", RequestTimeout: 2 * time.Second,
		Endpoints: []btc.EndpointConfig{{Name: "n", URL: config.SecretValue("http://127.0.0.1:1"), CookieFile: "/nonexistent/.cookie"}}}, nil, nil)
	require.NoError(t, err)
	defer src.Close()
	_, err = src.Head(context.Background())
	require.ErrorContains(t, err, "endpoint n")
	require.ErrorContains(t, err, "/nonexistent/.cookie")
}
