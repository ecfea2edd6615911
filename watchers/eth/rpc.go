package eth

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	fastjson "github.com/segmentio/encoding/json"
)

// These are the JSON-RPC reply shapes the watcher reads. Every field stays a
// string until normalize validates it, so a malformed value is reported with
// its field name instead of failing somewhere inside encoding/json.

type rpcBlock struct {
	rpcBlockHeader
	Transactions []rpcTx `json:"transactions"`
}

// rpcBlockHeader is a block's header fields: eth_getBlockByNumber(n,
// false) without its transaction hashes.
type rpcBlockHeader struct {
	Number        string  `json:"number"`
	Hash          string  `json:"hash"`
	ParentHash    string  `json:"parentHash"`
	Timestamp     string  `json:"timestamp"`
	Miner         string  `json:"miner"`
	GasUsed       string  `json:"gasUsed"`
	GasLimit      string  `json:"gasLimit"`
	BaseFeePerGas *string `json:"baseFeePerGas"`
	rpcHeaderExtra
}

// rpcHeaderExtra holds the header fields that only the hash check needs.
type rpcHeaderExtra struct {
	Sha3Uncles            string  `json:"sha3Uncles"`
	StateRoot             string  `json:"stateRoot"`
	TransactionsRoot      string  `json:"transactionsRoot"`
	ReceiptsRoot          string  `json:"receiptsRoot"`
	LogsBloom             string  `json:"logsBloom"`
	Difficulty            string  `json:"difficulty"`
	ExtraData             string  `json:"extraData"`
	MixHash               *string `json:"mixHash"`
	Nonce                 *string `json:"nonce"`
	WithdrawalsRoot       *string `json:"withdrawalsRoot"`
	BlobGasUsed           *string `json:"blobGasUsed"`
	ExcessBlobGas         *string `json:"excessBlobGas"`
	ParentBeaconBlockRoot *string `json:"parentBeaconBlockRoot"`
	RequestsHash          *string `json:"requestsHash"`
	BlockAccessListHash   *string `json:"blockAccessListHash"`
	SlotNumber            *string `json:"slotNumber"`
}

type rpcTx struct {
	Hash             string   `json:"hash"`
	From             string   `json:"from"`
	To               *string  `json:"to"`
	Value            string   `json:"value"`
	Nonce            string   `json:"nonce"`
	Gas              string   `json:"gas"`
	GasPrice         *string  `json:"gasPrice"`
	Input            callData `json:"input"`
	Type             *string  `json:"type"`
	TransactionIndex *string  `json:"transactionIndex"`
	BlockHash        *string  `json:"blockHash"`

	raw []byte // the transaction's JSON, for verifyTxRoot
}

type rpcReceipt struct {
	TransactionHash   string   `json:"transactionHash"`
	TransactionIndex  string   `json:"transactionIndex"`
	BlockHash         string   `json:"blockHash"`
	Status            *string  `json:"status"`
	GasUsed           string   `json:"gasUsed"`
	EffectiveGasPrice *string  `json:"effectiveGasPrice"`
	BlobGasUsed       *string  `json:"blobGasUsed"`
	BlobGasPrice      *string  `json:"blobGasPrice"`
	ContractAddress   *string  `json:"contractAddress"`
	Logs              []rpcLog `json:"logs"`
	// The consensus fields the receipts root covers, with Status and
	// Logs: the transaction type, the post-state root of receipts before
	// Byzantium, the cumulative gas and the bloom.
	Type              *string `json:"type"`
	Root              *string `json:"root"`
	CumulativeGasUsed string  `json:"cumulativeGasUsed"`
	LogsBloom         string  `json:"logsBloom"`
}

type rpcLog struct {
	Address  string   `json:"address"`
	Topics   []string `json:"topics"`
	Data     string   `json:"data"`
	LogIndex string   `json:"logIndex"`
	Removed  bool     `json:"removed"`
}

var jsonNull = []byte("null")

func isNull(raw json.RawMessage) bool {
	return len(bytes.TrimSpace(raw)) == 0 || bytes.Equal(bytes.TrimSpace(raw), jsonNull)
}

// decodeBlock decodes an eth_getBlockByNumber(n, true) reply with the
// decoder of the HTTP hot path (httpcall.go).
func decodeBlock(raw []byte) (*rpcBlock, error) {
	var b rpcBlock
	if err := fastjson.Unmarshal(raw, &b); err != nil {
		return nil, fmt.Errorf("decode block: %w", err)
	}
	return &b, nil
}

// decodeReceipts decodes an eth_getBlockReceipts reply.
func decodeReceipts(raw []byte) ([]rpcReceipt, error) {
	var r []rpcReceipt
	if err := fastjson.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("decode receipts: %w", err)
	}
	return r, nil
}

// callData keeps only what cordon records of a transaction's input — its
// length and method id — without copying the (possibly large) hex string.
type callData struct {
	size     int
	methodID string
}

// UnmarshalJSON reads a JSON string of 0x-prefixed hex.
func (c *callData) UnmarshalJSON(b []byte) error {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return fmt.Errorf("input: want a hex string, got %.20s", b)
	}
	s := b[1 : len(b)-1]
	if len(s) < 2 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X') || len(s)%2 != 0 {
		return fmt.Errorf("input %.20q: %w bytes", s, errNotHex)
	}
	for _, ch := range s[2:] {
		if (ch < '0' || ch > '9') && (ch < 'a' || ch > 'f') && (ch < 'A' || ch > 'F') {
			return fmt.Errorf("input: invalid hex character %q", ch)
		}
	}
	c.size = (len(s) - 2) / 2
	if c.size >= 4 {
		c.methodID = strings.ToLower(string(s[:10]))
	}
	return nil
}
