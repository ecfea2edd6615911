package chain

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func seedRecords() [][]byte {
	li := uint32(7)
	addr := "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"
	tr := Transfer{V: 1, Chain: ETH, Network: "mainnet", Asset: "native", Standard: "native", TxHash: "0xab", TxIndex: 3, LogIndex: &li,
		From: "0x1", To: "0x2", Amount: AmountFromUint64(1e18), TokenID: "5", BlockHeight: 9, BlockHash: "0xbb", BlockTime: 1700000000}
	out := Output{V: 1, Chain: BTC, Network: "mainnet", TxHash: "aa", TxIndex: 1, Vout: 2, Address: &addr, ScriptType: "p2wpkh",
		Amount: AmountFromUint64(5000), Coinbase: true, BlockHeight: 1, BlockHash: "bb", BlockTime: 1}
	sp := Spend{V: 1, Chain: BTC, Network: "mainnet", TxHash: "aa", TxIndex: 1, Vin: 0, PrevTxHash: "cc", PrevVout: 4, Sequence: 0xffffffff}
	full := func(v any) []byte { b, _ := json.Marshal(v); return b }
	return [][]byte{tr.AppendItemJSON(nil), full(tr), out.AppendItemJSON(nil), full(out), sp.AppendItemJSON(nil), full(sp),
		[]byte(`{"log_index":null,"amount":"0"}`), []byte(`{"address":null,"coinbase":false}`), []byte(` {} `),
		[]byte(`{"Asset":"x"}`), []byte(`{"amount":"01"}`), []byte(`{"tx_index":4294967296}`), []byte(`{"v":-1}`),
		[]byte(`{"from":"caf\u00e9"}`), []byte(`{"to":"a"} x`), []byte(`{"vout":1.0}`)}
}

// FuzzDecodeJSON: the fast decoders give exactly encoding/json's result
// and error on any input.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range seedRecords() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var t1, t2 Transfer
		e1, e2 := t1.DecodeJSON(b), json.Unmarshal(b, &t2)
		require.Equal(t, e2 == nil, e1 == nil, "%q: %v / %v", b, e1, e2)
		require.Equal(t, t2, t1)
		var o1, o2 Output
		e1, e2 = o1.DecodeJSON(b), json.Unmarshal(b, &o2)
		require.Equal(t, e2 == nil, e1 == nil, "%q: %v / %v", b, e1, e2)
		require.Equal(t, o2, o1)
		var s1, s2 Spend
		e1, e2 = s1.DecodeJSON(b), json.Unmarshal(b, &s2)
		require.Equal(t, e2 == nil, e1 == nil, "%q: %v / %v", b, e1, e2)
		require.Equal(t, s2, s1)
	})
}

func TestDecodeJSONSeeds(t *testing.T) {
	for _, s := range seedRecords() {
		var t1, t2 Transfer
		require.Equal(t, json.Unmarshal(s, &t2) == nil, t1.DecodeJSON(s) == nil, string(s))
		require.Equal(t, t2, t1, string(s))
	}
}
