package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// TLS is a client's TLS settings: the tls sections of kafka and
// clickhouse.
type TLS struct {
	Enabled bool `yaml:"enabled"`
	// CAFile verifies the servers' certificates (system roots when empty).
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are the client certificate for mutual TLS.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName is the name the certificates are checked against
	// (default: each address's host).
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify disables certificate verification (tests only;
	// cordon warns at start).
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// Client returns the client TLS configuration, nil when TLS is off. Its
// errors name the key under base (e.g. "kafka.tls").
func (t TLS) Client(base string) (*tls.Config, error) {
	if !t.Enabled {
		return nil, nil //nolint:nilnil // no TLS
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // opt-in, warned about at start
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%s.ca_file: %w", base, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s.ca_file %s: no PEM certificate found", base, t.CAFile)
		}
		tc.RootCAs = pool
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		return nil, fmt.Errorf("%s.cert_file: cert_file and key_file must be set together", base)
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%s.cert_file/key_file: %w", base, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
