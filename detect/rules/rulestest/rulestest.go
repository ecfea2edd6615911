// Package rulestest builds block streams for detection's tests: an
// Ethereum-like stream of blocks with transfers, and its reorganizations.
package rulestest

import (
	"fmt"

	"github.com/cordonhq/cordon/internal/chain"
)

// Stream builds the blocks of one Ethereum stream ("eth/devnet"), 12
// seconds apart.
type Stream struct {
	Height uint64
	Time   int64
	Parent string
	Seq    uint64
}

// Xfer is one transfer of a block (a transaction of its own). Asset
// empty is the native coin; Sender, when set, is the transaction's
// sender (otherwise From); Fee is the transaction's fee.
type Xfer struct {
	From, To, Amount, Asset, Sender, Fee string
}

// Block adds a block on the stream's tip; fork tells branches apart in
// the hashes.
func (c *Stream) Block(fork string, xs ...Xfer) chain.Update {
	c.Height++
	c.Time += 12
	c.Seq++
	h := chain.Header{Chain: chain.ETH, Network: "devnet", Height: c.Height, Hash: fmt.Sprintf("0xb%d%s", c.Height, fork), ParentHash: c.Parent, Time: c.Time}
	c.Parent = h.Hash
	b := &chain.Block{Header: h}
	for i, x := range xs {
		tx := fmt.Sprintf("0xt%d_%d%s", c.Height, i, fork)
		sender := x.Sender
		if sender == "" {
			sender = x.From
		}
		t := chain.Transaction{V: chain.SchemaVersion, Chain: chain.ETH, Network: "devnet", Hash: tx, Index: uint32(i), From: sender, To: x.To, //nolint:gosec // small
			BlockHash: h.Hash, BlockHeight: h.Height, BlockTime: h.Time}
		if x.Fee != "" {
			f, err := chain.ParseAmount(x.Fee)
			if err != nil {
				panic(err)
			}
			t.Fee = &f
		}
		b.Transactions = append(b.Transactions, t)
		amt, err := chain.ParseAmount(x.Amount)
		if err != nil {
			panic(err)
		}
		asset, std := chain.AssetNative, chain.StandardNative
		var li *uint32
		if x.Asset != "" {
			asset, std = x.Asset, chain.StandardERC20
			v := uint32(i) //nolint:gosec // small
			li = &v
		}
		b.Transfers = append(b.Transfers, chain.Transfer{V: chain.SchemaVersion, Chain: chain.ETH, Network: "devnet", Asset: asset, Standard: std, TxHash: tx,
			TxIndex: uint32(i), LogIndex: li, From: x.From, To: x.To, Amount: amt, BlockHeight: h.Height, BlockHash: h.Hash, BlockTime: h.Time}) //nolint:gosec // small
	}
	return chain.Update{Event: chain.BlockEvent{V: chain.SchemaVersion, Type: chain.BlockAdded, Seq: c.Seq, Header: h,
		TxCount: len(b.Transactions), TransferCount: len(b.Transfers)}, Block: b}
}

// Remove removes u's block, which must be the tip.
func (c *Stream) Remove(u chain.Update) chain.Update {
	c.Seq++
	c.Height--
	c.Parent = u.Block.ParentHash
	c.Time -= 12
	return chain.Update{Event: chain.BlockEvent{V: chain.SchemaVersion, Type: chain.BlockRemoved, Seq: c.Seq, Header: u.Block.Header}}
}
