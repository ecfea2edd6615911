package clickhouse_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/ingest/clickhouse"
	"github.com/cordonhq/cordon/ingest/clickhouse/chtest"
)

func open(t testing.TB, addr, db string) *clickhouse.Store {
	s, err := clickhouse.Open(context.Background(), clickhouse.Config{Addrs: []string{addr}, Database: db})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

var testMigrations = []clickhouse.Migration{
	{Version: 1, Name: "t1", Stmts: []string{`CREATE TABLE IF NOT EXISTS t1 (a UInt64, s String) ENGINE = ReplacingMergeTree ORDER BY a`}},
	{Version: 2, Name: "t2", Stmts: []string{
		`CREATE TABLE IF NOT EXISTS t2 (a UInt64) ENGINE = MergeTree ORDER BY a`,
		`CREATE VIEW IF NOT EXISTS v2 AS SELECT a FROM t2`,
	}},
}

// TestMigrateIdempotentAndConcurrent: several instances migrating the same
// fresh database at once, then again, end with each version once.
func TestMigrateIdempotentAndConcurrent(t *testing.T) {
	srv := chtest.Server(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := clickhouse.Open(ctx, clickhouse.Config{Addrs: []string{srv.Addr()}, Database: "m1"})
			if err != nil {
				errs <- err
				return
			}
			defer s.Close()
			errs <- s.Migrate(ctx, testMigrations)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	s := open(t, srv.Addr(), "m1")
	require.NoError(t, s.Migrate(ctx, testMigrations))
	applied, err := s.Applied(ctx)
	require.NoError(t, err)
	require.Equal(t, map[uint32]bool{1: true, 2: true}, applied)
	v, err := s.ServerVersion(ctx)
	require.NoError(t, err)
	t.Logf("clickhouse %s", v)
}

// TestMigrateFailureNamesTheStep: a failing statement stops the migration
// with its version and statement; earlier steps stay applied and a fixed
// migration set continues from there.
func TestMigrateFailureNamesTheStep(t *testing.T) {
	srv := chtest.Server(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := open(t, srv.Addr(), "m2")
	bad := append(append([]clickhouse.Migration{}, testMigrations[0]),
		clickhouse.Migration{Version: 2, Name: "broken", Stmts: []string{"CREATE TABLE nope (a UInt64) ENGINE = NoSuchEngine"}})
	err := s.Migrate(ctx, bad)
	require.ErrorContains(t, err, "migration 2 (broken), statement 1 (CREATE TABLE nope")
	applied, err := s.Applied(ctx)
	require.NoError(t, err)
	require.Equal(t, map[uint32]bool{1: true}, applied)
	require.NoError(t, s.Migrate(ctx, testMigrations))

	err = s.Migrate(ctx, []clickhouse.Migration{{Version: 2}, {Version: 1}})
	require.ErrorContains(t, err, "out of order")
}

func TestOpenErrors(t *testing.T) {
	_, err := clickhouse.Open(context.Background(), clickhouse.Config{})
	require.ErrorContains(t, err, "no address")
	_, err = clickhouse.Open(context.Background(), clickhouse.Config{Addrs: []string{"127.0.0.1:1"}, Database: "x; DROP"})
	require.ErrorContains(t, err, "want letters, digits and underscores")
}

// TestSchemaV3CopiesExistingRows: a database loaded under schema v2 gains
// the address-ordered copies; instances migrating at once, and a rerun of
// every v3 statement (an interrupted migration), leave each row once.
func TestSchemaV3CopiesExistingRows(t *testing.T) {
	srv := chtest.Server(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s := open(t, srv.Addr(), "m3")
	require.NoError(t, s.Migrate(ctx, clickhouse.Schema[:2]))
	require.NoError(t, s.Exec(ctx, `INSERT INTO transfers (chain, network, block_number, block_hash, block_time, tx_hash, tx_index, log_index,
		asset, standard, from_address, to_address, amount, token_id)
		SELECT 'eth', 'dev', number, 'b', now(), toString(number), 0, -1, 'native', 'native', 'a', concat('to', toString(number % 7)), '1', ''
		FROM system.numbers LIMIT 1000`))
	require.NoError(t, s.Exec(ctx, `INSERT INTO outputs (chain, network, block_number, block_hash, block_time, tx_hash, tx_index, vout, address,
		script_type, script, amount, coinbase)
		SELECT 'btc', 'regtest', number, 'b', now(), toString(number), 0, 0, if(number % 10 = 0, NULL, toString(number % 13)), 'p2wpkh', '', number, 0
		FROM system.numbers LIMIT 1000`))
	require.NoError(t, s.Exec(ctx, `INSERT INTO spends (chain, network, block_number, block_hash, block_time, tx_hash, tx_index, vin,
		prev_tx_hash, prev_vout, sequence)
		SELECT 'btc', 'regtest', number, 'b', now(), toString(number), 0, 0, toString(number + 1), 0, 0 FROM system.numbers LIMIT 500`))

	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := clickhouse.Open(ctx, clickhouse.Config{Addrs: []string{srv.Addr()}, Database: "m3"})
			if err != nil {
				errs <- err
				return
			}
			defer s.Close()
			errs <- s.Migrate(ctx, clickhouse.Schema)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	again := append(append([]clickhouse.Migration{}, clickhouse.Schema...),
		clickhouse.Migration{Version: 1000, Name: "v3 again", Stmts: clickhouse.Schema[2].Stmts})
	require.NoError(t, s.Migrate(ctx, again))

	count := func(q string) uint64 {
		var n uint64
		require.NoError(t, s.QueryRow(ctx, q).Scan(&n))
		return n
	}
	require.Equal(t, uint64(1000), count(`SELECT count() FROM transfers_by_to FINAL`))
	require.Equal(t, uint64(1000/7+1), count(`SELECT count() FROM transfers_by_to FINAL WHERE to_address = 'to0'`))
	require.Equal(t, uint64(900), count(`SELECT count() FROM outputs_by_address FINAL`), "outputs without an address are not copied")
	require.Equal(t, uint64(0), count(`SELECT count() FROM outputs_by_address FINAL WHERE address = ''`))
	require.Equal(t, uint64(500), count(`SELECT count() FROM spends_by_tx FINAL`))
	require.Equal(t, uint64(1), count(`SELECT count() FROM system.columns WHERE database = 'm3' AND table = 'blocks' AND name = 'miner'`))
}
