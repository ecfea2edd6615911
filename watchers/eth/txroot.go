package eth

import (
	"fmt"
	"strings"

	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/trie"
	fastjson "github.com/segmentio/encoding/json"
)

// UnmarshalJSON decodes a transaction and keeps its JSON, so that the
// transactions root can be recomputed from exactly what the node sent.
func (t *rpcTx) UnmarshalJSON(b []byte) error {
	type plain rpcTx
	if err := fastjson.Unmarshal(b, (*plain)(t)); err != nil {
		return err
	}
	t.raw = append(t.raw[:0], b...)
	return nil
}

// verifyTxRoot rebuilds every transaction from the reply with
// go-ethereum's own decoder, checks each one hashes to the hash the reply
// claims and agrees with the fields cordon records, and checks that
// together they hash to the header's transactionsRoot. With the header hash
// check, a reply whose transactions were altered — another value or
// recipient, a dropped or injected transaction — is refused. (The sender is
// taken from the reply, as the node computed it, and is not re-derived.)
func verifyTxRoot(b *rpcBlock) error {
	txs := make(types.Transactions, len(b.Transactions))
	for i := range b.Transactions {
		rt := &b.Transactions[i]
		tx := new(types.Transaction)
		if err := tx.UnmarshalJSON(rt.raw); err != nil {
			return fmt.Errorf("transaction %d: decode for root check: %w", i, err)
		}
		if got := tx.Hash().Hex(); !strings.EqualFold(got, rt.Hash) {
			return fmt.Errorf("transaction %d hashes to %s but the reply claims %s", i, got, trunc(rt.Hash))
		}
		if err := sameFields(tx, rt); err != nil {
			return fmt.Errorf("transaction %d (%s): %w", i, trunc(rt.Hash), err)
		}
		txs[i] = tx
	}
	root := types.DeriveSha(txs, trie.NewStackTrie(nil))
	if !strings.EqualFold(root.Hex(), b.TransactionsRoot) {
		return fmt.Errorf("transactions hash to root %s but the header has %s", root.Hex(), trunc(b.TransactionsRoot))
	}
	return nil
}

// sameFields guards against a reply that two JSON decoders would read
// differently (duplicate keys and the like): the fields cordon records
// must be the ones that were hashed.
func sameFields(tx *types.Transaction, rt *rpcTx) error {
	v, err := parseBigQuantity("value", rt.Value)
	if err != nil {
		return err
	}
	if v.ToBig().Cmp(tx.Value()) != 0 {
		return fmt.Errorf("value %s differs from the hashed value %s", v.Dec(), tx.Value())
	}
	switch {
	case (rt.To == nil) != (tx.To() == nil):
		return fmt.Errorf("recipient presence differs from the hashed transaction")
	case rt.To != nil && !strings.EqualFold(*rt.To, tx.To().Hex()):
		return fmt.Errorf("recipient %s differs from the hashed %s", trunc(*rt.To), tx.To().Hex())
	}
	n, err := parseQuantity("nonce", rt.Nonce)
	if err != nil {
		return err
	}
	if n != tx.Nonce() || rt.Input.size != len(tx.Data()) {
		return fmt.Errorf("nonce or input differs from the hashed transaction")
	}
	return nil
}
