package retrohunt_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/detect/retrohunt"
	"github.com/cordonhq/cordon/ingest/clickhouse"
	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/integration/pipetest"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/watchers/eth/devnet"
)

func listIndicator(t testing.TB, ctx context.Context, s *clickhouse.Store, id, c, value string, modified time.Time) {
	t.Helper()
	require.NoError(t, s.Exec(ctx, `INSERT INTO indicators (id, kind, chain, network, value, category, source, confidence, tlp,
		valid_from, valid_until, revoked, created, modified, feed, feed_version, description, refs)
		SELECT ?, 'address', ?, 'x', ?, 'hack', 'partner-x', 90, 'amber', toDateTime(0), toDateTime(0), 0, toDateTime(?), toDateTime(?), 'f', 'v1', '', '[]'`,
		id, c, value, modified.Unix(), modified.Unix()))
}

func register(t testing.TB, ctx context.Context, s *clickhouse.Store, c, addr string) {
	t.Helper()
	require.NoError(t, s.Exec(ctx, `INSERT INTO registered_addresses (chain, network, address, account, kind, added, removed, version)
		SELECT ?, 'x', ?, 'user-1', 'deposit', now(), 0, 1`, c, addr))
}

func alerts(t testing.TB, ctx context.Context, p *kafka.Producer) map[string]chain.Alert {
	t.Helper()
	out := map[string]chain.Alert{}
	require.NoError(t, p.ReadAll(ctx, p.Topics().Alerts, func(r kafka.Record) error {
		var a chain.Alert
		require.NoError(t, json.Unmarshal(r.Value, &a))
		if a.Type == "retro_hunt" {
			out[a.ID] = a
		}
		return nil
	}))
	return out
}

func count(t testing.TB, ctx context.Context, s *clickhouse.Store, q string, args ...any) int {
	t.Helper()
	var n uint64
	require.NoError(t, s.QueryRow(ctx, q, args...).Scan(&n))
	return int(n)
}

// TestRetroHuntEthereum: an address listed after it paid one of our
// registered addresses (and was paid by one) raises one alert per
// canonical transfer in each direction, once.
func TestRetroHuntEthereum(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dev, pipe := pipetest.ETH(t, ctx, 23)
	traffic, err := devnet.NewTraffic(ctx, dev, devnet.TrafficConfig{TxPerBlock: 12, Seed: 23}, nil)
	require.NoError(t, err)
	for range 15 {
		require.NoError(t, traffic.Step(ctx, 12))
	}
	pipe.WaitLoaded(t, ctx, dev.Head().Hash().Hex())
	s := pipe.Store

	// The busiest pair of the chain: the thief and our deposit address.
	var thief, ours string
	require.NoError(t, s.QueryRow(ctx, `SELECT from_address, to_address FROM canonical_transfers WHERE from_address != to_address
		GROUP BY from_address, to_address ORDER BY count() DESC, from_address LIMIT 1`).Scan(&thief, &ours))
	register(t, ctx, s, "eth", ours)
	h := retrohunt.New(retrohunt.Config{Window: 24 * time.Hour}, s, pipe.Producer, nil)
	n, err := h.Once(ctx)
	require.NoError(t, err)
	require.Zero(t, n, "nothing listed yet")

	listIndicator(t, ctx, s, "indicator--00000000-0000-4000-8000-000000000001", "eth", thief, time.Now().Add(-time.Minute))
	n, err = h.Once(ctx)
	require.NoError(t, err)
	deposits := count(t, ctx, s, `SELECT count() FROM canonical_transfers WHERE from_address = ? AND to_address = ?`, thief, ours)
	withdrawals := count(t, ctx, s, `SELECT count() FROM canonical_transfers WHERE from_address = ? AND to_address = ?`, ours, thief)
	require.Positive(t, deposits)
	require.Equal(t, deposits+withdrawals, n)
	got := alerts(t, ctx, pipe.Producer)
	require.Len(t, got, n)
	dirs := map[string]int{}
	for _, a := range got {
		dirs[a.Details["direction"]]++
		require.Equal(t, "partner-x", a.Details["source"])
		require.Equal(t, "hack", a.Details["category"])
		if a.Details["direction"] == "deposit" {
			require.Equal(t, "critical", a.Severity)
			require.Equal(t, thief, a.Details["listed_address"])
			require.Equal(t, ours, a.Details["our_address"])
		}
	}
	require.Equal(t, map[string]int{"deposit": deposits, "withdrawal": withdrawals}, map[string]int{"deposit": dirs["deposit"], "withdrawal": dirs["withdrawal"]})

	n, err = h.Once(ctx)
	require.NoError(t, err)
	require.Zero(t, n, "the checkpoint moved: listed indicators are hunted once")

	// An indicator older than the checkpoint arrives late in ClickHouse
	// (another partition of the copy, or the same second): it is still
	// hunted, once. Listed alone after a newer one used to be skipped for
	// good, since the checkpoint had passed its modified time.
	listIndicator(t, ctx, s, "indicator--00000000-0000-4000-8000-000000000002", "eth", thief, time.Now().Add(-2*time.Minute))
	n, err = h.Once(ctx)
	require.NoError(t, err)
	require.Equal(t, deposits+withdrawals, n, "the late indicator is hunted")
	n, err = h.Once(ctx)
	require.NoError(t, err)
	require.Zero(t, n, "and only once")
}

// TestRetroHuntBitcoin: deposits are outputs to our address in
// transactions spending the listed address's outputs; withdrawals the
// other way round. The oracle is the canonical views.
func TestRetroHuntBitcoin(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	node, wallet, pipe := pipetest.BTC(t, ctx, 31)
	for range 8 {
		require.NoError(t, wallet.Step(5))
	}
	tip, err := node.Client().GetBestBlockHash()
	require.NoError(t, err)
	pipe.WaitLoaded(t, ctx, tip.String())
	s := pipe.Store

	// A (payer) → B (payee) through some transaction, B not A.
	var a, b string
	require.NoError(t, s.QueryRow(ctx, `SELECT i.address, o.address FROM
		(SELECT tx_hash, assumeNotNull(address) AS address FROM canonical_inputs WHERE prev_found = 1 AND address IS NOT NULL) AS i
		ALL INNER JOIN (SELECT tx_hash, assumeNotNull(address) AS address FROM canonical_outputs WHERE address IS NOT NULL) AS o USING (tx_hash)
		WHERE i.address != o.address GROUP BY i.address, o.address ORDER BY count() DESC, i.address, o.address LIMIT 1`).Scan(&a, &b))
	register(t, ctx, s, "btc", b)
	listIndicator(t, ctx, s, "indicator--00000000-0000-4000-8000-000000000002", "btc", a, time.Now().Add(-time.Minute))
	h := retrohunt.New(retrohunt.Config{Window: 24 * time.Hour}, s, pipe.Producer, nil)
	n, err := h.Once(ctx)
	require.NoError(t, err)
	// payments counts the outputs paying to in transactions spending from.
	payments := func(from, to string) int {
		spent := map[string]bool{}
		rows, err := s.Query(ctx, `SELECT tx_hash FROM canonical_inputs WHERE address = ?`, from)
		require.NoError(t, err)
		for rows.Next() {
			var tx string
			require.NoError(t, rows.Scan(&tx))
			spent[tx] = true
		}
		_ = rows.Close()
		rows, err = s.Query(ctx, `SELECT DISTINCT tx_hash, vout FROM canonical_outputs WHERE address = ?`, to)
		require.NoError(t, err)
		n := 0
		for rows.Next() {
			var tx string
			var vout uint32
			require.NoError(t, rows.Scan(&tx, &vout))
			if spent[tx] {
				n++
			}
		}
		_ = rows.Close()
		return n
	}
	want, back := payments(a, b), payments(b, a)
	require.Positive(t, want)
	require.Equal(t, want+back, n, fmt.Sprintf("deposits %d, withdrawals %d", want, back))
	for _, al := range alerts(t, ctx, pipe.Producer) {
		require.Equal(t, chain.BTC, al.Chain)
		if al.Details["direction"] == "deposit" {
			require.Equal(t, a, al.Details["listed_address"])
			require.Equal(t, b, al.Details["our_address"])
		}
	}
}
