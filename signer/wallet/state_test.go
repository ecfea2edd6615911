package wallet

import (
	"fmt"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/internal/chain"
)

func hashN(n int) string { return fmt.Sprintf("%064x", n) }

func added(h, parent int, height uint64) chain.BlockEvent {
	p := hashN(parent)
	if parent == 0 {
		p = ""
	}
	return chain.BlockEvent{Type: chain.BlockAdded, Header: chain.Header{Chain: chain.BTC, Network: "regtest", Height: height, Hash: hashN(h), ParentHash: p}}
}

func out(block, tx int, vout uint32, addr string, amt uint64) chain.Output {
	return chain.Output{TxHash: hashN(1000 + tx), Vout: vout, Address: &addr, Amount: chain.AmountFromUint64(amt), BlockHash: hashN(block)}
}

func TestUTXOViewReorgAndRestore(t *testing.T) {
	const me = "bcrt1qme"
	v := NewUTXOView("regtest", []string{me}, 10)
	require.NoError(t, v.AddBlock(added(1, 0, 1), []chain.Output{out(1, 1, 0, me, 100), out(1, 1, 1, "other", 5)}, nil))
	// Block 2 spends tx1:0 and creates tx2:0; block 3 (to be reorged) spends tx2:0.
	require.NoError(t, v.AddBlock(added(2, 1, 2), []chain.Output{out(2, 2, 0, me, 90)},
		[]chain.Spend{{PrevTxHash: hashN(1001), PrevVout: 0, BlockHash: hashN(2)}}))
	before := v.All()
	snap, err := v.Snapshot()
	require.NoError(t, err)
	require.NoError(t, v.AddBlock(added(3, 2, 3), []chain.Output{out(3, 3, 0, me, 80)},
		[]chain.Spend{{PrevTxHash: hashN(1002), PrevVout: 0, BlockHash: hashN(3)}}))
	require.Equal(t, []UTXO{{TxHash: hashN(1003), Value: 80, Address: me, Height: 3}}, v.All())
	rm := added(3, 2, 3)
	rm.Type = chain.BlockRemoved
	require.NoError(t, v.RemoveBlock(rm))
	require.Equal(t, before, v.All(), "removal undoes exactly")
	require.NoError(t, v.AddBlock(added(4, 2, 3), nil, nil))
	require.Equal(t, before, v.All(), "the new branch spends nothing")
	rm.Hash = hashN(9)
	require.ErrorIs(t, v.RemoveBlock(rm), ErrReorgTooDeep)

	w := NewUTXOView("regtest", []string{me}, 10)
	require.NoError(t, w.Restore(snap))
	require.Equal(t, before, w.All())
	require.Error(t, w.Restore([]byte(`{"v":1,"network":"regtest","extra":1}`)))

	// Reservations: a reserved coin is not spendable until released.
	require.NoError(t, w.Reserve(hashN(77), w.All()))
	require.Empty(t, w.Spendable(1))
	require.ErrorIs(t, w.Reserve(hashN(78), w.All()), ErrReserved)
	require.Equal(t, 1, w.Release(hashN(77)))
	require.Len(t, w.Spendable(1), 1)
	require.Empty(t, w.Spendable(2), "one confirmation only")
}

func TestNonceLedgerRestartAndReorg(t *testing.T) {
	a := common.HexToAddress("0x00000000000000000000000000000000000000aa")
	l := NewNonceLedger("devnet", a)
	n0, err := l.Assign(a, "wd_1", 5)
	require.NoError(t, err)
	require.EqualValues(t, 5, n0)
	n1, err := l.Assign(a, "wd_2", 5)
	require.NoError(t, err)
	require.EqualValues(t, 6, n1, "the ledger's last + 1 beats a lagging node")
	again, _ := l.Assign(a, "wd_1", 9)
	require.EqualValues(t, 5, again, "a key keeps its nonce")

	snap, err := l.Snapshot()
	require.NoError(t, err)
	r := NewNonceLedger("devnet", a)
	require.NoError(t, r.Restore(snap))
	n2, err := r.Assign(a, "wd_3", 0)
	require.NoError(t, err)
	require.EqualValues(t, 7, n2, "a restart keeps the assigned nonces")

	ev := chain.BlockEvent{Type: chain.BlockAdded, Header: chain.Header{Chain: chain.ETH, Network: "devnet", Hash: "0xb1"}}
	require.NoError(t, r.AddBlock(ev, []chain.Transaction{{From: "0x00000000000000000000000000000000000000AA", Nonce: 5, Hash: "0xt", BlockHash: "0xb1"}}))
	st, _ := r.Status(a, 5)
	require.Equal(t, NonceMined, st)
	require.Error(t, r.Release(a, 5), "a mined nonce is never released")
	ev.Type = chain.BlockRemoved
	require.NoError(t, r.RemoveBlock(ev))
	st, e := r.Status(a, 5)
	require.Equal(t, NonceAssigned, st)
	require.Equal(t, "wd_1", e.Key, "same transaction, to be re-broadcast")
	require.NoError(t, r.Release(a, 6))
	n3, err := r.Assign(a, "wd_2b", 0)
	require.NoError(t, err)
	require.EqualValues(t, 6, n3, "a released nonce goes to the new approval")
}

func FuzzRestore(f *testing.F) {
	a := common.HexToAddress("0x00000000000000000000000000000000000000aa")
	l := NewNonceLedger("devnet", a)
	_, _ = l.Assign(a, "k", 3)
	s, _ := l.Snapshot()
	f.Add(s)
	v := NewUTXOView("regtest", []string{"me"}, 4)
	s, _ = v.Snapshot()
	f.Add(s)
	f.Add([]byte(`{"v":1,"network":"regtest","tip":2,"tip_hash":"` + hashN(2) + `","utxos":[],"undo":[],"reserved":{}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		v := NewUTXOView("regtest", []string{"me"}, 4)
		if v.Restore(b) == nil {
			s, err := v.Snapshot()
			require.NoError(t, err)
			w := NewUTXOView("regtest", []string{"me"}, 4)
			require.NoError(t, w.Restore(s), "a snapshot of a restored view restores")
		}
		l := NewNonceLedger("devnet", a)
		if l.Restore(b) == nil {
			s, err := l.Snapshot()
			require.NoError(t, err)
			require.NoError(t, NewNonceLedger("devnet", a).Restore(s))
			_, _ = l.Assign(a, "fuzz", 0)
		}
	})
}
