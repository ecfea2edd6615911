package export

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/cordonhq/cordon/internal/chain"
)

// Record types.
const (
	Block       = "block"
	Transaction = "transaction"
	Transfer    = "transfer"
	Output      = "output"
	Spend       = "spend"
)

// Records lists the record types of a chain.
func Records(c chain.Chain) []string {
	if c == chain.BTC {
		return []string{Block, Transaction, Output, Spend}
	}
	return []string{Block, Transaction, Transfer}
}

// ParseRecords validates a comma-separated list of record types of chain c
// for format; an empty list takes the format's default.
func ParseRecords(format, list string, c chain.Chain) ([]string, error) {
	if format != "jsonl" && format != "csv" {
		return nil, fmt.Errorf("--format %q: want jsonl or csv", format)
	}
	all := Records(c)
	if list == "" {
		if format == "csv" {
			return []string{all[2]}, nil // transfers, or outputs
		}
		return all, nil
	}
	var out []string
	for _, r := range strings.Split(list, ",") {
		r = strings.TrimSpace(r)
		if !slices.Contains(all, r) {
			return nil, fmt.Errorf("--records: unknown %s record type %q (want %s)", c, r, strings.Join(all, ", "))
		}
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	if format == "csv" && len(out) != 1 {
		return nil, fmt.Errorf("--records: csv holds one record type per file, got %d", len(out))
	}
	return out, nil
}

// Writer encodes blocks.
type Writer struct {
	w      io.Writer
	format string
	want   map[string]bool
	csv    *csv.Writer
	header bool
	enc    *json.Encoder
}

// NewWriter returns a Writer of the record types of chain c in format.
func NewWriter(w io.Writer, format string, records []string, c chain.Chain) (*Writer, error) {
	if _, err := ParseRecords(format, strings.Join(records, ","), c); err != nil {
		return nil, err
	}
	ew := &Writer{w: w, format: format, want: map[string]bool{}}
	for _, r := range records {
		ew.want[r] = true
	}
	if format == "csv" {
		ew.csv = csv.NewWriter(w)
	} else {
		ew.enc = json.NewEncoder(w)
		ew.enc.SetEscapeHTML(false)
	}
	return ew, nil
}

type blockLine struct {
	Type string `json:"type"`
	*chain.Block
	TxCount       int `json:"tx_count"`
	TransferCount int `json:"transfer_count"`
	OutputCount   int `json:"output_count,omitzero"`
	SpendCount    int `json:"spend_count,omitzero"`
}

type outputLine struct {
	Type string `json:"type"`
	*chain.Output
}

type spendLine struct {
	Type string `json:"type"`
	*chain.Spend
}

type txLine struct {
	Type string `json:"type"`
	*chain.Transaction
}

type transferLine struct {
	Type string `json:"type"`
	*chain.Transfer
}

// Write writes the selected records of b.
func (w *Writer) Write(b *chain.Block) error {
	if w.csv != nil {
		return w.writeCSV(b)
	}
	if w.want[Block] {
		if err := w.enc.Encode(blockLine{Type: Block, Block: b, TxCount: len(b.Transactions), TransferCount: len(b.Transfers),
			OutputCount: len(b.Outputs), SpendCount: len(b.Spends)}); err != nil {
			return err
		}
	}
	if w.want[Transaction] {
		for i := range b.Transactions {
			if err := w.enc.Encode(txLine{Type: Transaction, Transaction: &b.Transactions[i]}); err != nil {
				return err
			}
		}
	}
	if w.want[Transfer] {
		for i := range b.Transfers {
			if err := w.enc.Encode(transferLine{Type: Transfer, Transfer: &b.Transfers[i]}); err != nil {
				return err
			}
		}
	}
	if w.want[Output] {
		for i := range b.Outputs {
			if err := w.enc.Encode(outputLine{Type: Output, Output: &b.Outputs[i]}); err != nil {
				return err
			}
		}
	}
	if w.want[Spend] {
		for i := range b.Spends {
			if err := w.enc.Encode(spendLine{Type: Spend, Spend: &b.Spends[i]}); err != nil {
				return err
			}
		}
	}
	return nil
}

// Columns of each CSV record type.
var (
	BlockColumns       = []string{"chain", "network", "height", "hash", "parent_hash", "time", "gas_used", "gas_limit", "base_fee", "miner", "tx_count", "transfer_count"}
	TransactionColumns = []string{"chain", "network", "hash", "index", "from", "to", "value", "fee", "nonce", "gas", "gas_used", "gas_price", "tx_type", "status", "contract_address", "method_id", "input_size", "log_count", "block_number", "block_hash", "block_time"}
	OutputColumns      = []string{"chain", "network", "tx_hash", "tx_index", "vout", "address", "script_type", "script", "amount", "coinbase", "block_number", "block_hash", "block_time"}
	SpendColumns       = []string{"chain", "network", "tx_hash", "tx_index", "vin", "prev_tx_hash", "prev_vout", "sequence", "block_number", "block_hash", "block_time"}
	TransferColumns    = []string{"chain", "network", "asset", "standard", "tx_hash", "tx_index", "log_index", "from", "to", "amount", "token_id", "block_number", "block_hash", "block_time"}
)

func u64(v uint64) string { return strconv.FormatUint(v, 10) }

// fee is a transaction fee for CSV: empty when unknown.
func fee(a *chain.Amount) string {
	if a == nil {
		return ""
	}
	return a.String()
}

func (w *Writer) writeCSV(b *chain.Block) error {
	var typ string
	for t := range w.want {
		typ = t
	}
	if !w.header {
		w.header = true
		cols := map[string][]string{Block: BlockColumns, Transaction: TransactionColumns, Transfer: TransferColumns,
			Output: OutputColumns, Spend: SpendColumns}[typ]
		if err := w.csv.Write(cols); err != nil {
			return err
		}
	}
	switch typ {
	case Block:
		return w.csv.Write([]string{string(b.Chain), b.Network, u64(b.Height), b.Hash, b.ParentHash, strconv.FormatInt(b.Time, 10),
			u64(b.GasUsed), u64(b.GasLimit), b.BaseFee.String(), b.Miner, strconv.Itoa(len(b.Transactions)), strconv.Itoa(len(b.Transfers))})
	case Transaction:
		for i := range b.Transactions {
			t := &b.Transactions[i]
			status := ""
			if t.Status != nil {
				status = strconv.Itoa(int(*t.Status))
			}
			if err := w.csv.Write([]string{string(t.Chain), t.Network, t.Hash, u64(uint64(t.Index)), t.From, t.To, t.Value.String(), fee(t.Fee),
				u64(t.Nonce), u64(t.Gas), u64(t.GasUsed), t.GasPrice.String(), strconv.Itoa(int(t.Type)), status, t.ContractAddress,
				t.MethodID, strconv.Itoa(t.InputSize), strconv.Itoa(t.LogCount), u64(t.BlockHeight), t.BlockHash, strconv.FormatInt(t.BlockTime, 10)}); err != nil {
				return err
			}
		}
	case Output:
		for i := range b.Outputs {
			o := &b.Outputs[i]
			addr := ""
			if o.Address != nil {
				addr = *o.Address
			}
			if err := w.csv.Write([]string{string(o.Chain), o.Network, o.TxHash, u64(uint64(o.TxIndex)), u64(uint64(o.Vout)), addr, o.ScriptType,
				o.Script, o.Amount.String(), strconv.FormatBool(o.Coinbase), u64(o.BlockHeight), o.BlockHash, strconv.FormatInt(o.BlockTime, 10)}); err != nil {
				return err
			}
		}
	case Spend:
		for i := range b.Spends {
			sp := &b.Spends[i]
			if err := w.csv.Write([]string{string(sp.Chain), sp.Network, sp.TxHash, u64(uint64(sp.TxIndex)), u64(uint64(sp.Vin)), sp.PrevTxHash,
				u64(uint64(sp.PrevVout)), u64(uint64(sp.Sequence)), u64(sp.BlockHeight), sp.BlockHash, strconv.FormatInt(sp.BlockTime, 10)}); err != nil {
				return err
			}
		}
	case Transfer:
		for i := range b.Transfers {
			t := &b.Transfers[i]
			li := ""
			if t.LogIndex != nil {
				li = u64(uint64(*t.LogIndex))
			}
			if err := w.csv.Write([]string{string(t.Chain), t.Network, t.Asset, t.Standard, t.TxHash, u64(uint64(t.TxIndex)), li, t.From, t.To,
				t.Amount.String(), t.TokenID, u64(t.BlockHeight), t.BlockHash, strconv.FormatInt(t.BlockTime, 10)}); err != nil {
				return err
			}
		}
	}
	return nil
}

// Flush flushes buffered CSV output and reports any write error.
func (w *Writer) Flush() error {
	if w.csv != nil {
		w.csv.Flush()
		return w.csv.Error()
	}
	return nil
}
