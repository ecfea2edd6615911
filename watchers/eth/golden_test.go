package eth

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/trie"
	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/ingest/export"
	"github.com/cordonhq/cordon/internal/chain"
)

var update = flag.Bool("update", false, "regenerate testdata fixtures and golden files")

// Mainnet fixtures: the execution payloads of two real mainnet blocks that
// go-ethereum ships in beacon/types/testdata, turned into the JSON-RPC
// replies a node gives for them. The block replies are real: their header
// fields hash to the real block hash, which the tests verify. Mainnet
// receipts are not shipped anywhere we can read offline, so the receipt
// replies are synthesized (documented in testdata/README.md): every
// transaction succeeded, and token transfer calls (transfer, transferFrom)
// emit the Transfer log their call data describes.
var mainnetFixtures = []struct {
	name, beaconFile string
}{
	{"mainnet-19431837", "block_deneb.json"},
	{"mainnet-18189758", "block_capella.json"},
}

func readGz(tb testing.TB, path string) []byte {
	tb.Helper()
	f, err := os.Open(path)
	require.NoError(tb, err)
	defer f.Close()
	zr, err := gzip.NewReader(f)
	require.NoError(tb, err)
	b, err := io.ReadAll(zr)
	require.NoError(tb, err)
	return b
}

func writeGz(tb testing.TB, path string, b []byte) {
	tb.Helper()
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	_, _ = zw.Write(b)
	require.NoError(tb, zw.Close())
	require.NoError(tb, os.WriteFile(path, buf.Bytes(), 0o644))
}

type mainnetBlock struct {
	raw      []byte
	block    *rpcBlock
	receipts []rpcReceipt
}

func loadMainnet(tb testing.TB, name string) mainnetBlock {
	tb.Helper()
	raw := readGz(tb, filepath.Join("testdata", name+".block.json.gz"))
	b, err := decodeBlock(raw)
	require.NoError(tb, err)
	r, err := decodeReceipts(readGz(tb, filepath.Join("testdata", name+".receipts.json.gz")))
	require.NoError(tb, err)
	return mainnetBlock{raw: raw, block: b, receipts: r}
}

func TestMainnetGolden(t *testing.T) {
	if *update {
		for _, f := range mainnetFixtures {
			generateFixture(t, f.name, f.beaconFile)
		}
	}
	for _, f := range mainnetFixtures {
		t.Run(f.name, func(t *testing.T) {
			m := loadMainnet(t, f.name)
			require.NoError(t, verifyHeaderHash(&m.block.rpcBlockHeader), "the fixture is a real mainnet header")
			// The fixture's receipts are synthesized (testdata/README.md):
			// against the real header they are refused, as a liar's are.
			require.Error(t, verifyReceiptsRoot(m.block, m.receipts, byzantiumBlock(1)))
			require.NoError(t, checkStatus(18_000_000, byzantiumBlock(1), m.receipts))
			b, err := normalize("mainnet", m.block, m.receipts, nil)
			require.NoError(t, err)

			// Independent totals: go-ethereum's own transaction decoder.
			var txs []*types.Transaction
			var whole struct {
				Transactions []json.RawMessage `json:"transactions"`
			}
			require.NoError(t, json.Unmarshal(m.raw, &whole))
			want := new(big.Int)
			for _, raw := range whole.Transactions {
				tx := new(types.Transaction)
				require.NoError(t, tx.UnmarshalJSON(raw))
				txs = append(txs, tx)
				want.Add(want, tx.Value())
			}
			require.Len(t, b.Transactions, len(txs))
			got := new(big.Int)
			for _, tr := range b.Transfers {
				if tr.Standard == chain.StandardNative {
					got.Add(got, tr.Amount.Big())
				}
			}
			require.Equal(t, want.String(), got.String(), "native value moved")
			for i, tx := range txs {
				require.Equal(t, strings.ToLower(tx.Hash().Hex()), b.Transactions[i].Hash)
				require.Equal(t, tx.Value().String(), b.Transactions[i].Value.String())
				require.Equal(t, tx.Nonce(), b.Transactions[i].Nonce)
			}

			var buf bytes.Buffer
			w, err := export.NewWriter(&buf, "jsonl", []string{export.Block, export.Transaction, export.Transfer}, chain.ETH)
			require.NoError(t, err)
			require.NoError(t, w.Write(b))
			golden := filepath.Join("testdata", f.name+".golden.jsonl.gz")
			if *update {
				writeGz(t, golden, buf.Bytes())
			}
			require.Equal(t, string(readGz(t, golden)), buf.String(), "normalized records differ from %s (run go test -run TestMainnetGolden -update after checking the change)", golden)
		})
	}
}

// generateFixture builds the RPC replies of a mainnet block from the
// beacon block go-ethereum ships as test data.
func generateFixture(t testing.TB, name, beaconFile string) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/ethereum/go-ethereum").Output()
	require.NoError(t, err)
	raw, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "beacon", "types", "testdata", beaconFile))
	require.NoError(t, err)
	var beacon struct {
		ParentRoot common.Hash `json:"parent_root"`
		Body       struct {
			Payload struct {
				ParentHash    common.Hash     `json:"parent_hash"`
				FeeRecipient  common.Address  `json:"fee_recipient"`
				StateRoot     common.Hash     `json:"state_root"`
				ReceiptsRoot  common.Hash     `json:"receipts_root"`
				LogsBloom     hexutil.Bytes   `json:"logs_bloom"`
				PrevRandao    common.Hash     `json:"prev_randao"`
				BlockNumber   string          `json:"block_number"`
				GasLimit      string          `json:"gas_limit"`
				GasUsed       string          `json:"gas_used"`
				Timestamp     string          `json:"timestamp"`
				ExtraData     hexutil.Bytes   `json:"extra_data"`
				BaseFee       string          `json:"base_fee_per_gas"`
				BlockHash     common.Hash     `json:"block_hash"`
				Transactions  []hexutil.Bytes `json:"transactions"`
				BlobGasUsed   *string         `json:"blob_gas_used"`
				ExcessBlobGas *string         `json:"excess_blob_gas"`
				Withdrawals   []struct {
					Index     string         `json:"index"`
					Validator string         `json:"validator_index"`
					Address   common.Address `json:"address"`
					Amount    string         `json:"amount"`
				} `json:"withdrawals"`
			} `json:"execution_payload"`
		} `json:"body"`
	}
	require.NoError(t, json.Unmarshal(raw, &beacon))
	p := beacon.Body.Payload
	u := func(s string) uint64 {
		v, ok := new(big.Int).SetString(s, 10)
		require.True(t, ok, s)
		return v.Uint64()
	}
	var txs types.Transactions
	for _, b := range p.Transactions {
		tx := new(types.Transaction)
		require.NoError(t, tx.UnmarshalBinary(b))
		txs = append(txs, tx)
	}
	var ws types.Withdrawals
	for _, w := range p.Withdrawals {
		ws = append(ws, &types.Withdrawal{Index: u(w.Index), Validator: u(w.Validator), Address: w.Address, Amount: u(w.Amount)})
	}
	baseFee, _ := new(big.Int).SetString(p.BaseFee, 10)
	wh := types.DeriveSha(ws, trie.NewStackTrie(nil))
	h := &types.Header{ParentHash: p.ParentHash, UncleHash: types.EmptyUncleHash, Coinbase: p.FeeRecipient, Root: p.StateRoot,
		TxHash: types.DeriveSha(txs, trie.NewStackTrie(nil)), ReceiptHash: p.ReceiptsRoot, Bloom: types.BytesToBloom(p.LogsBloom),
		Difficulty: new(big.Int), Number: new(big.Int).SetUint64(u(p.BlockNumber)), GasLimit: u(p.GasLimit), GasUsed: u(p.GasUsed),
		Time: u(p.Timestamp), Extra: p.ExtraData, MixDigest: p.PrevRandao, BaseFee: baseFee, WithdrawalsHash: &wh}
	if p.BlobGasUsed != nil {
		bu, ex := u(*p.BlobGasUsed), u(*p.ExcessBlobGas)
		h.BlobGasUsed, h.ExcessBlobGas = &bu, &ex
		root := beacon.ParentRoot
		h.ParentBeaconRoot = &root
	}
	require.Equal(t, p.BlockHash, h.Hash(), "reassembled header must hash to the mainnet block hash")
	require.Equal(t, name, fmt.Sprintf("mainnet-%d", h.Number.Uint64()))

	// The eth_getBlockByNumber(n, true) reply.
	hdrJSON, err := json.Marshal(h)
	require.NoError(t, err)
	var block map[string]any
	require.NoError(t, json.Unmarshal(hdrJSON, &block))
	signer := types.LatestSignerForChainID(big.NewInt(1))
	var rpcTxs []map[string]any
	var receipts []map[string]any
	logIndex := uint64(0)
	for i, tx := range txs {
		from, err := types.Sender(signer, tx)
		require.NoError(t, err)
		tj, err := tx.MarshalJSON()
		require.NoError(t, err)
		var m map[string]any
		require.NoError(t, json.Unmarshal(tj, &m))
		m["from"] = from
		m["blockHash"] = h.Hash()
		m["blockNumber"] = hexutil.EncodeBig(h.Number)
		m["transactionIndex"] = hexutil.EncodeUint64(uint64(i))
		price := tx.GasPrice()
		if tx.Type() != types.LegacyTxType && tx.Type() != types.AccessListTxType {
			price = new(big.Int).Add(baseFee, tx.GasTipCap())
			if price.Cmp(tx.GasFeeCap()) > 0 {
				price = tx.GasFeeCap()
			}
			m["gasPrice"] = hexutil.EncodeBig(price)
		}
		rpcTxs = append(rpcTxs, m)

		// Synthesized receipt.
		rc := map[string]any{"transactionHash": tx.Hash(), "transactionIndex": hexutil.EncodeUint64(uint64(i)),
			"blockHash": h.Hash(), "blockNumber": hexutil.EncodeBig(h.Number), "from": from, "to": tx.To(),
			"status": "0x1", "gasUsed": hexutil.EncodeUint64(tx.Gas()), "cumulativeGasUsed": "0x0",
			"effectiveGasPrice": hexutil.EncodeBig(price), "type": hexutil.EncodeUint64(uint64(tx.Type())), "contractAddress": nil}
		if tx.To() == nil {
			rc["contractAddress"] = crypto.CreateAddress(from, tx.Nonce())
		}
		var logs []map[string]any
		data := tx.Data()
		addTransfer := func(src, dst common.Address, amount []byte) {
			logs = append(logs, map[string]any{"address": tx.To(), "topics": []common.Hash{common.HexToHash(TransferTopic),
				common.BytesToHash(src.Bytes()), common.BytesToHash(dst.Bytes())}, "data": hexutil.Bytes(amount),
				"logIndex": hexutil.EncodeUint64(logIndex), "removed": false, "transactionHash": tx.Hash(), "blockHash": h.Hash()})
			logIndex++
		}
		switch {
		case tx.To() != nil && len(data) == 4+64 && bytes.Equal(data[:4], []byte{0xa9, 0x05, 0x9c, 0xbb}):
			addTransfer(from, common.BytesToAddress(data[4:36]), data[36:68])
		case tx.To() != nil && len(data) == 4+96 && bytes.Equal(data[:4], []byte{0x23, 0xb8, 0x72, 0xdd}):
			addTransfer(common.BytesToAddress(data[4:36]), common.BytesToAddress(data[36:68]), data[68:100])
		}
		if logs == nil {
			logs = []map[string]any{}
		}
		rc["logs"] = logs
		receipts = append(receipts, rc)
	}
	block["transactions"] = rpcTxs
	block["uncles"] = []string{}
	block["withdrawals"] = ws
	blockJSON, err := json.Marshal(block)
	require.NoError(t, err)
	rcJSON, err := json.Marshal(receipts)
	require.NoError(t, err)
	writeGz(t, filepath.Join("testdata", name+".block.json.gz"), blockJSON)
	writeGz(t, filepath.Join("testdata", name+".receipts.json.gz"), rcJSON)
}

// TestTxRootMainnet checks the transactions of the real mainnet blocks
// against their headers, and that altering one transaction is refused.
func TestTxRootMainnet(t *testing.T) {
	for _, f := range mainnetFixtures {
		m := loadMainnet(t, f.name)
		require.NoError(t, verifyTxRoot(m.block), f.name)
	}
	m := loadMainnet(t, "mainnet-18189758")
	var tampered map[string]any
	require.NoError(t, json.Unmarshal(m.raw, &tampered))
	txs := tampered["transactions"].([]any)
	tx := txs[1].(map[string]any)
	tx["value"] = "0xde0b6b3a7640000" // 1 ETH more than was sent
	raw, err := json.Marshal(tampered)
	require.NoError(t, err)
	b, err := decodeBlock(raw)
	require.NoError(t, err)
	require.NoError(t, verifyHeaderHash(&b.rpcBlockHeader), "the header is untouched")
	require.ErrorContains(t, verifyTxRoot(b), "transaction 1 hashes to")
}
