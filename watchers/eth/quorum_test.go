package eth_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/watchers/eth"
	"github.com/cordonhq/cordon/watchers/eth/devnet"
	"github.com/cordonhq/cordon/watchers/follow"
	"github.com/cordonhq/cordon/watchers/follow/followtest"
)

// headLiar forwards JSON-RPC, single calls and batches, to a node and
// claims a head extra blocks above the node's.
type headLiar struct {
	target string
	extra  uint64
}

func (p *headLiar) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	resp, err := http.Post(p.target, "application/json", bytes.NewReader(body)) //nolint:noctx // test proxy
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	reply, _ := io.ReadAll(resp.Body)
	type msg struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method,omitempty"`
		Result json.RawMessage `json:"result,omitempty"`
		Error  json.RawMessage `json:"error,omitempty"`
		RPC    string          `json:"jsonrpc"`
	}
	var reqs, reps []msg
	batch := len(bytes.TrimSpace(body)) > 0 && bytes.TrimSpace(body)[0] == '['
	if batch {
		_ = json.Unmarshal(body, &reqs)
		_ = json.Unmarshal(reply, &reps)
	} else {
		var q, a msg
		_ = json.Unmarshal(body, &q)
		_ = json.Unmarshal(reply, &a)
		reqs, reps = []msg{q}, []msg{a}
	}
	methods := map[string]string{}
	for _, q := range reqs {
		methods[string(q.ID)] = q.Method
	}
	changed := false
	for i, a := range reps {
		if methods[string(a.ID)] != "eth_blockNumber" {
			continue
		}
		var num hexutil.Uint64
		if json.Unmarshal(a.Result, &num) == nil {
			reps[i].Result, _ = json.Marshal(hexutil.Uint64(uint64(num) + p.extra))
			changed = true
		}
	}
	if changed {
		if batch {
			reply, _ = json.Marshal(reps)
		} else {
			reply, _ = json.Marshal(reps[0])
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(reply)
}

// recordingSink is a MemorySink that also keeps every published transfer.
type recordingSink struct {
	*followtest.MemorySink
	mu        sync.Mutex
	transfers []chain.Transfer
}

func (s *recordingSink) Publish(ctx context.Context, us []chain.Update) error {
	s.mu.Lock()
	for _, u := range us {
		if u.Block != nil {
			s.transfers = append(s.transfers, u.Block.Transfers...)
		}
	}
	s.mu.Unlock()
	return s.MemorySink.Publish(ctx, us)
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

func (m *memAlerter) all() []chain.Alert {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]chain.Alert(nil), m.got...)
}

// TestLyingEndpointOutvoted is the attack of a hostile provider: one of
// three endpoints claims a head 100 blocks above the chain's and serves a
// fabricated branch, forking a few blocks below the tip and longer than
// the honest chain, that pays a deposit address with a Transfer log of the
// chain's real token contract. Every block of it is genuine (another
// devnet of the same genesis mined it: header hashes, transaction and
// receipt roots all match), so only comparing endpoints can catch it. The
// two honest endpoints are the devnet behind two URLs.
//
// Nothing of the fabricated branch may be published, the honest chain must
// keep flowing while the liar is there, and an alert must name the liar.
func TestLyingEndpointOutvoted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const seed = "31"
	honest, err := devnet.Start(devnet.Config{Seed: seed})
	require.NoError(t, err)
	t.Cleanup(func() { _ = honest.Close() })
	traffic, err := devnet.NewTraffic(ctx, honest, devnet.TrafficConfig{TxPerBlock: 6, Seed: 31}, nil)
	require.NoError(t, err)
	for range 6 {
		require.NoError(t, traffic.Step(ctx, 6))
	}
	tip := honest.Head().Number.Uint64()
	fork := tip - 3

	// The liar's node: the honest chain up to the fork point, then its own
	// longer branch with a token payment to the deposit address.
	liar, err := devnet.Start(devnet.Config{Seed: seed})
	require.NoError(t, err)
	t.Cleanup(func() { _ = liar.Close() })
	prefix, err := honest.Blocks(1, fork)
	require.NoError(t, err)
	require.NoError(t, liar.Import(prefix))
	liarTraffic, err := devnet.NewTraffic(ctx, liar, devnet.TrafficConfig{TxPerBlock: 2, Seed: 99}, nil)
	require.NoError(t, err)
	require.Equal(t, traffic.Token, liarTraffic.Token, "the liar's branch uses the chain's real token contract")
	deposit := common.HexToAddress("0x00000000000000000000000000000000dec0de01")
	_, err = liarTraffic.PayToken(ctx, 1, deposit, big.NewInt(5_000_000_000))
	require.NoError(t, err)
	liar.Commit()
	for range 6 {
		require.NoError(t, liarTraffic.Step(ctx, 2))
	}
	liarHead := liar.Head().Number.Uint64()
	require.Greater(t, liarHead, tip+3, "the fabricated branch is longer")
	fake := map[string]bool{}
	for n := fork + 1; n <= liarHead; n++ {
		b, err := liar.Client().BlockByNumber(ctx, new(big.Int).SetUint64(n))
		require.NoError(t, err)
		fake[strings.ToLower(b.Hash().Hex())] = true
	}

	src, err := eth.NewSource(ctx, eth.Config{Network: network, ChainID: devnet.ChainID,
		Pool: eth.PoolConfig{RequestTimeout: 2 * time.Second, HealthInterval: 200 * time.Millisecond},
		Endpoints: []eth.EndpointConfig{
			{Name: "liar", URL: config.SecretValue(serve(t, &headLiar{target: liar.HTTPURL(), extra: 100}))},
			{Name: "honest-a", URL: config.SecretValue(honest.HTTPURL())},
			{Name: "honest-b", URL: config.SecretValue(honest.HTTPURL() + "/")},
		}}, nil, nil)
	require.NoError(t, err)
	defer src.Close()
	alerts := &memAlerter{}
	src.Pool().SetAlerter(alerts)
	go func() { _ = src.Pool().Run(ctx) }()
	sink := &recordingSink{MemorySink: followtest.NewMemorySink()}
	f := follow.New(follow.Config{Chain: chain.ETH, Network: network, Parallel: 2, PollInterval: 50 * time.Millisecond},
		src, sink, nil, nil, nil, nil)
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()

	published := func() bool {
		return f.Status().Hash == strings.ToLower(honest.Head().Hash().Hex())
	}
	synced := waitUntil(published, 60*time.Second)
	// The honest chain keeps flowing while the liar is there.
	for range 3 {
		require.NoError(t, traffic.Step(ctx, 4))
	}
	flowing := synced && waitUntil(published, 60*time.Second)
	cancel()
	<-done

	evs, err := sink.Events(context.Background(), chain.ETH, network)
	require.NoError(t, err)
	for _, ev := range evs {
		require.False(t, fake[ev.Hash], "block %d %s of the fabricated branch was published", ev.Height, ev.Hash)
	}
	for _, tr := range sink.transfers {
		require.NotEqual(t, strings.ToLower(deposit.Hex()), tr.To, "the fabricated payment was published: %+v", tr)
	}
	require.True(t, synced, "the honest head was not published (status %+v)", f.Status())
	require.True(t, flowing, "new honest blocks were not published while the liar was there (status %+v)", f.Status())
	var st chain.StreamState
	for _, ev := range evs {
		st.Apply(ev)
	}
	head := honest.Head().Number.Uint64()
	require.Len(t, st.Chain, int(head)+1)
	for n := uint64(0); n <= head; n++ {
		b, err := honest.Client().BlockByNumber(context.Background(), new(big.Int).SetUint64(n))
		require.NoError(t, err)
		require.Equal(t, strings.ToLower(b.Hash().Hex()), st.Chain[n].Hash, "height %d", n)
	}
	named := false
	for _, a := range alerts.all() {
		if a.Severity == "critical" && a.Details["endpoint"] == "liar" {
			named = true
		}
	}
	require.True(t, named, "no critical alert names the liar: %+v", alerts.all())

	// What the crediting service asks at confirmation depth.
	q, n := src.Quorum()
	require.Equal(t, [2]int{2, 3}, [2]int{q, n})
	reps := src.HashesAt(context.Background(), fork+1)
	require.Len(t, reps, 3)
	honestHash := st.Chain[fork+1].Hash
	require.Equal(t, "liar", reps[0].Endpoint)
	require.NoError(t, reps[0].Err)
	require.True(t, fake[reps[0].Hash], "the liar reports its own block")
	for _, r := range reps[1:] {
		require.NoError(t, r.Err)
		require.Equal(t, honestHash, r.Hash, r.Endpoint)
	}
	far := src.HashesAt(context.Background(), liarHead+1000)
	for _, r := range far {
		require.ErrorIs(t, r.Err, follow.ErrNotFound, r.Endpoint)
	}
}

func serve(t testing.TB, h http.Handler) string {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// waitUntil polls cond until it holds or timeout passes.
func waitUntil(cond func() bool, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

// TestReceiptsCheckedAgainstRoot: one endpoint, trusted alone, alters the
// receipts of a block whose header and transactions it leaves intact: a
// token transfer's amount, a failed transaction's status dropped (it
// counted as a success, so its value became a transfer) or flipped to
// success. Each reply must be refused, naming what was wrong.
func TestReceiptsCheckedAgainstRoot(t *testing.T) {
	ctx := context.Background()
	dev, err := devnet.Start(devnet.Config{Seed: "41"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = dev.Close() })
	traffic, err := devnet.NewTraffic(ctx, dev, devnet.TrafficConfig{Seed: 41}, nil)
	require.NoError(t, err)
	deposit := common.HexToAddress("0x00000000000000000000000000000000dec0de02")
	_, err = traffic.PayToken(ctx, 1, deposit, big.NewInt(1000))
	require.NoError(t, err)
	_, err = traffic.PayFailing(ctx, 2, deposit, big.NewInt(1_000_000_000))
	require.NoError(t, err)
	dev.Commit()
	height := dev.Head().Number.Uint64()
	depositTopic := "0x000000000000000000000000" + strings.ToLower(deposit.Hex()[2:])

	edit := func(change func(rc map[string]any) bool) func(method string, reply []byte) []byte {
		return func(method string, reply []byte) []byte {
			if method != "eth_getBlockReceipts" {
				return reply
			}
			var env struct {
				ID     json.RawMessage  `json:"id"`
				Result []map[string]any `json:"result"`
			}
			if json.Unmarshal(reply, &env) != nil {
				return reply
			}
			for _, rc := range env.Result {
				if change(rc) {
					break
				}
			}
			out, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": env.ID, "result": env.Result})
			return out
		}
	}
	for _, tc := range []struct {
		name, want string
		change     func(rc map[string]any) bool
	}{
		{"transfer amount", "receiptsRoot", func(rc map[string]any) bool {
			for _, l := range rc["logs"].([]any) {
				lg := l.(map[string]any)
				if ts := lg["topics"].([]any); len(ts) == 3 && ts[0] == eth.TransferTopic && ts[2] == depositTopic {
					lg["data"] = "0x" + strings.Repeat("0", 48) + "ffffffffffffffff"
					return true
				}
			}
			return false
		}},
		{"status dropped", "has no status", func(rc map[string]any) bool {
			if rc["status"] == "0x0" {
				delete(rc, "status")
				return true
			}
			return false
		}},
		{"status flipped", "receiptsRoot", func(rc map[string]any) bool {
			if rc["status"] == "0x0" {
				rc["status"] = "0x1"
				return true
			}
			return false
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proxy := &rpcProxy{target: dev.HTTPURL(), mangle: edit(tc.change)}
			src, err := eth.NewSource(ctx, eth.Config{Network: network, ChainID: devnet.ChainID,
				Endpoints: []eth.EndpointConfig{{Name: "tamperer", URL: config.SecretValue(startProxy(t, proxy))}}}, nil, nil)
			require.NoError(t, err)
			defer src.Close()
			b, err := src.BlockAt(ctx, height)
			if err == nil {
				for _, tr := range b.Transfers {
					t.Logf("accepted transfer %s > %s: %s", tr.From, tr.To, tr.Amount)
				}
			}
			require.Error(t, err, "the altered receipts were accepted")
			require.ErrorContains(t, err, "endpoint tamperer")
			require.ErrorContains(t, err, tc.want)
		})
	}
	// Untouched, the same block passes every check.
	src, err := eth.NewSource(ctx, eth.Config{Network: network, ChainID: devnet.ChainID,
		Endpoints: []eth.EndpointConfig{{Name: "devnet", URL: config.SecretValue(dev.HTTPURL())}}}, nil, nil)
	require.NoError(t, err)
	defer src.Close()
	b, err := src.BlockAt(ctx, height)
	require.NoError(t, err)
	require.NotEmpty(t, b.Transfers)
}
