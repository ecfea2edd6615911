package eth

import (
	"fmt"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/params"
	"github.com/ethereum/go-ethereum/trie"
)

// byzantiumBlock is the first block whose receipts carry a status instead
// of a post-state root. Only Ethereum mainnet has blocks before it; every
// other chain id is taken to have had Byzantium from genesis (its
// receipts must all have a status).
func byzantiumBlock(chainID uint64) uint64 {
	if chainID == params.MainnetChainConfig.ChainID.Uint64() {
		return params.MainnetChainConfig.ByzantiumBlock.Uint64()
	}
	return 0
}

// checkStatus refuses a receipt without status at or after Byzantium: its
// transaction's success is unknown, so it must never count as a success.
func checkStatus(height, byzantium uint64, rcs []rpcReceipt) error {
	if height < byzantium {
		return nil
	}
	for i := range rcs {
		if rcs[i].Status == nil {
			return fmt.Errorf("receipt %d (%s) has no status: a receipt after Byzantium (block %d) must have one",
				i, trunc(rcs[i].TransactionHash), byzantium)
		}
	}
	return nil
}

// verifyReceiptsRoot rebuilds the consensus receipts from the reply with
// go-ethereum's types — status (or post-state root before Byzantium),
// cumulative gas, bloom, logs and the transaction type, taken from the
// transaction the transactions root covers — and checks that they hash to
// the header's receiptsRoot. With the header hash check, a receipt whose
// status, logs (a token transfer's contract, sender, recipient, amount) or
// gas was altered, dropped or injected is refused. Each receipt's gasUsed
// must be its share of the cumulative gas. Fields outside the consensus
// receipt (effectiveGasPrice, contractAddress, logIndex) are not covered.
func verifyReceiptsRoot(b *rpcBlock, rcs []rpcReceipt, byzantium uint64) error {
	if len(rcs) != len(b.Transactions) {
		return fmt.Errorf("%d receipts for %d transactions", len(rcs), len(b.Transactions))
	}
	height, err := parseQuantity("number", b.Number)
	if err != nil {
		return err
	}
	list := make(types.Receipts, len(rcs))
	var prevCum uint64
	for i := range rcs {
		r, cum, err := consensusReceipt(&b.Transactions[i], &rcs[i], height >= byzantium)
		if err != nil {
			return fmt.Errorf("receipt %d (%s): %w", i, trunc(rcs[i].TransactionHash), err)
		}
		if cum < prevCum {
			return fmt.Errorf("receipt %d: cumulativeGasUsed %d below the previous receipt's %d", i, cum, prevCum)
		}
		used, err := parseQuantity("gasUsed", rcs[i].GasUsed)
		if err != nil {
			return fmt.Errorf("receipt %d: %w", i, err)
		}
		if used != cum-prevCum {
			return fmt.Errorf("receipt %d: gasUsed %d is not its share %d of the cumulative gas", i, used, cum-prevCum)
		}
		prevCum = cum
		list[i] = r
	}
	root := types.DeriveSha(list, trie.NewStackTrie(nil))
	if !strings.EqualFold(root.Hex(), b.ReceiptsRoot) {
		return fmt.Errorf("receipts hash to root %s but the header has receiptsRoot %s", root.Hex(), trunc(b.ReceiptsRoot))
	}
	return nil
}

func consensusReceipt(tx *rpcTx, rc *rpcReceipt, byzantium bool) (*types.Receipt, uint64, error) {
	r := &types.Receipt{}
	if tx.Type != nil {
		ty, err := parseQuantity("transaction type", *tx.Type)
		if err != nil {
			return nil, 0, err
		}
		if ty > 0xff {
			return nil, 0, fmt.Errorf("transaction type %d: out of range", ty)
		}
		r.Type = uint8(ty)
	}
	if rc.Type != nil {
		ty, err := parseQuantity("type", *rc.Type)
		if err != nil {
			return nil, 0, err
		}
		if ty != uint64(r.Type) {
			return nil, 0, fmt.Errorf("type %d, but its transaction has type %d", ty, r.Type)
		}
	}
	switch {
	case rc.Status != nil:
		st, err := parseQuantity("status", *rc.Status)
		if err != nil {
			return nil, 0, err
		}
		if st > 1 {
			return nil, 0, fmt.Errorf("status %d: want 0 or 1", st)
		}
		r.Status = st
	case byzantium:
		return nil, 0, fmt.Errorf("no status (required after Byzantium)")
	case rc.Root != nil:
		root, err := normHex("root", *rc.Root, 32)
		if err != nil {
			return nil, 0, err
		}
		r.PostState = common.FromHex(root)
	default:
		return nil, 0, fmt.Errorf("neither status nor post-state root")
	}
	cum, err := parseQuantity("cumulativeGasUsed", rc.CumulativeGasUsed)
	if err != nil {
		return nil, 0, err
	}
	r.CumulativeGasUsed = cum
	bloom, err := hexutil.Decode(rc.LogsBloom)
	if err != nil || len(bloom) != types.BloomByteLength {
		return nil, 0, fmt.Errorf("logsBloom: want %d hex bytes", types.BloomByteLength)
	}
	r.Bloom = types.BytesToBloom(bloom)
	r.Logs = make([]*types.Log, len(rc.Logs))
	for j := range rc.Logs {
		lg := &rc.Logs[j]
		addr, err := normAddress("log address", lg.Address)
		if err != nil {
			return nil, 0, fmt.Errorf("log %d: %w", j, err)
		}
		data, err := hexutil.Decode(lg.Data)
		if err != nil {
			return nil, 0, fmt.Errorf("log %d data: %w", j, err)
		}
		topics := make([]common.Hash, len(lg.Topics))
		for k, tp := range lg.Topics {
			h, err := normHash("topic", tp)
			if err != nil {
				return nil, 0, fmt.Errorf("log %d: %w", j, err)
			}
			topics[k] = common.HexToHash(h)
		}
		r.Logs[j] = &types.Log{Address: common.HexToAddress(addr), Topics: topics, Data: data}
	}
	return r, cum, nil
}
