package alliance

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/ingest/kafka/kafkatest"
	"github.com/cordonhq/cordon/intel"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/clock"
	"github.com/cordonhq/cordon/sharing/stix"
	"github.com/cordonhq/cordon/sharing/taxii"
)

var allianceKey = []byte(strings.Repeat("alliance-key-", 4))

// openKey is open with the privacy mode: the alliance key and the
// hashed collection.
func openKey(t *testing.T, brokers []string, m member, partners Partners, c clock.Clock) *instance {
	t.Helper()
	kc := kafka.Config{Auth: kafkatest.Keys(), Brokers: brokers, CreateTopics: true}
	it, err := intel.OpenTopic(kc)
	require.NoError(t, err)
	st := taxii.NewStore(c, Collection, Inbox, Hashed)
	svc, err := Open(context.Background(), ServiceConfig{Self: m.self, Partners: partners, Kafka: kc, Intel: it, Store: st, Clock: c, AllianceKey: allianceKey})
	require.NoError(t, err)
	t.Cleanup(svc.Close)
	return &instance{svc: svc, store: st, intel: it, kc: kc}
}

// serve is a TAXII server of in for caller.
func serve(t *testing.T, in *instance, caller string) *taxii.Client {
	t.Helper()
	srv, err := taxii.NewServer(taxii.ServerConfig{Title: "x", APIRoot: "alliance", Store: in.store, Access: allowAll{caller}, Intake: in.svc,
		CursorKey: []byte(strings.Repeat("k", 32)), Collections: []taxii.CollectionInfo{{Alias: Collection, Title: "i"}, {Alias: Inbox, Title: "in"}, {Alias: Hashed, Title: "h"}}})
	require.NoError(t, err)
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	cl, err := taxii.NewClient(taxii.ClientConfig{APIRoot: hs.URL + "/alliance/", AllowHTTP: true})
	require.NoError(t, err)
	return cl
}

// counting is a partner inbox that counts the posts it gets (and
// answers them with a 500, so nothing is marked sent).
func counting(t *testing.T) (*taxii.Client, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			n.Add(1)
		}
		http.Error(w, "down", http.StatusInternalServerError)
	}))
	t.Cleanup(hs.Close)
	cl, err := taxii.NewClient(taxii.ClientConfig{APIRoot: hs.URL + "/alliance/", AllowHTTP: true})
	require.NoError(t, err)
	return cl, &n
}

// TestAttack2SightingSuppressedBySharedID: versions are now held by
// creator and id, so A may post an indicator under the id of B's listing
// (computable: intel.ID(B's name, chain, kind, value)). But the sighting
// id is derived from us, the deposit and the indicator id only, not the
// indicator's creator: when a deposit matches both A's and B's
// indicators, the first sighting made (A's) marks the match "done" and B,
// whose listing it really was, never hears of the deposit. A hostile A
// silences our sightings of B's listings of any address A also lists.
func TestAttack2SightingSuppressedBySharedID(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	c := clock.NewManual(at)
	a, b, cm := newMember("exchange-a"), newMember("exchange-b"), newMember("exchange-c")
	C := open(t, kafkatest.Brokers(t), cm, newRing(a, b), c)

	bid := intel.ID("exchange-b", chain.ETH, intel.KindAddress, ethAddr)
	ob := signedAs(t, b, bid, ethAddr, at, nil)
	oa := signedAs(t, a, bid, ethAddr, at, nil) // A's own object under B's id
	require.NoError(t, C.svc.Accept(ctx, taxii.Caller{Name: "exchange-b"}, Inbox, []stix.Object{ob})[0].Err)
	require.NoError(t, C.svc.Accept(ctx, taxii.Caller{Name: "exchange-a"}, Inbox, []stix.Object{oa})[0].Err)

	ca, na := counting(t)
	cb, nb := counting(t)
	peers := []Peer{{Name: "exchange-a", Client: ca, Sightings: true}, {Name: "exchange-b", Client: cb, Sightings: true}}
	// The held deposit names both indicators (A's first).
	_ = C.svc.Sight(ctx, peers, "partner:exchange-a/"+bid, "deposit", "dep-1", "a deposit", at)
	_ = C.svc.Sight(ctx, peers, "partner:exchange-b/"+bid, "deposit", "dep-1", "a deposit", at)
	require.Positive(t, na.Load(), "A's sighting was posted")
	require.Positive(t, nb.Load(), "B's indicator matched the deposit too: B must get its sighting, whatever A posted under the same id")
}

// TestAttack2HashedSightingRefusedForever: a sighting of a partner's
// private (hashed) listing is refused by the partner (sightingOfOurs
// looks in the indicators collection only, not hashed), and Sight /
// RetrySightings treat a refusal like a failed post: the sighting stays
// unsent and is posted again every 30 s, forever, one more for every
// match of a private listing (and a refusal logged at the partner each
// time). The same holds for any sighting the partner refuses.
func TestAttack2HashedSightingRefusedForever(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	c := clock.NewManual(at)
	b, cm := newMember("exchange-b"), newMember("exchange-c")
	B := openKey(t, kafkatest.Brokers(t), b, newRing(cm), c)
	C := openKey(t, kafkatest.Brokers(t), cm, newRing(b), c)

	pub, err := B.svc.Publish(ctx, Listing{Chain: chain.ETH, Network: "mainnet", Values: []string{ethAddr}, Category: "hack", Confidence: 90,
		TLP: intel.TLPGreen, Private: true})
	require.NoError(t, err)
	o, err := stix.DecodeObject(pub[0].Object, stix.DefaultLimits)
	require.NoError(t, err)
	require.NoError(t, C.svc.Accept(ctx, taxii.Caller{Name: "exchange-b"}, Inbox, []stix.Object{*o})[0].Err)

	peers := []Peer{{Name: "exchange-b", Client: serve(t, B, "exchange-c"), Sightings: true}}
	err = C.svc.Sight(ctx, peers, "partner:exchange-b/"+pub[0].ID, "deposit", "dep-1", "a deposit", at)
	require.NoError(t, err, "B must take a sighting of its own private listing")
	C.svc.mu.Lock()
	unsent := len(C.svc.unsent)
	C.svc.mu.Unlock()
	require.Zero(t, unsent, "a sighting the partner refuses is kept unsent and posted again every 30 s forever")
}

// TestPrivacyModeLimits states what the privacy mode gives, and what it
// does not (docs/sharing/README.md, "Privacy mode"). The published object
// holds no address, and without the alliance key no address matches it.
// But the hash is deterministic under a key every member holds, and the
// addresses ever used on a chain are public: a member who hashes the
// chain's address set (hundreds of millions for Ethereum, minutes of
// HMAC-SHA256) reads a private listing back. The test shows it with a
// handful of candidates, so that the limit is stated by a test, not only
// in prose. (From the second attack review.)
func TestPrivacyModeLimits(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	c := clock.NewManual(at)
	b, cm := newMember("exchange-b"), newMember("exchange-c")
	B := openKey(t, kafkatest.Brokers(t), b, newRing(cm), c)
	pub, err := B.svc.Publish(ctx, Listing{Chain: chain.ETH, Network: "mainnet", Values: []string{ethAddr}, Category: "account-takeover",
		Confidence: 90, TLP: intel.TLPAmber, Private: true})
	require.NoError(t, err)
	require.NotContains(t, strings.ToLower(string(pub[0].Object)), ethAddr[2:], "the object holds no address")
	o, err := stix.DecodeObject(pub[0].Object, stix.DefaultLimits)
	require.NoError(t, err)
	ins, err := stix.ToIndicators(o, "partner:exchange-b", "exchange-b", at)
	require.NoError(t, err)
	hashed := ins[0].Value

	chainAddresses := []string{"0x1111111111111111111111111111111111111111", ethAddr, "0x2222222222222222222222222222222222222222"}
	recover := func(key []byte) string {
		for _, cand := range chainAddresses {
			if h, _ := stix.HashValue(key, chain.ETH, "mainnet", cand); h == hashed {
				return cand
			}
		}
		return ""
	}
	require.Empty(t, recover([]byte("not the alliance key, but 32 bytes long")), "without the key, nothing matches")
	require.Equal(t, ethAddr, recover(allianceKey), "with the key, a member testing candidates finds the address: the documented limit")
}

// TestAttack2MultiValueVersionLeavesStaleValues: an indicator of
// another STIX producer whose pattern names several wallet values is
// read as one intel indicator per value, each under an id derived from
// the object's id and the value; one naming a single value is read under
// the object's id. A partner's new version that drops a value (a false
// positive removed), or names one value only, writes indicators under
// other keys: those of the earlier version stay active, forever, and no
// revocation of the object reaches them. Our customers' deposits from
// the dropped address stay blocked by a listing its author withdrew.
func TestAttack2MultiValueVersionLeavesStaleValues(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	c := clock.NewManual(at)
	a, cm := newMember("exchange-a"), newMember("exchange-c")
	C := open(t, kafkatest.Brokers(t), cm, newRing(a), c)
	const other = "0x1111111111111111111111111111111111111111"
	id := "indicator--6f1e0b1c-0f4a-4e43-9d1a-3f4a2b1c0d9e"
	plain := func(pattern string, revoked bool) func(map[string]any) {
		return func(m map[string]any) {
			delete(m, "x_cordon_chain")
			delete(m, "x_cordon_network")
			delete(m, "x_cordon_kind")
			m["pattern"] = pattern
			if revoked {
				m["revoked"] = true
			}
		}
	}
	both := "[cryptocurrency-wallet:value = '" + ethAddr + "'] OR [cryptocurrency-wallet:value = '" + other + "']"
	v1 := signedAs(t, a, id, ethAddr, at, plain(both, false))
	require.NoError(t, C.svc.Accept(ctx, taxii.Caller{Name: "exchange-a"}, Inbox, []stix.Object{v1})[0].Err)
	// A removes the false positive (other), then revokes the object.
	v2 := signedAs(t, a, id, ethAddr, at.Add(time.Second), plain("[cryptocurrency-wallet:value = '"+ethAddr+"']", false))
	require.NoError(t, C.svc.Accept(ctx, taxii.Caller{Name: "exchange-a"}, Inbox, []stix.Object{v2})[0].Err)
	v3 := signedAs(t, a, id, ethAddr, at.Add(2*time.Second), plain("[cryptocurrency-wallet:value = '"+ethAddr+"']", true))
	require.NoError(t, C.svc.Accept(ctx, taxii.Caller{Name: "exchange-a"}, Inbox, []stix.Object{v3})[0].Err)
	c.Advance(3 * time.Second)
	for k, in := range C.indicators(t) {
		require.False(t, in.Active(c.Now()), "indicator %s (%s) of object %s stays active after A dropped it and revoked the object", k, in.Value, id)
	}
}

// TestAttack2LegacyHeldSightedAsAmber: held versions recorded before
// sightings existed have no tlp, and Sight takes a missing TLP for AMBER:
// after the upgrade, a match of a partner's TLP:RED indicator taken
// before it is reported (marked AMBER) although RED indicators are never
// to be sighted. The TLP should fail closed (unknown: no sighting), or
// come from the matched indicator itself.
func TestAttack2LegacyHeldSightedAsAmber(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	c := clock.NewManual(at)
	a, cm := newMember("exchange-a"), newMember("exchange-c")
	C := open(t, kafkatest.Brokers(t), cm, newRing(a), c)
	id := intel.ID("exchange-a", chain.ETH, intel.KindAddress, ethAddr)
	red := signedAs(t, a, id, ethAddr, at, func(m map[string]any) { m["object_marking_refs"] = []string{tlpMarkingRed} })
	require.NoError(t, C.svc.Accept(ctx, taxii.Caller{Name: "exchange-a"}, Inbox, []stix.Object{red})[0].Err)
	// The same held version as the previous release wrote it and a
	// restore reads it back: no tlp.
	C.svc.mu.Lock()
	h := C.svc.held[a.self.Identity+"|"+id]
	require.Equal(t, intel.TLPRed, h.TLP)
	h.TLP = ""
	C.svc.mu.Unlock()
	C2 := C

	cl, n := counting(t)
	err := C2.svc.Sight(ctx, []Peer{{Name: "exchange-a", Client: cl, Sightings: true}}, "partner:exchange-a/"+id, "deposit", "dep-1", "a deposit", at)
	require.Zero(t, n.Load(), "a sighting of a TLP:RED indicator was posted (err %v)", err)
}

const tlpMarkingRed = "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1"

// TestAttack2SightingOracle: a received sighting must be of one of our
// published indicators, looked up among everything we published, whatever
// the sender may read. Our ids are computable from an address
// (intel.ID(our name, chain, kind, value)), so a partner posts signed
// sightings of the ids of guessed addresses: the one accepted names an
// address we listed, even a TLP:RED (or AMBER+STRICT, or another
// partner's named) listing it was never entitled to. The ownership
// oracle of the first review, back through sightings.
func TestAttack2SightingOracle(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	c := clock.NewManual(at)
	b, cm := newMember("exchange-b"), newMember("exchange-c")
	C := open(t, kafkatest.Brokers(t), cm, newRing(b), c)
	_, err := C.svc.Publish(ctx, Listing{Chain: chain.ETH, Network: "mainnet", Values: []string{ethAddr}, Category: "hack", Confidence: 90, TLP: intel.TLPRed})
	require.NoError(t, err)

	n := 0
	probe := func(guess string) string {
		n++
		of := intel.ID("exchange-c", chain.ETH, intel.KindAddress, guess)
		sid := "sighting--" + uuidOf(guess+string(rune('a'+n)))
		raw, err := stix.Sighting(of, b.self.Identity, at, 1, "probe", intel.TLPAmber, sid)
		require.NoError(t, err)
		signed, err := stix.Sign(raw, stix.SigningKey{Identity: b.self.Identity, Key: b.self.Key})
		require.NoError(t, err)
		o, err := stix.DecodeObject(signed, stix.DefaultLimits)
		require.NoError(t, err)
		out := C.svc.Accept(ctx, taxii.Caller{Name: "exchange-b"}, Inbox, []stix.Object{*o})
		if out[0].Err == nil {
			return "accepted"
		}
		return reason(t, out[0].Err)
	}
	listed := probe(ethAddr)
	notListed := probe("0x1111111111111111111111111111111111111111")
	require.Equal(t, listed, notListed, "B, entitled to none of C's RED listings, learns which address C listed: %s vs %s", listed, notListed)
}

// TestAttack2RefusedSightingNotRetried: a sighting the partner refuses
// (here: of an indicator signed by B that B's instance does not hold) is
// not posted again every 30 s forever.
func TestAttack2RefusedSightingNotRetried(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	c := clock.NewManual(at)
	b, cm := newMember("exchange-b"), newMember("exchange-c")
	B := openKey(t, kafkatest.Brokers(t), b, newRing(cm), c)
	C := open(t, kafkatest.Brokers(t), cm, newRing(b), c)
	id := intel.ID("exchange-b", chain.ETH, intel.KindAddress, ethAddr)
	o := signedAs(t, b, id, ethAddr, at, nil) // signed with B's key, never published by B's instance
	require.NoError(t, C.svc.Accept(ctx, taxii.Caller{Name: "exchange-b"}, Inbox, []stix.Object{o})[0].Err)
	peers := []Peer{{Name: "exchange-b", Client: serve(t, B, "exchange-c"), Sightings: true}}
	err := C.svc.Sight(ctx, peers, "partner:exchange-b/"+id, "deposit", "dep-1", "a deposit", at)
	require.NoError(t, err, "a refusal is final, not an error to retry")
	C.svc.mu.Lock()
	unsent := len(C.svc.unsent)
	C.svc.mu.Unlock()
	require.Zero(t, unsent, "a sighting the partner refused is posted again every 30 s forever")
}

// TestAttack2SightingOfMatchBeforeListing: the sharing instance reads
// cordon.withdrawals from its start at every (re)start and screens each
// flagged withdrawal's destination again with today's index
// (sharesvc.go sightWithdrawals), and Sight takes no account of when the
// match happened (it is given time.Now()). A partner with sightings on
// lists any address today (one it suspects a customer of ours withdrew
// to); at our next restart every old withdrawal to it that some feed
// had flagged is reported to the partner: our customers' withdrawal
// history, for addresses the partner chooses, long after the fact. A
// match from before we took the indicator must not be sighted.
func TestAttack2SightingOfMatchBeforeListing(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	c := clock.NewManual(at)
	p, cm := newMember("exchange-p"), newMember("exchange-c")
	C := open(t, kafkatest.Brokers(t), cm, newRing(p), c)
	id := intel.ID("exchange-p", chain.ETH, intel.KindAddress, ethAddr)
	o := signedAs(t, p, id, ethAddr, at, nil)
	require.NoError(t, C.svc.Accept(ctx, taxii.Caller{Name: "exchange-p"}, Inbox, []stix.Object{o})[0].Err)

	cl, n := counting(t)
	withdrawnAt := at.Add(-30 * 24 * time.Hour) // a month before P listed the address
	_ = C.svc.Sight(ctx, []Peer{{Name: "exchange-p", Client: cl, Sightings: true}}, "partner:exchange-p/"+id, "withdrawal", "wd-old", "a withdrawal", withdrawnAt)
	require.Zero(t, n.Load(), "a withdrawal made a month before we took P's indicator is reported to P")
}
