package credit

import (
	"fmt"
	"math/big"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/internal/chain"
)

func testPolicy(chain.Chain, string) Policy {
	return Policy{Confirmations: 3, Tiers: []Tier{{Min: big.NewInt(1000), Confirmations: 6}}, Dust: big.NewInt(10), Review: big.NewInt(5000)}
}

// input is one event of the stream the engine consumes.
type input struct {
	ev    chain.BlockEvent
	cands []Candidate
}

func apply(e *Engine, in input) []DepositEvent {
	if in.ev.Type == chain.BlockRemoved {
		return e.Removed(in.ev)
	}
	return e.Added(in.ev, in.cands)
}

// genStream builds a random chain history with reorgs (some deeper than
// the policy): the block events a watcher publishes, and the candidates of
// each added block. Transactions of abandoned blocks are often mined again
// in the new branch, as they are on real chains.
func genStream(rng *rand.Rand, blocks int) ([]input, []chain.Header) {
	var canon []chain.Header
	var cands [][]Candidate
	var out []input
	seq := uint64(0)
	txn := 0
	newCands := func(h chain.Header, pool *[]Candidate) []Candidate {
		var cs []Candidate
		for _, c := range *pool { // re-mined from an abandoned block
			if rng.IntN(3) > 0 {
				c.BlockHash, c.Height = h.Hash, h.Height
				cs = append(cs, c)
			}
		}
		*pool = nil
		for range rng.IntN(4) {
			txn++
			amt := []int64{5, 50, 500, 2000, 9000}[rng.IntN(5)]
			c := Candidate{ID: DepositID(chain.ETH, "t", fmt.Sprintf("0x%x", txn), "native"), Chain: chain.ETH, Network: "t",
				TxHash: fmt.Sprintf("0x%x", txn), Index: "native", Address: "0xa", Account: "u", Asset: "native",
				Amount: big.NewInt(amt), BlockHash: h.Hash, Height: h.Height, KnownAsset: rng.IntN(20) > 0}
			if rng.IntN(15) == 0 {
				c.Holds = []string{"indicator--x sanctions"}
			}
			cs = append(cs, c)
		}
		return cs
	}
	var pool []Candidate
	add := func() {
		h := chain.Header{Chain: chain.ETH, Network: "t", Height: uint64(len(canon)), Hash: fmt.Sprintf("b%d-%d", len(canon), rng.Uint32())}
		cs := newCands(h, &pool)
		canon = append(canon, h)
		cands = append(cands, cs)
		seq++
		out = append(out, input{ev: chain.BlockEvent{Type: chain.BlockAdded, Seq: seq, Header: h}, cands: cs})
	}
	for len(out) < blocks {
		if len(canon) > 12 && rng.IntN(8) == 0 {
			depth := 1 + rng.IntN(3)
			if rng.IntN(6) == 0 {
				depth = 4 + rng.IntN(6) // deeper than the policy
			}
			for range depth {
				h := canon[len(canon)-1]
				pool = append(pool, cands[len(cands)-1]...)
				canon, cands = canon[:len(canon)-1], cands[:len(cands)-1]
				seq++
				out = append(out, input{ev: chain.BlockEvent{Type: chain.BlockRemoved, Seq: seq, Header: h}})
			}
		}
		add()
	}
	// The chain settles: enough blocks without reorgs for every canonical
	// deposit to reach its depth (a credit is never taken back because a
	// reorg above its block lowered its confirmations).
	for range 10 {
		add()
	}
	return out, canon
}

func credited(e *Engine) []string {
	var ids []string
	for id, d := range e.deposits {
		if d.status == StatusCredited {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// TestEngineProperty: random traffic with random reorgs, some deeper than
// the policy, and the engine restarted from its own events at random
// points (sometimes replaying inputs it had already processed): the
// deposits credited at the end are exactly those a fresh run over the
// final canonical chain credits; no deposit is credited twice without a
// revert between; every revert follows a credit of a block that left the
// chain.
func TestEngineProperty(t *testing.T) {
	runs := 300
	if testing.Short() {
		runs = 50
	}
	if v, err := strconv.Atoi(os.Getenv("CORDON_SOAK_RUNS")); err == nil && v > 0 {
		runs = v // make soak
	}
	pruned := 0 // runs where the engine forgot settled deposits
	for run := range runs {
		rng := rand.New(rand.NewPCG(uint64(run), 99))
		inputs, canon := genStream(rng, 150+rng.IntN(150))

		var log []DepositEvent
		// Half the runs forget settled deposits 40 blocks down (each
		// generated reorg is at most 9 deep, and a few in a row stay
		// well above 40): the same deposits are credited.
		retain := uint64(0)
		if run%2 == 1 {
			retain = 40
		}
		e := NewEngine(testPolicy)
		e.Retain = retain
		restarts := 0
		for i := 0; i < len(inputs); i++ {
			log = append(log, apply(e, inputs[i])...)
			if rng.IntN(25) == 0 { // crash: rebuild from the emitted events
				restarts++
				tips := map[string]uint64{}
				if inputs[i].ev.Type == chain.BlockAdded {
					tips["eth/t"] = inputs[i].ev.Height
				} else {
					tips["eth/t"] = inputs[i].ev.Height - 1
				}
				e = NewEngine(testPolicy)
				e.Retain = retain
				e.Restore(log, tips, nil)
				if rng.IntN(2) == 0 && inputs[i].ev.Type == chain.BlockAdded {
					// At-least-once delivery: the last input arrives again.
					log = append(log, apply(e, inputs[i])...)
				}
			}
		}

		fresh := NewEngine(testPolicy)
		for i, h := range canon {
			var cs []Candidate
			for _, in := range inputs {
				if in.ev.Type == chain.BlockAdded && in.ev.Hash == h.Hash {
					cs = in.cands
				}
			}
			fresh.Added(chain.BlockEvent{Type: chain.BlockAdded, Seq: uint64(i + 1), Header: h}, cs)
		}
		latest := map[string]string{}
		for _, ev := range log {
			latest[ev.ID] = ev.Status
		}
		var got []string
		for id, st := range latest {
			if st == StatusCredited {
				got = append(got, id)
			}
		}
		slices.Sort(got)
		require.Equal(t, credited(fresh), got, "run %d (%d restarts, retain %d)", run, restarts, retain)
		if retain == 0 {
			require.Equal(t, credited(fresh), credited(e), "run %d: the engine's state is its events", run)
		} else if len(e.deposits) < len(latest) {
			pruned++
		}

		live := map[string]bool{}
		for _, h := range canon {
			live[h.Hash] = true
		}
		state := map[string]string{}
		creditBlock := map[string]string{}
		for _, ev := range log {
			switch ev.Status {
			case StatusCredited:
				require.NotEqual(t, StatusCredited, state[ev.ID], "run %d: %s credited twice without a revert", run, ev.ID)
				creditBlock[ev.ID] = ev.BlockHash
			case StatusReverted:
				require.Equal(t, StatusCredited, state[ev.ID], "run %d: %s reverted without a credit", run, ev.ID)
				require.Equal(t, creditBlock[ev.ID], ev.BlockHash)
				require.False(t, live[ev.BlockHash], "run %d: reverted but its block is canonical", run)
			}
			state[ev.ID] = ev.Status
		}
	}
	require.Positive(t, pruned, "settled deposits were forgotten in some runs")
}

func TestEngineLifecycle(t *testing.T) {
	e := NewEngine(testPolicy)
	blk := func(h uint64) chain.BlockEvent {
		return chain.BlockEvent{Type: chain.BlockAdded, Seq: h + 1, Header: chain.Header{Chain: chain.ETH, Network: "t", Height: h, Hash: fmt.Sprintf("h%d", h)}}
	}
	cand := func(id string, amt int64, h uint64) Candidate {
		return Candidate{ID: id, Chain: chain.ETH, Network: "t", Amount: big.NewInt(amt), BlockHash: fmt.Sprintf("h%d", h), Height: h, KnownAsset: true}
	}
	statuses := func(evs []DepositEvent) []string {
		var s []string
		for _, ev := range evs {
			s = append(s, ev.ID+":"+ev.Status)
		}
		return s
	}
	unknown := cand("tok", 100, 1)
	unknown.KnownAsset = false
	flagged := cand("thief", 100, 1)
	flagged.Holds = []string{"indicator--1 hack partner-x"}
	got := statuses(e.Added(blk(1), []Candidate{cand("small", 100, 1), cand("big", 2000, 1), cand("dust", 5, 1), unknown, flagged, cand("whale", 9000, 1)}))
	require.Equal(t, []string{"small:pending", "big:pending", "dust:dust", "tok:unknown_token", "thief:held", "whale:held"}, got)
	require.Empty(t, e.Added(blk(2), nil))
	require.Equal(t, []string{"small:credited"}, statuses(e.Added(blk(3), nil)), "3 confirmations")
	for h := uint64(4); h <= 5; h++ {
		require.Empty(t, e.Added(blk(h), nil))
	}
	require.Equal(t, []string{"big:credited"}, statuses(e.Added(blk(6), nil)), "the amount tier needs 6")

	out, err := e.Decide(decide(e, "d1", "thief", ActionRelease))
	require.NoError(t, err)
	require.Equal(t, []string{"thief:released", "thief:credited"}, statuses(out), "released and already deep enough")
	require.Equal(t, "alice", out[1].Decision.Operator, "the decision travels with the deposit's events")
	out, err = e.Decide(decide(e, "d1", "thief", ActionRelease))
	require.NoError(t, err)
	require.Empty(t, out, "the same decision read again changes nothing")
	out, err = e.Decide(decide(e, "d2", "whale", ActionReject))
	require.NoError(t, err)
	require.Equal(t, []string{"whale:rejected"}, statuses(out))
	_, err = e.Decide(decide(e, "d3", "small", ActionRelease))
	require.ErrorContains(t, err, "is credited, not held")
	_, err = e.Decide(decide(e, "d4", "nobody", ActionRelease))
	require.ErrorContains(t, err, "unknown")
	_, err = e.Decide(decide(e, "d5", "whale", "approve"))
	require.ErrorContains(t, err, "rejected, not held")

	// A reorg removing block 1: credited deposits revert, the others drop.
	var rm []string
	for h := uint64(6); h >= 1; h-- {
		ev := blk(h)
		ev.Type = chain.BlockRemoved
		rm = append(rm, statuses(e.Removed(ev))...)
	}
	require.Equal(t, []string{"big:reverted", "dust:dropped", "small:reverted", "thief:reverted", "tok:dropped"}, rm, "a rejected deposit stays rejected")
	ev := e.Added(blk(1), []Candidate{cand("small", 100, 1)})
	require.Equal(t, "pending", ev[0].Status, "mined again")
	require.Equal(t, 1, ev[0].Credits, "credited once before")
	e.Added(blk(2), nil)
	ev = e.Added(blk(3), nil)
	require.Equal(t, "credited", ev[0].Status)
	require.Equal(t, 2, ev[0].Credits, "the ledger sees the second credit after the revert")

	// Mined again, a released deposit stays released; a rejected one
	// stays rejected.
	again := flagged
	again.BlockHash, again.Height = "h4", 4
	whale := cand("whale", 9000, 4)
	ev = e.Added(chain.BlockEvent{Type: chain.BlockAdded, Seq: 40, Header: chain.Header{Chain: chain.ETH, Network: "t", Height: 4, Hash: "h4"}},
		[]Candidate{again, whale})
	require.Equal(t, []string{"thief:released"}, statuses(ev))
}

// decide is alice's decision on the deposit as e holds it now.
func decide(e *Engine, id, deposit, action string) Decision {
	return Decision{ID: id, Deposit: deposit, Action: action, Operator: "alice", Reason: "checked with the partner", Content: e.content(deposit)}
}

// TestEngineReleaseBeforeDepth: a held deposit released before it is deep
// enough is credited when it gets there, not before; one above the review
// amount is held with that reason.
func TestEngineReleaseBeforeDepth(t *testing.T) {
	e := NewEngine(testPolicy)
	hdr := func(h uint64) chain.BlockEvent {
		return chain.BlockEvent{Type: chain.BlockAdded, Seq: h + 1, Header: chain.Header{Chain: chain.ETH, Network: "t", Height: h, Hash: fmt.Sprintf("h%d", h)}}
	}
	c := Candidate{ID: "x", Chain: chain.ETH, Network: "t", Amount: big.NewInt(6000), BlockHash: "h1", Height: 1, KnownAsset: true}
	ev := e.Added(hdr(1), []Candidate{c})
	require.Equal(t, StatusHeld, ev[0].Status)
	require.Equal(t, []string{"amount at or above the review threshold"}, ev[0].Reasons)
	require.Equal(t, uint64(6), ev[0].Required, "the tier applies to held deposits too")
	out, err := e.Decide(decide(e, "r", "x", ActionRelease))
	require.NoError(t, err)
	require.Len(t, out, 1)
	require.Equal(t, StatusReleased, out[0].Status)
	for h := uint64(2); h < 6; h++ {
		require.Empty(t, e.Added(hdr(h), nil))
	}
	ev = e.Added(hdr(6), nil)
	require.Len(t, ev, 1)
	require.Equal(t, StatusCredited, ev[0].Status)
	require.Equal(t, uint64(6), ev[0].Confirmations)
	require.Equal(t, map[string]int{StatusCredited: 1}, e.Counts())
}

// TestEngineFinalized: with a finality policy a deposit deep enough waits
// for the finalized height to pass its block; restored, it still does.
func TestEngineFinalized(t *testing.T) {
	pol := func(chain.Chain, string) Policy { return Policy{Confirmations: 2, Finalized: true} }
	e := NewEngine(pol)
	hdr := func(h, fin uint64) chain.BlockEvent {
		return chain.BlockEvent{Type: chain.BlockAdded, Seq: h + 1, Finalized: fin,
			Header: chain.Header{Chain: chain.ETH, Network: "t", Height: h, Hash: fmt.Sprintf("h%d", h)}}
	}
	c := Candidate{ID: "x", Chain: chain.ETH, Network: "t", Amount: big.NewInt(6000), BlockHash: "h5", Height: 5, KnownAsset: true}
	var log []DepositEvent
	log = append(log, e.Added(hdr(5, 0), []Candidate{c})...)
	require.False(t, *log[0].Finalized)
	log = append(log, e.Added(hdr(6, 0), nil)...)
	require.Len(t, log, 1, "deep enough, not final")
	r := NewEngine(pol)
	r.Restore(log, map[string]uint64{"eth/t": 6}, map[string]uint64{"eth/t": 0})
	require.Empty(t, r.Added(hdr(7, 4), nil), "finalized below the deposit")
	ev := r.Added(hdr(8, 5), nil)
	require.Len(t, ev, 1)
	require.Equal(t, StatusCredited, ev[0].Status)
	require.True(t, *ev[0].Finalized)
	require.Empty(t, r.Added(hdr(9, 3), nil), "a lower finalized height (a lagging endpoint) changes nothing")
}

// TestEngineZeroIsDust: a zero-value transfer from a flagged sender to a
// deposit address (address poisoning: it costs the attacker nothing) is
// dust under every policy, never held for an operator; without a dust
// threshold the smallest non-zero amount is still held.
func TestEngineZeroIsDust(t *testing.T) {
	e := NewEngine(func(chain.Chain, string) Policy { return Policy{Confirmations: 1} })
	ev := chain.BlockEvent{Type: chain.BlockAdded, Seq: 1, Header: chain.Header{Chain: chain.ETH, Network: "t", Height: 1, Hash: "h1"}}
	hit := Hit{Address: "0xbad", Indicator: "ind-1", Category: "hack", Source: "partner", Confidence: 90}
	cands := []Candidate{
		{ID: "zero", Chain: chain.ETH, Network: "t", Amount: big.NewInt(0), BlockHash: "h1", Height: 1, KnownAsset: true,
			Hits: []Hit{hit}, Holds: []string{holdReason(hit)}},
		{ID: "one", Chain: chain.ETH, Network: "t", Amount: big.NewInt(1), BlockHash: "h1", Height: 1, KnownAsset: true,
			Hits: []Hit{hit}, Holds: []string{holdReason(hit)}},
	}
	got := map[string]string{}
	for _, d := range e.Added(ev, cands) {
		got[d.ID] = d.Status
	}
	require.Equal(t, map[string]string{"zero": StatusDust, "one": StatusHeld}, got)
}
