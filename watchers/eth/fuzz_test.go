package eth

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/cordonhq/cordon/internal/chain"
)

// smallMainnetSeed returns the capella fixture cut to its first n
// transactions, as fuzz seeds.
func smallMainnetSeed(tb testing.TB, n int) (block, receipts []byte) {
	m := loadMainnet(tb, "mainnet-18189758")
	var b map[string]json.RawMessage
	if err := json.Unmarshal(m.raw, &b); err != nil {
		tb.Fatal(err)
	}
	var txs []json.RawMessage
	_ = json.Unmarshal(b["transactions"], &txs)
	b["transactions"], _ = json.Marshal(txs[:n])
	block, _ = json.Marshal(b)
	receipts, _ = json.Marshal(m.receipts[:n])
	return block, receipts
}

func checkBlockInvariants(t testing.TB, b *chain.Block, rs []rpcReceipt) {
	t.Helper()
	failed := map[string]bool{}
	for _, tx := range b.Transactions {
		if !tx.Succeeded() {
			failed[tx.Hash] = true
		}
		if tx.BlockHash != b.Hash {
			t.Fatalf("transaction %s carries block hash %s, want %s", tx.Hash, tx.BlockHash, b.Hash)
		}
	}
	for _, tr := range b.Transfers {
		if failed[tr.TxHash] {
			t.Fatalf("transfer from failed transaction %s", tr.TxHash)
		}
		for _, a := range []string{tr.From, tr.To} {
			if len(a) != 42 || a != strings.ToLower(a) {
				t.Fatalf("address %q not normalized", a)
			}
		}
		if _, err := chain.ParseAmount(tr.Amount.String()); err != nil {
			t.Fatalf("amount %q: %v", tr.Amount, err)
		}
		if tr.BlockHash != b.Hash || tr.BlockHeight != b.Height {
			t.Fatalf("transfer carries another block")
		}
	}
	_ = rs
}

// FuzzNormalize feeds arbitrary block and receipt replies through the
// decoders and the normalizer: they must never panic, and whatever they
// accept must satisfy the record invariants.
func FuzzNormalize(f *testing.F) {
	block, receipts := smallMainnetSeed(f, 3)
	f.Add(block, receipts)
	f.Add(block[:len(block)/2], receipts)
	f.Add([]byte(`{"number":"0x1","hash":"0x`+strings.Repeat("ab", 32)+`","transactions":[]}`), []byte(`[]`))
	f.Add([]byte(`null`), []byte(`null`))
	f.Fuzz(func(t *testing.T, blockJSON, receiptsJSON []byte) {
		b, err := decodeBlock(blockJSON)
		if err != nil {
			return
		}
		_ = verifyHeaderHash(&b.rpcBlockHeader)
		rs, err := decodeReceipts(receiptsJSON)
		if err != nil {
			return
		}
		_ = checkStatus(0, 0, rs)
		_ = verifyReceiptsRoot(b, rs, 0)
		_ = verifyReceiptsRoot(b, rs, 1<<62)
		nb, err := normalize("fuzz", b, rs, &NormalizeStats{})
		if err != nil {
			return
		}
		checkBlockInvariants(t, nb, rs)
	})
}

// FuzzDecodeTransferLog decodes arbitrary logs.
func FuzzDecodeTransferLog(f *testing.F) {
	addr := "0x000000000000000000000000" + strings.Repeat("1f", 20)
	f.Add("0x"+strings.Repeat("aa", 20), TransferTopic, addr, addr, "", "0x"+strings.Repeat("00", 31)+"05")
	f.Add("0x"+strings.Repeat("aa", 20), TransferTopic, addr, addr, "0x"+strings.Repeat("00", 31)+"07", "0x")
	f.Add("0x"+strings.Repeat("aa", 20), TransferTopic, "0x01", addr, "", "0x")
	f.Fuzz(func(t *testing.T, address, t0, t1, t2, t3, data string) {
		topics := []string{t0, t1, t2}
		if t3 != "" {
			topics = append(topics, t3)
		}
		tr, ok, err := decodeTransferLog(&rpcLog{Address: address, Topics: topics, Data: data, LogIndex: "0x0"}, &NormalizeStats{})
		if err != nil || !ok {
			return
		}
		if tr.Standard != chain.StandardERC20 && tr.Standard != chain.StandardERC721 {
			t.Fatalf("standard %q", tr.Standard)
		}
		if len(tr.From) != 42 || len(tr.To) != 42 || len(tr.Asset) != 42 {
			t.Fatalf("bad addresses %q %q %q", tr.From, tr.To, tr.Asset)
		}
		if tr.Standard == chain.StandardERC721 && tr.TokenID == "" {
			t.Fatal("erc721 without token id")
		}
	})
}

// FuzzDecodeHeader decodes arbitrary eth_getBlockByNumber(n, false)
// replies.
func FuzzDecodeHeader(f *testing.F) {
	block, _ := smallMainnetSeed(f, 1)
	f.Add(block)
	f.Add([]byte(`{"number":"0x10","hash":"0x` + strings.Repeat("0", 64) + `"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		h, err := decodeHeader("fuzz", raw)
		if err != nil {
			return
		}
		if len(h.Hash) != 66 || len(h.ParentHash) != 66 {
			t.Fatalf("hash lengths %d %d", len(h.Hash), len(h.ParentHash))
		}
	})
}

// FuzzHexQuantity checks the quantity parsers against each other.
func FuzzHexQuantity(f *testing.F) {
	for _, s := range []string{"0x0", "0x1", "0xff", "0x00ff", "0xFFFFFFFFFFFFFFFF", "0x10000000000000000", "0x", "1", "0xg"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		small, err1 := parseQuantity("q", s)
		big, err2 := parseBigQuantity("q", s)
		if err1 == nil {
			if err2 != nil {
				t.Fatalf("%q: fits 64 bits but not 256: %v", s, err2)
			}
			if !big.IsUint64() || big.Uint64() != small {
				t.Fatalf("%q: %d vs %s", s, small, big.Dec())
			}
		}
	})
}
