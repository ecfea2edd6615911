package txcheck

import (
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/signer/intent"
)

var (
	ethPolicy = ETHPolicy{Network: "mainnet", ChainID: 1, MaxGas: 100_000, MaxFeePerGas: big.NewInt(200e9), MaxPriorityFeePerGas: big.NewInt(5e9)}
	dstAddr   = common.HexToAddress("0x098b716b8aaf21512996dc57eb0615e2383e2f96")
	usdc      = common.HexToAddress("0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48")
	stranger  = common.HexToAddress("0x1111111111111111111111111111111111111111")
)

func nativeIntent() intent.Intent {
	return intent.Intent{ID: "wd_1", Chain: "eth", Network: "mainnet", Asset: "native", Amount: "1500000000000000000", Destination: dstAddr.Hex()}
}

func tokenIntent() intent.Intent {
	return intent.Intent{ID: "wd_2", Chain: "eth", Network: "mainnet", Asset: usdc.Hex(), Amount: "2500000000", Destination: dstAddr.Hex()}
}

// dyn is an unsigned EIP-1559 transaction as go-ethereum builds it.
func dyn(to common.Address, value *big.Int, data []byte) *types.DynamicFeeTx {
	return &types.DynamicFeeTx{ChainID: big.NewInt(1), Nonce: 7, GasTipCap: big.NewInt(2e9), GasFeeCap: big.NewInt(100e9), Gas: 60_000,
		To: &to, Value: value, Data: data}
}

// payload is the unsigned payload go-ethereum signs: 0x02 || rlp of the
// nine fields.
func payload(t *testing.T, d *types.DynamicFeeTx) []byte {
	t.Helper()
	b, err := rlp.EncodeToBytes([]any{d.ChainID, d.Nonce, d.GasTipCap, d.GasFeeCap, d.Gas, d.To, d.Value, d.Data, d.AccessList})
	require.NoError(t, err)
	return append([]byte{0x02}, b...)
}

func transferData(to common.Address, amount *big.Int) []byte {
	d := append([]byte{}, erc20Transfer...)
	d = append(d, common.LeftPadBytes(to.Bytes(), 32)...)
	return append(d, common.LeftPadBytes(amount.Bytes(), 32)...)
}

func amountOf(in intent.Intent) *big.Int {
	v, _ := new(big.Int).SetString(in.Amount, 10)
	return v
}

// TestCheckETHAccepts: a native and an ERC-20 transfer that are exactly
// their intents pass, and the hash a signer is asked to sign is the one
// go-ethereum's signer computes for the transaction; a signature over it
// recovers the sender in go-ethereum (code no one here wrote).
func TestCheckETHAccepts(t *testing.T) {
	key, err := crypto.GenerateKey()
	require.NoError(t, err)
	for _, c := range []struct {
		in intent.Intent
		d  *types.DynamicFeeTx
	}{
		{nativeIntent(), dyn(dstAddr, amountOf(nativeIntent()), nil)},
		{tokenIntent(), dyn(usdc, new(big.Int), transferData(dstAddr, amountOf(tokenIntent())))},
	} {
		raw := payload(t, c.d)
		tx, err := CheckETH(raw, c.in, ethPolicy)
		require.NoError(t, err)
		signer := types.LatestSignerForChainID(big.NewInt(1))
		gtx := types.NewTx(c.d)
		require.Equal(t, signer.Hash(gtx), common.Hash(tx.SigningHash), "the hash signed is go-ethereum's signing hash")
		sig, err := crypto.Sign(tx.SigningHash[:], key)
		require.NoError(t, err)
		signed, err := gtx.WithSignature(signer, sig)
		require.NoError(t, err)
		from, err := types.Sender(signer, signed)
		require.NoError(t, err)
		require.Equal(t, crypto.PubkeyToAddress(key.PublicKey), from)
		require.Equal(t, uint64(7), tx.Nonce)
	}
}

// TestTamperedETH: every tampering of the suite (and a few
// more) is refused with its reason, before anything is signed.
func TestTamperedETH(t *testing.T) {
	nat, tok := nativeIntent(), tokenIntent()
	na, ta := amountOf(nat), amountOf(tok)
	good := payload(t, dyn(dstAddr, na, nil))
	cases := []struct {
		name string
		in   intent.Intent
		raw  []byte
		code string
	}{
		// (the strictness cases say why in their message: checked below)
		{"destination swapped", nat, payload(t, dyn(stranger, na, nil)), CodeDestination},
		{"amount changed", nat, payload(t, dyn(dstAddr, new(big.Int).Add(na, big.NewInt(1)), nil)), CodeAmount},
		{"calldata on a native transfer", nat, payload(t, dyn(dstAddr, na, []byte{1})), CodeCall},
		{"ERC-20 recipient changed inside the calldata, to unchanged", tok, payload(t, dyn(usdc, new(big.Int), transferData(stranger, ta))), CodeDestination},
		{"ERC-20 amount changed", tok, payload(t, dyn(usdc, new(big.Int), transferData(dstAddr, new(big.Int).Mul(ta, big.NewInt(10))))), CodeAmount},
		{"non-zero value on a token call", tok, payload(t, dyn(usdc, big.NewInt(1), transferData(dstAddr, ta))), CodeAsset},
		{"another token contract", tok, payload(t, dyn(stranger, new(big.Int), transferData(dstAddr, ta))), CodeAsset},
		{"calldata with trailing bytes", tok, payload(t, dyn(usdc, new(big.Int), append(transferData(dstAddr, ta), 0))), CodeCall},
		{"a call not in the intent (approve)", tok, payload(t, dyn(usdc, new(big.Int), append([]byte{0x09, 0x5e, 0xa7, 0xb3}, transferData(dstAddr, ta)[4:]...))), CodeCall},
		{"high bytes in the recipient word", tok, payload(t, dyn(usdc, new(big.Int), func() []byte {
			d := transferData(dstAddr, ta)
			d[4] = 1
			return d
		}())), CodeCall},
		{"wrong chain id", nat, func() []byte { d := dyn(dstAddr, na, nil); d.ChainID = big.NewInt(5); return payload(t, d) }(), CodeChain},
		{"intent of another network", intent.Intent{ID: "wd_3", Chain: "eth", Network: "sepolia", Asset: "native", Amount: nat.Amount, Destination: nat.Destination}, good, CodeChain},
		{"fee above the cap", nat, func() []byte { d := dyn(dstAddr, na, nil); d.GasFeeCap = big.NewInt(300e9); return payload(t, d) }(), CodeFee},
		{"tip above the cap", nat, func() []byte { d := dyn(dstAddr, na, nil); d.GasTipCap = big.NewInt(6e9); return payload(t, d) }(), CodeFee},
		{"gas above the cap", nat, func() []byte { d := dyn(dstAddr, na, nil); d.Gas = 200_000; return payload(t, d) }(), CodeFee},
		{"an access list", nat, func() []byte {
			d := dyn(dstAddr, na, nil)
			d.AccessList = types.AccessList{{Address: stranger}}
			return payload(t, d)
		}(), CodeCall},
		{"trailing bytes after the transaction", nat, append(append([]byte{}, good...), 0x80), CodeMalformed},
		{"a legacy transaction", nat, good[1:], CodeMalformed},
		{"contract creation", nat, func() []byte {
			b, err := rlp.EncodeToBytes([]any{uint64(1), uint64(7), big.NewInt(2e9), big.NewInt(100e9), uint64(60000), []byte{}, na, []byte{}, types.AccessList{}})
			require.NoError(t, err)
			return append([]byte{2}, b...)
		}(), CodeMalformed},
		{"a non-canonical integer (leading zero)", nat, func() []byte {
			b, err := rlp.EncodeToBytes([]any{[]byte{0, 1}, uint64(7), big.NewInt(2e9), big.NewInt(100e9), uint64(60000), dstAddr, na, []byte{}, types.AccessList{}})
			require.NoError(t, err)
			return append([]byte{2}, b...)
		}(), CodeMalformed},
		{"a byte wrapped as a string", nat, func() []byte {
			b := append([]byte{}, good...)
			// the list header, then chain id 0x01; write it 0x81 0x01.
			i := 2
			if b[1] > 0xf7 {
				i = 2 + int(b[1]-0xf7)
			}
			out := append(append(append([]byte{}, b[:i]...), 0x81), b[i:]...)
			out[1]++ // one byte longer (a short list)
			return out
		}(), CodeMalformed},
		{"a signed transaction (12 fields)", nat, func() []byte {
			b, err := rlp.EncodeToBytes([]any{uint64(1), uint64(7), big.NewInt(2e9), big.NewInt(100e9), uint64(60000), dstAddr, na, []byte{}, types.AccessList{},
				uint64(0), big.NewInt(1), big.NewInt(1)})
			require.NoError(t, err)
			return append([]byte{2}, b...)
		}(), CodeMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := CheckETH(c.raw, c.in, ethPolicy)
			require.ErrorIs(t, err, ErrRefused)
			require.Equal(t, c.code, CodeOf(err), "%v", err)
			switch c.name {
			case "a byte wrapped as a string", "a non-canonical integer (leading zero)":
				require.ErrorContains(t, err, "not canonical")
			case "trailing bytes after the transaction":
				require.ErrorContains(t, err, "after the value")
			case "a signed transaction (12 fields)":
				require.ErrorContains(t, err, "9 fields")
			}
		})
	}
}

// FuzzCheckETH: arbitrary bytes never panic the decoder, and whatever
// it accepts re-encodes, as go-ethereum encodes the same fields, to the
// same bytes (strictness: one encoding per transaction).
func FuzzCheckETH(f *testing.F) {
	d := dyn(dstAddr, amountOf(nativeIntent()), nil)
	b, _ := rlp.EncodeToBytes([]any{d.ChainID, d.Nonce, d.GasTipCap, d.GasFeeCap, d.Gas, d.To, d.Value, d.Data, d.AccessList})
	f.Add(append([]byte{2}, b...))
	f.Add([]byte{2, 0xc0})
	f.Fuzz(func(t *testing.T, raw []byte) {
		if len(raw) == 0 || raw[0] != 2 {
			return
		}
		tx, err := decodeETH(raw)
		if err != nil || tx.accessList != 0 {
			return
		}
		to := common.HexToAddress(tx.To)
		again, err := rlp.EncodeToBytes([]any{new(big.Int).SetUint64(tx.ChainID), tx.Nonce, tx.MaxPriorityFeePerGas, tx.MaxFeePerGas, tx.Gas, &to, tx.Value,
			tx.Data, types.AccessList{}})
		if err != nil {
			t.Fatal(err)
		}
		if string(append([]byte{2}, again...)) != string(raw) {
			t.Fatalf("accepted %x, which re-encodes as %x", raw, append([]byte{2}, again...))
		}
	})
}
