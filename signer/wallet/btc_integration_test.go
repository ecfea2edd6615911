package wallet

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/plugins/sdk"
	"github.com/cordonhq/cordon/signer/intent"
	"github.com/cordonhq/cordon/signer/txcheck"
	"github.com/cordonhq/cordon/watchers/btc/btcnode"
	"github.com/cordonhq/cordon/watchers/btc/btctest"
)

func btcIntent(id, dst string, amount int64) intent.Intent {
	return intent.Intent{ID: id, Chain: "btc", Network: "regtest", Asset: intent.Native, Amount: fmt.Sprint(amount), Destination: dst}
}

// TestBTCAgainstBtcd funds a P2WPKH wallet by mining to it, pays two
// intents in one transaction to a P2WSH 2-of-3 wallet, spends that with
// two of its three keys, each transaction checked by txcheck.CheckBTC,
// verified by btcd's script engine, accepted by btcd and mined.
func TestBTCAgainstBtcd(t *testing.T) {
	params := &chaincfg.RegressionNetParams
	k0, k1, k2, k3 := testKey("hot"), testKey("ms1"), testKey("ms2"), testKey("ms3")
	cfg := Config{BTC: []BTCWallet{
		{Name: "hot", Network: "regtest", Kind: KindP2WPKH, Keys: []KeyRef{ref("hot", k0)}, MaxFeeRate: 50, MaxFee: 100_000},
		{Name: "vault", Network: "regtest", Kind: KindP2WSH, Keys: []KeyRef{ref("ms1", k1), ref("ms2", k2), ref("ms3", k3)}, MaxFeeRate: 50, MaxFee: 100_000},
	}}
	var p config.Problems
	cfg.Validate(&p, "wallet")
	require.NoError(t, p.Err())
	hotS, err := cfg.BTC[0].Script()
	require.NoError(t, err)
	vaultS, err := cfg.BTC[1].Script()
	require.NoError(t, err)

	node := btctest.Node(t, "regtest", hotS.Address)
	rpc := node.Client()
	ctx := context.Background()
	// btctest's btcd runs without --txindex: the previous transactions
	// come from the blocks read from the node (getblock), by txid.
	txs := map[chainhash.Hash]*wire.MsgTx{}
	var mu sync.Mutex
	fetch := func(_ context.Context, h chainhash.Hash) (*wire.MsgTx, error) {
		mu.Lock()
		defer mu.Unlock()
		tx, ok := txs[h]
		if !ok {
			return nil, fmt.Errorf("no transaction %v", h)
		}
		return tx, nil
	}
	hotView := NewUTXOView("regtest", []string{hotS.Address}, 0)
	vaultView := NewUTXOView("regtest", []string{vaultS.Address}, 0)
	var height uint64
	mine := func(n int) []*wire.MsgBlock {
		hashes, err := rpc.Generate(uint32(n))
		require.NoError(t, err)
		var blks []*wire.MsgBlock
		for _, h := range hashes {
			blk, err := rpc.GetBlock(h)
			require.NoError(t, err)
			height++
			mu.Lock()
			for _, tx := range blk.Transactions {
				txs[tx.TxHash()] = tx
			}
			mu.Unlock()
			ev, outs, spends := blockEvents(t, params, blk, height)
			if height == 1 {
				// The views start at block 1: no parent to agree with.
				ev.ParentHash = ""
			}
			require.NoError(t, hotView.AddBlock(ev, outs, spends))
			require.NoError(t, vaultView.AddBlock(ev, outs, spends))
			blks = append(blks, blk)
		}
		return blks
	}
	mine(101)
	require.Len(t, hotView.Spendable(1), 2, "blocks 1 and 2 are mature at height 101")

	hot, err := NewBTCBuilder(cfg.BTC[0], hotView, fetch)
	require.NoError(t, err)
	intents := []intent.Intent{btcIntent("wd_1", vaultS.Address, 30_0000_0000), btcIntent("wd_2", vaultS.Address, 25_0000_0000)}
	build, err := hot.Build(ctx, intents, 10)
	require.NoError(t, err)
	require.Len(t, build.Inputs, 2, "50 BTC coins: 55 BTC needs two")
	checked, err := txcheck.CheckBTC(build.PSBT, intents, hot.Policy())
	require.NoError(t, err)
	require.Equal(t, build.TxID, checked.TxID)
	require.Equal(t, build.Fee, checked.Fee)
	require.Equal(t, build.VSize, checked.VSize)
	require.Equal(t, build.Change, checked.Change)
	require.GreaterOrEqual(t, build.Fee, 10*build.VSize)

	// A second build cannot take the reserved coins: nothing else is mature.
	_, err = hot.Build(ctx, []intent.Intent{btcIntent("wd_3", vaultS.Address, 1000)}, 10)
	require.ErrorIs(t, err, ErrInsufficientFunds)
	// Above the cap: refused, not clamped.
	_, err = hot.Build(ctx, intents, 51)
	require.ErrorIs(t, err, ErrFeeCap)

	digests, err := build.Digests()
	require.NoError(t, err)
	sigs := make([]map[int]sdk.Signature, len(digests))
	for i, d := range digests {
		require.Equal(t, 1, d.Need)
		sigs[i] = map[int]sdk.Signature{0: sign(t, k0, d.Digest)}
	}
	// A signature by another key is refused before the engine runs.
	bad := []map[int]sdk.Signature{{0: sign(t, k1, digests[0].Digest)}, sigs[1]}
	_, err = build.Finalize(bad)
	require.ErrorIs(t, err, ErrSignature)
	tx, err := build.Finalize(sigs)
	require.NoError(t, err)
	txid, err := rpc.SendRawTransaction(tx, false)
	require.NoError(t, err)
	require.Equal(t, build.TxID, txid.String())
	blk := mine(1)[0]
	require.Len(t, blk.Transactions, 2)
	require.Equal(t, build.TxID, blk.Transactions[1].TxHash().String())
	require.Len(t, vaultView.Spendable(1), 2)
	require.Len(t, hotView.Reserved(), 2, "the reservation stays until the spend is final: a reorg brings the coins back, still taken")
	for _, u := range hotView.All() {
		require.NotEqual(t, build.Inputs[0], u)
		require.NotEqual(t, build.Inputs[1], u)
	}

	// The 2-of-3: every pair of keys passes, one signature does not.
	vault, err := NewBTCBuilder(cfg.BTC[1], vaultView, fetch)
	require.NoError(t, err)
	out := []intent.Intent{btcIntent("wd_4", addrOf(t, testKey("customer"), params), 40_0000_0000)}
	vb, err := vault.Build(ctx, out, 5)
	require.NoError(t, err)
	_, err = txcheck.CheckBTC(vb.PSBT, out, vault.Policy())
	require.NoError(t, err)
	vd, err := vb.Digests()
	require.NoError(t, err)
	byPos := map[int]*btcec.PrivateKey{}
	for pos, r := range vd[0].Keys {
		for _, k := range []*btcec.PrivateKey{k1, k2, k3} {
			if ref(r.KeyID, k) == r {
				byPos[pos] = k
			}
		}
	}
	require.Len(t, byPos, 3)
	var final *wire.MsgTx
	for _, pair := range [][2]int{{0, 1}, {0, 2}, {1, 2}} {
		s := make([]map[int]sdk.Signature, len(vd))
		for i, d := range vd {
			require.Equal(t, 2, d.Need)
			s[i] = map[int]sdk.Signature{pair[0]: sign(t, byPos[pair[0]], d.Digest), pair[1]: sign(t, byPos[pair[1]], d.Digest)}
		}
		final, err = vb.Finalize(s)
		require.NoError(t, err, "pair %v", pair)
	}
	one := make([]map[int]sdk.Signature, len(vd))
	for i, d := range vd {
		one[i] = map[int]sdk.Signature{1: sign(t, byPos[1], d.Digest)}
	}
	_, err = vb.Finalize(one)
	require.ErrorIs(t, err, ErrSignature)
	// Assembled by hand, a one-signature witness fails in the engine.
	forged := final.Copy()
	for i := range forged.TxIn {
		w := forged.TxIn[i].Witness
		forged.TxIn[i].Witness = [][]byte{nil, w[1], vaultS.WitnessScript}
	}
	require.ErrorIs(t, verifyInputs(forged, vb.Packet), ErrSignature)

	vtxid, err := rpc.SendRawTransaction(final, false)
	require.NoError(t, err)
	blk = mine(1)[0]
	require.Equal(t, vtxid.String(), blk.Transactions[1].TxHash().String())
	require.Equal(t, vb.Change, sumValues(vaultView.Spendable(1)))
	_ = btcnode.BtcdVersion
}

func sumValues(us []UTXO) int64 {
	var s int64
	for _, u := range us {
		s += u.Value
	}
	return s
}
