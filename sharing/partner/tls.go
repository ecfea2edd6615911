package partner

import (
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"time"
)

// ServerTLS is the TLS configuration of our TAXII server: TLS 1.3 only,
// a client certificate required, and the handshake refused unless the
// certificate is a partner's (pinned, or issued by its CA to its
// subject; see Identify). The certificate checks are all the registry's
// own (VerifyConnection, also run on resumed sessions), not Go's chain
// verification: that would refuse a pinned leaf issued by a CA nobody
// trusts before a pin could accept it. ClientCAs names the partners' CAs
// and pinned certificates to clients, unless a pinned certificate's
// issuer is not among them (then no CA is named, so that its holder
// still sends it).
func (r *Registry) ServerTLS(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAnyClientCert,
		ClientCAs:    r.clientCAs,
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, err := r.identify(cs.PeerCertificates)
			return err
		},
	}
}

// ClientTLS is the TLS configuration of our client to the partner named
// name: TLS 1.3, our certificate cert always presented, and the server
// verified as the partner: its pinned certificate (by SHA-256, and valid
// now; host names are not checked, the pin is stronger), or a chain to
// its CA valid for the host name dialled and carrying its subject as
// CommonName.
func (r *Registry) ClientTLS(name string, cert tls.Certificate) (*tls.Config, error) {
	e, ok := r.byName[name]
	if !ok {
		return nil, fmt.Errorf("no partner %q", name)
	}
	c := &tls.Config{
		MinVersion:           tls.VersionTLS13,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil },
	}
	if e.pin != nil {
		pin := sha256.Sum256(e.pin.Raw)
		c.InsecureSkipVerify = true //nolint:gosec // verified by pin in VerifyConnection
		c.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("partner server sent no certificate")
			}
			leaf := cs.PeerCertificates[0]
			if sha256.Sum256(leaf.Raw) != pin {
				return fmt.Errorf("server certificate %q (sha256 %s) is not the one pinned for %s", leaf.Subject, Fingerprint(leaf), name)
			}
			if now := r.clock.Now(); now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
				return fmt.Errorf("pinned server certificate of %s is not valid now (%s to %s)", name, leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339))
			}
			return nil
		}
		return c, nil
	}
	c.RootCAs = e.cas
	c.Time = r.clock.Now
	subject := e.Subject
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		// Go verified the chain and host name already.
		if len(cs.PeerCertificates) == 0 || cs.PeerCertificates[0].Subject.CommonName != subject {
			got := ""
			if len(cs.PeerCertificates) > 0 {
				got = cs.PeerCertificates[0].Subject.CommonName
			}
			return fmt.Errorf("server certificate CommonName %q is not %s's subject %q", got, name, subject)
		}
		return nil
	}
	return c, nil
}
