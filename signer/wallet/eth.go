package wallet

import (
	"bytes"
	"fmt"
	"math/big"
	"strings"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rlp"

	"github.com/cordonhq/cordon/plugins/sdk"
	"github.com/cordonhq/cordon/signer/intent"
	"github.com/cordonhq/cordon/signer/txcheck"
)

// erc20Transfer is the selector of transfer(address,uint256).
var erc20Transfer = []byte{0xa9, 0x05, 0x9c, 0xbb}

// ETHBuild is an unsigned EIP-1559 transaction: Payload is 0x02 ||
// rlp([chain_id, nonce, max_priority_fee_per_gas, max_fee_per_gas,
// gas_limit, to, value, data, access_list]) (what txcheck.CheckETH
// takes) and SigningHash its keccak256 (what the key signs).
type ETHBuild struct {
	Payload     []byte
	SigningHash [32]byte
	Tx          *types.Transaction
	From        common.Address
	signer      types.Signer
}

// ETHCall is the call in's transfer from the wallet makes: what the
// node's eth_estimateGas is asked about before BuildETH. For the native
// asset To is the destination and Data empty; for an ERC-20 To is the
// token contract, Value 0 and Data transfer(destination, amount).
type ETHCall struct {
	From, To common.Address
	Value    *big.Int
	Data     []byte
	// Limit is the wallet's gas limit of such a transfer (GasNative or
	// GasToken): the most BuildETH gives it.
	Limit uint64
}

// Call is in's transfer from w (validated), checked against the wallet.
func (w ETHWallet) Call(in intent.Intent) (*ETHCall, error) {
	if in.Chain != "eth" || in.Network != w.Network {
		return nil, fmt.Errorf("%w: %s is %s/%s, wallet %s eth/%s", ErrIntent, in.ID, in.Chain, in.Network, w.Name, w.Network)
	}
	from, err := w.Address()
	if err != nil {
		return nil, err
	}
	amount, ok := new(big.Int).SetString(in.Amount, 10)
	if !ok || amount.Sign() <= 0 || amount.String() != in.Amount || amount.BitLen() > 256 {
		return nil, fmt.Errorf("%w: %s: amount %q", ErrIntent, in.ID, in.Amount)
	}
	dst, err := hexAddress(in.Destination)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: destination: %w", ErrIntent, in.ID, err)
	}
	if in.Asset == intent.Native {
		return &ETHCall{From: from, To: dst, Value: amount, Limit: w.GasNative}, nil
	}
	token, err := hexAddress(in.Asset)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: asset: %w", ErrIntent, in.ID, err)
	}
	data := make([]byte, 0, 68)
	data = append(data, erc20Transfer...)
	data = append(data, common.LeftPadBytes(dst.Bytes(), 32)...)
	data = append(data, common.LeftPadBytes(amount.Bytes(), 32)...)
	return &ETHCall{From: from, To: token, Value: new(big.Int), Data: data, Limit: w.GasToken}, nil
}

// GasLimit is the gas limit of a call the node estimates at estimate
// (eth_estimateGas of Call): the estimate and a quarter more, as the
// cost of a call can move between the estimate and the block (storage
// another transaction writes first), but never above the wallet's
// limit; an estimate above the limit is refused (ErrGasCap), and 0 (no
// estimate) is the wallet's limit.
func (c *ETHCall) GasLimit(estimate uint64) (uint64, error) {
	switch {
	case estimate == 0:
		return c.Limit, nil
	case estimate < 21_000:
		return 0, fmt.Errorf("wallet: a gas estimate of %d: every transaction needs 21000", estimate)
	case estimate > c.Limit:
		return 0, fmt.Errorf("%w: the node estimates %d gas, the wallet's limit is %d", ErrGasCap, estimate, c.Limit)
	}
	return min(estimate+estimate/4, c.Limit), nil
}

// BuildETH builds in's transfer from w (validated) with nonce (from the
// NonceLedger), the node's gas estimate of the transfer (see Call and
// GasLimit; 0 gives the wallet's fixed limit), at the node's baseFee and
// tip (wei per gas). The max fee per gas is 2×baseFee + tip, lowered to
// the wallet's cap when above it as long as it still covers baseFee +
// tip; a tip above its cap, or a base fee the cap cannot cover, is
// refused (ErrFeeCap).
func BuildETH(w ETHWallet, in intent.Intent, nonce, estimate uint64, baseFee, tip *big.Int) (*ETHBuild, error) {
	call, err := w.Call(in)
	if err != nil {
		return nil, err
	}
	maxFee, err := weiCap(w.MaxFeePerGas)
	if err != nil {
		return nil, fmt.Errorf("wallet %s: max_fee_per_gas: %w", w.Name, err)
	}
	maxTip, err := weiCap(w.MaxPriorityFeePerGas)
	if err != nil {
		return nil, fmt.Errorf("wallet %s: max_priority_fee_per_gas: %w", w.Name, err)
	}
	if baseFee == nil || tip == nil || baseFee.Sign() < 0 || tip.Sign() < 0 {
		return nil, fmt.Errorf("wallet %s: base fee %v and tip %v", w.Name, baseFee, tip)
	}
	if tip.Cmp(maxTip) > 0 {
		return nil, fmt.Errorf("%w: tip %s wei, the cap of wallet %s is %s", ErrFeeCap, tip, w.Name, maxTip)
	}
	feeCap := new(big.Int).Add(new(big.Int).Lsh(baseFee, 1), tip)
	if feeCap.Cmp(maxFee) > 0 {
		if floor := new(big.Int).Add(baseFee, tip); floor.Cmp(maxFee) > 0 {
			return nil, fmt.Errorf("%w: base fee %s + tip %s wei, the max fee cap of wallet %s is %s", ErrFeeCap, baseFee, tip, w.Name, maxFee)
		}
		feeCap = new(big.Int).Set(maxFee)
	}
	gas, err := call.GasLimit(estimate)
	if err != nil {
		return nil, fmt.Errorf("wallet %s: %s: %w", w.Name, in.ID, err)
	}
	to, value, data := call.To, call.Value, call.Data
	chainID := new(big.Int).SetUint64(w.ChainID)
	tx := types.NewTx(&types.DynamicFeeTx{ChainID: chainID, Nonce: nonce, GasTipCap: new(big.Int).Set(tip), GasFeeCap: feeCap,
		Gas: gas, To: &to, Value: value, Data: data})
	fields := []any{chainID, nonce, tip, feeCap, gas, to, value, data, types.AccessList{}}
	enc, err := rlp.EncodeToBytes(fields)
	if err != nil {
		return nil, fmt.Errorf("wallet %s: encode: %w", w.Name, err)
	}
	payload := append([]byte{types.DynamicFeeTxType}, enc...)
	signer := types.LatestSignerForChainID(chainID)
	h := signer.Hash(tx)
	if !bytes.Equal(crypto.Keccak256(payload), h[:]) {
		return nil, fmt.Errorf("wallet %s: the payload's hash is not go-ethereum's signing hash", w.Name)
	}
	return &ETHBuild{Payload: payload, SigningHash: h, Tx: tx, From: call.From, signer: signer}, nil
}

func hexAddress(s string) (common.Address, error) {
	if len(s) != 42 || !strings.HasPrefix(s, "0x") || !common.IsHexAddress(s) {
		return common.Address{}, fmt.Errorf("%q is not an Ethereum address", s)
	}
	return common.HexToAddress(s), nil
}

// FinalizeETH signs the build with sig (low-S, V the recovery id 0 or
// 1), and checks that the sender go-ethereum recovers is the wallet.
func (b *ETHBuild) FinalizeETH(sig sdk.Signature) (*types.Transaction, error) {
	var s btcec.ModNScalar
	if s.SetBytes(&sig.S) != 0 || s.IsOverHalfOrder() || sig.V > 1 {
		return nil, fmt.Errorf("%w: not low-S or V %d not 0 or 1", ErrSignature, sig.V)
	}
	if !crypto.ValidateSignatureValues(sig.V, new(big.Int).SetBytes(sig.R[:]), new(big.Int).SetBytes(sig.S[:]), true) {
		return nil, fmt.Errorf("%w: R, S or V out of range", ErrSignature)
	}
	raw := make([]byte, 65)
	copy(raw, sig.R[:])
	copy(raw[32:], sig.S[:])
	raw[64] = sig.V
	signed, err := b.Tx.WithSignature(b.signer, raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSignature, err)
	}
	from, err := types.Sender(b.signer, signed)
	if err != nil {
		return nil, fmt.Errorf("%w: recover sender: %w", ErrSignature, err)
	}
	if from != b.From {
		return nil, fmt.Errorf("%w: the signature recovers %s, the wallet is %s", ErrSignature, from.Hex(), b.From.Hex())
	}
	return signed, nil
}

// Rebuild makes the build of a transaction that the second risk layer
// decoded and checked itself (txcheck.CheckETH), from the wallet's own
// copy: the signing hash go-ethereum computes for it must be the one the
// check computed from the bytes, or it is refused.
func (w *ETHWallet) Rebuild(t *txcheck.ETHTx) (*ETHBuild, error) {
	from, err := w.Address()
	if err != nil {
		return nil, err
	}
	if t.ChainID != w.ChainID {
		return nil, fmt.Errorf("wallet %s: chain id %d, the wallet's is %d", w.Name, t.ChainID, w.ChainID)
	}
	to, err := hexAddress(t.To)
	if err != nil {
		return nil, fmt.Errorf("wallet %s: to: %w", w.Name, err)
	}
	chainID := new(big.Int).SetUint64(t.ChainID)
	tx := types.NewTx(&types.DynamicFeeTx{ChainID: chainID, Nonce: t.Nonce, GasTipCap: new(big.Int).Set(t.MaxPriorityFeePerGas),
		GasFeeCap: new(big.Int).Set(t.MaxFeePerGas), Gas: t.Gas, To: &to, Value: new(big.Int).Set(t.Value), Data: bytes.Clone(t.Data)})
	signer := types.LatestSignerForChainID(chainID)
	if h := signer.Hash(tx); h != t.SigningHash {
		return nil, fmt.Errorf("wallet %s: go-ethereum's signing hash %x is not the checked payload's %x", w.Name, h, t.SigningHash)
	}
	return &ETHBuild{SigningHash: t.SigningHash, Tx: tx, From: from, signer: signer}, nil
}
