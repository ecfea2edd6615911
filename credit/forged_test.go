package credit_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/credit"
	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/ingest/kafka/kafkatest"
	"github.com/cordonhq/cordon/integration/pipetest"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/recordauth"
	"github.com/cordonhq/cordon/internal/testkit"
	"github.com/cordonhq/cordon/registry"
)

// refusalLog collects the records the readers refused.
type refusalLog struct {
	mu   sync.Mutex
	seen []kafka.Refusal
}

func (l *refusalLog) add(r kafka.Refusal) {
	l.mu.Lock()
	l.seen = append(l.seen, r)
	l.mu.Unlock()
}

// on counts the refusals of topic.
func (l *refusalLog) on(topic string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.seen {
		if r.Topic == topic {
			n++
		}
	}
	return n
}

// TestForgedRecordsChangeNothing is the attack of someone who can write to
// cordon's topics but holds no role's key (a watcher's credentials, a
// compromised client): a release decision, a deposit event and a
// crediting state record written with kcat, a decision signed with a key
// no one trusts, and a properly signed decision naming an operator who is
// not configured. None releases or credits the held deposit, each is
// refused and reported, and the operator's real release still works.
func TestForgedRecordsChangeNothing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	brokers := kafkatest.Brokers(t)
	refused := &refusalLog{}
	kc := kafka.Config{Auth: kafkatest.Keys(), Refused: refused.add, Brokers: brokers, Topics: kafka.DefaultTopics(), CreateTopics: true, Partitions: 1}
	prod, err := kafka.New(kc, nil, nil)
	require.NoError(t, err)
	defer prod.Close()
	require.NoError(t, prod.EnsureTopics(ctx))

	const dep, thief = "0x00000000000000000000000000000000000000d1", "0x00000000000000000000000000000000000000ee"
	reg := registry.NewIndex()
	reg.Put(&registry.Entry{Chain: chain.ETH, Network: "t", Address: dep, Account: "u1", Asset: "*", Kind: registry.KindDeposit})
	screen := func(_ chain.Chain, _ string, a string) []credit.Hit {
		if a == thief {
			return []credit.Hit{{Address: a, Indicator: "indicator--x", Category: "hack", Source: "partner", Confidence: 90}}
		}
		return nil
	}
	var updates []chain.Update
	for h := range 8 {
		b := &chain.Block{Header: chain.Header{Chain: chain.ETH, Network: "t", Height: uint64(h), Hash: fmt.Sprintf("0xb%d", h), Time: int64(h)}}
		if h > 0 {
			b.ParentHash = fmt.Sprintf("0xb%d", h-1)
		}
		if h == 1 {
			b.Transfers = []chain.Transfer{{V: 1, Chain: chain.ETH, Network: "t", Asset: chain.AssetNative, Standard: chain.StandardNative,
				TxHash: "0x" + fmt.Sprintf("%064x", 1), From: thief, To: dep, Amount: chain.AmountFromUint64(500), BlockHash: b.Hash, BlockHeight: 1}}
		}
		updates = append(updates, pipetest.Added(uint64(h+1), b))
	}
	require.NoError(t, prod.Publish(ctx, updates))
	id := credit.DepositID(chain.ETH, "t", "0x"+fmt.Sprintf("%064x", 1), chain.AssetNative)

	var mu sync.Mutex
	var events []credit.DepositEvent
	newService := func() *credit.Service {
		svc, err := credit.NewService(credit.ServiceConfig{Kafka: kc, Policy: policy, Registry: reg, Tokens: credit.Tokens{}, Screen: screen,
			Operators: []string{"ann"}, Committed: func(evs []credit.DepositEvent) {
				mu.Lock()
				events = append(events, evs...)
				mu.Unlock()
			}})
		require.NoError(t, err)
		return svc
	}
	statuses := func() []string {
		mu.Lock()
		defer mu.Unlock()
		var s []string
		for _, ev := range events {
			if ev.ID == id {
				s = append(s, ev.Status)
			}
		}
		return s
	}
	svc := newService()
	stop := runService(ctx, svc)
	require.Eventually(t, func() bool { return len(statuses()) > 0 }, time.Minute, 50*time.Millisecond)
	require.Equal(t, []string{credit.StatusHeld}, statuses())

	// The forgeries, each naming the held deposit's true content (so that
	// only the signature, or the operator, stops them).
	mu.Lock()
	content := events[0].Content
	mu.Unlock()
	release := func(op, decision string) string {
		v, _ := json.Marshal(credit.Decision{V: 1, ID: decision, Deposit: id, Action: credit.ActionRelease, Operator: op, Reason: "looks fine",
			Time: time.Now().UTC().Format(time.RFC3339), Content: content})
		return string(v)
	}
	testkit.Kcat(t, brokers, kc.Topics.Decisions, id, release("ann", "forged-1"), false, "cordon-type=decision")
	stranger := kc
	stranger.Auth = recordauth.Generate(recordauth.API) // a key no one trusts
	sp, err := kafka.New(stranger, nil, nil)
	require.NoError(t, err)
	defer sp.Close()
	require.NoError(t, credit.PublishDecision(ctx, sp, credit.Decision{V: 1, ID: "forged-2", Deposit: id, Action: credit.ActionRelease,
		Operator: "ann", Reason: "looks fine", Time: time.Now().UTC().Format(time.RFC3339), Content: content}))
	require.NoError(t, credit.PublishDecision(ctx, prod, credit.Decision{V: 1, ID: "forged-3", Deposit: id, Action: credit.ActionRelease,
		Operator: "mallory", Reason: "looks fine", Time: time.Now().UTC().Format(time.RFC3339), Content: content}))
	credited := credit.DepositEvent{V: 1, ID: id, Status: credit.StatusCredited, Chain: chain.ETH, Network: "t", TxHash: "0x" + fmt.Sprintf("%064x", 1),
		Index: chain.AssetNative, Address: dep, Account: "u1", Asset: chain.AssetNative, Amount: "500", BlockHash: "0xb1", BlockNumber: 1,
		Confirmations: 7, Required: 3, Credits: 1}
	cv, _ := json.Marshal(&credited)
	testkit.Kcat(t, brokers, kc.Topics.Deposits, id, string(cv), false, "cordon-type=deposit")
	testkit.Kcat(t, brokers, kc.Topics.CreditState, id, string(cv), false, "cordon-type=deposit")

	// Mallory's decision is signed by the API but names no configured
	// operator: refused with an alert.
	require.Eventually(t, func() bool {
		found := false
		require.NoError(t, kafka.ReadLog(ctx, kc, kc.Topics.Alerts, kafka.LogOptions{ClientID: "test"}, func(r *kafka.Record) error {
			var a chain.Alert
			if json.Unmarshal(r.Value, &a) == nil && a.Type == "deposit_decision_refused" && a.Details["decision"] == "forged-3" {
				found = true
			}
			return nil
		}))
		return found
	}, time.Minute, 100*time.Millisecond)

	// Mallory's decision came after the others: they were all read.
	require.Equal(t, []string{credit.StatusHeld}, statuses(), "a forged decision released the deposit")
	require.Equal(t, 2, refused.on(kc.Topics.Decisions), "the unsigned and the stranger's decisions are refused")

	// The ledger's view of the deposits topic does not see the forged
	// credit.
	latest, err := credit.Latest(ctx, kc)
	require.NoError(t, err)
	require.Equal(t, credit.StatusHeld, latest[id].Status, "the ledger sees a forged credit")
	require.GreaterOrEqual(t, refused.on(kc.Topics.Deposits), 1)

	// A restart restores from the state topic: the forged state record is
	// refused, the deposit is still held.
	require.NoError(t, stop())
	svc = newService()
	stop = runService(ctx, svc)
	defer func() { require.NoError(t, stop()) }()
	require.Eventually(t, func() bool { return len(svc.Counts()) > 0 }, time.Minute, 50*time.Millisecond)
	require.Equal(t, map[string]int{credit.StatusHeld: 1}, svc.Counts(), "a forged state record was restored")
	require.GreaterOrEqual(t, refused.on(kc.Topics.CreditState), 1)
	require.Equal(t, []string{credit.StatusHeld}, statuses(), "nothing forged changed the deposit")

	// The operator's own release goes through.
	require.NoError(t, credit.PublishDecision(ctx, prod, credit.Decision{V: 1, ID: "real-1", Deposit: id, Action: credit.ActionRelease,
		Operator: "ann", Reason: "partner withdrew the report", Time: time.Now().UTC().Format(time.RFC3339), Content: content}))
	require.Eventually(t, func() bool { return len(statuses()) == 3 }, time.Minute, 50*time.Millisecond)
	require.Equal(t, []string{credit.StatusHeld, credit.StatusReleased, credit.StatusCredited}, statuses())
	mu.Lock()
	last := events[len(events)-1]
	mu.Unlock()
	require.Equal(t, "real-1", last.Decision.ID)
}

// downNodes are a chain's endpoints that never answer.
type downNodes struct{}

func (downNodes) HashesAt(context.Context, chain.Chain, string, uint64) ([]credit.NodeReport, int, error) {
	return nil, 0, fmt.Errorf("connection refused")
}
func (downNodes) BlockAt(context.Context, chain.Chain, string, uint64) (*chain.Block, error) {
	return nil, fmt.Errorf("connection refused")
}
func (downNodes) Tip(context.Context, chain.Chain, string) (uint64, uint64, error) {
	return 0, 0, fmt.Errorf("connection refused")
}

// TestUnconfirmedDepositAlerts: while the chain's endpoints cannot be
// asked, a deposit deep enough on the block stream is never credited; it
// waits, and once it has waited too long a deposit_unconfirmed alert
// says so.
func TestUnconfirmedDepositAlerts(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	kc, prod, reg := oneDepositAddress(t, ctx)
	var updates []chain.Update
	for h := range 12 {
		b := &chain.Block{Header: chain.Header{Chain: chain.ETH, Network: "t", Height: uint64(h), Hash: fmt.Sprintf("0xb%d", h), Time: int64(h)}}
		if h == 1 {
			b.Transfers = []chain.Transfer{{V: 1, Chain: chain.ETH, Network: "t", Asset: chain.AssetNative, Standard: chain.StandardNative,
				TxHash: fmt.Sprintf("0x%064x", 1), From: "0x01", To: dep, Amount: chain.AmountFromUint64(500), BlockHash: b.Hash, BlockHeight: 1}}
		}
		updates = append(updates, pipetest.Added(uint64(h+1), b))
	}
	var mu sync.Mutex
	var statuses []string
	svc, err := credit.NewService(credit.ServiceConfig{Kafka: kc, Policy: policy, Registry: reg, Tokens: credit.Tokens{}, Nodes: downNodes{},
		UnconfirmedAlert: 300 * time.Millisecond, Committed: func(evs []credit.DepositEvent) {
			mu.Lock()
			for _, ev := range evs {
				statuses = append(statuses, ev.Status)
			}
			mu.Unlock()
		}})
	require.NoError(t, err)
	stop := runService(ctx, svc)
	defer func() { require.NoError(t, stop()) }()
	// Blocks arrive one by one, as on a live chain: the deposit is asked
	// about with each.
	for _, u := range updates {
		require.NoError(t, prod.Publish(ctx, []chain.Update{u}))
		time.Sleep(100 * time.Millisecond)
	}
	require.Eventually(t, func() bool {
		found := false
		require.NoError(t, kafka.ReadLog(ctx, kc, kc.Topics.Alerts, kafka.LogOptions{ClientID: "test"}, func(r *kafka.Record) error {
			var a chain.Alert
			if json.Unmarshal(r.Value, &a) == nil && a.Type == "deposit_unconfirmed" && a.Details["account"] == "u1" {
				found = true
			}
			return nil
		}))
		return found
	}, time.Minute, 100*time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []string{credit.StatusPending}, statuses, "never credited while the nodes cannot confirm it")
}

// TestOutOfOrderBlockSkipped: a block record that does not follow the
// stream's tip — here an old real block written again under a new
// sequence number, which would credit its deposit anew once forgotten —
// is skipped with a block_out_of_order alert, and the stream goes on.
func TestOutOfOrderBlockSkipped(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	kc, prod, reg := oneDepositAddress(t, ctx)
	blk := func(h int, pay bool) *chain.Block {
		b := &chain.Block{Header: chain.Header{Chain: chain.ETH, Network: "t", Height: uint64(h), Hash: fmt.Sprintf("0xb%d", h), Time: int64(h)}}
		if pay {
			b.Transfers = []chain.Transfer{{V: 1, Chain: chain.ETH, Network: "t", Asset: chain.AssetNative, Standard: chain.StandardNative,
				TxHash: fmt.Sprintf("0x%064x", h), From: "0x01", To: dep, Amount: chain.AmountFromUint64(500), BlockHash: b.Hash, BlockHeight: uint64(h)}}
		}
		return b
	}
	var ups []chain.Update
	for h := range 6 {
		ups = append(ups, pipetest.Added(uint64(h+1), blk(h, h == 1)))
	}
	ups = append(ups, pipetest.Added(7, blk(1, true)), pipetest.Added(8, blk(6, true)))
	require.NoError(t, prod.Publish(ctx, ups))
	var mu sync.Mutex
	byID := map[string][]string{}
	svc, err := credit.NewService(credit.ServiceConfig{Kafka: kc, Policy: policy, Registry: reg, Tokens: credit.Tokens{},
		Committed: func(evs []credit.DepositEvent) {
			mu.Lock()
			for _, ev := range evs {
				byID[ev.TxHash] = append(byID[ev.TxHash], ev.Status)
			}
			mu.Unlock()
		}})
	require.NoError(t, err)
	stop := runService(ctx, svc)
	defer func() { require.NoError(t, stop()) }()
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(byID[fmt.Sprintf("0x%064x", 6)]) > 0
	}, time.Minute, 50*time.Millisecond, "the stream goes on after the skipped record")
	mu.Lock()
	require.Equal(t, []string{credit.StatusPending, credit.StatusCredited}, byID[fmt.Sprintf("0x%064x", 1)], "block 1's deposit once, not again")
	mu.Unlock()
	found := false
	require.NoError(t, kafka.ReadLog(ctx, kc, kc.Topics.Alerts, kafka.LogOptions{ClientID: "test"}, func(r *kafka.Record) error {
		var a chain.Alert
		if json.Unmarshal(r.Value, &a) == nil && a.Type == "block_out_of_order" && a.Details["seq"] == "7" {
			found = true
		}
		return nil
	}))
	require.True(t, found, "a block_out_of_order alert")
}

// dep is the deposit address of oneDepositAddress.
const dep = "0x00000000000000000000000000000000000000d1"

// oneDepositAddress starts a broker and a producer holding every role's
// key, and a registry with one deposit address (dep, account u1).
func oneDepositAddress(t *testing.T, ctx context.Context) (kafka.Config, *kafka.Producer, *registry.Index) {
	kc := kafka.Config{Auth: kafkatest.Keys(), Brokers: kafkatest.Brokers(t), Topics: kafka.DefaultTopics(), CreateTopics: true, Partitions: 1}
	prod, err := kafka.New(kc, nil, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = prod.Close() })
	require.NoError(t, prod.EnsureTopics(ctx))
	reg := registry.NewIndex()
	reg.Put(&registry.Entry{Chain: chain.ETH, Network: "t", Address: dep, Account: "u1", Asset: "*", Kind: registry.KindDeposit})
	return kc, prod, reg
}
