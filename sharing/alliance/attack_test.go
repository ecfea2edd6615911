package alliance

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/ingest/kafka/kafkatest"
	"github.com/cordonhq/cordon/intel"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/clock"
	"github.com/cordonhq/cordon/sharing/stix"
	"github.com/cordonhq/cordon/sharing/taxii"
)

// signedAs builds an indicator object for value with the given id,
// created by m and signed with m's key.
func signedAs(t *testing.T, m member, id, value string, at time.Time, edit func(map[string]any)) stix.Object {
	t.Helper()
	in := intel.Indicator{ID: id, Kind: intel.KindAddress, Chain: chain.ETH, Network: "mainnet", Value: value, Category: "hack",
		Confidence: 90, TLP: intel.TLPAmber, ValidFrom: at, Created: at, Modified: at}
	raw, err := stix.FromIndicator(&in, m.self.Identity, stix.Options{})
	require.NoError(t, err)
	if edit != nil {
		var mm map[string]any
		require.NoError(t, json.Unmarshal(raw, &mm))
		edit(mm)
		raw, err = json.Marshal(mm)
		require.NoError(t, err)
	}
	signed, err := stix.Sign(raw, stix.SigningKey{Identity: m.self.Identity, Key: m.self.Key})
	require.NoError(t, err)
	o, err := stix.DecodeObject(signed, stix.DefaultLimits)
	require.NoError(t, err)
	return *o
}

// TestAttackIDSquat: the id of A's listing of an address is
// intel.ID(A's name, chain, kind, value): anyone can compute it before
// A publishes. A hostile partner B posts to C, under that id, an
// indicator of its own (signed by B, so every check passes). When A
// then lists the thief's address, C refuses A's genuine, signed listing
// as "owner": B decides, ahead of time, which of A's listings C will
// never apply. Versions are owned per id, first come first served,
// across all partners.
func TestAttackIDSquat(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	c := clock.NewManual(at)
	a, b, cm := newMember("exchange-a"), newMember("exchange-b"), newMember("exchange-c")
	A := open(t, kafkatest.Brokers(t), a, newRing(b, cm), c)
	C := open(t, kafkatest.Brokers(t), cm, newRing(a, b), c)

	// B squats the id A's listing of ethAddr will have (a harmless,
	// already revoked, indicator of some other address).
	squatID := intel.ID("exchange-a", chain.ETH, intel.KindAddress, ethAddr)
	squat := signedAs(t, b, squatID, "0x0000000000000000000000000000000000000002", at, func(m map[string]any) { m["revoked"] = true })
	out := C.svc.Accept(ctx, taxii.Caller{Name: "exchange-b"}, Inbox, []stix.Object{squat})
	require.Equal(t, ReasonOwner, reason(t, out[0].Err), "a revocation of an object B never sent")
	squat = signedAs(t, b, squatID, "0x0000000000000000000000000000000000000002", at, nil)
	out = C.svc.Accept(ctx, taxii.Caller{Name: "exchange-b"}, Inbox, []stix.Object{squat})
	require.NoError(t, out[0].Err, "B's object under A's future id is B's own object, in B's feed")

	c.Advance(time.Second)
	pub, err := A.svc.Publish(ctx, Listing{Chain: chain.ETH, Network: "mainnet", Values: []string{ethAddr}, Category: "hack", Confidence: 90, Urgent: true})
	require.NoError(t, err)
	require.Equal(t, squatID, pub[0].ID)
	good, err := stix.DecodeObject(pub[0].Object, stix.DefaultLimits)
	require.NoError(t, err)
	out = C.svc.Accept(ctx, taxii.Caller{Name: "exchange-a"}, Inbox, []stix.Object{*good})
	require.NoError(t, out[0].Err, "A's genuine urgent listing must be taken at C, whatever B posted before under the same id")
	in, ok := C.indicators(t)["partner:exchange-a/"+pub[0].ID]
	require.True(t, ok)
	require.True(t, in.Active(c.Now()), "the thief's address is flagged at C")
}

// TestAttackOwnershipOracle: the refusal reasons tell a partner whether
// we hold another partner's object. B is not entitled to A's AMBER
// listings, but A's ids are computable from an address; B posts an
// object under A's id for a guessed address whose pattern is invalid
// (so nothing is ever taken): C answers "owner ... belongs to A" when it
// holds A's listing of that address and "value" otherwise. B learns
// which addresses A shared with C.
func TestAttackOwnershipOracle(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	c := clock.NewManual(at)
	a, b, cm := newMember("exchange-a"), newMember("exchange-b"), newMember("exchange-c")
	A := open(t, kafkatest.Brokers(t), a, newRing(b, cm), c)
	C := open(t, kafkatest.Brokers(t), cm, newRing(a, b), c)
	pub, err := A.svc.Publish(ctx, Listing{Chain: chain.ETH, Network: "mainnet", Values: []string{ethAddr}, Category: "hack", Confidence: 90, TLP: intel.TLPAmberStrict})
	require.NoError(t, err)
	good, _ := stix.DecodeObject(pub[0].Object, stix.DefaultLimits)
	out := C.svc.Accept(ctx, taxii.Caller{Name: "exchange-a"}, Inbox, []stix.Object{*good})
	require.NoError(t, out[0].Err)

	probe := func(guess string) string {
		id := intel.ID("exchange-a", chain.ETH, intel.KindAddress, guess)
		o := signedAs(t, b, id, "0x0000000000000000000000000000000000000002", at, func(m map[string]any) {
			m["pattern"] = "[cryptocurrency-wallet:value = '0xzz']"
		})
		out := C.svc.Accept(ctx, taxii.Caller{Name: "exchange-b"}, Inbox, []stix.Object{o})
		require.Error(t, out[0].Err)
		return out[0].Err.Error()
	}
	held := probe(ethAddr)
	notHeld := probe("0x1111111111111111111111111111111111111111")
	require.Equal(t, strings.Contains(held, "belongs to"), strings.Contains(notHeld, "belongs to"),
		"the answer must not tell B whether C holds A's listing of an address: %q vs %q", held, notHeld)
}

// allowAll is a taxii.Access for one caller that may read everything.
type allowAll struct{ name string }

func (a allowAll) Identify(*http.Request) (taxii.Caller, error) {
	return taxii.Caller{Name: a.name}, nil
}
func (allowAll) CanRead(taxii.Caller, string) bool                   { return true }
func (allowAll) CanWrite(taxii.Caller, string) bool                  { return true }
func (allowAll) MayReceive(taxii.Caller, string, *taxii.Record) bool { return true }
func (allowAll) Allow(taxii.Caller) bool                             { return true }

// TestAttackPullPagesRefusedCursor: a pull of more than one page from
// cordon's own server. The server binds a next cursor to the query's
// added_after as given; Pull moves added_after to each page's last
// date-added and sends it with the next cursor, so the second request
// of every multi-page pull is refused (400, "next: not issued for this
// query or caller") and Pull fails. The sync goes on only through
// restarts (backoff of 1 s up to 15 s in cordon), one page per restart:
// an initial sync of a large collection crawls, and a partner with a
// large backlog (an active theft with many addresses) is not applied in
// seconds.
func TestAttackPullPagesRefusedCursor(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	c := clock.NewManual(at)
	a, b := newMember("exchange-a"), newMember("exchange-b")
	A := open(t, kafkatest.Brokers(t), a, newRing(b), c)
	B := open(t, kafkatest.Brokers(t), b, newRing(a), c)
	vals := []string{ethAddr, "0x1111111111111111111111111111111111111111", "0x2222222222222222222222222222222222222222"}
	for _, v := range vals {
		_, err := A.svc.Publish(ctx, Listing{Chain: chain.ETH, Network: "mainnet", Values: []string{v}, Category: "hack", Confidence: 90, TLP: intel.TLPGreen})
		require.NoError(t, err)
		c.Advance(time.Millisecond)
	}
	srv, err := taxii.NewServer(taxii.ServerConfig{Title: "a", APIRoot: "alliance", Store: A.store, Access: allowAll{"exchange-b"}, Intake: A.svc,
		CursorKey: []byte(strings.Repeat("k", 32)), Collections: []taxii.CollectionInfo{{Alias: Collection, Title: "i"}, {Alias: Inbox, Title: "in"}}})
	require.NoError(t, err)
	hs := httptest.NewServer(srv)
	defer hs.Close()
	cl, err := taxii.NewClient(taxii.ClientConfig{APIRoot: hs.URL + "/alliance/", AllowHTTP: true})
	require.NoError(t, err)
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	err = B.svc.Pull(pctx, Peer{Name: "exchange-a", Client: cl}, Collection, PullOptions{Page: 1})
	require.True(t, errors.Is(err, context.DeadlineExceeded), "the pull must page through without failing, got %v", err)
	n := 0
	for k := range B.indicators(t) {
		if strings.HasPrefix(k, "partner:exchange-a/") {
			n++
		}
	}
	require.Equal(t, len(vals), n)
}

// TestAttackPullSpinsOnEmptyMore: a hostile (or buggy) partner server
// answers every page with no objects, "more": true and a next cursor.
// Pull asks again at once, with no wait and no bound: one pull loop
// becomes a busy loop of requests (our CPU and connections, and the
// log/metrics of a "successful" sync) for as long as the partner likes.
func TestAttackPullSpinsOnEmptyMore(t *testing.T) {
	at := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	c := clock.NewManual(at)
	a, b := newMember("exchange-a"), newMember("exchange-b")
	B := open(t, kafkatest.Brokers(t), b, newRing(a), c)
	var hits atomic.Int64
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", taxii.MediaType)
		_, _ = w.Write([]byte(`{"more":true,"next":"again"}`))
	}))
	defer hs.Close()
	cl, err := taxii.NewClient(taxii.ClientConfig{APIRoot: hs.URL + "/alliance/", AllowHTTP: true})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_ = B.svc.Pull(ctx, Peer{Name: "exchange-a", Client: cl}, Collection, PullOptions{Page: 10, Wait: time.Second})
	require.Less(t, hits.Load(), int64(20), "an empty page with more=true must not make Pull ask again at once, forever (%d requests in 0.5 s)", hits.Load())
}

// TestAttackFutureRefusalSkipped: a partner's clock runs 6 minutes
// ahead (or ours behind): its urgent listing is refused as "future" on
// the pull, and the pull position passes it for good. Minutes later the
// object would be acceptable, but nothing ever asks for it again: the
// listing (and any revocation dated the same way) is lost at this
// exchange. A refusal that time cures must not move the cursor past the
// object.
func TestAttackFutureRefusalSkipped(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	c := clock.NewManual(at)
	a, b := newMember("exchange-a"), newMember("exchange-b")
	ca := clock.NewManual(at.Add(6 * time.Minute)) // A's clock is ahead
	A := open(t, kafkatest.Brokers(t), a, newRing(b), ca)
	B := open(t, kafkatest.Brokers(t), b, newRing(a), c)
	_, err := A.svc.Publish(ctx, Listing{Chain: chain.ETH, Network: "mainnet", Values: []string{ethAddr}, Category: "hack", Confidence: 90, TLP: intel.TLPGreen, Urgent: true})
	require.NoError(t, err)
	objs, last := objects(t, A.store, Collection, time.Time{})
	out, err := B.svc.Ingest(ctx, "exchange-a", Collection, objs, last)
	require.NoError(t, err)
	require.Equal(t, ReasonFuture, reason(t, out[0].Err))
	// Ten minutes later, B pulls again from its position.
	c.Advance(10 * time.Minute)
	again, _ := objects(t, A.store, Collection, B.svc.Cursor("exchange-a", Collection))
	require.NotEmpty(t, again, "the object refused only for its date must be pulled again once it is acceptable")
}

// TestAttackListingErrorsAre503: listings the operator API refuses for
// their content are answered 503 ("try again later") instead of 400
// when FromIndicator, not intel.Validate, is what refuses them: a kind
// without a STIX form, a network name in capitals, too many external
// references. A client (the cordon share command, a script) retries a
// request that can never succeed.
func TestAttackListingErrorsAre503(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	c := clock.NewManual(at)
	a := newMember("exchange-a")
	A := open(t, kafkatest.Brokers(t), a, newRing(newMember("exchange-b")), c)
	refs := make([]intel.Ref, 40)
	for i := range refs {
		refs[i] = intel.Ref{SourceName: "x", URL: "https://example.com/" + strings.Repeat("a", i+1)}
	}
	for name, l := range map[string]Listing{
		"transaction kind": {Chain: chain.ETH, Network: "mainnet", Kind: intel.KindTransaction, Values: []string{"0x" + strings.Repeat("ab", 32)}, Category: "hack", Confidence: 90},
		"40 references":    {Chain: chain.ETH, Network: "mainnet", Values: []string{ethAddr}, Category: "hack", Confidence: 90, Refs: refs},
	} {
		_, err := A.svc.Publish(ctx, l)
		require.Error(t, err, name)
		require.Equal(t, http.StatusBadRequest, status(err), "%s: %v", name, err)
	}
}

// TestAttackRelayedAmberStrict: B may relay A's objects to C. A shares
// a TLP:AMBER+STRICT listing with B only (AMBER+STRICT: the recipient
// organisation only). B posts it on to C, and C takes it and applies it:
// nothing at intake looks at the TLP of a relayed object, so a relay
// right turns into a way around A's markings, and C holds and acts on
// intelligence it was never given. A relayed object above TLP:GREEN
// (or at least AMBER+STRICT and RED) should be refused.
func TestAttackRelayedAmberStrict(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	c := clock.NewManual(at)
	a, b, cm := newMember("exchange-a"), newMember("exchange-b"), newMember("exchange-c")
	ring := newRing(a, b)
	ring.relay["exchange-b"] = []string{"exchange-a"}
	C := open(t, kafkatest.Brokers(t), cm, ring, c)
	strict := signedAs(t, a, intel.ID("exchange-a", chain.ETH, intel.KindAddress, ethAddr), ethAddr, at, func(m map[string]any) {
		m["object_marking_refs"] = []string{"marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003"}
	})
	out := C.svc.Accept(ctx, taxii.Caller{Name: "exchange-b"}, Inbox, []stix.Object{strict})
	require.Error(t, out[0].Err, "an AMBER+STRICT object of A's relayed by B must not be taken")
}

// TestAttackPullCursorJumpsToFuture: a partner's server (a hostile one,
// or one whose clock jumped) sends a page whose X-TAXII-Date-Added-Last
// is in the year 2999. Pull takes the header as the new position with
// no bound: every later pull asks for objects added after 2999, so the
// partner's real listings (and revocations) are never pulled again,
// silently, even after its clock is fixed.
func TestAttackPullCursorJumpsToFuture(t *testing.T) {
	at := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	c := clock.NewManual(at)
	a, b := newMember("exchange-a"), newMember("exchange-b")
	B := open(t, kafkatest.Brokers(t), b, newRing(a), c)
	o := signedAs(t, a, intel.ID("exchange-a", chain.ETH, intel.KindAddress, ethAddr), ethAddr, at, nil)
	var hits atomic.Int64
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", taxii.MediaType)
		if hits.Add(1) == 1 {
			w.Header().Set(taxii.HeaderDateAddedFirst, "2999-01-01T00:00:00.000000Z")
			w.Header().Set(taxii.HeaderDateAddedLast, "2999-01-01T00:00:00.000000Z")
			_, _ = w.Write([]byte(`{"objects":[` + string(o.Raw) + `]}`))
			return
		}
		_, _ = w.Write([]byte(`{}`))
	}))
	defer hs.Close()
	cl, err := taxii.NewClient(taxii.ClientConfig{APIRoot: hs.URL + "/alliance/", AllowHTTP: true})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_ = B.svc.Pull(ctx, Peer{Name: "exchange-a", Client: cl}, Collection, PullOptions{})
	require.False(t, B.svc.Cursor("exchange-a", Collection).After(at.Add(stix.MaxSkew)),
		"the pull position must not be set past now (+skew) by a partner's header: %s", B.svc.Cursor("exchange-a", Collection))
}
