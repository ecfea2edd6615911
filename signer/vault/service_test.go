package vault

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/wire"
	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/ingest/kafka/kafkatest"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/recordauth"
	"github.com/cordonhq/cordon/plugins/sdk"
	"github.com/cordonhq/cordon/signer/intent"
)

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

// svcFixture runs the vault's service on a real Kafka protocol broker.
type svcFixture struct {
	*fixture
	kc   kafka.Config
	prod *kafka.Producer
	// override replaces plugins in the next instance started.
	override map[string]Signer
}

func newSvcFixture(t *testing.T) *svcFixture {
	f := newFixture(t)
	kc := kafka.Config{Brokers: kafkatest.Brokers(t), Auth: kafkatest.Keys(), CreateTopics: true}
	kc.Topics.Fill()
	prod, err := kafka.New(kc, nil, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = prod.Close() })
	require.NoError(t, kafka.Ensure(context.Background(), kc, kc.Topics.SignRequests, kc.Topics.SignerState, kc.Topics.SignResults, kc.Topics.Alerts))
	return &svcFixture{fixture: f, kc: kc, prod: prod}
}

// start runs a service instance (a fresh vault restored from the
// state); stop ends it and returns what Run returned.
func (f *svcFixture) start() (stop func() error) {
	signers := map[string]Signer{}
	for n, p := range f.plugins {
		signers[n] = p
	}
	for n, p := range f.override {
		signers[n] = p
	}
	svc, err := NewService(ServiceConfig{Kafka: f.kc, Clock: fixedClock{f.now}, Retry: 50 * time.Millisecond,
		NewVault: func() (*Vault, error) { return New(f.cfg, signers, f.block, nil) }})
	require.NoError(f.t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	var once sync.Once
	var res error
	stop = func() error {
		once.Do(func() { cancel(); res = <-done })
		return res
	}
	f.t.Cleanup(func() { _ = stop() })
	return stop
}

func (f *svcFixture) send(reqs ...*Request) {
	var kvs []kafka.KeyValue
	for _, r := range reqs {
		b, err := json.Marshal(r)
		require.NoError(f.t, err)
		kvs = append(kvs, kafka.KeyValue{Key: r.ID, Value: b})
	}
	require.NoError(f.t, f.prod.PublishKeyed(context.Background(), f.kc.Topics.SignRequests, TypeRequest, kvs))
}

// read returns every committed record of topic, waiting until until
// holds of them (or 30 s).
func (f *svcFixture) read(topic string, until func([]*kafka.Record) bool) []*kafka.Record {
	f.t.Helper()
	ctx := context.Background()
	parts, err := kafka.Partitions(ctx, f.kc, topic)
	require.NoError(f.t, err)
	at := map[int32]int64{}
	for _, p := range parts[topic] {
		at[p] = -1
	}
	rd, err := kafka.NewReader(f.kc, map[string]map[int32]int64{topic: at})
	require.NoError(f.t, err)
	defer rd.Close()
	var all []*kafka.Record
	deadline := time.Now().Add(30 * time.Second)
	for !until(all) {
		require.True(f.t, time.Now().Before(deadline), "%s: %d records, still waiting", topic, len(all))
		recs, err := rd.Poll(ctx, 200*time.Millisecond)
		require.NoError(f.t, err)
		all = append(all, recs...)
	}
	return all
}

func results(t *testing.T, recs []*kafka.Record) map[string][]Result {
	out := map[string][]Result{}
	for _, r := range recs {
		var res Result
		require.NoError(t, json.Unmarshal(r.Value, &res))
		out[res.ID] = append(out[res.ID], res)
	}
	return out
}

func hasResults(ids ...string) func([]*kafka.Record) bool {
	return func(recs []*kafka.Record) bool {
		got := map[string]bool{}
		for _, r := range recs {
			got[string(r.Key)] = true
		}
		for _, id := range ids {
			if !got[id] {
				return false
			}
		}
		return true
	}
}

// TestServiceSignsAndRefuses: requests on Kafka are signed or refused,
// each with its result on cordon.sign-results; the tampered one raises
// a critical alert and trips the breaker, and a request that was not
// signed by the gate's record key is never read.
func TestServiceSignsAndRefuses(t *testing.T) {
	f := newSvcFixture(t)
	f.start()
	good, b := f.goodBTC("r-good", 30_000_000, btcAddr(t, "customer"))
	f.send(good)
	res := results(t, f.read(f.kc.Topics.SignResults, hasResults("r-good")))
	require.Len(t, res["r-good"], 1)
	require.Equal(t, StatusSigned, res["r-good"][0].Status, res["r-good"][0].Reason)
	require.Equal(t, b.tx.TxHash().String(), res["r-good"][0].TxID)
	tx := wire.NewMsgTx(2)
	require.NoError(t, tx.Deserialize(bytesReader(res["r-good"][0].Raw)))

	// A tampered transaction: refused with its reason, alerted, tripped.
	in := f.intent("btc", "regtest", intent.Native, "30000000", btcAddr(t, "customer"))
	bad := f.btcTx(pay(t, btcAddr(t, "thief"), 30_000_000), wire.NewTxOut(69_998_000, f.btc.PkScript))
	calls := f.calls()
	f.send(f.btcRequest("r-bad", []Withdrawal{f.withdrawal(in)}, bad))
	res = results(t, f.read(f.kc.Topics.SignResults, hasResults("r-good", "r-bad")))
	require.Equal(t, StatusRefused, res["r-bad"][0].Status)
	require.Equal(t, "destination", res["r-bad"][0].Code)
	require.Equal(t, calls, f.calls(), "no plugin was asked")
	alerts := f.read(f.kc.Topics.Alerts, func(rs []*kafka.Record) bool { return len(rs) >= 2 })
	var types []string
	for _, r := range alerts {
		var a chain.Alert
		require.NoError(t, json.Unmarshal(r.Value, &a))
		types = append(types, a.Type+"/"+a.Severity)
	}
	require.ElementsMatch(t, []string{"signer_refused/critical", "signer_breaker_tripped/critical"}, types)

	// A forged record (signed with a gate key the signer does not trust)
	// is not read: no result, no decision, and the valid request after
	// it is still served.
	forged, _ := f.goodBTC("r-forged", 10_000_000, btcAddr(t, "customer"))
	priv, _, err := recordauth.GenerateKey()
	require.NoError(t, err)
	rogue, err := recordauth.NewSigner(recordauth.Gate, priv)
	require.NoError(t, err)
	kr := recordauth.NewKeyring()
	kr.AddSigner(rogue)
	p2, err := kafka.New(kafka.Config{Brokers: f.kc.Brokers, Topics: f.kc.Topics, Auth: kr}, nil, nil)
	require.NoError(t, err)
	defer p2.Close()
	bb, _ := json.Marshal(forged)
	require.NoError(t, p2.PublishKeyed(context.Background(), f.kc.Topics.SignRequests, TypeRequest, []kafka.KeyValue{{Key: forged.ID, Value: bb}}))
	next, _ := f.goodBTC("r-next", 1_000_000, btcAddr(t, "other"))
	f.send(next)
	res = results(t, f.read(f.kc.Topics.SignResults, hasResults("r-good", "r-bad", "r-next")))
	require.NotContains(t, res, "r-forged")
	require.Equal(t, CodeBreaker, res["r-next"][0].Code, "the breaker holds the chain since r-bad")
}

// crashingPlugin signs, then kills the service before it can record the
// signature: the crash between "signing recorded" and "signed".
type crashingPlugin struct {
	Signer
	mu     *sync.Mutex
	crash  *func()
	signed *int
}

func (c *crashingPlugin) Sign(ctx context.Context, req sdk.SignRequest) (sdk.Signature, error) {
	sig, err := c.Signer.Sign(ctx, req)
	c.mu.Lock()
	defer c.mu.Unlock()
	*c.signed++
	if *c.crash != nil {
		(*c.crash)()
		*c.crash = nil
		return sig, errors.New("crashed")
	}
	return sig, err
}

// TestServiceRestartSignsTheSameTransactionOnce: killed after recording
// "signing" and after a plugin signed, the signer, restarted, signs the
// recorded transaction — the same txid — and publishes one result; the
// request delivered again changes nothing.
func TestServiceRestartSignsTheSameTransactionOnce(t *testing.T) {
	f := newSvcFixture(t)
	var stop func() error
	// Whichever plugin signs first (the script's key order decides)
	// brings the signer down.
	var mu sync.Mutex
	crash := func() { go func() { _ = stop() }() }
	signed := 0
	f.override = map[string]Signer{}
	for _, n := range []string{"p1", "p2", "p3"} {
		f.override[n] = &crashingPlugin{Signer: f.plugins[n], mu: &mu, crash: &crash, signed: &signed}
	}
	stop = f.start()
	req, b := f.goodBTC("r-crash", 30_000_000, btcAddr(t, "customer"))
	f.send(req)
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return signed > 0 }, 30*time.Second, 10*time.Millisecond)
	require.ErrorIs(t, stop(), context.Canceled)
	// Nothing was published for it, and the state says signing.
	st := f.read(f.kc.Topics.SignerState, func(rs []*kafka.Record) bool {
		for _, r := range rs {
			if string(r.Key) == entryPrefix+"r-crash" {
				return true
			}
		}
		return false
	})
	var last Entry
	for _, r := range st {
		if string(r.Key) == entryPrefix+"r-crash" {
			require.NoError(t, json.Unmarshal(r.Value, &last))
		}
	}
	require.Equal(t, StatusSigning, last.Status, "recorded as signing before any plugin was asked")

	f.override = nil
	f.start()
	res := results(t, f.read(f.kc.Topics.SignResults, hasResults("r-crash")))
	require.Len(t, res["r-crash"], 1)
	require.Equal(t, StatusSigned, res["r-crash"][0].Status, res["r-crash"][0].Reason)
	require.Equal(t, b.tx.TxHash().String(), res["r-crash"][0].TxID, "the same transaction")
	// Delivered again (the builder retries): no second result.
	f.send(req)
	time.Sleep(time.Second)
	res = results(t, f.read(f.kc.Topics.SignResults, hasResults("r-crash")))
	require.Len(t, res["r-crash"], 1)
}
