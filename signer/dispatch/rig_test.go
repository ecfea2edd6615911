package dispatch

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/ingest/kafka/kafkatest"
	"github.com/cordonhq/cordon/integration/pipetest"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/plugins/devkey/keys"
	"github.com/cordonhq/cordon/signer/gate"
	"github.com/cordonhq/cordon/signer/intent"
	"github.com/cordonhq/cordon/signer/policy"
	"github.com/cordonhq/cordon/signer/risk"
	"github.com/cordonhq/cordon/signer/vault"
	"github.com/cordonhq/cordon/signer/wallet"
	"github.com/cordonhq/cordon/watchers/eth"
	"github.com/cordonhq/cordon/watchers/eth/devnet"
)

// rig is the signing stage on one Kafka broker: a gate core (the real
// state machine, its records written by testGate), the signer's service
// with dev-key plugins in process, and dispatchers started and stopped
// at will. The block stream comes from a watcher of the test's node.
type rig struct {
	t         testing.TB
	kc        kafka.Config
	prod      *kafka.Producer
	gate      *testGate
	approvers []intent.Approver
	keys      map[string]ed25519.PrivateKey
	plugins   map[string]*keys.Signer
	cfg       Config
	vcfg      vault.Config
	signed    sync.Map // request id → times the signer recorded it signed
	// signerMayStop: the test stops signers itself.
	signerMayStop bool
}

// testGate is gate.Core behind the dispatcher's Gate interface: each
// operation's outgoing records are published before it returns, its
// alerts and every status a withdrawal took are kept.
type testGate struct {
	mu      sync.Mutex
	core    *gate.Core
	prod    *kafka.Producer
	alerts  []chain.Alert
	history map[string][]string
	// sent are the outgoing records (with no producer: unit tests).
	sent []gate.Outgoing
}

func (g *testGate) take(ctx context.Context) error {
	ch := g.core.Take()
	g.alerts = append(g.alerts, ch.Alerts...)
	for _, w := range ch.Withdrawals {
		g.history[w.Intent.ID] = append(g.history[w.Intent.ID], w.Status)
	}
	for _, o := range ch.Outgoing {
		g.sent = append(g.sent, o)
		if g.prod == nil {
			continue
		}
		// The gate commits the request with the status in one
		// transaction: the caller's giving up does not undo it.
		if err := g.prod.PublishKeyed(context.WithoutCancel(ctx), o.Topic, o.Type, []kafka.KeyValue{{Key: o.Key, Value: o.Value}}); err != nil {
			return err
		}
	}
	return nil
}

func (g *testGate) InSigning(context.Context) ([]gate.Withdrawal, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.core.InSigning(), nil
}

func (g *testGate) Dispatch(ctx context.Context, ids []string, tx gate.Tx, out gate.Outgoing) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.core.Dispatch(ids, tx, out, time.Now()); err != nil {
		return err
	}
	return g.take(ctx)
}

func (g *testGate) Advance(ctx context.Context, ids []string, request, status, reason string, update func(*gate.Tx)) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.core.Advance(ids, request, status, reason, update, time.Now()); err != nil {
		return err
	}
	return g.take(ctx)
}

func (g *testGate) Trip(ctx context.Context, t gate.Trip) (gate.Trip, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	got, err := g.core.Trip(t, time.Now())
	if err != nil {
		return gate.Trip{}, err
	}
	return got, g.take(ctx)
}

func (g *testGate) get(id string) gate.Withdrawal {
	g.mu.Lock()
	defer g.mu.Unlock()
	w, _ := g.core.Get(id)
	return w
}

func (g *testGate) alertTypes() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []string
	for _, a := range g.alerts {
		out = append(out, a.Type)
	}
	return out
}

// newRig makes the approvers and the dev-key plugins p1..p3, each with
// keys "hot" and "eth".
func newRig(t testing.TB) *rig {
	r := &rig{t: t, keys: map[string]ed25519.PrivateKey{}, plugins: map[string]*keys.Signer{}}
	for _, a := range []struct{ name, group string }{{"alice", "security"}, {"bob", "security"}, {"carol", "security"}, {"dave", "finance"}, {"erin", "finance"}} {
		seed := make([]byte, ed25519.SeedSize)
		copy(seed, "dispatch-test/"+a.name)
		k := ed25519.NewKeyFromSeed(seed)
		r.keys[a.name] = k
		r.approvers = append(r.approvers, intent.Approver{Name: a.name, Groups: []string{a.group}, Key: base64.StdEncoding.EncodeToString(k.Public().(ed25519.PublicKey))})
	}
	dir := t.TempDir()
	for _, name := range []string{"p1", "p2", "p3"} {
		path := filepath.Join(dir, name+".json")
		require.NoError(t, keys.Generate(path, []string{"hot", "eth"}))
		s, err := keys.Load(path)
		require.NoError(t, err)
		r.plugins[name] = s
	}
	return r
}

// connect puts the rig on the brokers.
func (r *rig) connect(brokers []string) {
	kc := kafka.Config{Brokers: brokers, Auth: kafkatest.Keys(), CreateTopics: true}
	kc.Topics.Fill()
	prod, err := kafka.New(kc, nil, nil)
	require.NoError(r.t, err)
	r.t.Cleanup(func() { _ = prod.Close() })
	require.NoError(r.t, kafka.Ensure(context.Background(), kc, kc.Topics.SignRequests, kc.Topics.SignerState, kc.Topics.SignResults,
		kc.Topics.Alerts))
	r.kc, r.prod = kc, prod
}

// key is the reference to plugin's key id.
func (r *rig) key(plugin, id string) wallet.KeyRef {
	pk, err := r.plugins[plugin].PublicKey(context.Background(), id)
	require.NoError(r.t, err)
	return wallet.KeyRef{Plugin: plugin, KeyID: id, PublicKey: hex.EncodeToString(pk)}
}

// startGate makes the gate core (default policy, ETH at $2,000, BTC at
// $50,000, no findings) over the networks.
func (r *rig) startGate(networks ...string) {
	approvers, err := intent.NewApprovers("gate.approvers", r.approvers)
	require.NoError(r.t, err)
	pol, err := policy.Default(approvers)
	require.NoError(r.t, err)
	prices, err := policy.NewPrices(policy.PricesConfig{Assets: []policy.AssetPrice{
		{Chain: "eth", Asset: "native", Decimals: 18, USD: "2000", Static: true},
		{Chain: "btc", Asset: "native", Decimals: 8, USD: "50000", Static: true}}}, time.Now())
	require.NoError(r.t, err)
	rk, err := risk.New(risk.Defaults(), risk.Deps{
		Screener: risk.ScreenerFunc(func(chain.Chain, string, string) []chain.Hit { return nil }),
		Registry: risk.RegistryFunc(func(chain.Chain, string, string) (string, string, bool) { return "", "", false })})
	require.NoError(r.t, err)
	var p config.Problems
	c := gate.NewCore()
	c.Approvers, c.Policy, c.Prices, c.Risk = approvers, pol, prices, rk
	c.Assets = gate.NewAssetList(&p, "gate.assets", networks, nil)
	c.Breaker = gate.BreakerConfig{ResetQuorum: 2, ResetGroups: []string{"security"}}
	require.NoError(r.t, p.Err())
	r.gate = &testGate{core: c, prod: r.prod, history: map[string][]string{}}
}

// withdraw requests a withdrawal and has alice and bob approve it.
func (r *rig) withdraw(id, chainName, network, amount, dst string) string {
	r.t.Helper()
	g := r.gate
	g.mu.Lock()
	defer g.mu.Unlock()
	now := time.Now()
	w, _, err := g.core.Request(context.Background(), &gate.Request{ID: id, Account: "acct-" + id, Chain: chainName, Network: network,
		Asset: intent.Native, Amount: amount, Destination: dst}, "body-"+id, "exchange", now)
	require.NoError(r.t, err)
	for _, who := range []string{"alice", "bob"} {
		a := intent.Approval{Withdrawal: w.Intent.ID, Intent: w.Hash, Approver: who, Decision: intent.Approve, Signed: now}
		a.Sign(r.keys[who])
		_, err := g.core.Approve(w.Intent.ID, a, now)
		require.NoError(r.t, err)
	}
	require.NoError(r.t, g.take(context.Background()))
	got, _ := g.core.Get(w.Intent.ID)
	require.Contains(r.t, []string{gate.StatusApproved, gate.StatusPaused}, got.Status, got.Reason)
	return w.Intent.ID
}

// startSigner runs the signer's service with the rig's plugins.
func (r *rig) startSigner(limits []vault.Limit) (stop func()) {
	signers := map[string]vault.Signer{}
	for n, p := range r.plugins {
		signers[n] = p
	}
	return r.startSignerWith(limits, signers)
}

// startSignerWith runs the signer's service with signers; stop ends it.
func (r *rig) startSignerWith(limits []vault.Limit, signers map[string]vault.Signer) (stop func()) {
	r.vcfg = vault.Config{Approvers: r.approvers, Wallets: r.cfg.Wallets, Limits: limits}
	svc, err := vault.NewService(vault.ServiceConfig{Kafka: r.kc, Retry: 100 * time.Millisecond, Log: testLog(r.t),
		NewVault: func() (*vault.Vault, error) { return vault.New(r.vcfg, signers, noHits{}, nil) },
		Committed: func(es []vault.Entry) {
			for _, e := range es {
				if e.Status == vault.StatusSigned {
					n, _ := r.signed.LoadOrStore(e.Request.ID, new(atomic.Int32))
					n.(*atomic.Int32).Add(1)
				}
			}
		}})
	require.NoError(r.t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		err := svc.Run(ctx)
		if ctx.Err() == nil && !r.signerMayStop {
			r.t.Errorf("the signer stopped: %v", err)
		}
		done <- err
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	r.t.Cleanup(stop)
	return stop
}

// startDispatcher runs a dispatcher; stop ends it.
func (r *rig) startDispatcher(o Options) (stop func()) {
	stop, _ = r.startDispatcherD(o)
	return stop
}

// startDispatcherD is startDispatcher returning the dispatcher too.
func (r *rig) startDispatcherD(o Options) (stop func(), d *Dispatcher) {
	r.t.Helper()
	o.Config, o.Gate, o.SignRequests, o.Log = r.cfg, r.gate, r.kc.Topics.SignRequests, testLog(r.t)
	var p config.Problems
	o.Config.Validate(&p, "dispatch")
	require.NoError(r.t, p.Err())
	d, err := New(o)
	require.NoError(r.t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- RunKafka(ctx, r.kc, d) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			require.NoError(r.t, <-done)
		})
	}
	r.t.Cleanup(stop)
	return stop, d
}

// waitStatus waits for withdrawal id to reach status, while tick runs
// (mining blocks).
func (r *rig) waitStatus(id, status string, within time.Duration, tick func()) gate.Withdrawal {
	r.t.Helper()
	deadline := time.Now().Add(within)
	for {
		w := r.gate.get(id)
		if w.Status == status {
			return w
		}
		if w.Status == gate.StatusFailed {
			r.t.Fatalf("withdrawal %s failed: %s", id, w.Reason)
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("withdrawal %s is %s (%s), not %s, after %s; history %v", id, w.Status, w.Reason, status, within, r.gate.history[id])
		}
		if tick != nil {
			tick()
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// requests are the signing requests written, by request id.
func (r *rig) requests() map[string]vault.Request {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := map[string]vault.Request{}
	require.NoError(r.t, kafka.ReadLog(ctx, r.kc, r.kc.Topics.SignRequests, kafka.LogOptions{ClientID: "test"}, func(rec *kafka.Record) error {
		var q vault.Request
		require.NoError(r.t, json.Unmarshal(rec.Value, &q))
		_, dup := out[q.ID]
		require.False(r.t, dup, "request %s written twice", q.ID)
		out[q.ID] = q
		return nil
	}))
	return out
}

// signedOnce checks that every request was signed at most once and that
// no withdrawal is in two requests.
func (r *rig) signedOnce() map[string]vault.Request {
	reqs := r.requests()
	seen := map[string]string{}
	for id, q := range reqs {
		for _, w := range q.IDs() {
			require.Empty(r.t, seen[w], "withdrawal %s in requests %s and %s", w, seen[w], id)
			seen[w] = id
		}
	}
	r.signed.Range(func(k, v any) bool {
		require.Equal(r.t, int32(1), v.(*atomic.Int32).Load(), "request %s signed %d times", k, v.(*atomic.Int32).Load())
		return true
	})
	return reqs
}

// testLog logs into the test's output with -v (CORDON_TEST_LOG=1 for
// every line at debug level).
func testLog(t testing.TB) *slog.Logger {
	level := slog.LevelInfo
	if os.Getenv("CORDON_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: level}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// noHits is a blocklist with nothing on it.
type noHits struct{}

func (noHits) Hits(chain.Chain, string, string) []chain.Hit { return nil }

// devnetStream starts a devnet (seeded by seed) and a broker with the
// devnet's watcher publishing its block stream from genesis.
func devnetStream(tb testing.TB, seed string) (*devnet.Devnet, []string) {
	tb.Helper()
	dev, err := devnet.Start(devnet.Config{Seed: seed})
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = dev.Close() })
	src, err := eth.NewSource(context.Background(), eth.Config{Network: "devnet", ChainID: devnet.ChainID,
		Endpoints: []eth.EndpointConfig{{Name: "devnet", URL: config.SecretValue(dev.HTTPURL())}}}, nil, nil)
	require.NoError(tb, err)
	tb.Cleanup(src.Close)
	brokers, _, _ := pipetest.Stream(tb, context.Background(), chain.ETH, "devnet", src, 0)
	return dev, brokers
}
