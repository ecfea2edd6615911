package kafka

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/internal/chain"
)

// TestPartsSplitBySize: a block's outputs are split into parts under the
// byte limit, in order, with deterministic keys; an item larger than the
// limit gets a part of its own; decoding gives back every record.
func TestPartsSplitBySize(t *testing.T) {
	p := &Producer{cfg: Config{PartBytes: 2000}}
	h := chain.Header{Chain: chain.BTC, Network: "mainnet", Height: 7, Hash: "00ab", Time: 99}
	var outs []chain.Output
	for i := range 40 {
		addr := "bc1qexample"
		o := chain.Output{TxHash: "tx", Vout: uint32(i), Address: &addr, ScriptType: "p2wpkh", Amount: chain.AmountFromUint64(uint64(i))}
		if i == 20 {
			o.Address, o.ScriptType, o.Script = nil, "nonstandard", strings.Repeat("ab", 3000) // 6 KB alone
		}
		o.SetBlock(chain.BlockRef{V: chain.SchemaVersion, Chain: h.Chain, Network: h.Network, Height: h.Height, Hash: h.Hash, Time: h.Time})
		outs = append(outs, o)
	}
	msgs, err := p.parts("cordon.outputs", KindOutput, h, len(outs), marshalItem(outs))
	require.NoError(t, err)
	require.Greater(t, len(msgs), 3)
	var got []chain.Output
	for i, m := range msgs {
		part, err := DecodePart(m.Value)
		require.NoError(t, err)
		require.Equal(t, i, part.Part)
		require.Equal(t, len(msgs), part.Parts)
		require.Equal(t, "btc/mainnet/00ab/"+string(rune('0'+i%10)), string(m.Key)[:len("btc/mainnet/00ab/")+1])
		require.Equal(t, part.Key(), string(m.Key))
		items, err := Items[chain.Output](part)
		require.NoError(t, err)
		if len(m.Value) > 2000 {
			require.Len(t, items, 1, "only a single oversized item may pass the limit")
		}
		got = append(got, items...)
	}
	require.Equal(t, outs, got)

	again, err := p.parts("cordon.outputs", KindOutput, h, len(outs), marshalItem(outs))
	require.NoError(t, err)
	require.Equal(t, msgs, again, "parts are deterministic")
}

func TestDecodePartRejects(t *testing.T) {
	for _, tc := range []struct{ raw, want string }{
		{`{"parts":0,"part":0,"items":[{}]}`, "part 0 of 0"},
		{`{"parts":2,"part":2,"items":[{}]}`, "part 2 of 2"},
		{`{"parts":1,"part":0,"items":[]}`, "no items"},
		{`[1,2]`, "decode part"},
	} {
		_, err := DecodePart([]byte(tc.raw))
		require.ErrorContains(t, err, tc.want, tc.raw)
	}
}

func FuzzDecodePart(f *testing.F) {
	f.Add([]byte(`{"v":1,"kind":"output","chain":"btc","network":"mainnet","block_number":1,"block_hash":"00","block_time":1,"part":0,"parts":1,"items":[{"tx_hash":"aa","vout":0,"amount":"5"}]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		part, err := DecodePart(raw)
		if err != nil {
			return
		}
		_, _ = Items[chain.Output](part)
		_, _ = Items[chain.Transfer](part)
		_, _ = Items[chain.Spend](part)
	})
}

// FuzzDecodePartFast: the fast frame reader agrees with encoding/json on
// every frame it accepts; where encoding/json refuses one it accepted, an
// item is invalid JSON (which decoding the items reports).
func FuzzDecodePartFast(f *testing.F) {
	f.Add([]byte(`{"v":1,"kind":"output","chain":"btc","network":"mainnet","block_number":1,"block_hash":"00","block_time":1,"part":0,"parts":1,"items":[{"tx_hash":"aa","vout":0,"amount":"5"}]}`))
	f.Add([]byte(`{"v":1,"kind":"transfer","items":[{"a":"}{\"]"} , {"b":[1,{"c":2}]}],"parts":2}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		fast, ok := decodePartFast(raw)
		if !ok {
			return
		}
		var slow Part
		if err := json.Unmarshal(raw, &slow); err != nil {
			for _, it := range fast.Items {
				if !json.Valid(it) {
					return
				}
			}
			t.Fatalf("fast accepted a frame encoding/json refuses (%v) with valid items: %q", err, raw)
		}
		require.Equal(t, len(slow.Items), len(fast.Items))
		for i := range slow.Items {
			require.JSONEq(t, string(slow.Items[i]), string(fast.Items[i]))
		}
		fast.Items, slow.Items = nil, nil
		require.Equal(t, slow, fast)
	})
}
