package chain

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	addr := "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"
	amt, _ := ParseAmount("2100000000000000")
	outs := []Output{
		{V: 1, Chain: BTC, Network: "mainnet", TxHash: "ab", TxIndex: 3, Vout: 7, Address: &addr, ScriptType: "p2wpkh",
			Amount: amt, Coinbase: true, BlockHeight: 840000, BlockHash: "00ff", BlockTime: 1713571767},
		{V: 1, Chain: BTC, Network: `odd "net" <&> \ é` + "\x01\u2028\xff", ScriptType: "op_return", Script: "6a0b"},
	}
	for i := range outs {
		want, err := json.Marshal(&outs[i])
		require.NoError(t, err)
		require.Equal(t, string(want), string(outs[i].AppendJSON(nil)))
	}
	sp := Spend{V: 1, Chain: BTC, Network: "simnet", TxHash: "cd", TxIndex: 1, Vin: 2, PrevTxHash: "ef", PrevVout: 4294967295,
		Sequence: 4294967293, BlockHeight: 5, BlockHash: "aa", BlockTime: -1}
	want, err := json.Marshal(&sp)
	require.NoError(t, err)
	require.Equal(t, string(want), string(sp.AppendJSON(nil)))
}

func FuzzAppendJSONString(f *testing.F) {
	f.Add("plain")
	f.Add("<script>\"\\\x00\u2029\xfe")
	f.Add("\b\f\r\n\t")
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		require.NoError(t, err)
		require.Equal(t, string(want), string(appendJSONString(nil, s)))
	})
}

// TestItemJSONRoundTrip: an item decoded and given its block's fields back
// is the record it came from.
func TestItemJSONRoundTrip(t *testing.T) {
	addr := "sb1qcc5pc2tvyrfn6relx8dnsvs9e532f3txgml8hg"
	amt, _ := ParseAmount("5000000000")
	ref := BlockRef{V: 1, Chain: BTC, Network: "simnet", Height: 9, Hash: "77", Time: 5}
	o := Output{TxHash: "aa", TxIndex: 2, Vout: 1, Address: &addr, ScriptType: "p2wpkh", Amount: amt, Coinbase: true}
	o.SetBlock(ref)
	var got Output
	require.NoError(t, json.Unmarshal(o.AppendItemJSON(nil), &got))
	got.SetBlock(ref)
	require.Equal(t, o, got)
	sp := Spend{TxHash: "bb", TxIndex: 1, Vin: 3, PrevTxHash: "cc", PrevVout: 2, Sequence: 7}
	sp.SetBlock(ref)
	var gs Spend
	require.NoError(t, json.Unmarshal(sp.AppendItemJSON(nil), &gs))
	gs.SetBlock(ref)
	require.Equal(t, sp, gs)
}

func TestTransactionAndTransferItems(t *testing.T) {
	ref := BlockRef{V: 1, Chain: ETH, Network: "mainnet", Height: 19431837, Hash: "0x4c", Time: 1710402179}
	fee, _ := ParseAmount("10686720718366911")
	gp, _ := ParseAmount("44330915133")
	one, zero := uint8(1), uint8(0)
	li := uint32(17)
	for _, tx := range []Transaction{
		{Hash: "0xe9", Index: 4, From: "0xae", To: "0x6b", Value: gp, Fee: &fee, Nonce: 2240107, Gas: 241067, GasUsed: 241067,
			GasPrice: gp, Type: 2, Status: &one, MethodID: "0x7f381ce2", InputSize: 58, LogCount: 3},
		{Hash: "0x01", Status: &zero, ContractAddress: "0xcc"},
		{Hash: "ab", Index: 0, Value: fee, Size: 250, VSize: 168, Weight: 670, Version: 2, LockTime: 840000, InputCount: 1, OutputCount: 2, Coinbase: true},
	} {
		tx.SetBlock(ref)
		var got Transaction
		require.NoError(t, json.Unmarshal(tx.AppendItemJSON(nil), &got))
		got.SetBlock(ref)
		require.Equal(t, tx, got)
		// The full JSON form without the block fields has the same keys.
		var full, item map[string]any
		b, _ := json.Marshal(&tx)
		require.NoError(t, json.Unmarshal(b, &full))
		require.NoError(t, json.Unmarshal(tx.AppendItemJSON(nil), &item))
		for _, k := range []string{"v", "chain", "network", "block_number", "block_hash", "block_time"} {
			delete(full, k)
		}
		require.Equal(t, full, item)
	}
	for _, tr := range []Transfer{
		{Asset: "native", Standard: "native", TxHash: "0x1", TxIndex: 2, From: "0xa", To: "0xb", Amount: fee},
		{Asset: "0xt", Standard: "erc721", TxHash: "0x2", LogIndex: &li, From: "0xa", To: "0xb", Amount: AmountFromUint64(1), TokenID: "77"},
	} {
		tr.SetBlock(ref)
		var got Transfer
		require.NoError(t, json.Unmarshal(tr.AppendItemJSON(nil), &got))
		got.SetBlock(ref)
		require.Equal(t, tr, got)
	}
}
