package partner

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// DevValidity is how long the dev CA and its certificates are valid.
const DevValidity = 30 * 24 * time.Hour

// DevCA is a throwaway certificate authority for development and tests:
// an ECDSA P-256 key held in memory, never written out. It is not for
// production: a real alliance pins its members' certificates or names
// their CAs.
type DevCA struct {
	key  *ecdsa.PrivateKey
	cert *x509.Certificate
	pem  []byte
}

// NewDevCA makes a CA valid for DevValidity.
func NewDevCA() (*DevCA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("dev CA key: %w", err)
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "cordon dev CA " + serial.Text(16), Organization: []string{"cordon development"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(DevValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		SubjectKeyId:          keyID(&key.PublicKey),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("dev CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("dev CA certificate: %w", err)
	}
	return &DevCA{key: key, cert: cert, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// CertPEM is the CA's certificate in PEM.
func (ca *DevCA) CertPEM() []byte { return append([]byte(nil), ca.pem...) }

// Issue makes a certificate with CommonName name for the given host
// names and addresses, usable both as a server and as a client
// certificate, valid for DevValidity, and its key (PKCS #8), in PEM.
func (ca *DevCA) Issue(name string, dnsNames []string, ips []net.IP) (certPEM, keyPEM []byte, err error) {
	if name == "" {
		return nil, nil, errors.New("dev CA: a certificate needs a name")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("dev certificate key: %w", err)
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:   serial,
		Subject:        pkix.Name{CommonName: name},
		NotBefore:      now.Add(-time.Hour),
		NotAfter:       now.Add(DevValidity),
		KeyUsage:       x509.KeyUsageDigitalSignature,
		ExtKeyUsage:    []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:       dnsNames,
		IPAddresses:    ips,
		SubjectKeyId:   keyID(&key.PublicKey),
		AuthorityKeyId: ca.cert.SubjectKeyId,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, nil, fmt.Errorf("dev certificate %s: %w", name, err)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("dev certificate key %s: %w", name, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}), nil
}

// WriteFiles issues a certificate for name (host names name and
// localhost, addresses 127.0.0.1 and ::1) and writes, in dir, ca.pem,
// name.pem and name-key.pem (the key readable by its owner only).
func (ca *DevCA) WriteFiles(dir, name string) error {
	if name == "" || filepath.Base(name) != name || name == "ca" {
		return fmt.Errorf("dev CA: %q is not a usable file name", name)
	}
	certPEM, keyPEM, err := ca.Issue(name, []string{name, "localhost"}, []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback})
	if err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{"ca.pem", ca.pem, 0o644},
		{name + ".pem", certPEM, 0o644},
		{name + "-key.pem", keyPEM, 0o600},
	} {
		if err := writeFile(filepath.Join(dir, f.name), f.data, f.mode); err != nil {
			return err
		}
	}
	return nil
}

// writeFile writes data to path with mode, narrowing the mode of a file
// that exists before writing.
func writeFile(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return fmt.Errorf("dev CA: %w", err)
	}
	if err := f.Chmod(mode); err != nil {
		_ = f.Close()
		return fmt.Errorf("dev CA: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return fmt.Errorf("dev CA: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("dev CA: %w", err)
	}
	return nil
}

func serialNumber() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

func keyID(pub *ecdsa.PublicKey) []byte {
	b, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil
	}
	s := sha256.Sum256(b)
	return s[:20]
}
