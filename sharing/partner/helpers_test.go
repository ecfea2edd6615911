package partner

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/internal/recordauth"
)

// ident is a test identity id, unique per n.
func ident(n int) string { return fmt.Sprintf("identity--00000000-0000-4000-8000-%012d", n) }

// edKey is a fresh Ed25519 key pair, the public key also as configured.
func edKey(t testing.TB) (ed25519.PublicKey, ed25519.PrivateKey, string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	return pub, priv, base64.StdEncoding.EncodeToString(pub)
}

func devCA(t testing.TB) *DevCA {
	t.Helper()
	ca, err := NewDevCA()
	require.NoError(t, err)
	return ca
}

// issued is a certificate the dev CA made, in every form a test needs.
type issued struct {
	file string // its PEM, written to a file
	tls  tls.Certificate
	x509 *x509.Certificate
}

// issue makes a certificate for name, valid for localhost and the
// loopback addresses.
func issue(t testing.TB, ca *DevCA, name string) issued {
	t.Helper()
	certPEM, keyPEM, err := ca.Issue(name, []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback})
	require.NoError(t, err)
	kp, err := tls.X509KeyPair(certPEM, keyPEM)
	require.NoError(t, err)
	blk, _ := pem.Decode(certPEM)
	c, err := x509.ParseCertificate(blk.Bytes)
	require.NoError(t, err)
	return issued{file: writeTemp(t, name+".pem", certPEM), tls: kp, x509: c}
}

func writeTemp(t testing.TB, name string, data []byte) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(f, data, 0o600))
	return f
}

// caFile writes the CA's certificate to a file.
func caFile(t testing.TB, ca *DevCA) string { return writeTemp(t, "ca.pem", ca.CertPEM()) }

func pool(t testing.TB, ca *DevCA) *x509.CertPool {
	t.Helper()
	p := x509.NewCertPool()
	require.True(t, p.AppendCertsFromPEM(ca.CertPEM()))
	return p
}

// pinned is a valid partner n pinned to cert.
func pinned(t testing.TB, n int, name, cert string) Partner {
	t.Helper()
	_, _, k := edKey(t)
	return Partner{Name: name, Identity: ident(n), SigningKey: k, Cert: cert}
}

func keyIDOf(pub ed25519.PublicKey) string { return recordauth.KeyID(pub) }

func chainOf(c issued) []*x509.Certificate { return []*x509.Certificate{c.x509} }
