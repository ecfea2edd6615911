package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
)

// Migration is one step of the schema. Its statements must be idempotent
// (CREATE … IF NOT EXISTS and the like): instances that start at the same
// time may both run a step, and a step interrupted half-way runs again.
type Migration struct {
	Version uint32
	Name    string
	Stmts   []string
}

const migrationsTable = "cordon_migrations"

// Migrate applies, in version order, every migration not yet recorded in
// the cordon_migrations table, recording each once its statements
// succeeded. Several instances may migrate at once: the statements are
// idempotent and the table keeps one row per version.
func (s *Store) Migrate(ctx context.Context, ms []Migration) error {
	for i := 1; i < len(ms); i++ {
		if ms[i].Version <= ms[i-1].Version {
			return fmt.Errorf("clickhouse: migrations out of order: %d after %d", ms[i].Version, ms[i-1].Version)
		}
	}
	err := s.conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+migrationsTable+` (
		version UInt32, name String, applied_at DateTime
	) ENGINE = ReplacingMergeTree ORDER BY version`)
	if err != nil {
		return fmt.Errorf("clickhouse: create %s: %w", migrationsTable, err)
	}
	applied, err := s.Applied(ctx)
	if err != nil {
		return fmt.Errorf("clickhouse: read applied migrations: %w", err)
	}
	for _, m := range ms {
		if applied[m.Version] {
			continue
		}
		for i, stmt := range m.Stmts {
			if err := s.conn.Exec(ctx, stmt); err != nil && !alreadyDone(stmt, err) {
				return fmt.Errorf("clickhouse: migration %d (%s), statement %d (%s): %w", m.Version, m.Name, i+1, firstLine(stmt), err)
			}
		}
		if err := s.record(ctx, m); err != nil {
			return fmt.Errorf("clickhouse: record migration %d: %w", m.Version, err)
		}
	}
	return nil
}

// Applied returns the versions recorded as applied.
func (s *Store) Applied(ctx context.Context) (map[uint32]bool, error) {
	rows, err := s.conn.Query(ctx, `SELECT DISTINCT version FROM `+migrationsTable)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: read %s: %w", migrationsTable, err)
	}
	defer func() { _ = rows.Close() }()
	out := map[uint32]bool{}
	for rows.Next() {
		var v uint32
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("clickhouse: read %s: %w", migrationsTable, err)
		}
		out[v] = true
	}
	return out, rows.Err()
}

// alreadyDone tells whether err only says that stmt's work is done:
// ClickHouse 18.16 has no ADD COLUMN IF NOT EXISTS, so an ADD COLUMN that
// another instance (or an interrupted run) applied fails with code 44.
func alreadyDone(stmt string, err error) bool {
	var ex *ch.Exception
	return errors.As(err, &ex) && ex.Code == 44 && strings.Contains(stmt, "ADD COLUMN")
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] + " …"
	}
	return s
}

func (s *Store) record(ctx context.Context, m Migration) error {
	b, err := s.conn.PrepareBatch(ctx, `INSERT INTO `+migrationsTable+` (version, name, applied_at)`)
	if err != nil {
		return fmt.Errorf("clickhouse: record migration %d: %w", m.Version, err)
	}
	if err := b.Append(m.Version, m.Name, time.Now().UTC().Truncate(time.Second)); err != nil {
		_ = b.Abort()
		return fmt.Errorf("clickhouse: record migration %d: %w", m.Version, err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("clickhouse: record migration %d: %w", m.Version, err)
	}
	return nil
}
