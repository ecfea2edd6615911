package partner

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/internal/clock"
	"github.com/cordonhq/cordon/internal/testkit"
	"github.com/cordonhq/cordon/sharing/taxii"
)

// client is an HTTPS client trusting roots, presenting cert (none when
// nil). force presents it whatever CAs the server names, as an attacker
// would.
func client(roots *x509.CertPool, cert *tls.Certificate, force bool) *http.Client {
	cfg := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS13}
	switch {
	case cert == nil:
	case force:
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	default:
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
}

func get(c *http.Client, url string) (int, string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// TestServerTLS runs the registry's server configuration over loopback
// and connects to it as partners, impostors and strangers.
func TestServerTLS(t *testing.T) {
	ours := devCA(t)     // our server's certificate
	alliance := devCA(t) // beta's CA, which also issued mallory's certificate
	alphaOwn := devCA(t) // a CA nobody trusts that issued alpha's pinned certificate
	stranger := devCA(t) // a CA nobody trusts
	alpha := issue(t, alphaOwn, "alpha")
	beta := issue(t, alliance, "beta")
	mallory := issue(t, alliance, "mallory") // same CA as beta, other CN
	fakeBeta := issue(t, stranger, "beta")   // beta's CN from another CA
	alphaTwin := issue(t, alphaOwn, "alpha") // alpha's CA and CN, not the pinned certificate
	server := issue(t, ours, "cordon")

	betaP := pinned(t, 2, "beta", "")
	betaP.Cert, betaP.CA, betaP.Subject = "", caFile(t, alliance), "beta"
	reg, err := New([]Partner{pinned(t, 1, "alpha", alpha.file), betaP}, Options{})
	require.NoError(t, err)

	var reached atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		c, err := reg.Identify(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		_, _ = io.WriteString(w, c.Name)
	}))
	srv.TLS = reg.ServerTLS(server.tls)
	var serverLog testkit.Buffer
	srv.Config.ErrorLog = log.New(&serverLog, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	require.Equal(t, uint16(tls.VersionTLS13), srv.TLS.MinVersion)
	require.Nil(t, srv.TLS.ClientCAs, "alpha's pinned certificate has an issuer not named, so no CA is named")
	roots := pool(t, ours)

	t.Run("pinned partner", func(t *testing.T) {
		code, body, err := get(client(roots, &alpha.tls, false), srv.URL)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, code)
		require.Equal(t, "alpha", body)
	})
	t.Run("partner by CA and subject", func(t *testing.T) {
		code, body, err := get(client(roots, &beta.tls, false), srv.URL)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, code)
		require.Equal(t, "beta", body)
	})
	// Every refusal is a failed handshake: the handler is never reached,
	// the client sees the server's alert and the server logs why.
	refused := []struct {
		name   string
		cert   *issued
		alert  string
		logged string
	}{
		{"same CA, another CommonName", &mallory, "bad certificate", Fingerprint(mallory.x509)},
		{"partner's CommonName from an unknown CA", &fakeBeta, "bad certificate", Fingerprint(fakeBeta.x509)},
		{"pinned partner's CA and CommonName, another certificate", &alphaTwin, "bad certificate", Fingerprint(alphaTwin.x509)},
		{"no client certificate", nil, "certificate required", "client didn't provide a certificate"},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			before := reached.Load()
			var cert *tls.Certificate
			if tc.cert != nil {
				cert = &tc.cert.tls
			}
			_, _, err := get(client(roots, cert, true), srv.URL)
			requireRefused(t, err, tc.alert)
			require.Equal(t, before, reached.Load(), "the handler was reached")
			require.Eventually(t, func() bool { return strings.Contains(serverLog.String(), tc.logged) }, 5*time.Second, 10*time.Millisecond, serverLog.String())
			if tc.cert != nil {
				require.Contains(t, serverLog.String(), "CN="+tc.cert.x509.Subject.CommonName)
			}
		})
	}
	t.Run("plain HTTP to the TLS listener", func(t *testing.T) {
		before := reached.Load()
		code, body, err := get(&http.Client{Timeout: 10 * time.Second}, strings.Replace(srv.URL, "https://", "http://", 1))
		require.NoError(t, err, "Go's server answers plain HTTP with a 400")
		require.Equal(t, http.StatusBadRequest, code)
		require.Contains(t, body, "HTTPS server")
		require.Equal(t, before, reached.Load(), "the handler was reached")
	})
}

// TestIdentify calls Identify on requests as a handler would get them,
// including ones ServerTLS would have refused.
func TestIdentify(t *testing.T) {
	alliance, other := devCA(t), devCA(t)
	alpha := issue(t, other, "alpha")
	beta := issue(t, alliance, "beta")
	mallory := issue(t, alliance, "mallory")
	betaP := pinned(t, 2, "beta", "")
	betaP.Cert, betaP.CA, betaP.Subject = "", caFile(t, alliance), "beta"
	reg, err := New([]Partner{pinned(t, 1, "alpha", alpha.file), betaP}, Options{})
	require.NoError(t, err)

	req := func(certs ...*x509.Certificate) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "https://cordon.test/taxii2/", nil)
		r.TLS = &tls.ConnectionState{PeerCertificates: certs}
		return r
	}
	c, err := reg.Identify(req(alpha.x509))
	require.NoError(t, err)
	require.Equal(t, "alpha", c.Name)
	c, err = reg.Identify(req(beta.x509))
	require.NoError(t, err)
	require.Equal(t, "beta", c.Name)

	plain := httptest.NewRequest(http.MethodGet, "http://cordon.test/taxii2/", nil)
	_, err = reg.Identify(plain)
	require.ErrorIs(t, err, ErrNoCertificate)
	require.EqualError(t, err, "plain HTTP: no client certificate")
	require.ErrorIs(t, err, taxii.ErrUnauthenticated)
	_, err = reg.Identify(req())
	require.ErrorIs(t, err, ErrNoCertificate)

	_, err = reg.Identify(req(mallory.x509))
	var unknown *UnknownCertError
	require.True(t, errors.As(err, &unknown), "%v", err)
	require.Equal(t, "CN=mallory", unknown.Subject)
	require.Equal(t, Fingerprint(mallory.x509), unknown.Fingerprint)
	require.Len(t, unknown.Fingerprint, 64)
	require.ErrorContains(t, err, `"CN=mallory" (sha256 `+unknown.Fingerprint+`) is no partner's`)

	// A pinned certificate outside its validity is refused with the reason.
	late, err := New([]Partner{pinned(t, 1, "alpha", alpha.file)}, Options{Clock: fixed(alpha.x509.NotAfter.Add(time.Second))})
	require.NoError(t, err)
	_, err = late.Identify(req(alpha.x509))
	require.ErrorContains(t, err, "pinned for alpha but not valid now")
	// So is one from the partner's CA, by Go's chain verification.
	lateCA, err := New([]Partner{betaP}, Options{Clock: fixed(beta.x509.NotAfter.Add(time.Second))})
	require.NoError(t, err)
	_, err = lateCA.Identify(req(beta.x509))
	require.True(t, errors.As(err, &unknown), "%v", err)
}

type fixed time.Time

func (f fixed) Now() time.Time { return time.Time(f) }

// TestClientTLS connects our client to partners' servers: the right
// ones, and impostors.
func TestClientTLS(t *testing.T) {
	alliance, other := devCA(t), devCA(t)
	alpha := issue(t, other, "alpha")
	alphaTwin := issue(t, other, "alpha")
	beta := issue(t, alliance, "beta")
	mallory := issue(t, alliance, "mallory")
	us := issue(t, devCA(t), "cordon")
	betaP := pinned(t, 2, "beta", "")
	betaP.Cert, betaP.CA, betaP.Subject = "", caFile(t, alliance), "beta"
	reg, err := New([]Partner{pinned(t, 1, "alpha", alpha.file), betaP}, Options{})
	require.NoError(t, err)
	_, err = reg.ClientTLS("gamma", us.tls)
	require.EqualError(t, err, `no partner "gamma"`)

	// A partner's server, asking for our certificate and telling which
	// one it got.
	serve := func(t *testing.T, cert tls.Certificate) string {
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, r.TLS.PeerCertificates[0].Subject.CommonName)
		}))
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAnyClientCert, MinVersion: tls.VersionTLS13}
		srv.Config.ErrorLog = log.New(io.Discard, "", 0)
		srv.StartTLS()
		t.Cleanup(srv.Close)
		return srv.URL
	}
	for _, tc := range []struct {
		partner string
		server  issued
		err     string
	}{
		{"alpha", alpha, ""},
		{"alpha", alphaTwin, "is not the one pinned for alpha"},
		{"alpha", beta, "is not the one pinned for alpha"},
		{"beta", beta, ""},
		{"beta", mallory, `server certificate CommonName "mallory" is not beta's subject "beta"`},
		{"beta", alpha, "certificate signed by unknown authority"},
	} {
		t.Run(tc.partner+" served by "+tc.server.x509.Subject.CommonName, func(t *testing.T) {
			url := serve(t, tc.server.tls)
			cfg, err := reg.ClientTLS(tc.partner, us.tls)
			require.NoError(t, err)
			require.Equal(t, uint16(tls.VersionTLS13), cfg.MinVersion)
			_, body, err := get(&http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}, url)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, "cordon", body, "our certificate was presented")
		})
	}
}

// TestClientCAsHint: the acceptable CAs are named when every pinned
// certificate's issuer is among them.
func TestClientCAsHint(t *testing.T) {
	alliance := devCA(t)
	betaP := pinned(t, 2, "beta", "")
	betaP.Cert, betaP.CA, betaP.Subject = "", caFile(t, alliance), "beta"
	gamma := issue(t, alliance, "gamma") // pinned, issued by a named CA
	reg, err := New([]Partner{betaP, pinned(t, 3, "gamma", gamma.file)}, Options{})
	require.NoError(t, err)
	cfg := reg.ServerTLS(tls.Certificate{})
	require.NotNil(t, cfg.ClientCAs)
	require.Equal(t, tls.RequireAnyClientCert, cfg.ClientAuth)
}

// TestResumedSessionRechecked: a resumed TLS session is checked again,
// so a pinned certificate that expired since the first handshake is
// refused, and Identify still sees the certificate on a resumed one.
func TestResumedSessionRechecked(t *testing.T) {
	ours, other := devCA(t), devCA(t)
	alpha := issue(t, other, "alpha")
	server := issue(t, ours, "cordon")
	clk := clock.NewManual(time.Now())
	reg, err := New([]Partner{pinned(t, 1, "alpha", alpha.file)}, Options{Clock: clk})
	require.NoError(t, err)
	var resumed atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS.DidResume {
			resumed.Add(1)
		}
		c, err := reg.Identify(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		_, _ = io.WriteString(w, c.Name)
	}))
	srv.TLS = reg.ServerTLS(server.tls)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)

	cfg := &tls.Config{RootCAs: pool(t, ours), MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{alpha.tls},
		ClientSessionCache: tls.NewLRUClientSessionCache(4)}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}}
	for range 2 {
		code, body, err := get(c, srv.URL)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, code)
		require.Equal(t, "alpha", body)
	}
	require.Equal(t, int32(1), resumed.Load(), "the second connection resumed")

	clk.Set(alpha.x509.NotAfter.Add(time.Minute))
	_, _, err = get(c, srv.URL)
	requireRefused(t, err, "bad certificate")
	require.Equal(t, int32(1), resumed.Load())
}

// requireRefused checks that the server refused the handshake. In TLS 1.3
// the client may already be writing its request when the server's alert
// comes: it then sees the connection closed rather than the alert.
func requireRefused(t *testing.T, err error, alert string) {
	t.Helper()
	require.Error(t, err)
	for _, s := range []string{"tls: " + alert, "broken pipe", "connection reset by peer"} {
		if strings.Contains(err.Error(), s) {
			return
		}
	}
	t.Fatalf("%v: not the server's refusal (want tls: %s)", err, alert)
}
