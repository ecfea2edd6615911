package chain

import (
	"encoding/json"
	"math/big"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestAmountJSON(t *testing.T) {
	huge, _ := new(big.Int).SetString("115792089237316195423570985008687907853269984665640564039457584007913129639935", 10)
	for _, tc := range []struct {
		a    Amount
		want string
	}{
		{Amount{}, `"0"`},
		{AmountFromUint64(42), `"42"`},
		{AmountFromBig(huge), `"` + huge.String() + `"`},
	} {
		b, err := json.Marshal(tc.a)
		require.NoError(t, err)
		require.Equal(t, tc.want, string(b))
		var back Amount
		require.NoError(t, json.Unmarshal(b, &back))
		require.Equal(t, tc.a, back)
	}
	require.Equal(t, 0, AmountFromBig(huge).Big().Cmp(huge))
	for _, bad := range []string{`42`, `"-1"`, `"1.5"`, `"01"`, `""`, `"1e18"`} {
		var a Amount
		require.Error(t, json.Unmarshal([]byte(bad), &a), bad)
	}
}

func TestKeysAreDeterministic(t *testing.T) {
	li := uint32(7)
	tr := Transfer{Chain: ETH, Network: "mainnet", BlockHash: "0xb", TxHash: "0xt", LogIndex: &li}
	require.Equal(t, "eth/mainnet/0xb/0xt/7", tr.Key())
	tr.LogIndex = nil
	require.Equal(t, "eth/mainnet/0xb/0xt/native", tr.Key())
	ev := BlockEvent{Seq: 12, Header: Header{Chain: ETH, Network: "mainnet"}}
	require.Equal(t, "eth/mainnet/12", ev.Key())
	tx := Transaction{Chain: ETH, Network: "mainnet", BlockHash: "0xb", Hash: "0xt"}
	require.Equal(t, "eth/mainnet/0xb/0xt", tx.Key())
}

func TestStreamStateApply(t *testing.T) {
	h := func(n uint64, hash string) Header { return Header{Height: n, Hash: hash} }
	var s StreamState
	for _, ev := range []BlockEvent{
		{Type: BlockAdded, Header: h(1, "a1")},
		{Type: BlockAdded, Header: h(2, "a2")},
		{Type: BlockRemoved, Header: h(2, "a2")},
		{Type: BlockAdded, Header: h(2, "b2")},
		{Type: BlockRemoved, Header: h(9, "zz")}, // not the tip: ignored
	} {
		s.Apply(ev)
	}
	require.Equal(t, []Header{h(1, "a1"), h(2, "b2")}, s.Chain)
}
