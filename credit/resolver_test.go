package credit_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/credit"
	"github.com/cordonhq/cordon/ingest/clickhouse"
	"github.com/cordonhq/cordon/ingest/clickhouse/chtest"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/registry"
)

// regtestAddr is a P2WPKH regtest address made of one repeated byte.
func regtestAddr(t testing.TB, b byte) string {
	a, err := btcutil.NewAddressWitnessPubKeyHash(bytes.Repeat([]byte{b}, 20), &chaincfg.RegressionNetParams)
	require.NoError(t, err)
	return a.EncodeAddress()
}

// TestClickHouseResolverConflict: ClickHouse holds two canonical rows for
// one spent output that name different owners (a tampered or corrupted
// copy). The deposit spending it is held with a reason naming the output
// and both addresses — no copy wins — while a deposit spending an output
// whose copies agree (one per branch) resolves as before.
func TestClickHouseResolverConflict(t *testing.T) {
	srv := chtest.Server(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	store, err := clickhouse.Open(ctx, clickhouse.Config{Addrs: []string{srv.Addr()}, Database: "resolve"})
	require.NoError(t, err)
	defer store.Close()
	require.NoError(t, store.Migrate(ctx, clickhouse.Schema))

	real, forged, honest, dep := regtestAddr(t, 1), regtestAddr(t, 2), regtestAddr(t, 3), regtestAddr(t, 9)
	// Two canonical blocks, each holding a copy of tx p1 and p2 (a
	// transaction mined again on another branch is another row).
	for i, h := range []string{"b1", "b2"} {
		require.NoError(t, store.Exec(ctx, fmt.Sprintf(`INSERT INTO blocks (chain, network, height, hash, parent_hash, time, seq, removed,
			tx_count, transfer_count, output_count, spend_count) SELECT 'btc', 'regtest', %d, '%s', 'b0', now(), %d, 0, 2, 0, 2, 0`, 10+i, h, 1+i)))
	}
	insertOutput := func(block, tx, addr string, amount uint64) {
		require.NoError(t, store.Exec(ctx, fmt.Sprintf(`INSERT INTO outputs (chain, network, block_number, block_hash, block_time, tx_hash,
			tx_index, vout, address, script_type, script, amount, coinbase)
			SELECT 'btc', 'regtest', 10, '%s', now(), '%s', 1, 0, '%s', 'witness_v0_keyhash', '', %d, 0`, block, tx, addr, amount)))
	}
	insertOutput("b1", "p1", real, 5000)
	insertOutput("b2", "p1", forged, 5000) // the tampered copy
	insertOutput("b1", "p2", honest, 7000)
	insertOutput("b2", "p2", honest, 7000) // the same output on another branch: agrees
	var canonical uint64
	require.NoError(t, store.QueryRow(ctx, `SELECT count() FROM canonical_outputs WHERE tx_hash = 'p1'`).Scan(&canonical))
	require.Equal(t, uint64(2), canonical, "both copies are canonical rows")

	reg := registry.NewIndex()
	e := registry.Entry{Chain: chain.BTC, Network: "regtest", Address: dep, Account: "u1"}
	require.NoError(t, e.Validate())
	reg.Put(&e)
	// Block 20 pays the deposit address twice: t1 spends p1:0, t2 spends p2:0.
	pay := func(tx string) chain.Output {
		return chain.Output{Chain: chain.BTC, Network: "regtest", TxHash: tx, Vout: 0, Address: &dep, Amount: chain.AmountFromUint64(1000),
			BlockHeight: 20, BlockHash: "b20"}
	}
	spend := func(tx, prev string) chain.Spend {
		return chain.Spend{Chain: chain.BTC, Network: "regtest", TxHash: tx, PrevTxHash: prev, PrevVout: 0, BlockHeight: 20, BlockHash: "b20"}
	}
	blk := &chain.Block{Header: chain.Header{Chain: chain.BTC, Network: "regtest", Height: 20, Hash: "b20"},
		Outputs: []chain.Output{pay("t1"), pay("t2")}, Spends: []chain.Spend{spend("t1", "p1"), spend("t2", "p2")}}

	got, err := credit.BTCCandidates(ctx, blk, reg, credit.ClickHouseResolver{Store: store}, nil)
	require.NoError(t, err)
	require.Len(t, got, 2)
	byTx := map[string]credit.Candidate{}
	for _, c := range got {
		byTx[c.TxHash] = c
	}
	conflicted := byTx["t1"]
	require.NotContains(t, conflicted.Senders, forged, "no copy of the output wins")
	require.NotContains(t, conflicted.Senders, real, "no copy of the output wins")
	require.Len(t, conflicted.Holds, 1, "the deposit spending the conflicting output is held: %v", conflicted.Holds)
	require.Contains(t, conflicted.Holds[0], "conflicting rows for output p1:0 in ClickHouse")
	require.Equal(t, conflicted.Holds, conflicted.Conflicts, "the conflict is also reported for its alert")
	require.Contains(t, conflicted.Holds[0], real)
	require.Contains(t, conflicted.Holds[0], forged)

	clean := byTx["t2"]
	require.Equal(t, []string{honest}, clean.Senders, "agreeing copies resolve as before")
	require.Empty(t, clean.Holds)

	// A copy that changes only the amount is as much a conflict.
	insertOutput("b2", "p2", honest, 7001)
	got, err = credit.BTCCandidates(ctx, blk, reg, credit.ClickHouseResolver{Store: store}, nil)
	require.NoError(t, err)
	for _, c := range got {
		if c.TxHash == "t2" {
			require.Len(t, c.Holds, 1, "%v", c.Holds)
			require.Contains(t, c.Holds[0], "conflicting rows for output p2:0 in ClickHouse: amounts 7000, 7001")
		}
	}
}
