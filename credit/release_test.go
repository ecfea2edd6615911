package credit

import (
	"fmt"
	"math/big"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/internal/chain"
)

func blockAt(h uint64, hash string) chain.BlockEvent {
	return chain.BlockEvent{Type: chain.BlockAdded, Seq: h + 1, Header: chain.Header{Chain: chain.ETH, Network: "t", Height: h, Hash: hash}}
}

func flaggedDeposit(amount int64, height uint64, hash, category string) Candidate {
	hit := Hit{Address: "0xbad", Indicator: "feed/indicator--1", Category: category, Source: "partner", Confidence: 80}
	return Candidate{ID: "d", Chain: chain.ETH, Network: "t", Amount: big.NewInt(amount), BlockHash: hash, Height: height, KnownAsset: true,
		Senders: []string{"0xbad"}, Hits: []Hit{hit}, Holds: []string{holdReason(hit)}}
}

// TestReleaseBoundToContent: an operator's release holds for the content
// it was made on. Mined again unchanged in another block, the deposit
// stays released; mined again paying another amount (or from other
// senders, with other hits), the release is cancelled and the deposit
// held again, saying why. A decision made on content the deposit no
// longer has is refused.
func TestReleaseBoundToContent(t *testing.T) {
	e := NewEngine(func(chain.Chain, string) Policy { return Policy{Confirmations: 3} })
	ev := e.Added(blockAt(1, "a1"), []Candidate{flaggedDeposit(500, 1, "a1", "hack")})
	require.Equal(t, StatusHeld, ev[0].Status)
	stale := decide(e, "r0", "d", ActionRelease)
	out, err := e.Decide(decide(e, "r1", "d", ActionRelease))
	require.NoError(t, err)
	require.Equal(t, StatusReleased, out[0].Status)

	removed := blockAt(1, "a1")
	removed.Type = chain.BlockRemoved
	require.Equal(t, StatusDropped, e.Removed(removed)[0].Status)
	ev = e.Added(blockAt(1, "b1"), []Candidate{flaggedDeposit(500, 1, "b1", "hack")})
	require.Equal(t, StatusReleased, ev[0].Status, "the same content in another block: still released")

	removed = blockAt(1, "b1")
	removed.Type = chain.BlockRemoved
	e.Removed(removed)
	ev = e.Added(blockAt(1, "c1"), []Candidate{flaggedDeposit(50_000, 1, "c1", "hack")})
	require.Equal(t, StatusHeld, ev[0].Status, "another amount: the release does not carry over")
	require.Contains(t, ev[0].Reasons[len(ev[0].Reasons)-1], "the release by alice was cancelled")
	require.Nil(t, ev[0].Decision)
	for h := uint64(2); h <= 4; h++ {
		require.Empty(t, e.Added(blockAt(h, fmt.Sprint("c", h)), nil), "held: never credited")
	}

	_, err = e.Decide(stale)
	require.ErrorContains(t, err, "made on other content")
	out, err = e.Decide(decide(e, "r2", "d", ActionRelease))
	require.NoError(t, err)
	require.Equal(t, []string{StatusReleased, StatusCredited}, []string{out[0].Status, out[1].Status})
}

// TestTwoOperators: releasing a deposit held for a sanctions hit (or
// above an amount, or with a confident hit) takes two distinct operators;
// the first release is recorded and the deposit stays held; the same
// operator twice is refused; a rejection takes one.
func TestTwoOperators(t *testing.T) {
	pol := func(chain.Chain, string) Policy {
		return Policy{Confirmations: 1, DualCategories: []string{"sanctions"}, DualAbove: big.NewInt(10_000), DualConfidence: 95}
	}
	e := NewEngine(pol)
	dec := func(id, op, action string) Decision {
		d := decide(e, id, "d", action)
		d.Operator = op
		return d
	}
	e.Added(blockAt(1, "h1"), []Candidate{flaggedDeposit(500, 1, "h1", "sanctions")})
	out, err := e.Decide(dec("a", "ann", ActionRelease))
	require.NoError(t, err)
	require.Len(t, out, 1)
	require.Equal(t, StatusHeld, out[0].Status, "one operator is not enough")
	require.Equal(t, "ann", out[0].Approvals[0].Operator)
	_, err = e.Decide(dec("a2", "ann", ActionRelease))
	require.ErrorContains(t, err, "needs a second operator")
	out, err = e.Decide(dec("b", "bob", ActionRelease))
	require.NoError(t, err)
	require.Equal(t, []string{StatusReleased, StatusCredited}, []string{out[0].Status, out[1].Status})
	require.Equal(t, "bob", out[1].Decision.Operator)
	require.Equal(t, "ann", out[1].Approvals[0].Operator)

	// Restored from its events, a first approval still counts.
	e = NewEngine(pol)
	held := e.Added(blockAt(1, "h1"), []Candidate{flaggedDeposit(500, 1, "h1", "hack")})
	require.Equal(t, StatusHeld, held[0].Status)
	_, err = e.Decide(dec("x", "ann", ActionRelease))
	require.NoError(t, err, "a hack hit of confidence 80 under 10000: one operator releases it")

	e = NewEngine(pol)
	evs := e.Added(blockAt(1, "h1"), []Candidate{flaggedDeposit(20_000, 1, "h1", "hack")})
	first, err := e.Decide(dec("y", "ann", ActionRelease))
	require.NoError(t, err)
	require.Equal(t, StatusHeld, first[0].Status, "above two_operators_above")
	r := NewEngine(pol)
	r.Restore(append(evs, first...), map[string]uint64{"eth/t": 1}, nil)
	out, err = r.Decide(Decision{ID: "z", Deposit: "d", Action: ActionRelease, Operator: "bob", Reason: "ok", Content: r.content("d")})
	require.NoError(t, err)
	require.Equal(t, StatusReleased, out[0].Status, "ann's approval survived the restore")

	e = NewEngine(pol)
	e.Added(blockAt(1, "h1"), []Candidate{flaggedDeposit(500, 1, "h1", "sanctions")})
	out, err = e.Decide(dec("n", "ann", ActionReject))
	require.NoError(t, err)
	require.Equal(t, StatusRejected, out[0].Status, "one operator rejects")
}
