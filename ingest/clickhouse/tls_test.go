package clickhouse_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/ingest/clickhouse"
	"github.com/cordonhq/cordon/ingest/clickhouse/chserver"
	"github.com/cordonhq/cordon/ingest/clickhouse/chtest"
	iconfig "github.com/cordonhq/cordon/internal/config"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string // PEM
}

func newCA(t *testing.T, dir, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	file := filepath.Join(dir, name+".crt")
	require.NoError(t, os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	return &testCA{cert: cert, key: key, file: file}
}

// issue writes a server certificate for localhost and 127.0.0.1 and its
// key, and returns their files.
func (ca *testCA) issue(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	require.NoError(t, err)
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	certFile, keyFile = filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600))
	return certFile, keyFile
}

// usersXML is docs/analysts.md's users.xml, its networks narrowed to
// loopback: the loader's writer user and a read-only analysts' user, both
// limited to the cordon database, and the default user.
const usersXML = `<?xml version="1.0"?>
<yandex>
    <profiles>
        <default><max_memory_usage>10000000000</max_memory_usage></default>
        <analyst>
            <readonly>1</readonly>
            <max_memory_usage>4000000000</max_memory_usage>
            <max_execution_time>300</max_execution_time>
        </analyst>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks><ip>127.0.0.1</ip></networks>
            <profile>default</profile><quota>default</quota>
        </default>
        <cordon_loader>
            <password_sha256_hex>LOADER_SHA</password_sha256_hex>
            <networks><ip>127.0.0.1</ip></networks>
            <profile>default</profile><quota>default</quota>
            <allow_databases><database>cordon</database></allow_databases>
        </cordon_loader>
        <analyst>
            <password_sha256_hex>ANALYST_SHA</password_sha256_hex>
            <networks><ip>127.0.0.1</ip></networks>
            <profile>analyst</profile><quota>default</quota>
            <allow_databases><database>cordon</database></allow_databases>
        </analyst>
    </users>
    <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors>
        <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
`

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// TestTLSAndUsers runs a ClickHouse 18.16 server with a TLS native port
// and the users of docs/analysts.md. The loader's user migrates and
// writes over TLS; a client trusting another CA, or asking for another
// name, is refused; the analysts' user reads the canonical views and can
// neither insert, alter, create nor drop, nor read another database.
func TestTLSAndUsers(t *testing.T) {
	chtest.Need(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	ca := newCA(t, dir, "cordon-test-ca")
	other := newCA(t, dir, "other-ca")
	certFile, keyFile := ca.issue(t, dir)
	users := filepath.Join(dir, "users.xml")
	require.NoError(t, os.WriteFile(users, []byte(strings.NewReplacer("LOADER_SHA", sha("loader-secret"), "ANALYST_SHA", sha("analyst-secret")).
		Replace(usersXML)), 0o600))
	srv, err := chserver.Start(ctx, chserver.Config{Dir: filepath.Join(dir, "ch"), CertFile: certFile, KeyFile: keyFile, UsersFile: users})
	require.NoError(t, err)
	t.Cleanup(srv.Stop)
	require.NotEmpty(t, srv.TLSAddr())

	tlsOn := clickhouse.TLSConfig{Enabled: true, CAFile: ca.file}
	as := func(user, password string, tc clickhouse.TLSConfig) clickhouse.Config {
		return clickhouse.Config{Addrs: []string{srv.TLSAddr()}, Database: "cordon", Username: user, Password: iconfig.SecretValue(password),
			TLS: tc, DialTimeout: 5 * time.Second}
	}

	// The loader's user creates the database and the schema, over TLS.
	loader, err := clickhouse.Open(ctx, as("cordon_loader", "loader-secret", tlsOn))
	require.NoError(t, err)
	defer loader.Close()
	require.NoError(t, loader.Migrate(ctx, clickhouse.Schema))
	require.NoError(t, loader.Exec(ctx, `INSERT INTO blocks (chain, network, height, hash, parent_hash, time, seq, removed,
		tx_count, transfer_count, output_count, spend_count) SELECT 'btc', 'regtest', 1, 'b1', 'b0', now(), 1, 0, 0, 0, 0, 0`))
	_, err = clickhouse.Open(ctx, clickhouse.Config{Addrs: []string{srv.TLSAddr()}, Database: "other", Username: "cordon_loader",
		Password: iconfig.SecretValue("loader-secret"), TLS: tlsOn})
	require.ErrorContains(t, err, "Access denied to database other", "the loader's user is limited to the cordon database")

	// Refused: a server certificate from another CA, a name the
	// certificate does not carry, a wrong password, and plain text on the
	// TLS port.
	_, err = clickhouse.Open(ctx, as("cordon_loader", "loader-secret", clickhouse.TLSConfig{Enabled: true, CAFile: other.file}))
	require.ErrorContains(t, err, "certificate signed by unknown authority")
	_, err = clickhouse.Open(ctx, as("cordon_loader", "loader-secret", clickhouse.TLSConfig{Enabled: true, CAFile: ca.file, ServerName: "clickhouse.example"}))
	require.ErrorContains(t, err, "certificate is valid for")
	_, err = clickhouse.Open(ctx, as("cordon_loader", "wrong", tlsOn))
	require.Error(t, err)
	_, err = clickhouse.Open(ctx, as("cordon_loader", "loader-secret", clickhouse.TLSConfig{}))
	require.Error(t, err, "plain text on the TLS port")

	// The analysts' user: reads, and changes nothing.
	analyst, err := clickhouse.Open(ctx, as("analyst", "analyst-secret", tlsOn))
	require.NoError(t, err, "a read-only user opens the existing database")
	defer analyst.Close()
	var n uint64
	require.NoError(t, analyst.QueryRow(ctx, `SELECT count() FROM canonical_blocks`).Scan(&n))
	require.Equal(t, uint64(1), n)
	require.NoError(t, analyst.QueryRow(ctx, `SELECT count() FROM canonical_outputs`).Scan(&n))
	for _, stmt := range []string{
		`INSERT INTO blocks (chain, network, height, hash, parent_hash, time, seq, removed, tx_count, transfer_count, output_count, spend_count)
			SELECT 'btc', 'regtest', 2, 'b2', 'b1', now(), 2, 0, 0, 0, 0, 0`,
		`ALTER TABLE outputs DELETE WHERE 1 = 1`,
		`ALTER TABLE blocks ADD COLUMN x String DEFAULT ''`,
		`CREATE TABLE t (a UInt8) ENGINE = Memory`,
		`DROP TABLE blocks`,
	} {
		err := analyst.Exec(ctx, stmt)
		require.ErrorContains(t, err, "readonly mode", stmt)
	}
	require.Error(t, analyst.Migrate(ctx, append(append([]clickhouse.Migration{}, clickhouse.Schema...),
		clickhouse.Migration{Version: 1000, Name: "x", Stmts: []string{`CREATE TABLE IF NOT EXISTS x (a UInt8) ENGINE = Memory`}})))
	require.NoError(t, loader.QueryRow(ctx, `SELECT count() FROM canonical_blocks`).Scan(&n))
	require.Equal(t, uint64(1), n, "nothing the analyst tried changed the data")
	_, err = clickhouse.Open(ctx, clickhouse.Config{Addrs: []string{srv.TLSAddr()}, Database: "default", Username: "analyst",
		Password: iconfig.SecretValue("analyst-secret"), TLS: tlsOn})
	require.Error(t, err, "the analysts' user is limited to the cordon database")
}
