package clickhouse_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/ingest/clickhouse"
	"github.com/cordonhq/cordon/ingest/clickhouse/chtest"
	"github.com/cordonhq/cordon/internal/chain"
)

// TestAlertsNewestRecordWins: the alerts table keeps one row per id, its
// newest record's: a retraction withdraws the alert from active_alerts, a
// replayed batch changes nothing, and the alert raised again (its block
// back on the canonical chain) stands again.
func TestAlertsNewestRecordWins(t *testing.T) {
	srv := chtest.Server(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := open(t, srv.Addr(), "alerts1")
	require.NoError(t, s.Migrate(ctx, clickhouse.Schema))
	at := time.Date(2026, 12, 4, 1, 0, 0, 0, time.UTC)
	a := chain.Alert{V: 1, ID: "detect/flagged_contact/1", Type: "flagged_contact", Rule: "flagged_contact", Severity: "high",
		Chain: chain.ETH, Network: "devnet", Time: at, Message: "paid a flagged address", Details: map[string]string{"flagged": "to"},
		Height: 7, BlockHash: "0xb7", TxHash: "0xt1", Addresses: []string{"0xa", "0xb"}, Asset: "native", Amount: "5"}
	b := chain.Alert{V: 1, ID: "detect/drain/2", Type: "drain", Rule: "drain", Severity: "critical", Chain: chain.ETH, Network: "devnet", Time: at,
		Message: "drained", Height: 8, BlockHash: "0xb8"}
	retracted := a
	retracted.Retracted = true

	active := func() map[string]string {
		rows, err := s.Query(ctx, "SELECT id, severity FROM active_alerts ORDER BY id")
		require.NoError(t, err)
		defer rows.Close()
		out := map[string]string{}
		for rows.Next() {
			var id, sev string
			require.NoError(t, rows.Scan(&id, &sev))
			out[id] = sev
		}
		require.NoError(t, rows.Err())
		return out
	}
	require.NoError(t, s.InsertAlerts(ctx, []clickhouse.AlertRow{{Alert: a, Version: 1}, {Alert: b, Version: 2}}))
	require.Equal(t, map[string]string{a.ID: "high", b.ID: "critical"}, active())

	var addrs []string
	var details string
	require.NoError(t, s.QueryRow(ctx, "SELECT addresses, details FROM active_alerts WHERE id = ?", a.ID).Scan(&addrs, &details))
	require.Equal(t, []string{"0xa", "0xb"}, addrs)
	require.JSONEq(t, `{"flagged":"to"}`, details)

	require.NoError(t, s.InsertAlerts(ctx, []clickhouse.AlertRow{{Alert: retracted, Version: 3}}))
	require.Equal(t, map[string]string{b.ID: "critical"}, active())
	// The same batch again (a copy restarted before its commit).
	require.NoError(t, s.InsertAlerts(ctx, []clickhouse.AlertRow{{Alert: a, Version: 1}, {Alert: retracted, Version: 3}}))
	require.Equal(t, map[string]string{b.ID: "critical"}, active())
	require.NoError(t, s.InsertAlerts(ctx, []clickhouse.AlertRow{{Alert: a, Version: 4}}))
	require.Equal(t, map[string]string{a.ID: "high", b.ID: "critical"}, active())
}
