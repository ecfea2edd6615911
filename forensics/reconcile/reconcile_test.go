package reconcile_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/forensics/reconcile"
	"github.com/cordonhq/cordon/integration/pipetest"
	"github.com/cordonhq/cordon/internal/chain"
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

// TestReconcileBTC: after payments, spends and reorgs, every touched
// address's outputs agree with the node's UTXO set, and each block of the
// window has the node's output and spend counts; a tampered output amount
// and a deleted spend are reported.
func TestReconcileBTC(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
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
	require.Greater(t, rep.Checked, 10)
	require.Equal(t, chain.BTC, rep.Chain)

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
}
