package chain

import (
	"fmt"
	"math/big"
	"strconv"
	"time"
	"unsafe"
)

// SchemaVersion is the version of the record schema written to Kafka and
// by `cordon export`. It changes only when a field changes meaning or is
// removed; adding a field keeps the version.
const SchemaVersion = 1

// Chain names a blockchain family.
type Chain string

// Chains cordon follows.
const (
	ETH Chain = "eth"
	BTC Chain = "btc"
)

// EventType tells whether a block joined or left the canonical chain.
type EventType string

// Block event types.
const (
	BlockAdded   EventType = "block_added"
	BlockRemoved EventType = "block_removed"
)

// Header identifies a block and its place in the chain.
type Header struct {
	Chain      Chain  `json:"chain"`
	Network    string `json:"network"`
	Height     uint64 `json:"height"`
	Hash       string `json:"hash"`
	ParentHash string `json:"parent_hash"`
	// Time is the block's timestamp in Unix seconds.
	Time int64 `json:"time"`
}

// Stream names the ordered event stream of one chain and network.
func (h Header) Stream() string { return StreamKey(h.Chain, h.Network) }

// StreamKey is the key prefix shared by all block events of one chain and
// network; events with the same prefix land in the same Kafka partition so
// their order is kept.
func StreamKey(c Chain, network string) string { return string(c) + "/" + network }

// BlockEvent is one record of the cordon.blocks topic. Applying the events
// of a stream in sequence order always leaves a consumer holding one
// canonical chain: removed blocks come newest first, then the new branch
// oldest first.
type BlockEvent struct {
	V    int       `json:"v"`
	Type EventType `json:"type"`
	// Seq numbers the events of one stream from 1 with no gaps.
	Seq uint64 `json:"seq"`
	Header
	TxCount       int `json:"tx_count"`
	TransferCount int `json:"transfer_count"`
	// OutputCount and SpendCount are the Bitcoin output and spend records
	// of an added block.
	OutputCount int `json:"output_count,omitzero"`
	SpendCount  int `json:"spend_count,omitzero"`
	// Miner and BaseFee are an added Ethereum block's fee recipient and
	// base fee per gas (absent before London), so balances can be
	// recomputed from the stream: the recipient earns each transaction's
	// gas_used × (gas_price − base_fee).
	Miner   string `json:"miner,omitempty"`
	BaseFee Amount `json:"base_fee,omitzero"`
	// Finalized is the node's finalized height when the block was
	// published (Ethereum's "finalized" block tag; absent where the node
	// has none). It only grows within a stream.
	Finalized uint64 `json:"finalized,omitzero"`
}

// Key is the record's deterministic Kafka key: a retry or a replay of the
// same event produces the same key.
func (e BlockEvent) Key() string {
	return e.Stream() + "/" + strconv.FormatUint(e.Seq, 10)
}

// Transaction is a normalized transaction. Fields that only one chain has
// are omitted from the JSON form when zero (absent means 0).
type Transaction struct {
	V       int    `json:"v"`
	Chain   Chain  `json:"chain"`
	Network string `json:"network"`
	Hash    string `json:"hash"`
	Index   uint32 `json:"index"`
	From    string `json:"from,omitempty"`
	To      string `json:"to,omitempty"`
	// Value is the amount the transaction moves in the chain's coin: for
	// Bitcoin the sum of its outputs.
	Value Amount `json:"value"`
	// Fee is null where it is not known from the block alone (Bitcoin: it
	// needs the values of the spent outputs).
	Fee      *Amount `json:"fee"`
	Nonce    uint64  `json:"nonce,omitzero"`
	Gas      uint64  `json:"gas,omitempty"`
	GasUsed  uint64  `json:"gas_used,omitempty"`
	GasPrice Amount  `json:"gas_price,omitzero"`
	Type     uint8   `json:"tx_type,omitzero"`
	// Status is 1 for success, 0 for failure, and absent where the chain
	// does not record it (Ethereum receipts before Byzantium).
	Status *uint8 `json:"status"`
	// ContractAddress is set on contract creations.
	ContractAddress string `json:"contract_address,omitempty"`
	// MethodID is the first four bytes of the call data, when present.
	MethodID  string `json:"method_id,omitempty"`
	InputSize int    `json:"input_size,omitzero"`
	LogCount  int    `json:"log_count,omitzero"`
	// Bitcoin: serialized size with witness, virtual size, weight,
	// version, lock time, input and output counts; Coinbase marks the
	// block's first transaction.
	Size        int    `json:"size,omitzero"`
	VSize       int    `json:"vsize,omitzero"`
	Weight      int    `json:"weight,omitzero"`
	Version     int32  `json:"version,omitzero"`
	LockTime    uint32 `json:"locktime,omitzero"`
	InputCount  int    `json:"input_count,omitzero"`
	OutputCount int    `json:"output_count,omitzero"`
	Coinbase    bool   `json:"coinbase,omitzero"`
	BlockHeight uint64 `json:"block_number"`
	BlockHash   string `json:"block_hash"`
	BlockTime   int64  `json:"block_time"`
}

// Key is the transaction record's deterministic Kafka key. It includes the
// block hash: the same transaction mined again on another branch is another
// fact.
func (t *Transaction) Key() string {
	return StreamKey(t.Chain, t.Network) + "/" + t.BlockHash + "/" + t.Hash
}

// Succeeded reports whether the transaction is known to have succeeded or
// its chain does not record failure.
func (t *Transaction) Succeeded() bool { return t.Status == nil || *t.Status == 1 }

// Token standards of a transfer.
const (
	StandardNative = "native"
	StandardERC20  = "erc20"
	StandardERC721 = "erc721"
)

// AssetNative is the asset of a chain's own coin.
const AssetNative = "native"

// Transfer is a movement of value between two addresses.
type Transfer struct {
	V       int    `json:"v"`
	Chain   Chain  `json:"chain"`
	Network string `json:"network"`
	// Asset is AssetNative or the token contract's address.
	Asset    string `json:"asset"`
	Standard string `json:"standard"`
	TxHash   string `json:"tx_hash"`
	TxIndex  uint32 `json:"tx_index"`
	// LogIndex is the index of the log within the block; nil for native
	// transfers.
	LogIndex *uint32 `json:"log_index"`
	From     string  `json:"from"`
	To       string  `json:"to"`
	// Amount is in base units (wei, token base units); 1 for ERC-721.
	Amount Amount `json:"amount"`
	// TokenID is the ERC-721 token id, decimal.
	TokenID     string `json:"token_id,omitempty"`
	BlockHeight uint64 `json:"block_number"`
	BlockHash   string `json:"block_hash"`
	BlockTime   int64  `json:"block_time"`
}

// Key is the transfer's deterministic Kafka key.
func (t *Transfer) Key() string {
	idx := "native"
	if t.LogIndex != nil {
		idx = strconv.FormatUint(uint64(*t.LogIndex), 10)
	}
	return StreamKey(t.Chain, t.Network) + "/" + t.BlockHash + "/" + t.TxHash + "/" + idx
}

// Output is a Bitcoin transaction output: an amount locked to a script,
// and the address that script pays when it has one.
type Output struct {
	V       int    `json:"v"`
	Chain   Chain  `json:"chain"`
	Network string `json:"network"`
	TxHash  string `json:"tx_hash"`
	TxIndex uint32 `json:"tx_index"`
	Vout    uint32 `json:"vout"`
	// Address is null for scripts without an address form (OP_RETURN,
	// bare multisig, non-standard, unknown witness versions).
	Address    *string `json:"address"`
	ScriptType string  `json:"script_type"`
	// Script is the hex output script of outputs without an address, up
	// to MaxRecordedScript bytes (OP_RETURN data, multisig keys).
	Script string `json:"script,omitempty"`
	// Amount is in satoshi.
	Amount Amount `json:"amount"`
	// Coinbase outputs can be spent only after 100 confirmations.
	Coinbase    bool   `json:"coinbase"`
	BlockHeight uint64 `json:"block_number"`
	BlockHash   string `json:"block_hash"`
	BlockTime   int64  `json:"block_time"`
}

// MaxRecordedScript bounds the script bytes one output record carries, so
// a hostile block cannot produce a record larger than Kafka accepts.
const MaxRecordedScript = 10_000

// Key is the output's deterministic Kafka key.
func (o *Output) Key() string {
	return StreamKey(o.Chain, o.Network) + "/" + o.BlockHash + "/" + o.TxHash + "/" + strconv.FormatUint(uint64(o.Vout), 10)
}

// Spend is a Bitcoin transaction input: the outpoint (transaction and
// output index) it spends. Which address and amount that was is a join on
// the outputs already recorded.
type Spend struct {
	V          int    `json:"v"`
	Chain      Chain  `json:"chain"`
	Network    string `json:"network"`
	TxHash     string `json:"tx_hash"`
	TxIndex    uint32 `json:"tx_index"`
	Vin        uint32 `json:"vin"`
	PrevTxHash string `json:"prev_tx_hash"`
	PrevVout   uint32 `json:"prev_vout"`
	// Sequence is the input's nSequence (replace-by-fee and relative
	// lock-time signalling).
	Sequence    uint32 `json:"sequence"`
	BlockHeight uint64 `json:"block_number"`
	BlockHash   string `json:"block_hash"`
	BlockTime   int64  `json:"block_time"`
}

// Key is the spend's deterministic Kafka key.
func (s *Spend) Key() string {
	return StreamKey(s.Chain, s.Network) + "/" + s.BlockHash + "/" + s.TxHash + "/" + strconv.FormatUint(uint64(s.Vin), 10)
}

// Block is a normalized block with everything cordon records about it.
type Block struct {
	Header
	GasUsed  uint64 `json:"gas_used,omitempty"`
	GasLimit uint64 `json:"gas_limit,omitempty"`
	BaseFee  Amount `json:"base_fee,omitzero"`
	Miner    string `json:"miner,omitempty"`
	// Bitcoin: serialized size, weight, header version and target bits.
	Size         int           `json:"size,omitzero"`
	Weight       int           `json:"weight,omitzero"`
	Version      int32         `json:"version,omitzero"`
	Bits         uint32        `json:"bits,omitzero"`
	Transactions []Transaction `json:"-"`
	Transfers    []Transfer    `json:"-"`
	Outputs      []Output      `json:"-"`
	Spends       []Spend       `json:"-"`
}

// Update is one event for a sink: a block that joined the canonical chain
// (with its contents) or one that left it (Block is nil).
type Update struct {
	Event BlockEvent
	Block *Block
}

// Checkpoint is what a watcher needs to resume a stream exactly where its
// published output ends: the next sequence number and the newest canonical
// headers, oldest first.
type Checkpoint struct {
	NextSeq uint64
	Tail    []Header
}

// Tip returns the newest published header, if any.
func (c Checkpoint) Tip() (Header, bool) {
	if len(c.Tail) == 0 {
		return Header{}, false
	}
	return c.Tail[len(c.Tail)-1], true
}

// Alert is a record of the cordon.alerts topic.
type Alert struct {
	V        int               `json:"v"`
	ID       string            `json:"id"`
	Type     string            `json:"type"`
	Severity string            `json:"severity"`
	Chain    Chain             `json:"chain,omitempty"`
	Network  string            `json:"network,omitempty"`
	Time     time.Time         `json:"time"`
	Message  string            `json:"message"`
	Details  map[string]string `json:"details,omitempty"`
	// Rule names the detection rule that raised the alert; the chain
	// facts below are set by detection's rules (detect/rules).
	Rule string `json:"rule,omitempty"`
	// Retracted marks an alert whose block left the canonical chain: the
	// record repeats the alert, under its id, withdrawn.
	Retracted bool     `json:"retracted,omitzero"`
	Height    uint64   `json:"height,omitzero"`
	BlockHash string   `json:"block_hash,omitempty"`
	TxHash    string   `json:"tx_hash,omitempty"`
	Addresses []string `json:"addresses,omitempty"`
	Asset     string   `json:"asset,omitempty"`
	Amount    string   `json:"amount,omitempty"`
}

// Amount is an exact non-negative integer in base units, encoded in JSON as
// a decimal string. The zero value is 0.
type Amount struct{ s string }

// AmountFromBig returns the amount of a non-negative big integer.
func AmountFromBig(v *big.Int) Amount {
	if v == nil || v.Sign() == 0 {
		return Amount{}
	}
	return Amount{s: v.String()}
}

// AmountFromUint64 returns the amount v.
func AmountFromUint64(v uint64) Amount {
	if v == 0 {
		return Amount{}
	}
	return Amount{s: strconv.FormatUint(v, 10)}
}

// AmountFromUint64In is AmountFromUint64 with the digits stored in memory
// obtained from alloc (a caller's arena), which the caller must never
// modify afterwards.
func AmountFromUint64In(v uint64, alloc func(n int) []byte) Amount {
	if v == 0 {
		return Amount{}
	}
	var tmp [20]byte
	d := strconv.AppendUint(tmp[:0], v, 10)
	b := alloc(len(d))
	copy(b, d)
	// The bytes are written above and never again (the caller's promise).
	return Amount{s: unsafe.String(unsafe.SliceData(b), len(b))} //nolint:gosec // immutable after this point
}

// ParseAmount parses a decimal amount.
func ParseAmount(s string) (Amount, error) {
	if s == "" {
		return Amount{}, fmt.Errorf("amount: empty")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return Amount{}, fmt.Errorf("amount %q: not a decimal integer", s)
		}
	}
	if len(s) > 1 && s[0] == '0' {
		return Amount{}, fmt.Errorf("amount %q: leading zero", s)
	}
	if s == "0" {
		return Amount{}, nil
	}
	return Amount{s: s}, nil
}

// String returns the decimal form.
func (a Amount) String() string {
	if a.s == "" {
		return "0"
	}
	return a.s
}

// IsZero reports whether the amount is 0.
func (a Amount) IsZero() bool { return a.s == "" }

// Big returns the amount as a new big integer.
func (a Amount) Big() *big.Int {
	v, _ := new(big.Int).SetString(a.String(), 10)
	return v
}

// MarshalJSON encodes the amount as a decimal string.
func (a Amount) MarshalJSON() ([]byte, error) {
	return strconv.AppendQuote(nil, a.String()), nil
}

// UnmarshalJSON decodes a decimal string.
func (a *Amount) UnmarshalJSON(b []byte) error {
	s, err := strconv.Unquote(string(b))
	if err != nil {
		return fmt.Errorf("amount: want a quoted decimal string, got %.40s", b)
	}
	v, err := ParseAmount(s)
	if err != nil {
		return err
	}
	*a = v
	return nil
}

// StreamState is the canonical chain a consumer holds after applying block
// events in order. It keeps every header; callers that need a bounded
// window trim Chain themselves.
type StreamState struct {
	Chain []Header
}

// Apply applies one event: block_added appends, block_removed drops the
// newest header (which must be the removed one; when the state starts in
// the middle of a reorganization there may be nothing to drop).
func (s *StreamState) Apply(ev BlockEvent) {
	switch ev.Type {
	case BlockAdded:
		// Drop anything at or above the new height: only reachable when the
		// state was built from a partial tail.
		for len(s.Chain) > 0 && s.Chain[len(s.Chain)-1].Height >= ev.Height {
			s.Chain = s.Chain[:len(s.Chain)-1]
		}
		s.Chain = append(s.Chain, ev.Header)
	case BlockRemoved:
		if n := len(s.Chain); n > 0 && s.Chain[n-1].Hash == ev.Hash {
			s.Chain = s.Chain[:n-1]
		}
	}
}
