package txcheck

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/cordonhq/cordon/signer/intent"
)

// ETHPolicy is what the second risk layer holds of an Ethereum network:
// its own copy, never the builder's.
type ETHPolicy struct {
	// Network is the intents' network name and ChainID its chain id.
	Network string
	ChainID uint64
	// MaxGas, MaxFeePerGas and MaxPriorityFeePerGas cap the gas limit
	// and the fees (wei) of any transaction.
	MaxGas               uint64
	MaxFeePerGas         *big.Int
	MaxPriorityFeePerGas *big.Int
}

// ETHTx is a checked unsigned EIP-1559 transaction.
type ETHTx struct {
	ChainID              uint64
	Nonce                uint64
	MaxPriorityFeePerGas *big.Int
	MaxFeePerGas         *big.Int
	Gas                  uint64
	To                   string // lowercase 0x hex
	Value                *big.Int
	Data                 []byte
	// SigningHash is keccak256 of the payload: the 32 bytes a signer
	// signs, and only for this transaction.
	SigningHash [32]byte
	accessList  int
}

// erc20Transfer is the selector of transfer(address,uint256).
var erc20Transfer = []byte{0xa9, 0x05, 0x9c, 0xbb}

const dynamicFeeTxType = 0x02

// CheckETH decodes raw, an unsigned EIP-1559 transaction (0x02 ||
// rlp([chain_id, nonce, max_priority_fee_per_gas, max_fee_per_gas,
// gas_limit, to, value, data, access_list])), strictly, and checks that
// it carries out exactly in under p: the chain id; for the native asset,
// to the destination, value the amount and no calldata; for an ERC-20
// (the intent's asset, a contract address), to the contract, value 0 and
// calldata exactly transfer(destination, amount); no access list; gas
// and fees within their caps.
func CheckETH(raw []byte, in intent.Intent, p ETHPolicy) (*ETHTx, error) {
	if in.Chain != "eth" || in.Network != p.Network {
		return nil, refuse(CodeChain, "the intent is of %s/%s, the policy of eth/%s", in.Chain, in.Network, p.Network)
	}
	if len(raw) == 0 || raw[0] != dynamicFeeTxType {
		return nil, refuse(CodeMalformed, "not an EIP-1559 transaction (type 0x02)")
	}
	tx, err := decodeETH(raw)
	if err != nil {
		return nil, &Refusal{Code: CodeMalformed, Err: err}
	}
	if tx.accessList != 0 {
		return nil, refuse(CodeCall, "an access list of %d entries: a withdrawal names none", tx.accessList)
	}
	if tx.ChainID != p.ChainID {
		return nil, refuse(CodeChain, "chain id %d, the network's is %d", tx.ChainID, p.ChainID)
	}
	if tx.Gas > p.MaxGas {
		return nil, refuse(CodeFee, "gas limit %d above the cap %d", tx.Gas, p.MaxGas)
	}
	if p.MaxFeePerGas == nil || tx.MaxFeePerGas.Cmp(p.MaxFeePerGas) > 0 {
		return nil, refuse(CodeFee, "max fee per gas %s wei above the cap %v", tx.MaxFeePerGas, p.MaxFeePerGas)
	}
	if p.MaxPriorityFeePerGas == nil || tx.MaxPriorityFeePerGas.Cmp(p.MaxPriorityFeePerGas) > 0 {
		return nil, refuse(CodeFee, "priority fee per gas %s wei above the cap %v", tx.MaxPriorityFeePerGas, p.MaxPriorityFeePerGas)
	}
	if tx.MaxPriorityFeePerGas.Cmp(tx.MaxFeePerGas) > 0 {
		return nil, refuse(CodeFee, "priority fee %s above the max fee %s", tx.MaxPriorityFeePerGas, tx.MaxFeePerGas)
	}
	amount, ok := new(big.Int).SetString(in.Amount, 10)
	if !ok || amount.Sign() <= 0 {
		return nil, refuse(CodeAmount, "the intent's amount %q is not a positive integer", in.Amount)
	}
	dst, err := ethAddress(in.Destination)
	if err != nil {
		return nil, refuse(CodeDestination, "the intent's destination: %v", err)
	}
	if in.Asset == "native" {
		switch {
		case tx.To != dst:
			return nil, refuse(CodeDestination, "to %s, the intent's destination is %s", tx.To, dst)
		case tx.Value.Cmp(amount) != 0:
			return nil, refuse(CodeAmount, "value %s wei, the intent's amount is %s", tx.Value, amount)
		case len(tx.Data) != 0:
			return nil, refuse(CodeCall, "%d bytes of calldata on a native transfer", len(tx.Data))
		}
		return tx, nil
	}
	token, err := ethAddress(in.Asset)
	if err != nil {
		return nil, refuse(CodeAsset, "the intent's asset %q: want native or a token contract", in.Asset)
	}
	if tx.To != token {
		return nil, refuse(CodeAsset, "to %s, the intent's token contract is %s", tx.To, token)
	}
	if tx.Value.Sign() != 0 {
		return nil, refuse(CodeAsset, "value %s wei on a token transfer", tx.Value)
	}
	if err := checkTransfer(tx.Data, dst, amount); err != nil {
		return nil, err
	}
	return tx, nil
}

// checkTransfer checks that data is exactly transfer(dst, amount).
func checkTransfer(data []byte, dst string, amount *big.Int) error {
	if len(data) < 4 || !bytes.Equal(data[:4], erc20Transfer) {
		return refuse(CodeCall, "calldata is not transfer(address,uint256) (selector %x)", data[:min(4, len(data))])
	}
	if len(data) != 4+32+32 {
		return refuse(CodeCall, "transfer calldata of %d bytes, want 68", len(data))
	}
	word := data[4:36]
	if !bytes.Equal(word[:12], make([]byte, 12)) {
		return refuse(CodeCall, "the recipient word has high bytes set: %x", word[:12])
	}
	if to := "0x" + hex.EncodeToString(word[12:]); to != dst {
		return refuse(CodeDestination, "transfer to %s, the intent's destination is %s", to, dst)
	}
	if v := new(big.Int).SetBytes(data[36:68]); v.Cmp(amount) != 0 {
		return refuse(CodeAmount, "transfer of %s, the intent's amount is %s", v, amount)
	}
	return nil
}

func ethAddress(s string) (string, error) {
	s = strings.ToLower(s)
	if len(s) != 42 || !strings.HasPrefix(s, "0x") {
		return "", fmt.Errorf("%q is not an Ethereum address", s)
	}
	if _, err := hex.DecodeString(s[2:]); err != nil {
		return "", fmt.Errorf("%q is not an Ethereum address", s)
	}
	return s, nil
}

// decodeETH reads the payload's nine fields strictly.
func decodeETH(raw []byte) (*ETHTx, error) {
	it, err := decodeRLP(raw[1:])
	if err != nil {
		return nil, err
	}
	if !it.isL || len(it.list) != 9 {
		return nil, fmt.Errorf("%w: want a list of 9 fields (an unsigned EIP-1559 transaction)", errRLP)
	}
	f := it.list
	tx := &ETHTx{SigningHash: [32]byte(crypto.Keccak256(raw))}
	u64 := func(i int, what string) (uint64, error) {
		v, err := f[i].uint(what, 64)
		if err != nil {
			return 0, err
		}
		return v.Uint64(), nil
	}
	if tx.ChainID, err = u64(0, "chain_id"); err != nil {
		return nil, err
	}
	if tx.Nonce, err = u64(1, "nonce"); err != nil {
		return nil, err
	}
	if tx.MaxPriorityFeePerGas, err = f[2].uint("max_priority_fee_per_gas", 256); err != nil {
		return nil, err
	}
	if tx.MaxFeePerGas, err = f[3].uint("max_fee_per_gas", 256); err != nil {
		return nil, err
	}
	if tx.Gas, err = u64(4, "gas_limit"); err != nil {
		return nil, err
	}
	to, err := f[5].bytes("to")
	if err != nil {
		return nil, err
	}
	if len(to) != 20 {
		return nil, fmt.Errorf("%w: to has %d bytes, want 20 (a contract creation is never a withdrawal)", errRLP, len(to))
	}
	tx.To = "0x" + hex.EncodeToString(to)
	if tx.Value, err = f[6].uint("value", 256); err != nil {
		return nil, err
	}
	if tx.Data, err = f[7].bytes("data"); err != nil {
		return nil, err
	}
	if !f[8].isL {
		return nil, fmt.Errorf("%w: access_list is not a list", errRLP)
	}
	tx.accessList = len(f[8].list)
	return tx, nil
}
