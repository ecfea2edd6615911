package wallet

import (
	"math/big"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/signer/intent"
)

func TestETHCallGasLimit(t *testing.T) {
	c := &ETHCall{Limit: 100_000}
	for _, tc := range []struct {
		name     string
		estimate uint64
		want     uint64
		err      error
	}{
		{"no estimate: the wallet's limit", 0, 100_000, nil},
		{"a plain transfer", 21_000, 26_250, nil},
		{"a quarter more", 60_000, 75_000, nil},
		{"the margin stops at the limit", 90_000, 100_000, nil},
		{"exactly the limit", 100_000, 100_000, nil},
		{"above the limit", 100_001, 0, ErrGasCap},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.GasLimit(tc.estimate)
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
	_, err := c.GasLimit(20_999)
	require.Error(t, err, "below the intrinsic gas of any transaction")
	native := &ETHCall{Limit: 21_000}
	got, err := native.GasLimit(21_000)
	require.NoError(t, err)
	require.EqualValues(t, 21_000, got, "no margin above a native limit of 21000")
}

func TestETHBuildGas(t *testing.T) {
	k := testKey("eth")
	w := ETHWallet{Name: "hot", Network: "devnet", ChainID: 1337, Key: ref("hot", k), GasNative: 21_000, GasToken: 100_000,
		MaxFeePerGas: "100000000000", MaxPriorityFeePerGas: "2000000000"}
	in := ethIntentOf("native", "5")
	b, err := BuildETH(w, in, 0, 0, bigInt(1e9), bigInt(1e9))
	require.NoError(t, err)
	require.EqualValues(t, 21_000, b.Tx.Gas())
	tok := ethIntentOf("0x00000000000000000000000000000000000000c0", "5")
	b, err = BuildETH(w, tok, 0, 52_000, bigInt(1e9), bigInt(1e9))
	require.NoError(t, err)
	require.EqualValues(t, 65_000, b.Tx.Gas())
	_, err = BuildETH(w, tok, 0, 148_000, bigInt(1e9), bigInt(1e9))
	require.ErrorIs(t, err, ErrGasCap)
	_, err = BuildETH(w, in, 0, 30_000, bigInt(1e9), bigInt(1e9))
	require.ErrorIs(t, err, ErrGasCap, "a contract destination needing more than gas_native")
}

func bigInt(v int64) *big.Int { return big.NewInt(v) }

func ethIntentOf(asset, amount string) intent.Intent {
	return intent.Intent{ID: "wd_gas", Chain: "eth", Network: "devnet", Asset: asset, Amount: amount,
		Destination: "0x00000000000000000000000000000000000000d5"}
}
