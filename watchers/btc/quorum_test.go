package btc_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcjson"
	"github.com/btcsuite/btcd/rpcclient"
	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/watchers/btc"
	"github.com/cordonhq/cordon/watchers/btc/btcnode"
	"github.com/cordonhq/cordon/watchers/btc/btctest"
	"github.com/cordonhq/cordon/watchers/follow"
	"github.com/cordonhq/cordon/watchers/follow/followtest"
)

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

// outputSink is a MemorySink that also keeps every published output's
// address.
type outputSink struct {
	*followtest.MemorySink
	mu    sync.Mutex
	addrs map[string]int
}

func (s *outputSink) Publish(ctx context.Context, us []chain.Update) error {
	s.mu.Lock()
	for _, u := range us {
		if u.Block == nil {
			continue
		}
		for _, o := range u.Block.Outputs {
			if o.Address != nil {
				s.addrs[*o.Address]++
			}
		}
	}
	s.mu.Unlock()
	return s.MemorySink.Publish(ctx, us)
}

// liarSetup starts the honest node (harness) and the liar's: a btcd that
// syncs the honest chain, is cut off at fork and mines a longer branch of
// six blocks (fake) paying the deposit address, while the honest node
// adds two. liarEP is the liar's endpoint: a proxy claiming head + 100.
func liarSetup(t *testing.T, seed uint64) (h *harness, a *rpcclient.Client, fork int64, fake map[string]bool, liarEP btc.EndpointConfig) {
	h = newHarness(t, "simnet", seed)
	deposit, err := btcnode.MiningAddress("simnet", "liar-deposit")
	require.NoError(t, err)
	liar := btctest.Node(t, "simnet", deposit)
	a, b := h.node.Client(), liar.Client()
	require.NoError(t, b.AddNode(h.node.P2PAddr(), rpcclient.ANOneTry))
	waitFor(t, func() bool {
		ha, _ := a.GetBestBlockHash()
		hb, _ := b.GetBestBlockHash()
		return ha != nil && hb != nil && *ha == *hb
	}, "the liar's node to sync")
	fork, err = a.GetBlockCount()
	require.NoError(t, err)
	require.NoError(t, b.Node(btcjson.NDisconnect, h.node.P2PAddr(), nil))
	waitFor(t, func() bool {
		peers, err := a.GetPeerInfo()
		return err == nil && len(peers) == 0
	}, "the nodes to disconnect")
	for range 2 {
		require.NoError(t, h.wallet.Step(2))
	}
	fakeHashes, err := b.Generate(6)
	require.NoError(t, err)
	fake = map[string]bool{}
	for _, fh := range fakeHashes {
		fake[fh.String()] = true
	}
	proxy := &rpcProxy{target: liar.URL, mangle: func(method string, reply []byte) []byte {
		if method != "getblockcount" {
			return reply
		}
		var env struct {
			Result uint64          `json:"result"`
			Error  json.RawMessage `json:"error"`
			ID     json.RawMessage `json:"id"`
		}
		if json.Unmarshal(reply, &env) != nil {
			return reply
		}
		return []byte(fmt.Sprintf(`{"result":%d,"error":null,"id":%s}`, env.Result+100, env.ID))
	}}
	liarEP = btc.EndpointConfig{Name: "liar", URL: config.SecretValue(startProxy(t, proxy)), User: liar.User(), Password: config.SecretValue(liar.Password())}
	return h, a, fork, fake, liarEP
}

// TestLyingEndpointOutvoted is the attack of a hostile node operator: one
// of three endpoints is a btcd of its own that mined a fabricated branch
// — longer than the honest chain, with valid proof of work at simnet's
// difficulty, its coinbases paying a deposit address — and claims a head
// 100 blocks above everyone's. The two honest endpoints are one node
// behind two names. Nothing of the fabricated branch may be published,
// the honest chain must keep flowing, and an alert must name the liar.
func TestLyingEndpointOutvoted(t *testing.T) {
	h, a, fork, fake, liarEP := liarSetup(t, 51)
	creds := func(name, url string) btc.EndpointConfig {
		return btc.EndpointConfig{Name: name, URL: config.SecretValue(url), User: h.node.User(), Password: config.SecretValue(h.node.Password())}
	}
	src, err := btc.NewSource(btc.Config{Network: "simnet", Clients: 4, RequestTimeout: 5 * time.Second, HealthInterval: 200 * time.Millisecond,
		Endpoints: []btc.EndpointConfig{liarEP, creds("honest-a", h.node.URL), creds("honest-b", h.node.URL+"/")}}, nil, nil)
	require.NoError(t, err)
	defer src.Close()
	alerts := &memAlerter{}
	src.Pool().SetAlerter(alerts)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = src.Pool().Run(ctx) }()
	sink := &outputSink{MemorySink: followtest.NewMemorySink(), addrs: map[string]int{}}
	f := follow.New(follow.Config{Chain: chain.BTC, Network: "simnet", StartHeight: fmt.Sprint(fork - 5), Parallel: 2,
		PollInterval: 50 * time.Millisecond}, src, sink, nil, nil, nil, nil)
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()

	atHonestTip := func() bool {
		tip, err := a.GetBestBlockHash()
		return err == nil && f.Status().Hash == tip.String()
	}
	synced := waitUntil(atHonestTip, 60*time.Second)
	for range 3 { // the honest chain keeps flowing while the liar is there
		require.NoError(t, h.wallet.Step(1))
	}
	flowing := synced && waitUntil(atHonestTip, 60*time.Second)
	cancel()
	<-done

	evs, err := sink.Events(context.Background(), chain.BTC, "simnet")
	require.NoError(t, err)
	for _, ev := range evs {
		require.False(t, fake[ev.Hash], "block %d %s of the fabricated branch was published", ev.Height, ev.Hash)
	}
	deposit, err := btcnode.MiningAddress("simnet", "liar-deposit")
	require.NoError(t, err)
	require.Zero(t, sink.addrs[deposit], "outputs of the fabricated branch paying %s were published", deposit)
	require.True(t, synced, "the honest tip was not published (status %+v)", f.Status())
	require.True(t, flowing, "new honest blocks were not published while the liar was there (status %+v)", f.Status())
	var st chain.StreamState
	for _, ev := range evs {
		st.Apply(ev)
	}
	tip, err := a.GetBlockCount()
	require.NoError(t, err)
	require.Len(t, st.Chain, int(tip-(fork-5)+1))
	for i, hd := range st.Chain {
		want, err := a.GetBlockHash(int64(hd.Height))
		require.NoError(t, err)
		require.Equal(t, want.String(), hd.Hash, "height %d (%d)", hd.Height, i)
	}
	named := false
	for _, al := range alerts.all() {
		if al.Severity == "critical" && al.Details["endpoint"] == "liar" {
			named = true
		}
	}
	require.True(t, named, "no critical alert names the liar: %+v", alerts.all())

	// What the crediting service asks at confirmation depth.
	q, n := src.Quorum()
	require.Equal(t, [2]int{2, 3}, [2]int{q, n})
	reps := src.HashesAt(context.Background(), uint64(fork+1))
	require.Len(t, reps, 3)
	require.Equal(t, "liar", reps[0].Endpoint)
	require.True(t, fake[reps[0].Hash], "the liar reports its own block")
	want, err := a.GetBlockHash(fork + 1)
	require.NoError(t, err)
	for _, r := range reps[1:] {
		require.NoError(t, r.Err)
		require.Equal(t, want.String(), r.Hash, r.Endpoint)
	}
}

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

// TestWeakBlockRefused: an endpoint serves, under a hash of its own, a
// real block whose header claims a far higher difficulty than its parent
// and whose hash does not meet it (a block no one mined). Its merkle root
// is intact, so only the proof-of-work check refuses it, naming the
// endpoint, the height and why.
func TestWeakBlockRefused(t *testing.T) {
	h := newHarness(t, "simnet", 52)
	tip, err := h.node.Client().GetBlockCount()
	require.NoError(t, err)
	hash, err := h.node.Client().GetBlockHash(tip)
	require.NoError(t, err)
	blk, err := h.node.Client().GetBlock(hash)
	require.NoError(t, err)
	blk.Header.Bits = 0x1d00ffff // mainnet's difficulty, on simnet
	var buf bytes.Buffer
	require.NoError(t, blk.Serialize(&buf))
	fakeHash := blk.Header.BlockHash()
	liar := &rpcProxy{target: h.node.URL, mangle: func(method string, reply []byte) []byte {
		switch method {
		case "getblockhash":
			return []byte(fmt.Sprintf(`{"result":%q,"error":null,"id":1}`, fakeHash.String()))
		case "getblock":
			return []byte(fmt.Sprintf(`{"result":"%x","error":null,"id":1}`, buf.Bytes()))
		}
		return reply
	}}
	src, err := btc.NewSource(btc.Config{Network: "simnet", Endpoints: []btc.EndpointConfig{{Name: "liar",
		URL: config.SecretValue(startProxy(t, liar)), User: h.node.User(), Password: config.SecretValue(h.node.Password())}}}, nil, nil)
	require.NoError(t, err)
	defer src.Close()
	_, err = src.BlockAt(context.Background(), uint64(tip))
	require.ErrorIs(t, err, btc.ErrBadWork)
	require.ErrorContains(t, err, "endpoint liar")
	require.ErrorContains(t, err, fmt.Sprintf("block %d", tip))
	require.ErrorContains(t, err, "is above the target")
}

// TestNoQuorumWaits: two endpoints, the honest node and the liar, and a
// quorum of two. Above the fork point they never agree: the chain waits
// there — nothing of either branch above it is published, nothing is
// removed — and an alert names both endpoints with the hash each reports.
func TestNoQuorumWaits(t *testing.T) {
	h, a, fork, fake, liarEP := liarSetup(t, 53)
	src, err := btc.NewSource(btc.Config{Network: "simnet", Clients: 4, RequestTimeout: 5 * time.Second, Quorum: 2,
		Endpoints: []btc.EndpointConfig{liarEP, {Name: "honest", URL: config.SecretValue(h.node.URL), User: h.node.User(),
			Password: config.SecretValue(h.node.Password())}}}, nil, nil)
	require.NoError(t, err)
	defer src.Close()
	alerts := &memAlerter{}
	src.Pool().SetAlerter(alerts)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sink := followtest.NewMemorySink()
	f := follow.New(follow.Config{Chain: chain.BTC, Network: "simnet", StartHeight: fmt.Sprint(fork - 3), Parallel: 2,
		PollInterval: 50 * time.Millisecond}, src, sink, nil, nil, nil, nil)
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	forkHash, err := a.GetBlockHash(fork)
	require.NoError(t, err)
	require.True(t, waitUntil(func() bool { return f.Status().Hash == forkHash.String() }, 60*time.Second),
		"the agreed chain up to the fork point was not published: %+v", f.Status())
	var notAgreed chain.Alert
	require.True(t, waitUntil(func() bool {
		for _, al := range alerts.all() {
			if al.Type == "rpc_not_agreed" && al.Details["height"] == fmt.Sprint(fork+1) {
				notAgreed = al
				return true
			}
		}
		return false
	}, 60*time.Second), "no rpc_not_agreed alert: %+v", alerts.all())
	cancel()
	<-done

	require.Equal(t, "critical", notAgreed.Severity)
	require.Equal(t, fmt.Sprint(fork+1), notAgreed.Details["height"])
	honest, err := a.GetBlockHash(fork + 1)
	require.NoError(t, err)
	require.Equal(t, honest.String(), notAgreed.Details["endpoint.honest"])
	require.True(t, fake[notAgreed.Details["endpoint.liar"]], "the alert names the liar's hash: %+v", notAgreed.Details)
	require.Contains(t, notAgreed.Message, "liar")
	require.Equal(t, forkHash.String(), f.Status().Hash, "the chain moved past a height no quorum agrees on")
	require.Zero(t, f.Status().Removed)
	evs, err := sink.Events(context.Background(), chain.BTC, "simnet")
	require.NoError(t, err)
	for _, ev := range evs {
		require.LessOrEqual(t, ev.Height, uint64(fork))
		require.Equal(t, chain.BlockAdded, ev.Type)
	}
}
