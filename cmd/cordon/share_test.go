package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/cordonhq/cordon/intel"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/obs"
	"github.com/cordonhq/cordon/sharing/alliance"
	"github.com/cordonhq/cordon/sharing/partner"
	"github.com/cordonhq/cordon/sharing/stix"
	"github.com/cordonhq/cordon/sharing/taxii"
)

// alliance3 is three exchanges on loopback, as cordon dev --partners 2
// starts them: A (exchange-a), B, and C, who is trusted with TLP:GREEN
// only.
type alliance3 struct {
	t       testing.TB
	dir     string
	members []*devMember
	cancel  map[string]context.CancelFunc
	groups  map[string]*errgroup.Group
	log     *slog.Logger
}

func newAlliance3(t testing.TB) *alliance3 { return newAlliance(t, 2, true) }

// newAlliance prepares 1+partners members, started or not.
func newAlliance(t testing.TB, partners int, start bool) *alliance3 {
	t.Helper()
	dir := t.TempDir()
	ms, err := devAlliance(dir, partners)
	require.NoError(t, err)
	// The main member gets a data directory of its own too, so all three
	// start the same way.
	ms[0].dir = filepath.Join(dir, "partners", ms[0].name)
	require.NoError(t, os.MkdirAll(ms[0].dir, 0o700))
	log, err := obs.NewLogger(io.Discard, "info", "text")
	require.NoError(t, err)
	if testing.Verbose() && os.Getenv("CORDON_TEST_LOG") != "" {
		log, _ = obs.NewLogger(os.Stderr, os.Getenv("CORDON_TEST_LOG"), "text")
	}
	a := &alliance3{t: t, dir: dir, members: ms, cancel: map[string]context.CancelFunc{}, groups: map[string]*errgroup.Group{}, log: log}
	for _, m := range ms {
		if start {
			a.start(m)
		}
	}
	t.Cleanup(func() {
		for _, m := range ms {
			a.stop(m)
		}
	})
	return a
}

func (a *alliance3) start(m *devMember) {
	a.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	g, gctx := errgroup.WithContext(ctx)
	require.NoError(a.t, startPartner(gctx, g, m, a.members, a.log))
	a.cancel[m.name], a.groups[m.name] = cancel, g
	deadline := time.Now().Add(60 * time.Second)
	for m.sys.sharing.svc.Load() == nil || !m.sys.indicators.store.Ready() {
		require.True(a.t, time.Now().Before(deadline), "%s: sharing did not start", m.name)
		time.Sleep(20 * time.Millisecond)
	}
}

func (a *alliance3) stop(m *devMember) {
	if c := a.cancel[m.name]; c != nil {
		c()
		_ = a.groups[m.name].Wait()
		m.close()
		m.sys, m.cluster = nil, nil
		delete(a.cancel, m.name)
	}
}

func (a *alliance3) member(name string) *devMember {
	for _, m := range a.members {
		if m.name == name {
			return m
		}
	}
	a.t.Fatalf("no member %s", name)
	return nil
}

// publish posts a listing to m's API as its operator.
func (a *alliance3) publish(m *devMember, l alliance.Listing) []alliance.Published {
	a.t.Helper()
	var ans alliance.ListingAnswer
	c := gateClient{api: m.apiURL, token: m.opToken}
	require.NoError(a.t, c.call(context.Background(), "POST", alliance.ListingsEndpoint, l, &ans))
	return ans.Published
}

func (a *alliance3) revoke(m *devMember, rv alliance.Revocation) []alliance.Published {
	a.t.Helper()
	var ans alliance.ListingAnswer
	c := gateClient{api: m.apiURL, token: m.opToken}
	require.NoError(a.t, c.call(context.Background(), "POST", alliance.RevocationsEndpoint, rv, &ans))
	return ans.Published
}

// flagged is m's screening of addr: the source of the match, "" when
// clean.
func flaggedBy(m *devMember, addr string) string {
	v := intel.Screen(m.sys.indicators.store.Index, chain.ETH, "devnet", addr, time.Now())
	if len(v.Matches) == 0 {
		return ""
	}
	return v.Matches[0].Source
}

func (a *alliance3) waitFlag(m *devMember, addr, want string, within time.Duration) time.Duration {
	a.t.Helper()
	start := time.Now()
	for flaggedBy(m, addr) != want {
		require.True(a.t, time.Since(start) < within, "%s: %s is flagged by %q, want %q, after %s", m.name, addr, flaggedBy(m, addr), want, within)
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

func addrN(i int) string { return fmt.Sprintf("0x%040x", 0xabc000+i) }

// TestAlliance: three exchanges on loopback with mutual TLS. A's urgent
// listing flags at B and C within seconds, and its revocation clears it
// as fast; AMBER never reaches C, RED never leaves A; a restart of B in
// the middle of a sync loses and duplicates nothing; and a hostile
// partner's requests are refused with their reasons.
func TestAlliance(t *testing.T) {
	if testing.Short() {
		t.Skip("three instances")
	}
	al := newAlliance3(t)
	A, B, C := al.member("exchange-a"), al.member("exchange-b"), al.member("exchange-c")

	theft := addrN(1)
	pub := al.publish(A, alliance.Listing{Chain: chain.ETH, Network: "devnet", Values: []string{theft}, Category: "hack", Confidence: 95,
		TLP: intel.TLPGreen, Urgent: true, Description: "active theft"})
	require.Len(t, pub, 1)
	al.waitFlag(A, theft, "exchange-a", 5*time.Second) // A screens with its own listing too
	tb := al.waitFlag(B, theft, "exchange-a", 5*time.Second)
	tc := al.waitFlag(C, theft, "exchange-a", 5*time.Second)
	t.Logf("urgent listing flagged at B after %s, at C after %s", tb, tc)

	amber, red := addrN(2), addrN(3)
	al.publish(A, alliance.Listing{Chain: chain.ETH, Network: "devnet", Values: []string{amber}, Category: "phishing", Confidence: 70, TLP: intel.TLPAmber})
	al.publish(A, alliance.Listing{Chain: chain.ETH, Network: "devnet", Values: []string{red}, Category: "hack", Confidence: 70, TLP: intel.TLPRed, Urgent: true})
	marker := addrN(4)
	al.publish(A, alliance.Listing{Chain: chain.ETH, Network: "devnet", Values: []string{marker}, Category: "scam", Confidence: 50, TLP: intel.TLPGreen})
	al.waitFlag(B, amber, "exchange-a", 5*time.Second)
	al.waitFlag(B, marker, "exchange-a", 5*time.Second)
	al.waitFlag(C, marker, "exchange-a", 5*time.Second)
	require.Equal(t, "", flaggedBy(C, amber), "C, trusted with GREEN only, never receives AMBER")
	require.Equal(t, "", flaggedBy(B, red), "RED never leaves A")
	require.Equal(t, "", flaggedBy(C, red), "RED never leaves A")
	al.waitFlag(A, red, "exchange-a", 5*time.Second) // A screens with its RED listing itself

	// A private listing (the privacy mode): partners match the address
	// without its ever leaving A.
	customer := addrN(5)
	priv := al.publish(A, alliance.Listing{Chain: chain.ETH, Network: "devnet", Values: []string{customer}, Category: "fraud", Confidence: 60,
		TLP: intel.TLPGreen, Private: true})
	require.Len(t, priv, 1)
	require.Equal(t, alliance.Hashed, priv[0].Collection)
	require.NotContains(t, string(priv[0].Object), strings.TrimPrefix(customer, "0x"))
	al.waitFlag(B, customer, "exchange-a", 5*time.Second)
	al.waitFlag(C, customer, "exchange-a", 5*time.Second)

	// C asking A for the AMBER object directly finds nothing; A's inbox
	// is write-only (403).
	cc := clientOf(t, C, A)
	page, err := cc.Object(context.Background(), taxii.CollectionID(alliance.Collection), amberID(t, A, amber))
	require.Error(t, err, "C got %d objects", len(page.Objects))
	var se *taxii.StatusError
	require.True(t, errors.As(err, &se))
	require.Equal(t, http.StatusNotFound, se.StatusCode)
	_, err = cc.Objects(context.Background(), taxii.CollectionID(alliance.Inbox), taxii.Query{})
	require.True(t, errors.As(err, &se))
	require.Equal(t, http.StatusForbidden, se.StatusCode)

	// The revocation clears the theft everywhere.
	rev := al.revoke(A, alliance.Revocation{Chain: chain.ETH, Network: "devnet", Values: []string{theft}})
	require.Len(t, rev, 1)
	rb := al.waitFlag(B, theft, "", 5*time.Second)
	rc := al.waitFlag(C, theft, "", 5*time.Second)
	t.Logf("revocation cleared at B after %s, at C after %s", rb, rc)

	// B stops; A publishes 50 more; B restarts and catches up: every
	// version once.
	al.stop(B)
	var batch []string
	for i := range 50 {
		batch = append(batch, addrN(100+i))
	}
	al.publish(A, alliance.Listing{Chain: chain.ETH, Network: "devnet", Values: batch, Category: "hack", Confidence: 80, TLP: intel.TLPGreen})
	al.start(B)
	for _, v := range batch {
		al.waitFlag(B, v, "exchange-a", 10*time.Second)
	}
	counts := topicCounts(t, B)
	for k, n := range counts {
		require.Equal(t, 1, n, "%s written %d times to B's indicator topic", k, n)
	}
	// theft (listed, revoked), amber, marker, the private one and the
	// 50: RED never came.
	require.Len(t, counts, 2+1+1+1+50)
	for k := range counts {
		require.NotContains(t, k, strings.TrimPrefix(customer, "0x"))
	}

	hostile(t, al, A, B, C)
}

// amberID is the id A gave its listing of addr.
func amberID(t *testing.T, A *devMember, addr string) string {
	t.Helper()
	return intel.ID(A.name, chain.ETH, intel.KindAddress, addr)
}

// topicCounts counts the records of each version of exchange-a's
// indicators in m's indicator topic.
func topicCounts(t *testing.T, m *devMember) map[string]int {
	t.Helper()
	out := map[string]int{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, m.sys.indicators.topic.Read(ctx, false, func(k intel.Key, in *intel.Indicator) error {
		if in != nil && in.Feed == "partner:exchange-a" {
			out[k.String()+"@"+in.Modified.Format(time.RFC3339Nano)]++
		}
		return nil
	}, nil))
	return out
}

// clientOf is from's TAXII client to to, with from's certificate.
func clientOf(t *testing.T, from, to *devMember) *taxii.Client {
	t.Helper()
	r := from.sys.sharing.registry
	cert, err := tls.LoadX509KeyPair(from.certFile, from.keyFile)
	require.NoError(t, err)
	tc, err := r.ClientTLS(to.name, cert)
	require.NoError(t, err)
	c, err := taxii.NewClient(taxii.ClientConfig{APIRoot: to.taxiiURL(), HTTP: &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}})
	require.NoError(t, err)
	return c
}

// hostile: what a hostile partner (here C, and strangers) sends B.
func hostile(t *testing.T, al *alliance3, A, B, C *devMember) {
	ctx := context.Background()
	cb := clientOf(t, C, B)
	inbox := taxii.CollectionID(alliance.Inbox)
	before := topicCounts(t, B)

	// An object of A's relayed by C (C may relay nobody), and one of C's
	// own revoking A's indicator.
	aObj := A.sys.sharing.store
	p, err := aObj.Query(alliance.Collection, taxii.Filter{}, 1)
	require.NoError(t, err)
	st, err := cb.Add(ctx, inbox, []json.RawMessage{p.Records[0].Raw})
	require.NoError(t, err)
	require.Equal(t, 1, st.FailureCount)
	require.Contains(t, st.Failures[0].Message, "may not relay")

	ckey, err := C.sys.sharing.cfg.Key()
	require.NoError(t, err)
	o, err := stix.DecodeObject(p.Records[0].Raw, stix.DefaultLimits)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(o.Raw, &m))
	delete(m, stix.SignatureProperty)
	m["created_by_ref"], m["revoked"], m["modified"] = C.identity, true, stix.FormatTimestamp(time.Now())
	raw, _ := json.Marshal(m)
	forged, err := stix.Sign(raw, stix.SigningKey{Identity: C.identity, Key: ckey})
	require.NoError(t, err)
	// with C's key but claiming A's identity
	m["created_by_ref"] = A.identity
	raw, _ = json.Marshal(m)
	forged2, err := stix.Sign(raw, stix.SigningKey{Identity: A.identity, Key: ckey})
	require.NoError(t, err)
	st, err = cb.Add(ctx, inbox, []json.RawMessage{forged, forged2})
	require.NoError(t, err)
	require.Equal(t, 2, st.FailureCount, "%+v", st)
	require.Contains(t, st.Failures[0].Message, "only its creator revokes it")
	require.Contains(t, st.Failures[1].Message, "signature")

	// Malformed JSON and an oversize body.
	post := func(body []byte) int {
		hc := &http.Client{Transport: cbTransport(t, C, B)}
		req, _ := http.NewRequestWithContext(ctx, "POST", B.taxiiURL()+"collections/"+inbox+"/objects/", bytes.NewReader(body))
		req.Header.Set("Content-Type", taxii.MediaType)
		req.Header.Set("Accept", taxii.MediaType)
		resp, err := hc.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusBadRequest, post([]byte(`{"objects":[{"type":"indicator",`)))
	require.Equal(t, http.StatusRequestEntityTooLarge, post(bytes.Repeat([]byte(" "), 17<<20)))

	// Plain HTTP, no certificate, an unknown certificate: no request
	// reaches the server.
	resp, err := http.Get(strings.Replace(B.taxiiURL(), "https://", "http://", 1) + "collections/") //nolint:noctx // test
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, "plain HTTP to the TLS listener: Go's TLS server answers it without serving it")
	require.Contains(t, string(body), "HTTPS server")
	ca, err := partner.NewDevCA()
	require.NoError(t, err)
	certPEM, keyPEM, err := ca.Issue("exchange-c", nil, nil)
	require.NoError(t, err)
	stranger, err := tls.X509KeyPair(certPEM, keyPEM)
	require.NoError(t, err)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{Certificates: []tls.Certificate{stranger}, InsecureSkipVerify: true}}} //nolint:gosec // test: the client side does not matter
	_, err = hc.Get(B.taxiiURL() + "collections/")                                                                                                    //nolint:noctx // test
	require.Error(t, err, "a certificate named exchange-c from an unknown CA")
	hc = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // test
	_, err = hc.Get(B.taxiiURL() + "collections/")                                                        //nolint:noctx // test
	require.Error(t, err, "no client certificate")

	require.Equal(t, before, topicCounts(t, B), "nothing accepted before is lost, nothing refused is taken")
}

func cbTransport(t *testing.T, from, to *devMember) *http.Transport {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(from.certFile, from.keyFile)
	require.NoError(t, err)
	tc, err := from.sys.sharing.registry.ClientTLS(to.name, cert)
	require.NoError(t, err)
	return &http.Transport{TLSClientConfig: tc}
}
