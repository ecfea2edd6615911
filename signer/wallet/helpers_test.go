package wallet

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/plugins/sdk"
)

// testKey is a deterministic secp256k1 key.
func testKey(seed string) *btcec.PrivateKey {
	h := sha256.Sum256([]byte("cordon-wallet-test/" + seed))
	k, _ := btcec.PrivKeyFromBytes(h[:])
	return k
}

func ref(name string, k *btcec.PrivateKey) KeyRef {
	return KeyRef{Plugin: "devkey", KeyID: name, PublicKey: hex.EncodeToString(k.PubKey().SerializeCompressed())}
}

// sign is a test-local signer keeping the sdk.Signature contract: low S,
// V the recovery id.
func sign(tb testing.TB, k *btcec.PrivateKey, digest [32]byte) sdk.Signature {
	tb.Helper()
	c, err := ecdsa.SignCompact(k, digest[:], true)
	require.NoError(tb, err)
	var s sdk.Signature
	copy(s.R[:], c[1:33])
	copy(s.S[:], c[33:65])
	s.V = c[0] - 27 - 4
	return s
}

// blockEvents normalizes a block the way the btc watcher's records
// carry it: the outputs with an address, the spends of non-coinbase
// inputs.
func blockEvents(tb testing.TB, params *chaincfg.Params, blk *wire.MsgBlock, height uint64) (chain.BlockEvent, []chain.Output, []chain.Spend) {
	tb.Helper()
	hash := blk.BlockHash().String()
	ev := chain.BlockEvent{V: 1, Type: chain.BlockAdded, Header: chain.Header{Chain: chain.BTC, Network: params.Name, Height: height,
		Hash: hash, ParentHash: blk.Header.PrevBlock.String()}}
	var outs []chain.Output
	var spends []chain.Spend
	for ti, tx := range blk.Transactions {
		txh := tx.TxHash().String()
		for vo, o := range tx.TxOut {
			_, addrs, _, err := txscript.ExtractPkScriptAddrs(o.PkScript, params)
			var addr *string
			if err == nil && len(addrs) == 1 {
				a := addrs[0].EncodeAddress()
				addr = &a
			}
			outs = append(outs, chain.Output{Chain: chain.BTC, Network: params.Name, TxHash: txh, TxIndex: uint32(ti), Vout: uint32(vo),
				Address: addr, Amount: chain.AmountFromUint64(uint64(o.Value)), Coinbase: ti == 0, BlockHeight: height, BlockHash: hash})
		}
		if ti == 0 {
			continue
		}
		for vi, in := range tx.TxIn {
			spends = append(spends, chain.Spend{Chain: chain.BTC, Network: params.Name, TxHash: txh, TxIndex: uint32(ti), Vin: uint32(vi),
				PrevTxHash: in.PreviousOutPoint.Hash.String(), PrevVout: in.PreviousOutPoint.Index, BlockHeight: height, BlockHash: hash})
		}
	}
	return ev, outs, spends
}

func addrOf(tb testing.TB, k *btcec.PrivateKey, params *chaincfg.Params) string {
	a, err := btcutil.NewAddressWitnessPubKeyHash(btcutil.Hash160(k.PubKey().SerializeCompressed()), params)
	require.NoError(tb, err)
	return a.EncodeAddress()
}
