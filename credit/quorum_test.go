package credit

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/internal/chain"
)

func TestJudge(t *testing.T) {
	down := errors.New("timeout")
	r := func(ep, h string) NodeReport { return NodeReport{Endpoint: ep, Hash: h} }
	for _, c := range []struct {
		name    string
		reports []NodeReport
		q       int
		want    int
	}{
		{"all agree", []NodeReport{r("a", "h"), r("b", "h"), r("c", "h")}, 2, Confirmed},
		{"a liar outvoted", []NodeReport{r("a", "h"), r("liar", "x"), r("c", "h")}, 2, Confirmed},
		{"case differs", []NodeReport{r("a", "H"), r("b", "h")}, 2, Confirmed},
		{"one down, quorum still possible", []NodeReport{r("a", "h"), {Endpoint: "b", Err: down}, r("c", "x")}, 2, Unconfirmed},
		{"all down", []NodeReport{{Endpoint: "a", Err: down}, {Endpoint: "b", Err: down}}, 1, Unconfirmed},
		{"no block there yet", []NodeReport{r("a", ""), r("b", "h")}, 2, Unconfirmed},
		{"majority reports another block", []NodeReport{r("a", "h"), r("b", "x"), r("c", "x")}, 2, Disputed},
		{"one endpoint, another block", []NodeReport{r("a", "x")}, 1, Disputed},
		{"quorum 0 means 1", []NodeReport{r("a", "h")}, 0, Confirmed},
	} {
		require.Equal(t, c.want, Judge(c.reports, "h", c.q).Outcome, c.name)
	}
	v := Judge([]NodeReport{r("honest", "h"), r("liar", "x"), {Endpoint: "slow", Err: down}}, "h", 3)
	require.Equal(t, Disputed, v.Outcome)
	require.Equal(t, "the nodes do not confirm block h at height 7: 1 of the 3 needed report it; liar reports x; slow did not answer (timeout)",
		v.Reason(7, "h"))
}

// TestEngineConfirm: a deposit deep enough is credited only once the
// nodes confirm its block; while they cannot tell it waits (and is asked
// again with the next block); disputed, it is held with the reason, and a
// release then credits it only if the nodes confirm it.
func TestEngineConfirm(t *testing.T) {
	e := NewEngine(func(chain.Chain, string) Policy { return Policy{Confirmations: 2} })
	verdict := Unconfirmed
	asked := 0
	e.Confirm = func(c Candidate, p Policy) Verdict {
		asked++
		return Verdict{Outcome: verdict, Quorum: 2, Dissent: []NodeReport{{Endpoint: "liar", Hash: "forged"}}}
	}
	blk := func(h uint64) chain.BlockEvent {
		return chain.BlockEvent{Type: chain.BlockAdded, Seq: h + 1, Header: chain.Header{Chain: chain.ETH, Network: "t", Height: h, Hash: fmt.Sprintf("h%d", h)}}
	}
	c := Candidate{ID: "x", Chain: chain.ETH, Network: "t", Amount: big.NewInt(600), BlockHash: "h1", Height: 1, KnownAsset: true}
	require.Equal(t, StatusPending, e.Added(blk(1), []Candidate{c})[0].Status)
	require.Empty(t, e.Added(blk(2), nil), "deep enough, unconfirmed: waits")
	require.Empty(t, e.Added(blk(3), nil))
	require.Equal(t, 2, asked, "asked again with each block")
	verdict = Disputed
	ev := e.Added(blk(4), nil)
	require.Len(t, ev, 1)
	require.Equal(t, StatusHeld, ev[0].Status)
	require.Contains(t, ev[0].Reasons[0], "liar reports forged")
	out, err := e.Decide(decide(e, "r", "x", ActionRelease))
	require.NoError(t, err)
	require.Equal(t, []string{StatusReleased, StatusHeld}, []string{out[0].Status, out[1].Status}, "released, still disputed: held again")
	verdict = Confirmed
	out, err = e.Decide(decide(e, "r2", "x", ActionRelease))
	require.NoError(t, err)
	require.Equal(t, []string{StatusReleased, StatusCredited}, []string{out[0].Status, out[1].Status})
}

// TestRecentOutputsNotOverwritten: a block record naming another address
// for an outpoint already known does not become its owner: the outpoint
// is left to the next resolver (ClickHouse, which holds both copies).
func TestRecentOutputsNotOverwritten(t *testing.T) {
	real, forged := "bcrt1qreal", "bcrt1qforged"
	out := func(addr string) *chain.Block {
		return &chain.Block{Outputs: []chain.Output{{TxHash: "t1", Vout: 0, Address: &addr}}}
	}
	r := newRecentOutputs(10)
	r.add(out(real))
	r.add(out(real)) // the same block again (a reorg back to it): no conflict
	got, err := chained{recent: r}.Resolve(context.Background(), chain.BTC, "regtest", []Outpoint{{"t1", 0}})
	require.NoError(t, err)
	require.Equal(t, real, got[Outpoint{"t1", 0}])
	r.add(out(forged))
	got, err = chained{recent: r}.Resolve(context.Background(), chain.BTC, "regtest", []Outpoint{{"t1", 0}})
	require.NoError(t, err)
	require.NotContains(t, got, Outpoint{"t1", 0}, "neither copy is taken")
	r.add(out(real))
	_, known := r.addr[Outpoint{"t1", 0}]
	require.False(t, known, "once in conflict, it stays so while remembered")
}
