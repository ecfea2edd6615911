package credit_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/credit"
	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/ingest/kafka/kafkatest"
	"github.com/cordonhq/cordon/integration/pipetest"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/registry"
)

func policy(chain.Chain, string) credit.Policy {
	return credit.Policy{Confirmations: 3, Tiers: []credit.Tier{{Min: big.NewInt(1000), Confirmations: 5}}, Dust: big.NewInt(10)}
}

// chainGen builds an Ethereum history with reorgs as the watcher publishes
// it: updates (events with their blocks) and the final canonical chain.
type chainGen struct {
	rng    *rand.Rand
	canon  []*chain.Block
	seq    uint64
	txn    int
	pool   []chain.Transfer
	addrs  []string
	update []chain.Update
}

func (g *chainGen) add() {
	h := uint64(len(g.canon))
	parent := ""
	if h > 0 {
		parent = g.canon[h-1].Hash
	}
	b := &chain.Block{Header: chain.Header{Chain: chain.ETH, Network: "t", Height: h, Hash: fmt.Sprintf("0xb%d-%d", h, g.rng.Uint32()), ParentHash: parent, Time: int64(h)}}
	for _, t := range g.pool { // abandoned transactions mined again
		if g.rng.IntN(3) > 0 {
			t.BlockHash, t.BlockHeight = b.Hash, h
			b.Transfers = append(b.Transfers, t)
		}
	}
	g.pool = nil
	for range g.rng.IntN(4) {
		g.txn++
		b.Transfers = append(b.Transfers, chain.Transfer{V: 1, Chain: chain.ETH, Network: "t", Asset: chain.AssetNative, Standard: chain.StandardNative,
			TxHash: fmt.Sprintf("0x%064x", g.txn), From: g.sender(), To: g.addrs[g.rng.IntN(len(g.addrs))],
			Amount: chain.AmountFromUint64([]uint64{5, 50, 500, 2000}[g.rng.IntN(4)]), BlockHash: b.Hash, BlockHeight: h})
	}
	g.canon = append(g.canon, b)
	g.seq++
	g.update = append(g.update, pipetest.Added(g.seq, b))
}

// sender is mostly a clean address, one time in twelve a flagged one.
func (g *chainGen) sender() string {
	if g.rng.IntN(12) == 0 {
		return "0x00000000000000000000000000000000000000ee"
	}
	return "0x00000000000000000000000000000000000000ff"
}

func (g *chainGen) reorg(depth int) {
	for range depth {
		b := g.canon[len(g.canon)-1]
		g.canon = g.canon[:len(g.canon)-1]
		g.pool = append(g.pool, b.Transfers...)
		g.seq++
		g.update = append(g.update, chain.Update{Event: chain.BlockEvent{V: 1, Type: chain.BlockRemoved, Seq: g.seq, Header: b.Header}})
	}
}

// soakParams are the size of TestServiceExactlyOnce: CORDON_SOAK_RESTARTS
// and CORDON_SOAK_UPDATES make it the long soak of `make soak`.
func soakParams(t testing.TB) (restarts, updates int) {
	restarts, updates = 40, 300
	if v, err := strconv.Atoi(os.Getenv("CORDON_SOAK_RESTARTS")); err == nil && v > 0 {
		restarts = v
	}
	if v, err := strconv.Atoi(os.Getenv("CORDON_SOAK_UPDATES")); err == nil && v > 0 {
		updates = v
	}
	t.Logf("soak: %d restarts over %d block events", restarts, updates)
	return restarts, updates
}

// TestServiceExactlyOnce runs the crediting service on a stream with
// reorgs (some deeper than the policy) and deposits from a flagged sender,
// while it is killed and restarted at random points — often within
// milliseconds of starting, mid-restore or mid-round — on a real
// Kafka-protocol broker: the committed deposit events credit exactly what
// a fresh engine credits over the final canonical chain, no deposit is
// credited twice without a revert between, and every reverted event
// follows a credit of the same block, a block that is gone.
func TestServiceExactlyOnce(t *testing.T) {
	wantRestarts, updates := soakParams(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(5+wantRestarts/60)*time.Minute) // a restart takes ~0.5 s
	defer cancel()
	brokers := kafkatest.Brokers(t)
	kc := kafka.Config{Auth: kafkatest.Keys(), Brokers: brokers, CreateTopics: true, Partitions: 3}
	prod, err := kafka.New(kc, nil, nil)
	require.NoError(t, err)
	defer prod.Close()
	require.NoError(t, prod.EnsureTopics(ctx))

	reg := registry.NewIndex()
	g := &chainGen{rng: rand.New(rand.NewPCG(7, uint64(wantRestarts)))}
	for i := range 5 {
		a := fmt.Sprintf("0x%040x", 0xd00+i)
		g.addrs = append(g.addrs, a)
		reg.Put(&registry.Entry{Chain: chain.ETH, Network: "t", Address: a, Account: fmt.Sprint("u", i), Asset: "*", Kind: registry.KindDeposit})
	}
	for len(g.update) < updates {
		if len(g.canon) > 12 && g.rng.IntN(7) == 0 {
			d := 1 + g.rng.IntN(2)
			if g.rng.IntN(5) == 0 {
				d = 4 + g.rng.IntN(4)
			}
			g.reorg(d)
		}
		g.add()
	}
	for range 8 {
		g.add()
	}

	kcFull := kafka.Config{Auth: kafkatest.Keys(), Brokers: brokers, Topics: kafka.DefaultTopics(), CreateTopics: true}
	svc := func() *credit.Service {
		// Settled deposits 60 blocks down leave the state (the generated
		// reorgs are at most 7 deep): restores read only what is kept.
		s, err := credit.NewService(credit.ServiceConfig{Kafka: kcFull, Policy: policy, Registry: reg, Tokens: credit.Tokens{}, Screen: flagged,
			Retain: 60})
		require.NoError(t, err)
		return s
	}
	// Publish in chunks while the service is killed and restarted.
	published := 0
	restarts := 0
	// Chunks of 1–30 events (15.5 on average) published one restart in
	// perChunk: the history is spread over about wantRestarts restarts.
	perChunk := max(1, wantRestarts*15/len(g.update))
	for published < len(g.update) || restarts < wantRestarts {
		if published < len(g.update) && g.rng.IntN(perChunk) == 0 {
			n := min(len(g.update)-published, 1+g.rng.IntN(30))
			require.NoError(t, prod.Publish(ctx, g.update[published:published+n]))
			published += n
		}
		stop := runService(ctx, svc())
		life := time.Duration(g.rng.IntN(250)) * time.Millisecond // often mid-restore or mid-round
		if g.rng.IntN(4) == 0 {
			life = time.Duration(250+g.rng.IntN(1500)) * time.Millisecond
		}
		time.Sleep(life)
		require.NoError(t, stop())
		restarts++
	}
	// A last run to the end.
	stop := runService(ctx, svc())
	var evs []credit.DepositEvent
	deadline := time.Now().Add(60 * time.Second)
	for {
		evs = committed(t, ctx, brokers)
		if finished(evs, g) || time.Now().After(deadline) {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	require.NoError(t, stop())

	want := freshCredited(g, reg)
	live := map[string]bool{}
	for _, b := range g.canon {
		live[b.Hash] = true
	}
	latest := map[string]credit.DepositEvent{}
	credits := map[string]int{}
	creditedIn := map[string]string{}
	statuses := map[string]int{}
	for _, ev := range evs {
		statuses[ev.Status]++
		switch ev.Status {
		case credit.StatusCredited:
			require.Equal(t, credits[ev.ID]+1, ev.Credits, "%s: credited twice, or a credit skipped", ev.ID)
			require.NotEqual(t, credit.StatusCredited, latest[ev.ID].Status, "%s: credited twice without a revert", ev.ID)
			credits[ev.ID] = ev.Credits
			creditedIn[ev.ID] = ev.BlockHash
		case credit.StatusReverted:
			require.Equal(t, credit.StatusCredited, latest[ev.ID].Status, "%s: reverted without a credit", ev.ID)
			require.Equal(t, creditedIn[ev.ID], ev.BlockHash, "%s: reverted from another block than credited", ev.ID)
			require.False(t, live[ev.BlockHash], "%s: reverted, yet its block is canonical", ev.ID)
		case credit.StatusHeld:
			require.Contains(t, ev.Reasons[0], "0x00000000000000000000000000000000000000ee")
		}
		latest[ev.ID] = ev
	}
	var got []string
	for id, ev := range latest {
		if ev.Status == credit.StatusCredited {
			got = append(got, id)
		}
	}
	slices.Sort(got)
	require.Equal(t, want, got, "%d restarts", restarts)
	require.Positive(t, len(got))
	deep := 0
	for _, u := range g.update {
		if u.Event.Type == chain.BlockRemoved {
			deep++
		}
	}
	require.Positive(t, statuses[credit.StatusReverted], "the history has reorgs deeper than the policy: %v, %d removals", statuses, deep)
	require.Positive(t, statuses[credit.StatusHeld])
	// The service's state holds the deposits it keeps, not all of them.
	state := map[string]bool{}
	for _, r := range readRecords(t, ctx, brokers, "cordon.credit-state") {
		switch {
		case string(r.Key) == "checkpoint" || string(r.Key) == "restore-marker":
		case r.Value == nil:
			delete(state, string(r.Key))
		default:
			state[string(r.Key)] = true
		}
	}
	require.Less(t, len(state), len(latest), "settled deposits far below the tip were forgotten")
	require.Positive(t, len(state))
	t.Logf("%d deposit events committed over %d restarts; %d deposits credited; events by status %v", len(evs), restarts, len(got), statuses)
}

// flagged screens one sender as listed.
func flagged(_ chain.Chain, _, addr string) []credit.Hit {
	if addr == "0x00000000000000000000000000000000000000ee" {
		return []credit.Hit{{Address: addr, Indicator: "indicator--test", Category: "hack", Source: "test"}}
	}
	return nil
}

// freshCredited are the ids a fresh engine over the final chain credits.
func freshCredited(g *chainGen, reg *registry.Index) []string {
	e := credit.NewEngine(policy)
	var out []string
	state := map[string]string{}
	for i, b := range g.canon {
		for _, ev := range e.Added(chain.BlockEvent{Type: chain.BlockAdded, Seq: uint64(i + 1), Header: b.Header}, credit.ETHCandidates(b, reg, nil, flagged)) {
			state[ev.ID] = ev.Status
		}
	}
	for id, st := range state {
		if st == credit.StatusCredited {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// committed reads the deposit events (read committed) in order.
func committed(t testing.TB, ctx context.Context, brokers []string) []credit.DepositEvent {
	var out []credit.DepositEvent
	for _, r := range readRecords(t, ctx, brokers, "cordon.deposits") {
		if string(r.Key) == "checkpoint" || string(r.Key) == "restore-marker" {
			continue
		}
		var ev credit.DepositEvent
		require.NoError(t, json.Unmarshal(r.Value, &ev))
		out = append(out, ev)
	}
	return out
}

// runService runs svc until the returned stop is called; stop returns
// what Run returned.
func runService(ctx context.Context, svc *credit.Service) (stop func() error) {
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- svc.Run(sctx) }()
	return func() error {
		cancel()
		return <-done
	}
}

// finished tells whether every deposit of the final chain that should be
// credited has its credited event.
func finished(evs []credit.DepositEvent, g *chainGen) bool {
	last := map[string]string{}
	for _, ev := range evs {
		last[ev.ID] = ev.Status
	}
	tip := g.canon[len(g.canon)-1].Height
	for _, b := range g.canon {
		for _, tr := range b.Transfers {
			id := credit.DepositID(chain.ETH, "t", tr.TxHash, "native")
			need := uint64(3)
			if a, _ := new(big.Int).SetString(tr.Amount.String(), 10); a.Cmp(big.NewInt(1000)) >= 0 {
				need = 5
			}
			if a, _ := new(big.Int).SetString(tr.Amount.String(), 10); a.Cmp(big.NewInt(10)) < 0 || len(flagged(chain.ETH, "t", tr.From)) > 0 {
				continue // dust, or held
			}
			if tip-b.Height+1 >= need && last[id] != credit.StatusCredited {
				return false
			}
		}
	}
	return true
}
