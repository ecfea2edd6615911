package dispatch

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/rpcclient"
	"github.com/btcsuite/btcd/txscript"
	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/integration/pipetest"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/signer/gate"
	"github.com/cordonhq/cordon/signer/intent"
	"github.com/cordonhq/cordon/signer/vault"
	"github.com/cordonhq/cordon/signer/wallet"
	"github.com/cordonhq/cordon/watchers/btc"
	"github.com/cordonhq/cordon/watchers/btc/btcnode"
	"github.com/cordonhq/cordon/watchers/btc/btctest"
)

// btcd end to end, the hot wallet a 2-of-3 P2WSH across three plugins:
// two approved withdrawals are batched into one transaction, signed,
// broadcast and confirmed; btcd's script engine executes every input of
// what was mined; a reorganization that drops its block sends it again,
// with an alert, and it is confirmed on the new branch.
func TestBTCOnBtcd(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	r.cfg = Config{Wallets: wallet.Config{BTC: []wallet.BTCWallet{{Name: "btc-hot", Network: "regtest", Kind: wallet.KindP2WSH,
		Keys: []wallet.KeyRef{r.key("p1", "hot"), r.key("p2", "hot"), r.key("p3", "hot")}, MaxFeeRate: 50, MaxFee: 1_000_000}}},
		Confirmations: map[string]int{"btc/regtest": 2}, Rebroadcast: time.Hour}
	var p config.Problems
	r.cfg.Wallets.Validate(&p, "wallets")
	require.NoError(t, p.Err())
	script, err := r.cfg.Wallets.BTC[0].Script()
	require.NoError(t, err)
	// The node mines to the hot wallet: its coinbase outputs are what it
	// spends, once mature.
	node := btctest.NodeWith(t, btcnode.Config{Network: "regtest", MiningAddr: script.Address, TxIndex: true})
	src, err := btc.NewSource(btc.Config{Network: "regtest",
		Endpoints: []btc.EndpointConfig{{Name: "btcd", URL: config.SecretValue(node.URL), User: node.User(), Password: config.SecretValue(node.Password())}}}, nil, nil)
	require.NoError(t, err)
	t.Cleanup(src.Close)
	brokers, _, _ := pipetest.Stream(t, ctx, chain.BTC, "regtest", src, 0)
	r.connect(brokers)
	rpc := node.Client()
	_, err = rpc.Generate(110)
	require.NoError(t, err)

	r.startGate("btc/regtest")
	r.startSigner([]vault.Limit{{Chain: "btc", Network: "regtest", Asset: intent.Native, PerWithdrawal: "500000000"}})
	cc := &rpcclient.ConnConfig{Host: node.URL[len("http://"):], User: node.User(), Pass: node.Password(), HTTPPostMode: true, DisableTLS: true}
	nodes, err := NewBTCClients([]*rpcclient.ConnConfig{cc})
	require.NoError(t, err)
	t.Cleanup(nodes.Close)

	params := &chaincfg.RegressionNetParams
	dst1, dst2 := p2wpkh(t, params, 1), p2wpkh(t, params, 2)
	a := r.withdraw("a", "btc", "regtest", "150000000", dst1)
	b := r.withdraw("b", "btc", "regtest", "70000000", dst2)
	r.startDispatcher(Options{BTC: map[string]BTCNode{"regtest": nodes}})
	wa := r.waitStatus(a, gate.StatusBroadcast, time.Minute, nil)
	wb := r.waitStatus(b, gate.StatusBroadcast, time.Minute, nil)
	require.Equal(t, wa.Tx.TxID, wb.Tx.TxID, "one transaction for both")
	require.Equal(t, []string{a, b}, wa.Tx.Batch)
	mine := func() { _, _ = rpc.Generate(1) }
	wa = r.waitStatus(a, gate.StatusMined, time.Minute, mine)

	// Reorganize its block out: invalidate it and mine a longer branch.
	h, err := chainhash.NewHashFromStr(wa.Tx.Block)
	require.NoError(t, err)
	_, err = node.Call("invalidateblock", h.String())
	require.NoError(t, err)
	_, err = rpc.Generate(3)
	require.NoError(t, err)
	r.waitStatus(a, gate.StatusConfirmed, 2*time.Minute, mine)
	r.waitStatus(b, gate.StatusConfirmed, time.Minute, mine)
	require.Contains(t, r.gate.alertTypes(), "withdrawal_reorged_out")
	wa = r.gate.get(a)
	require.NotEqual(t, h.String(), wa.Tx.Block, "confirmed on the new branch")

	// btcd's script engine executes every input of the mined transaction,
	// with the previous outputs btcd itself returns.
	txh, err := chainhash.NewHashFromStr(wa.Tx.TxID)
	require.NoError(t, err)
	got, err := rpc.GetRawTransaction(txh)
	require.NoError(t, err)
	tx := got.MsgTx()
	prevs := txscript.NewMultiPrevOutFetcher(nil)
	for _, in := range tx.TxIn {
		prev, err := rpc.GetRawTransaction(&in.PreviousOutPoint.Hash)
		require.NoError(t, err)
		prevs.AddPrevOut(in.PreviousOutPoint, prev.MsgTx().TxOut[in.PreviousOutPoint.Index])
	}
	hashes := txscript.NewTxSigHashes(tx, prevs)
	for i, in := range tx.TxIn {
		po := prevs.FetchPrevOutput(in.PreviousOutPoint)
		require.True(t, bytes.Equal(po.PkScript, script.PkScript), "input %d spends the hot wallet", i)
		e, err := txscript.NewEngine(po.PkScript, tx, i, txscript.StandardVerifyFlags, nil, hashes, po.Value, prevs)
		require.NoError(t, err)
		require.NoError(t, e.Execute(), "input %d", i)
	}
	paid := map[string]int64{}
	for _, o := range tx.TxOut {
		_, addrs, _, err := txscript.ExtractPkScriptAddrs(o.PkScript, params)
		require.NoError(t, err)
		paid[addrs[0].EncodeAddress()] += o.Value
	}
	require.Equal(t, int64(150000000), paid[dst1])
	require.Equal(t, int64(70000000), paid[dst2])
	for addr := range paid {
		require.Contains(t, []string{dst1, dst2, script.Address}, addr, "nothing paid to a stranger")
	}
	require.Len(t, r.signedOnce(), 1, "one request for the batch")
}

func p2wpkh(t *testing.T, params *chaincfg.Params, n byte) string {
	h := make([]byte, 20)
	h[19] = n
	a, err := btcutil.NewAddressWitnessPubKeyHash(h, params)
	require.NoError(t, err)
	return a.EncodeAddress()
}
