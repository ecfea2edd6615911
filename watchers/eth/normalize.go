package eth

import (
	"fmt"
	"strings"

	"github.com/holiman/uint256"

	"github.com/cordonhq/cordon/internal/chain"
)

// TransferTopic is keccak256("Transfer(address,address,uint256)"), shared by
// ERC-20 (three topics, value in data) and ERC-721 (four topics, token id
// indexed, no data).
const TransferTopic = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"

// NormalizeStats counts what normalization skipped, for metrics.
type NormalizeStats struct {
	// NonStandardTransferLogs are logs with the Transfer signature whose
	// shape is neither ERC-20 nor ERC-721 (other topic counts, dirty
	// address topics); they are not turned into transfers.
	NonStandardTransferLogs int
}

// normalize validates a block and its receipts as returned by a node and
// turns them into the chain event model. Native transfers take the sender
// from the reply; failed transactions produce no transfers.
func normalize(network string, b *rpcBlock, receipts []rpcReceipt, st *NormalizeStats) (*chain.Block, error) {
	var err error
	out := &chain.Block{Header: chain.Header{Chain: chain.ETH, Network: network}}
	if out.Height, err = parseQuantity("number", b.Number); err != nil {
		return nil, err
	}
	if out.Hash, err = normHash("hash", b.Hash); err != nil {
		return nil, err
	}
	if out.ParentHash, err = normHash("parentHash", b.ParentHash); err != nil {
		return nil, err
	}
	ts, err := parseQuantity("timestamp", b.Timestamp)
	if err != nil {
		return nil, err
	}
	out.Time = int64(ts)
	if out.Miner, err = normAddress("miner", b.Miner); err != nil {
		return nil, err
	}
	if out.GasUsed, err = parseQuantity("gasUsed", b.GasUsed); err != nil {
		return nil, err
	}
	if out.GasLimit, err = parseQuantity("gasLimit", b.GasLimit); err != nil {
		return nil, err
	}
	if b.BaseFeePerGas != nil {
		v, err := parseBigQuantity("baseFeePerGas", *b.BaseFeePerGas)
		if err != nil {
			return nil, err
		}
		out.BaseFee = amount(v)
	}
	if len(receipts) != len(b.Transactions) {
		return nil, fmt.Errorf("block %d has %d transactions but %d receipts", out.Height, len(b.Transactions), len(receipts))
	}

	out.Transactions = make([]chain.Transaction, len(b.Transactions))
	out.Transfers = make([]chain.Transfer, 0, len(b.Transactions))
	nextLog := -1
	for i := range b.Transactions {
		tx, rc := &b.Transactions[i], &receipts[i]
		t := &out.Transactions[i]
		if err := normalizeTx(out, i, tx, rc, t); err != nil {
			return nil, fmt.Errorf("block %d tx %d: %w", out.Height, i, err)
		}
		if t.Succeeded() && !t.Value.IsZero() {
			to := t.To
			if to == "" {
				to = t.ContractAddress
			}
			out.Transfers = append(out.Transfers, chain.Transfer{V: chain.SchemaVersion, Chain: chain.ETH, Network: network,
				Asset: chain.AssetNative, Standard: chain.StandardNative, TxHash: t.Hash, TxIndex: t.Index,
				From: t.From, To: to, Amount: t.Value, BlockHeight: out.Height, BlockHash: out.Hash, BlockTime: out.Time})
		}
		for j := range rc.Logs {
			lg := &rc.Logs[j]
			li, err := parseQuantity("logIndex", lg.LogIndex)
			if err != nil {
				return nil, fmt.Errorf("block %d tx %d log %d: %w", out.Height, i, j, err)
			}
			if int64(li) <= int64(nextLog) || li > 1<<31 {
				return nil, fmt.Errorf("block %d tx %d: log index %d out of order", out.Height, i, li)
			}
			nextLog = int(li)
			if lg.Removed {
				return nil, fmt.Errorf("block %d tx %d: log %d is marked removed in a canonical receipt", out.Height, i, li)
			}
			if !t.Succeeded() {
				// A failed transaction's receipt has no logs on any
				// conforming node; never turn one into a transfer.
				continue
			}
			tr, ok, err := decodeTransferLog(lg, st)
			if err != nil {
				return nil, fmt.Errorf("block %d tx %d log %d: %w", out.Height, i, li, err)
			}
			if !ok {
				continue
			}
			idx := uint32(li)
			tr.V, tr.Chain, tr.Network = chain.SchemaVersion, chain.ETH, network
			tr.TxHash, tr.TxIndex, tr.LogIndex = t.Hash, t.Index, &idx
			tr.BlockHeight, tr.BlockHash, tr.BlockTime = out.Height, out.Hash, out.Time
			out.Transfers = append(out.Transfers, tr)
		}
	}
	return out, nil
}

func normalizeTx(blk *chain.Block, i int, tx *rpcTx, rc *rpcReceipt, t *chain.Transaction) error {
	var err error
	t.V, t.Chain, t.Network = chain.SchemaVersion, chain.ETH, blk.Network
	t.BlockHeight, t.BlockHash, t.BlockTime = blk.Height, blk.Hash, blk.Time
	t.Index = uint32(i)
	if t.Hash, err = normHash("hash", tx.Hash); err != nil {
		return err
	}
	if tx.BlockHash != nil && !strings.EqualFold(*tx.BlockHash, blk.Hash) {
		return fmt.Errorf("transaction %s claims block %s", t.Hash, trunc(*tx.BlockHash))
	}
	if tx.TransactionIndex != nil {
		if idx, err := parseQuantity("transactionIndex", *tx.TransactionIndex); err != nil {
			return err
		} else if idx != uint64(i) {
			return fmt.Errorf("transaction %s has index %d at position %d", t.Hash, idx, i)
		}
	}
	if t.From, err = normAddress("from", tx.From); err != nil {
		return err
	}
	if tx.To != nil {
		if t.To, err = normAddress("to", *tx.To); err != nil {
			return err
		}
	}
	v, err := parseBigQuantity("value", tx.Value)
	if err != nil {
		return err
	}
	t.Value = amount(v)
	if t.Nonce, err = parseQuantity("nonce", tx.Nonce); err != nil {
		return err
	}
	if t.Gas, err = parseQuantity("gas", tx.Gas); err != nil {
		return err
	}
	if tx.Type != nil {
		ty, err := parseQuantity("type", *tx.Type)
		if err != nil {
			return err
		}
		if ty > 0xff {
			return fmt.Errorf("type %d: out of range", ty)
		}
		t.Type = uint8(ty)
	}
	t.InputSize, t.MethodID = tx.Input.size, tx.Input.methodID

	// Receipt.
	rh, err := normHash("receipt transactionHash", rc.TransactionHash)
	if err != nil {
		return err
	}
	if rh != t.Hash {
		return fmt.Errorf("receipt at position %d is for transaction %s, want %s", i, rh, t.Hash)
	}
	if !strings.EqualFold(rc.BlockHash, blk.Hash) {
		return fmt.Errorf("receipt of %s is from block %s, want %s", t.Hash, trunc(rc.BlockHash), blk.Hash)
	}
	if rc.Status != nil {
		s, err := parseQuantity("status", *rc.Status)
		if err != nil {
			return err
		}
		if s > 1 {
			return fmt.Errorf("status %d: want 0 or 1", s)
		}
		st := uint8(s)
		t.Status = &st
	}
	if t.GasUsed, err = parseQuantity("gasUsed", rc.GasUsed); err != nil {
		return err
	}
	price := tx.GasPrice
	if rc.EffectiveGasPrice != nil {
		price = rc.EffectiveGasPrice
	}
	fee := new(uint256.Int)
	if price != nil {
		p, err := parseBigQuantity("effectiveGasPrice", *price)
		if err != nil {
			return err
		}
		t.GasPrice = amount(p)
		if _, overflow := fee.MulOverflow(p, uint256.NewInt(t.GasUsed)); overflow {
			return fmt.Errorf("fee of %s overflows 256 bits", t.Hash)
		}
	}
	if rc.BlobGasUsed != nil && rc.BlobGasPrice != nil {
		bu, err := parseQuantity("blobGasUsed", *rc.BlobGasUsed)
		if err != nil {
			return err
		}
		bp, err := parseBigQuantity("blobGasPrice", *rc.BlobGasPrice)
		if err != nil {
			return err
		}
		blob, overflow := new(uint256.Int).MulOverflow(bp, uint256.NewInt(bu))
		if _, o2 := fee.AddOverflow(fee, blob); overflow || o2 {
			return fmt.Errorf("blob fee of %s overflows 256 bits", t.Hash)
		}
	}
	feeAmt := amount(fee)
	t.Fee = &feeAmt
	if rc.ContractAddress != nil && tx.To == nil {
		if t.ContractAddress, err = normAddress("contractAddress", *rc.ContractAddress); err != nil {
			return err
		}
	}
	t.LogCount = len(rc.Logs)
	return nil
}

// decodeTransferLog decodes an ERC-20 or ERC-721 Transfer log. ok is false
// for logs that are not token transfers.
func decodeTransferLog(lg *rpcLog, st *NormalizeStats) (tr chain.Transfer, ok bool, err error) {
	if len(lg.Topics) == 0 || !strings.EqualFold(lg.Topics[0], TransferTopic) {
		return tr, false, nil
	}
	if tr.Asset, err = normAddress("log address", lg.Address); err != nil {
		return tr, false, err
	}
	dataLen, err := hexByteLen("log data", lg.Data)
	if err != nil {
		return tr, false, err
	}
	var from, to string
	var okFrom, okTo bool
	switch {
	case len(lg.Topics) == 3 && dataLen == 32:
		from, okFrom = topicAddress(lg.Topics[1])
		to, okTo = topicAddress(lg.Topics[2])
		if !okFrom || !okTo {
			break
		}
		v, err := parseBigQuantity("log data", lg.Data)
		if err != nil {
			return tr, false, err
		}
		tr.Standard, tr.From, tr.To, tr.Amount = chain.StandardERC20, from, to, amount(v)
		return tr, true, nil
	case len(lg.Topics) == 4 && dataLen == 0:
		from, okFrom = topicAddress(lg.Topics[1])
		to, okTo = topicAddress(lg.Topics[2])
		if !okFrom || !okTo {
			break
		}
		id, err := parseBigQuantity("token id topic", lg.Topics[3])
		if err != nil {
			return tr, false, err
		}
		tr.Standard, tr.From, tr.To, tr.Amount, tr.TokenID = chain.StandardERC721, from, to, chain.AmountFromUint64(1), id.Dec()
		return tr, true, nil
	}
	if st != nil {
		st.NonStandardTransferLogs++
	}
	return tr, false, nil
}

// topicAddress returns the address in a 32-byte topic whose first 12 bytes
// are zero.
func topicAddress(topic string) (string, bool) {
	h, err := normHash("topic", topic)
	if err != nil {
		return "", false
	}
	for i := 2; i < 26; i++ {
		if h[i] != '0' {
			return "", false
		}
	}
	return "0x" + h[26:], true
}

func amount(v *uint256.Int) chain.Amount {
	if v.IsZero() {
		return chain.Amount{}
	}
	a, _ := chain.ParseAmount(v.Dec())
	return a
}
