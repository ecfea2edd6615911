package clickhouse_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/ingest/clickhouse"
	"github.com/cordonhq/cordon/internal/testkit"
)

func open(t *testing.T, addr, db string) *clickhouse.Store {
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
	srv := testkit.ClickHouse(t)
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
	srv := testkit.ClickHouse(t)
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
