package partner

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDevCA(t *testing.T) {
	ca := devCA(t)
	blk, rest := pem.Decode(ca.CertPEM())
	require.Empty(t, rest)
	caCert, err := x509.ParseCertificate(blk.Bytes)
	require.NoError(t, err)
	require.True(t, caCert.IsCA)
	require.Equal(t, elliptic.P256(), caCert.PublicKey.(*ecdsa.PublicKey).Curve)
	require.WithinDuration(t, time.Now().Add(DevValidity), caCert.NotAfter, time.Minute)

	c := issue(t, ca, "alpha")
	require.Equal(t, "alpha", c.x509.Subject.CommonName)
	require.False(t, c.x509.IsCA)
	require.WithinDuration(t, time.Now().Add(DevValidity), c.x509.NotAfter, time.Minute)
	roots := pool(t, ca)
	for _, use := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		_, err := c.x509.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{use}, DNSName: "localhost"})
		require.NoError(t, err, "usable for %v", use)
	}
	require.NoError(t, c.x509.VerifyHostname("127.0.0.1"))
	require.NoError(t, c.x509.VerifyHostname("::1"))
	require.Error(t, c.x509.VerifyHostname("example.com"))
	_, err = c.x509.Verify(x509.VerifyOptions{Roots: pool(t, devCA(t))})
	require.Error(t, err, "another dev CA does not vouch for it")
	require.NotEqual(t, c.x509.SerialNumber, issue(t, ca, "alpha").x509.SerialNumber)

	_, _, err = ca.Issue("", nil, nil)
	require.Error(t, err)
}

func TestDevCAWriteFiles(t *testing.T) {
	ca := devCA(t)
	dir := t.TempDir()
	// A key file that exists with a wider mode is narrowed.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "beta-key.pem"), []byte("old"), 0o644))
	require.NoError(t, ca.WriteFiles(dir, "beta"))

	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	require.NoError(t, err)
	require.Equal(t, ca.CertPEM(), caPEM)
	st, err := os.Stat(filepath.Join(dir, "beta-key.pem"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	kp, err := tls.LoadX509KeyPair(filepath.Join(dir, "beta.pem"), filepath.Join(dir, "beta-key.pem"))
	require.NoError(t, err)
	leaf, err := x509.ParseCertificate(kp.Certificate[0])
	require.NoError(t, err)
	require.Equal(t, "beta", leaf.Subject.CommonName)
	require.Equal(t, []string{"beta", "localhost"}, leaf.DNSNames)
	require.True(t, leaf.IPAddresses[0].Equal(net.IPv4(127, 0, 0, 1)))

	// The files make a working partner entry.
	p := pinned(t, 2, "beta", "")
	p.Cert, p.CA, p.Subject = "", filepath.Join(dir, "ca.pem"), "beta"
	reg, err := New([]Partner{p}, Options{})
	require.NoError(t, err)
	e, err := reg.identify([]*x509.Certificate{leaf})
	require.NoError(t, err)
	require.Equal(t, "beta", e.Name)

	for _, bad := range []string{"", "ca", "../x", "a/b"} {
		require.Error(t, ca.WriteFiles(dir, bad), bad)
	}
}
