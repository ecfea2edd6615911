package export_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/ingest/export"
	"github.com/cordonhq/cordon/internal/chain"
)

func btcBlock() *chain.Block {
	h := chain.Header{Chain: chain.BTC, Network: "mainnet", Height: 840000, Hash: "0000aa", ParentHash: "0000bb", Time: 1713571767}
	ref := chain.BlockRef{V: 1, Chain: chain.BTC, Network: "mainnet", Height: h.Height, Hash: h.Hash, Time: h.Time}
	addr := "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"
	b := &chain.Block{Header: h, Size: 250, Weight: 1000, Version: 2}
	tx := chain.Transaction{Hash: "cc", Value: chain.AmountFromUint64(5000), Size: 250, VSize: 250, Weight: 1000, InputCount: 1, OutputCount: 2, Coinbase: true}
	tx.SetBlock(ref)
	o1 := chain.Output{TxHash: "cc", Vout: 0, Address: &addr, ScriptType: "p2wpkh", Amount: chain.AmountFromUint64(5000), Coinbase: true}
	o2 := chain.Output{TxHash: "cc", Vout: 1, ScriptType: "op_return", Script: "6a00"}
	sp := chain.Spend{TxHash: "dd", TxIndex: 1, PrevTxHash: "ee", PrevVout: 3, Sequence: 0xfffffffd}
	for _, r := range []interface{ SetBlock(chain.BlockRef) }{&o1, &o2, &sp} {
		r.SetBlock(ref)
	}
	b.Transactions = []chain.Transaction{tx}
	b.Outputs = []chain.Output{o1, o2}
	b.Spends = []chain.Spend{sp}
	return b
}

func TestBitcoinJSONL(t *testing.T) {
	var buf bytes.Buffer
	w, err := export.NewWriter(&buf, "jsonl", export.Records(chain.BTC), chain.BTC)
	require.NoError(t, err)
	require.NoError(t, w.Write(btcBlock()))
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	require.Len(t, lines, 5)
	var types []string
	for _, l := range lines {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m))
		types = append(types, m["type"].(string))
		switch m["type"] {
		case "block":
			require.EqualValues(t, 2, m["output_count"])
			require.EqualValues(t, 1, m["spend_count"])
			require.NotContains(t, m, "base_fee")
		case "transaction":
			require.Nil(t, m["fee"], "fee is unknown, not zero")
			require.Contains(t, m, "fee")
			require.NotContains(t, m, "nonce")
		case "output":
			if m["vout"] == 1.0 {
				require.Nil(t, m["address"])
				require.Equal(t, "6a00", m["script"])
			} else {
				require.Equal(t, "5000", m["amount"])
			}
		case "spend":
			require.Equal(t, "ee", m["prev_tx_hash"])
		}
	}
	require.Equal(t, []string{"block", "transaction", "output", "output", "spend"}, types)
}

func TestBitcoinCSV(t *testing.T) {
	for _, tc := range []struct {
		record string
		cols   []string
		rows   int
	}{{export.Output, export.OutputColumns, 2}, {export.Spend, export.SpendColumns, 1}, {export.Transaction, export.TransactionColumns, 1}} {
		var buf bytes.Buffer
		w, err := export.NewWriter(&buf, "csv", []string{tc.record}, chain.BTC)
		require.NoError(t, err)
		require.NoError(t, w.Write(btcBlock()))
		require.NoError(t, w.Flush())
		rows, err := csv.NewReader(&buf).ReadAll()
		require.NoError(t, err)
		require.Equal(t, tc.cols, rows[0])
		require.Len(t, rows, tc.rows+1)
		for _, r := range rows[1:] {
			require.Len(t, r, len(tc.cols))
		}
	}
}

func TestParseRecordsPerChain(t *testing.T) {
	_, err := export.ParseRecords("jsonl", "transfer", chain.BTC)
	require.ErrorContains(t, err, `unknown btc record type "transfer" (want block, transaction, output, spend)`)
	_, err = export.ParseRecords("jsonl", "output", chain.ETH)
	require.ErrorContains(t, err, "unknown eth record type")
	got, err := export.ParseRecords("csv", "", chain.BTC)
	require.NoError(t, err)
	require.Equal(t, []string{export.Output}, got)
	_, err = export.ParseRecords("csv", "output,spend", chain.BTC)
	require.ErrorContains(t, err, "one record type per file")
}
