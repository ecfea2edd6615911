package credit_test

import (
	"bytes"
	"context"
	"math/big"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"
	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/credit"
	"github.com/cordonhq/cordon/integration/pipetest"
	"github.com/cordonhq/cordon/intel"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/registry"
	"github.com/cordonhq/cordon/watchers/btc"
)

func screener(x *intel.Index) credit.Screener { return x.Hits }

func TestETHCandidates(t *testing.T) {
	reg := registry.NewIndex()
	dep, hot, usdtOnly := "0x00000000000000000000000000000000000000d1", "0x00000000000000000000000000000000000000d2", "0x00000000000000000000000000000000000000d3"
	usdt, junk, thief := "0x00000000000000000000000000000000000000a1", "0x00000000000000000000000000000000000000a2", "0x00000000000000000000000000000000000000f1"
	for _, e := range []registry.Entry{{Chain: chain.ETH, Network: "mainnet", Address: dep, Account: "u1"},
		{Chain: chain.ETH, Network: "mainnet", Address: hot, Kind: registry.KindHot},
		{Chain: chain.ETH, Network: "mainnet", Address: usdtOnly, Account: "u2", Asset: usdt}} {
		require.NoError(t, e.Validate())
		reg.Put(&e)
	}
	x := intel.NewIndex()
	in := intel.Indicator{Chain: chain.ETH, Value: thief, Source: "partner-x", Feed: "csv:partner-x", Category: intel.CategoryHack, Confidence: 90, ValidFrom: time.Unix(0, 0)}
	require.NoError(t, in.Validate())
	x.Put(&in)
	li := func(i uint32) *uint32 { return &i }
	tr := func(from, to, asset, std string, log *uint32, amt uint64) chain.Transfer {
		return chain.Transfer{Chain: chain.ETH, Network: "mainnet", Asset: asset, Standard: std, TxHash: "0xt", LogIndex: log, From: from, To: to,
			Amount: chain.AmountFromUint64(amt), BlockHash: "0xb", BlockHeight: 7}
	}
	b := &chain.Block{Transactions: []chain.Transaction{{Hash: "0xt", From: "0x01", To: dep}}, Transfers: []chain.Transfer{
		tr("0x01", dep, chain.AssetNative, chain.StandardNative, nil, 100),
		tr(thief, dep, usdt, chain.StandardERC20, li(3), 50),
		tr("0x01", dep, junk, chain.StandardERC20, li(4), 9),
		tr("0x01", hot, chain.AssetNative, chain.StandardNative, nil, 1),      // our hot wallet: not a deposit
		tr("0x01", usdtOnly, chain.AssetNative, chain.StandardNative, nil, 1), // this address accepts USDT only
		tr("0x01", usdtOnly, usdt, chain.StandardERC20, li(5), 1),
	}}
	got := credit.ETHCandidates(b, reg, credit.Tokens{chain.ETH: {usdt: true}}, screener(x))
	require.Len(t, got, 4)
	require.Equal(t, "eth/mainnet/0xt/native", got[0].ID)
	require.Equal(t, big.NewInt(100), got[0].Amount)
	require.Empty(t, got[0].Holds)
	require.Equal(t, "eth/mainnet/0xt/3", got[1].ID)
	require.Len(t, got[1].Holds, 1, "sent by a listed address")
	require.Contains(t, got[1].Holds[0], "(hack, from partner-x, confidence 90)")
	require.Equal(t, credit.Hit{Address: thief, Indicator: got[1].Hits[0].Indicator, Category: "hack", Source: "partner-x", Confidence: 90},
		got[1].Hits[0], "the event names the indicator, its category and source")
	require.Equal(t, intel.KeyOf(&in).String(), got[1].Hits[0].Indicator, "the hit names the indicator by its key, feed/id")
	require.True(t, got[1].KnownAsset)
	require.False(t, got[2].KnownAsset, "a token the exchange does not credit")
	require.Equal(t, "u2", got[3].Account)

	// A sanctioned account calls a router that pays the deposit address
	// in USDT: the log's sender is the router, the transaction's the
	// thief. Screened on both; the router itself listed is caught too.
	router, mixer := "0x00000000000000000000000000000000000000c1", "0x00000000000000000000000000000000000000c2"
	mx := intel.Indicator{Chain: chain.ETH, Value: mixer, Source: "ofac", Feed: "ofac:eth", Category: intel.CategorySanctions, Confidence: 100, ValidFrom: time.Unix(0, 0)}
	require.NoError(t, mx.Validate())
	x.Put(&mx)
	viaRouter := tr(router, dep, usdt, chain.StandardERC20, li(8), 70)
	viaRouter.TxHash = "0xr"
	viaMixer := tr(mixer, dep, usdt, chain.StandardERC20, li(9), 70)
	viaMixer.TxHash = "0xm"
	clean := tr(router, dep, usdt, chain.StandardERC20, li(10), 70)
	clean.TxHash = "0xc"
	b = &chain.Block{
		Transactions: []chain.Transaction{{Hash: "0xr", From: thief, To: router}, {Hash: "0xm", From: "0x02", To: mixer}, {Hash: "0xc", From: "0x02", To: router}},
		Transfers:    []chain.Transfer{viaRouter, viaMixer, clean},
	}
	got = credit.ETHCandidates(b, reg, credit.Tokens{chain.ETH: {usdt: true}}, screener(x))
	require.Len(t, got, 3)
	require.Len(t, got[0].Hits, 1, "the transaction's sender is listed")
	require.Equal(t, thief, got[0].Hits[0].Address)
	require.Equal(t, []string{router, thief}, got[0].Senders)
	require.Len(t, got[1].Hits, 1, "the contract the transaction called is listed")
	require.Equal(t, mixer, got[1].Hits[0].Address)
	require.Empty(t, got[2].Hits)
	require.Empty(t, got[2].Holds)

	// A transfer whose transaction is missing from the block: its payer
	// cannot be screened whole, so it is held.
	b.Transactions = b.Transactions[:2]
	got = credit.ETHCandidates(b, reg, credit.Tokens{chain.ETH: {usdt: true}}, screener(x))
	require.Contains(t, got[2].Holds[0], "is not in the block's records")
}

// TestBTCCandidates: on a real btcd chain loaded into ClickHouse, the
// senders of a deposit are the addresses of the outputs its transaction
// spends (from the block or resolved in ClickHouse), screened with the
// intel matcher.
func TestBTCCandidates(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	node, wallet, pipe := pipetest.BTC(t, ctx, 41)
	for range 4 {
		require.NoError(t, wallet.Step(6))
	}
	tipHash, err := node.Client().GetBestBlockHash()
	require.NoError(t, err)
	pipe.WaitLoaded(t, ctx, tipHash.String())

	// The last block, as the watcher normalizes it.
	raw, err := node.Client().GetBlock(tipHash)
	require.NoError(t, err)
	net, err := btc.LookupNetwork("regtest")
	require.NoError(t, err)
	h, err := node.Client().GetBlockCount()
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, raw.Serialize(&buf))
	blk, err := btc.Normalize(&net, uint64(h), buf.Bytes(), tipHash)
	require.NoError(t, err)

	// Register every address the block pays (but coinbase), and list the
	// owner of one spent output.
	reg := registry.NewIndex()
	for _, o := range blk.Outputs {
		if o.Address != nil && !o.Coinbase {
			e := registry.Entry{Chain: chain.BTC, Network: "regtest", Address: *o.Address, Account: "u-" + *o.Address}
			require.NoError(t, e.Validate())
			reg.Put(&e)
		}
	}
	var spentTx string
	var spentVout uint32
	for _, s := range blk.Spends {
		spentTx, spentVout = s.PrevTxHash, s.PrevVout
		break
	}
	// The spent output's address, from the node's blocks (no txindex).
	listed := ""
	for hh := h; hh > 0 && listed == ""; hh-- {
		bh, err := node.Client().GetBlockHash(hh)
		require.NoError(t, err)
		b, err := node.Client().GetBlock(bh)
		require.NoError(t, err)
		for _, tx := range b.Transactions {
			if tx.TxHash().String() == spentTx {
				_, addrs, _, err := txscript.ExtractPkScriptAddrs(tx.TxOut[spentVout].PkScript, &chaincfg.RegressionNetParams)
				require.NoError(t, err)
				listed = addrs[0].EncodeAddress()
			}
		}
	}
	require.NotEmpty(t, listed)
	x := intel.NewIndex()
	in := intel.Indicator{Chain: chain.BTC, Network: "regtest", Value: listed, Source: "partner-x", Feed: "csv:partner-x", Category: intel.CategoryRansomware, ValidFrom: time.Unix(0, 0)}
	require.NoError(t, in.Validate())
	x.Put(&in)

	got, err := credit.BTCCandidates(ctx, blk, reg, credit.ClickHouseResolver{Store: pipe.Store}, screener(x))
	require.NoError(t, err)
	require.NotEmpty(t, got)
	held := 0
	for _, c := range got {
		require.NotEmpty(t, c.Senders, c.ID)
		for _, hold := range c.Holds {
			require.NotContains(t, hold, "sender unknown", "every spent output of the loaded range resolves")
		}
		if len(c.Holds) > 0 {
			held++
			require.Contains(t, c.Senders, listed)
		}
	}
	require.Positive(t, held, "the deposit funded by the listed address is held")
	_, err = credit.BTCCandidates(ctx, blk, reg, nil, nil)
	require.NoError(t, err)
}
