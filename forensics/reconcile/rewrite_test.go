package reconcile_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/forensics/reconcile"
)

// TestReconcileBTCAddressRewrite: an output created before the window and
// spent in it has its address rewritten in ClickHouse — erased (NULL),
// then changed to another address. Both are reported; the erased one used
// to pass unseen, since no sampled account's balance showed it.
func TestReconcileBTCAddressRewrite(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	node, _, pipe, opts, rep := reorgedBTC(t, ctx)
	opts.Height = rep.Height

	var prevTx, prevAddr, prevBlock string
	var prevVout uint32
	require.NoError(t, pipe.Store.QueryRow(ctx, `SELECT prev_tx_hash, prev_vout, assumeNotNull(address) FROM canonical_inputs
		WHERE chain = 'btc' AND network = 'regtest' AND block_number > ? AND block_number <= ? AND prev_found = 1 AND prev_block_number <= ?
			AND address IS NOT NULL
		ORDER BY block_number DESC, tx_hash, vin LIMIT 1`, rep.Base, rep.Height, rep.Base).Scan(&prevTx, &prevVout, &prevAddr))
	require.NoError(t, pipe.Store.QueryRow(ctx, `SELECT block_hash FROM canonical_outputs WHERE tx_hash = ? AND vout = ?`, prevTx, prevVout).Scan(&prevBlock))
	for _, newAddr := range []string{"NULL", "'bcrt1qtamperedtamperedtamperedtampered000'"} {
		require.NoError(t, pipe.Store.Exec(ctx, `INSERT INTO outputs (chain, network, block_number, block_hash, block_time, tx_hash, tx_index,
		vout, address, script_type, script, amount, coinbase)
		SELECT chain, network, block_number, block_hash, block_time, tx_hash, tx_index, vout, `+newAddr+`, script_type, script, amount, coinbase
		FROM outputs FINAL WHERE tx_hash = ? AND vout = ? AND block_hash = ?`, prevTx, prevVout, prevBlock))
		opts.Sample = 0
		rep, err := reconcile.BTC(ctx, pipe.Store, node.Client(), opts)
		require.NoError(t, err)
		found := false
		for _, m := range rep.Mismatches {
			found = found || strings.Contains(m.Detail, fmt.Sprintf("%s:%d", prevTx, prevVout))
		}
		require.True(t, found, "address of %s:%d (paying %s) rewritten to %s: not reported: %+v", prevTx, prevVout, prevAddr, newAddr, rep.Mismatches)
	}
}
