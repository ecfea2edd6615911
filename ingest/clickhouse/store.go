package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/cordonhq/cordon/internal/config"
)

// Config configures the connection. The config file's clickhouse section
// decodes into it.
type Config struct {
	// Addrs are native-protocol host:port addresses (port 9000 by default
	// on a server); the driver fails over between them.
	Addrs []string `yaml:"addrs"`
	// Database is created when missing (default "cordon").
	Database string `yaml:"database"`
	Username string `yaml:"username"`
	// Password is a secret reference in the config file; code that builds
	// a Config uses config.SecretValue.
	Password    config.Secret `yaml:"password"`
	DialTimeout time.Duration `yaml:"-"`
}

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func (c *Config) fill() error {
	if len(c.Addrs) == 0 {
		return errors.New("clickhouse: no address configured")
	}
	if c.Database == "" {
		c.Database = "cordon"
	}
	if !identifier.MatchString(c.Database) {
		return fmt.Errorf("clickhouse: database %q: want letters, digits and underscores", c.Database)
	}
	if c.Username == "" {
		c.Username = "default"
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = 10 * time.Second
	}
	return nil
}

// Store is a connection to cordon's database.
type Store struct {
	cfg  Config
	conn driver.Conn
}

func dial(cfg Config, database string) (driver.Conn, error) {
	return ch.Open(&ch.Options{
		Addr:        cfg.Addrs,
		Auth:        ch.Auth{Database: database, Username: cfg.Username, Password: cfg.Password.Value()},
		DialTimeout: cfg.DialTimeout,
		Protocol:    ch.Native,
	})
}

// Open connects, creates the database when it is missing and returns the
// store. It does not migrate; call Migrate.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	boot, err := dial(cfg, "default")
	if err != nil {
		return nil, fmt.Errorf("clickhouse: connect %v: %w", cfg.Addrs, err)
	}
	err = boot.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+cfg.Database)
	_ = boot.Close()
	if err != nil {
		return nil, fmt.Errorf("clickhouse: create database %s: %w", cfg.Database, err)
	}
	conn, err := dial(cfg, cfg.Database)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: connect %v: %w", cfg.Addrs, err)
	}
	if err := conn.Ping(ctx); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("clickhouse: ping %v: %w", cfg.Addrs, err)
	}
	return &Store{cfg: cfg, conn: conn}, nil
}

// Close closes the connection.
func (s *Store) Close() error { return s.conn.Close() }

// Database is the database the store uses.
func (s *Store) Database() string { return s.cfg.Database }

// ServerVersion is the server's version string.
func (s *Store) ServerVersion(ctx context.Context) (string, error) {
	var v string
	err := s.conn.QueryRow(ctx, "SELECT version()").Scan(&v)
	return v, err
}

// Rows is the result of Query.
type Rows = driver.Rows

// Row is the result of QueryRow.
type Row = driver.Row

// Query runs a read query (for analysts' tools and tests).
func (s *Store) Query(ctx context.Context, query string, args ...any) (Rows, error) {
	return s.conn.Query(ctx, query, args...)
}

// QueryRow runs a query that returns one row.
func (s *Store) QueryRow(ctx context.Context, query string, args ...any) Row {
	return s.conn.QueryRow(ctx, query, args...)
}

// Exec runs a statement that returns no rows (DDL, INSERT … SELECT). Rows
// from the client are inserted through batches, never through Exec: 18.16
// does not answer an INSERT … VALUES sent this way.
func (s *Store) Exec(ctx context.Context, query string, args ...any) error {
	return s.conn.Exec(ctx, query, args...)
}

// sqlString escapes what ends or escapes a quoted ClickHouse string.
var sqlString = strings.NewReplacer(`\`, `\\`, `'`, `\'`)

// QuoteList renders values as a quoted, comma-separated SQL list for an
// IN (…) clause. Keep lists to a few thousand values: the server's
// max_query_size is 256 KiB by default.
func QuoteList(vals []string) string {
	var b strings.Builder
	for i, v := range vals {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('\'')
		b.WriteString(sqlString.Replace(v))
		b.WriteByte('\'')
	}
	return b.String()
}
