package clickhouse

import (
	"context"
	"crypto/tls"
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
	Password config.Secret `yaml:"password"`
	// TLS encrypts the connections (the server's tcp_port_secure, 9440
	// by default) and verifies the server's certificate.
	TLS         TLSConfig     `yaml:"tls"`
	DialTimeout time.Duration `yaml:"-"`
}

// TLSConfig enables TLS to the servers (the keys of the kafka section's
// tls).
type TLSConfig = config.TLS

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

func dial(cfg Config, tc *tls.Config, database string) (driver.Conn, error) {
	return ch.Open(&ch.Options{
		Addr:        cfg.Addrs,
		Auth:        ch.Auth{Database: database, Username: cfg.Username, Password: cfg.Password.Value()},
		DialTimeout: cfg.DialTimeout,
		Protocol:    ch.Native,
		TLS:         tc,
	})
}

// Open connects, creates the database when it is missing and returns the
// store. It does not migrate; call Migrate. A read-only user (a
// readonly = 1 profile) can open an existing database.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	tc, err := cfg.TLS.Client("clickhouse.tls")
	if err != nil {
		return nil, err
	}
	// Every user may read the system database, also one whose
	// allow_databases names only cordon's.
	boot, err := dial(cfg, tc, "system")
	if err != nil {
		return nil, fmt.Errorf("clickhouse: connect %v: %w", cfg.Addrs, err)
	}
	var exists uint64
	err = boot.QueryRow(ctx, "SELECT count() FROM system.databases WHERE name = ?", cfg.Database).Scan(&exists)
	if err == nil && exists == 0 {
		if err = boot.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+cfg.Database); err != nil {
			err = fmt.Errorf("create database %s: %w", cfg.Database, err)
		}
	}
	_ = boot.Close()
	if err != nil {
		return nil, fmt.Errorf("clickhouse: %v: %w", cfg.Addrs, err)
	}
	conn, err := dial(cfg, tc, cfg.Database)
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
