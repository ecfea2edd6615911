package reconcile_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/forensics/reconcile"
	"github.com/cordonhq/cordon/integration/pipetest"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/watchers/btc/btcnode"
	"github.com/cordonhq/cordon/watchers/eth/devnet"
)

// TestReconcileETH: after random traffic (payments, tokens, NFTs, failed
// calls, contract creations) and reorgs, every touched account's balance
// recomputed from ClickHouse equals the node's — native and token, fees
// included; a tampered row is reported with its accounts.
func TestReconcileETH(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dev, pipe := pipetest.ETH(t, ctx, 5)
	traffic, err := devnet.NewTraffic(ctx, dev, devnet.TrafficConfig{TxPerBlock: 12, Seed: 5}, nil)
	require.NoError(t, err)
	for round := 1; round <= 30; round++ {
		require.NoError(t, traffic.Step(ctx, 12))
		if round%10 == 0 {
			pipe.WaitLoaded(t, ctx, dev.Head().Hash().Hex())
			require.NoError(t, traffic.Reorg(ctx, 2))
		}
	}
	pipe.WaitLoaded(t, ctx, dev.Head().Hash().Hex())

	rep, err := reconcile.ETH(ctx, pipe.Store, dev.Client(), reconcile.Options{Network: pipetest.ETHNetwork, Blocks: 40})
	require.NoError(t, err)
	require.Empty(t, rep.Mismatches)
	require.Equal(t, rep.Touched, rep.Checked+len(rep.Skipped))
	require.Greater(t, rep.Checked, 20)
	require.Equal(t, dev.Head().Number.Uint64(), rep.Height)
	assets := map[string]bool{}
	var victim string
	for _, s := range rep.Skipped {
		require.Equal(t, "0x0000000000000000000000000000000000000000", s.Address, s.Detail)
	}
	// A row changed after loading: one token transfer's amount.
	var tx, from, to, asset string
	require.NoError(t, pipe.Store.QueryRow(ctx, `SELECT tx_hash, from_address, to_address, asset FROM canonical_transfers
		WHERE standard = 'erc20' AND from_address != to_address AND block_number > ? ORDER BY block_number DESC LIMIT 1`, rep.Base).Scan(&tx, &from, &to, &asset))
	assets[asset] = true
	victim = to
	require.NoError(t, pipe.Store.Exec(ctx, `INSERT INTO transfers (chain, network, block_number, block_hash, block_time, tx_hash, tx_index,
		log_index, asset, standard, from_address, to_address, amount, token_id)
		SELECT chain, network, block_number, block_hash, block_time, tx_hash, tx_index, log_index, asset, standard, from_address, to_address,
			toString(toUInt64(amount) + 7), token_id
		FROM transfers FINAL WHERE tx_hash = '`+tx+`' AND standard = 'erc20'`))
	rep, err = reconcile.ETH(ctx, pipe.Store, dev.Client(), reconcile.Options{Network: pipetest.ETHNetwork, Blocks: 40})
	require.NoError(t, err)
	bad := map[string]string{}
	for _, m := range rep.Mismatches {
		require.Equal(t, asset, m.Asset)
		bad[m.Address] = m.Detail
	}
	require.Contains(t, bad, victim, "the receiver's balance is off by 7")
	require.Contains(t, bad, from, "the sender's balance is off by 7")
	require.Contains(t, bad[victim], "by 7")
}

// TestReconcileBTC: after payments, spends and reorgs, every output and
// spend of the window agrees with the node's blocks and every touched
// address's balance change over the window with the node's; a tampered
// output amount, a tampered amount of an output created before the window
// and spent in it, and a spent output ClickHouse lost are reported.
func TestReconcileBTC(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	node, wallet, pipe, opts, rep := reorgedBTC(t, ctx)
	require.Greater(t, rep.Checked, 10)
	require.Equal(t, chain.BTC, rep.Chain)
	t.Logf("blocks %d-%d: %d addresses touched, %d checked, skipped %+v", rep.Base+1, rep.Height, rep.Touched, rep.Checked, rep.Skipped)

	// The node moves on: reconciling at the old height still agrees.
	require.NoError(t, wallet.Step(4))
	opts.Height = rep.Height
	again, err := reconcile.BTC(ctx, pipe.Store, node.Client(), opts)
	require.NoError(t, err)
	require.Empty(t, again.Mismatches)

	// Tamper: an output's amount.
	var tx, addr, blockHash string
	var vout uint32
	require.NoError(t, pipe.Store.QueryRow(ctx, `SELECT tx_hash, vout, assumeNotNull(address), block_hash FROM canonical_outputs
		WHERE address IS NOT NULL AND block_number > ? AND block_number <= ? ORDER BY block_number DESC, tx_hash LIMIT 1`,
		rep.Base, rep.Height).Scan(&tx, &vout, &addr, &blockHash))
	var before uint64
	require.NoError(t, pipe.Store.QueryRow(ctx, `SELECT toUInt64(amount) FROM outputs FINAL WHERE tx_hash = ? AND vout = ? AND block_hash = ?`, tx, vout,
		blockHash).Scan(&before))
	require.NoError(t, pipe.Store.Exec(ctx, `INSERT INTO outputs (chain, network, block_number, block_hash, block_time, tx_hash, tx_index,
		vout, address, script_type, script, amount, coinbase)
		SELECT chain, network, block_number, block_hash, block_time, tx_hash, tx_index, vout, address, script_type, script, amount + 1, coinbase
		FROM outputs FINAL WHERE tx_hash = ? AND vout = ?`, tx, vout))
	// The tampered copy is in: next to the original, or already merged
	// over it (ReplacingMergeTree keeps the last insert of a row), and
	// FINAL sees it either way.
	var now uint64
	require.NoError(t, pipe.Store.QueryRow(ctx, `SELECT toUInt64(amount) FROM outputs FINAL WHERE tx_hash = ? AND vout = ? AND block_hash = ?`, tx, vout,
		blockHash).Scan(&now))
	require.Equal(t, before+1, now, "the tampered copy is in")
	rep, err = reconcile.BTC(ctx, pipe.Store, node.Client(), opts)
	require.NoError(t, err)
	found := false
	for _, m := range rep.Mismatches {
		if m.Address == addr {
			found = true
			require.Contains(t, m.Detail, tx)
		}
	}
	require.True(t, found, "tampered output of %s not reported: %+v", addr, rep.Mismatches)

	// Tamper: the amount of an output created before the window that a
	// window transaction spends.
	var prevTx, prevAddr, prevBlock string
	var prevVout uint32
	var prevHeight, prevAmount uint64
	require.NoError(t, pipe.Store.QueryRow(ctx, `SELECT prev_tx_hash, prev_vout, assumeNotNull(address), prev_block_number, amount FROM canonical_inputs
		WHERE chain = 'btc' AND network = 'regtest' AND block_number > ? AND block_number <= ? AND prev_found = 1 AND prev_block_number <= ?
			AND address IS NOT NULL AND address != ?
		ORDER BY block_number DESC, tx_hash, vin LIMIT 1`, rep.Base, rep.Height, rep.Base, addr).Scan(&prevTx, &prevVout, &prevAddr, &prevHeight, &prevAmount),
		"a window transaction spends an output from before the window")
	require.NoError(t, pipe.Store.QueryRow(ctx, `SELECT block_hash FROM canonical_outputs WHERE tx_hash = ? AND vout = ?`, prevTx, prevVout).Scan(&prevBlock))
	require.NoError(t, pipe.Store.Exec(ctx, `INSERT INTO outputs (chain, network, block_number, block_hash, block_time, tx_hash, tx_index,
		vout, address, script_type, script, amount, coinbase)
		SELECT chain, network, block_number, block_hash, block_time, tx_hash, tx_index, vout, address, script_type, script, amount + 1, coinbase
		FROM outputs FINAL WHERE tx_hash = ? AND vout = ? AND block_hash = ?`, prevTx, prevVout, prevBlock))
	rep, err = reconcile.BTC(ctx, pipe.Store, node.Client(), opts)
	require.NoError(t, err)
	prevOp := fmt.Sprintf("%s:%d", prevTx, prevVout)
	m, ok := mismatchOf(rep, prevAddr, prevOp)
	require.True(t, ok, "tampered spent output %s of %s (block %d, window from %d) not reported: %+v", prevOp, prevAddr, prevHeight, rep.Base+1, rep.Mismatches)
	require.Contains(t, m.Detail, fmt.Sprintf("pays %d to %s in ClickHouse (block %d", prevAmount+1, prevAddr, prevHeight))
	require.Contains(t, m.Detail, fmt.Sprintf("%d to %s on the node", prevAmount, prevAddr))

	// Lost: the block holding that output is no longer canonical in
	// ClickHouse, so it has no row of an output the node's window spends.
	// The loaded range starts at 100: the output might be older, and is
	// listed as skipped...
	unknown := func(rep *reconcile.Report) int {
		n := 0
		for _, s := range rep.Skipped {
			_, err := fmt.Sscanf(s.Detail, "%d inputs of the window spend outputs ClickHouse has no row for", &n)
			require.NoError(t, err, s.Detail)
		}
		return n
	}
	unknownBefore := unknown(rep)
	require.NoError(t, pipe.Store.Exec(ctx, `INSERT INTO blocks (chain, network, height, hash, parent_hash, time, seq, removed,
		tx_count, transfer_count, output_count, spend_count, miner, base_fee)
		SELECT chain, network, height, hash, parent_hash, time, seq + 1, 1, tx_count, transfer_count, output_count, spend_count, miner, base_fee
		FROM blocks FINAL WHERE hash = ?`, prevBlock))
	rep, err = reconcile.BTC(ctx, pipe.Store, node.Client(), opts)
	require.NoError(t, err)
	require.Len(t, rep.Skipped, 1, "%+v", rep.Skipped)
	require.Greater(t, unknown(rep), unknownBefore, rep.Skipped[0].Detail)
	_, ok = mismatchOf(rep, prevAddr, prevOp)
	require.False(t, ok, "ClickHouse no longer attributes %s to %s", prevOp, prevAddr)
	// ...but a store that holds the chain from its genesis has lost it.
	genesis, err := node.Client().GetBlockHash(0)
	require.NoError(t, err)
	require.NoError(t, pipe.Store.Exec(ctx, `INSERT INTO blocks (chain, network, height, hash, parent_hash, time, seq, removed,
		tx_count, transfer_count, output_count, spend_count, miner, base_fee)
		SELECT chain, network, 0, ?, '', time, 1, 0, 1, 0, 1, 0, '', '' FROM blocks FINAL WHERE hash = ?`, genesis.String(), prevBlock))
	rep, err = reconcile.BTC(ctx, pipe.Store, node.Client(), opts)
	require.NoError(t, err)
	_, ok = mismatchOf(rep, "(unknown)", prevOp)
	require.True(t, ok, "the spend of lost output %s not reported: %+v", prevOp, rep.Mismatches)
}

// mismatchOf returns the report's mismatch of addr whose detail has all
// of want.
func mismatchOf(rep *reconcile.Report, addr string, want ...string) (reconcile.Mismatch, bool) {
	for _, m := range rep.Mismatches {
		if m.Address == addr && !slices.ContainsFunc(want, func(w string) bool { return !strings.Contains(m.Detail, w) }) {
			return m, true
		}
	}
	return reconcile.Mismatch{}, false
}

// countingNode counts what a check asks the node; after each GetBlock
// it runs onBlock with the number of GetBlock calls so far.
type countingNode struct {
	reconcile.BTCNode
	counts, hashes, blocks atomic.Int64
	onBlock                func(n int64)
}

func (c *countingNode) GetBlockCount() (int64, error) {
	c.counts.Add(1)
	return c.BTCNode.GetBlockCount()
}

func (c *countingNode) GetBlockHash(height int64) (*chainhash.Hash, error) {
	c.hashes.Add(1)
	return c.BTCNode.GetBlockHash(height)
}

func (c *countingNode) GetBlock(hash *chainhash.Hash) (*wire.MsgBlock, error) {
	blk, err := c.BTCNode.GetBlock(hash)
	n := c.blocks.Add(1)
	if c.onBlock != nil {
		c.onBlock(n)
	}
	return blk, err
}

// TestReconcileBTCCostFollowsWindow: the miner's address receives every
// block's coinbase, so its history grows with the chain; the node calls
// of a check are the window's blocks and the distinct blocks holding the
// outputs the window spends, and do not grow when that history doubles.
func TestReconcileBTCCostFollowsWindow(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	node, wallet, pipe := pipetest.BTC(t, ctx, 7)
	const window = 6
	type cost struct {
		held                         uint64 // outputs the miner holds before the window
		prevBlocks                   int64  // blocks before the window holding outputs it spends
		counts, hashes, blocks, over int64
	}
	measure := func(history int) cost {
		_, err := wallet.Mine(history)
		require.NoError(t, err)
		for range window {
			require.NoError(t, wallet.Step(3))
		}
		tip, err := node.Client().GetBestBlockHash()
		require.NoError(t, err)
		pipe.WaitLoaded(t, ctx, tip.String())
		cn := &countingNode{BTCNode: node.Client()}
		rep, err := reconcile.BTC(ctx, pipe.Store, cn, reconcile.Options{Network: "regtest", Blocks: window})
		require.NoError(t, err)
		require.Empty(t, rep.Mismatches)
		require.Equal(t, rep.Touched, rep.Checked)

		var miner string
		require.NoError(t, pipe.Store.QueryRow(ctx, `SELECT assumeNotNull(address) FROM canonical_outputs
			WHERE chain = 'btc' AND network = 'regtest' AND coinbase = 1 AND block_number = ? AND amount > 0 LIMIT 1`, rep.Height).Scan(&miner))
		var c cost
		require.NoError(t, pipe.Store.QueryRow(ctx, `SELECT count() FROM canonical_outputs
			WHERE chain = 'btc' AND network = 'regtest' AND address = ? AND block_number <= ?`, miner, rep.Base).Scan(&c.held))
		var prevBlocks uint64
		require.NoError(t, pipe.Store.QueryRow(ctx, `SELECT uniqExact(prev_block_number) FROM canonical_inputs
			WHERE chain = 'btc' AND network = 'regtest' AND block_number > ? AND block_number <= ? AND prev_found = 1
				AND prev_block_number <= ? AND address IS NOT NULL`, rep.Base, rep.Height, rep.Base).Scan(&prevBlocks))
		c.prevBlocks = int64(prevBlocks)
		c.counts, c.hashes, c.blocks = cn.counts.Load(), cn.hashes.Load(), cn.blocks.Load()
		t.Logf("history %d outputs of %s: %d getblockcount, %d getblockhash, %d getblock (window %d, %d blocks of spent outputs)",
			c.held, miner, c.counts, c.hashes, c.blocks, window, c.prevBlocks)
		require.Equal(t, int64(1), c.counts)
		require.LessOrEqual(t, c.blocks, window+c.prevBlocks, "getblock: the window and the blocks of what it spends")
		require.LessOrEqual(t, c.hashes, window+c.prevBlocks+1, "getblockhash: those, and the tip of the window again")
		c.over = c.blocks - c.prevBlocks
		return c
	}
	first := measure(40)
	second := measure(2 * int(first.held))
	require.GreaterOrEqual(t, second.held, 2*first.held, "the history doubled")
	require.Equal(t, first.over, second.over, "what the window costs beyond the blocks of its spent outputs")
	require.Less(t, second.blocks+second.hashes, int64(second.held), "fewer calls than outputs the miner received")
}

// TestReconcileBTCNodeMoves: blocks the node mines while a check runs
// change nothing, neither the result nor the calls; a reorg of the window
// while it runs makes it ErrNotComparable, naming the height and hashes.
func TestReconcileBTCNodeMoves(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	node, wallet, pipe := pipetest.BTC(t, ctx, 8)
	const window = 8
	for range 2 * window {
		require.NoError(t, wallet.Step(4))
	}
	tip, err := node.Client().GetBestBlockHash()
	require.NoError(t, err)
	pipe.WaitLoaded(t, ctx, tip.String())
	still := &countingNode{BTCNode: node.Client()}
	opts := reconcile.Options{Network: "regtest", Blocks: window}
	rep, err := reconcile.BTC(ctx, pipe.Store, still, opts)
	require.NoError(t, err)
	require.Empty(t, rep.Mismatches)
	opts.Height = rep.Height

	// Two blocks after each block the check reads.
	before, err := wallet.Height()
	require.NoError(t, err)
	moving := &countingNode{BTCNode: node.Client(), onBlock: func(int64) {
		assert.NoError(t, wallet.Step(2))
		assert.NoError(t, wallet.Step(1))
	}}
	moved, err := reconcile.BTC(ctx, pipe.Store, moving, opts)
	require.NoError(t, err)
	require.Empty(t, moved.Mismatches)
	require.Equal(t, rep.Height, moved.Height)
	require.Equal(t, rep.Checked, moved.Checked)
	require.Equal(t, still.blocks.Load(), moving.blocks.Load())
	require.Equal(t, still.hashes.Load(), moving.hashes.Load())
	after, err := wallet.Height()
	require.NoError(t, err)
	require.Equal(t, before+2*moving.blocks.Load(), after, "the node moved on meanwhile")

	// A reorg replacing the window's last block once the check has read
	// it.
	h := int64(rep.Height)
	old, err := node.Client().GetBlockHash(h)
	require.NoError(t, err)
	reorg := &countingNode{BTCNode: node.Client(), onBlock: func(n int64) {
		if n == window {
			tip, err := wallet.Height()
			assert.NoError(t, err)
			assert.NoError(t, wallet.Reorg(int(tip-h+1)))
		}
	}}
	_, err = reconcile.BTC(ctx, pipe.Store, reorg, opts)
	require.ErrorIs(t, err, reconcile.ErrNotComparable)
	now, herr := node.Client().GetBlockHash(h)
	require.NoError(t, herr)
	require.NotEqual(t, old, now)
	for _, want := range []string{fmt.Sprintf("block %d ", h), old.String(), now.String()} {
		require.True(t, strings.Contains(err.Error(), want), "%q does not name %s", err, want)
	}
}

// reorgedBTC loads a btcd chain with payments, spends and three reorgs
// into ClickHouse and checks that a clean reconcile of its last 12 blocks
// finds nothing.
func reorgedBTC(t testing.TB, ctx context.Context) (*btcnode.Node, *btcnode.Wallet, *pipetest.Pipe, reconcile.Options, *reconcile.Report) {
	node, wallet, pipe := pipetest.BTC(t, ctx, 6)
	for round := 1; round <= 12; round++ {
		require.NoError(t, wallet.Step(4))
		if round%4 == 0 {
			tip, err := node.Client().GetBestBlockHash()
			require.NoError(t, err)
			pipe.WaitLoaded(t, ctx, tip.String())
			require.NoError(t, wallet.Reorg(2))
		}
	}
	tip, err := node.Client().GetBestBlockHash()
	require.NoError(t, err)
	pipe.WaitLoaded(t, ctx, tip.String())
	opts := reconcile.Options{Network: "regtest", Blocks: 12}
	rep, err := reconcile.BTC(ctx, pipe.Store, node.Client(), opts)
	require.NoError(t, err)
	require.Empty(t, rep.Mismatches)
	return node, wallet, pipe, opts, rep
}
