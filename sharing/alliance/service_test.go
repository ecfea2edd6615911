package alliance

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/ingest/kafka/kafkatest"
	"github.com/cordonhq/cordon/intel"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/clock"
	"github.com/cordonhq/cordon/internal/recordauth"
	"github.com/cordonhq/cordon/sharing/partner"
	"github.com/cordonhq/cordon/sharing/stix"
	"github.com/cordonhq/cordon/sharing/taxii"
)

// member is one exchange of a test alliance.
type member struct {
	self Self
	pub  ed25519.PublicKey
}

func newMember(name string) member {
	seed := sha256.Sum256([]byte("alliance test " + name))
	k := ed25519.NewKeyFromSeed(seed[:ed25519.SeedSize])
	return member{self: Self{Name: name, Identity: "identity--" + uuidOf(name), Key: k}, pub: k.Public().(ed25519.PublicKey)}
}

// ring is a partner registry of members; relay[sender] names whose
// objects sender may relay.
func uuidOf(name string) string {
	u := sha256.Sum256([]byte(name))
	x := []byte(hex.EncodeToString(u[:16]))
	x[12], x[16] = '4', '8'
	return string(x[:8]) + "-" + string(x[8:12]) + "-" + string(x[12:16]) + "-" + string(x[16:20]) + "-" + string(x[20:32])
}

type ring struct {
	members map[string]member
	relay   map[string][]string
}

func newRing(ms ...member) *ring {
	r := &ring{members: map[string]member{}, relay: map[string][]string{}}
	for _, m := range ms {
		r.members[m.self.Name] = m
	}
	return r
}

func (r *ring) LookupKey(id string) (string, ed25519.PublicKey, bool) {
	for _, m := range r.members {
		if recordauth.KeyID(m.pub) == id {
			return m.self.Identity, m.pub, true
		}
	}
	return "", nil, false
}

func (r *ring) NameOf(identity string) (string, bool) {
	for _, m := range r.members {
		if m.self.Identity == identity {
			return m.self.Name, true
		}
	}
	return "", false
}

func (r *ring) IdentityOf(name string) (string, bool) {
	m, ok := r.members[name]
	return m.self.Identity, ok
}

func (r *ring) MayRelay(sender, identity string) bool {
	if m, ok := r.members[sender]; ok && m.self.Identity == identity {
		return true
	}
	for _, n := range r.relay[sender] {
		if r.members[n].self.Identity == identity {
			return true
		}
	}
	return false
}

// MayReceive: a member receives our records of any collection but
// TLP:RED ones.
func (r *ring) MayReceive(c taxii.Caller, _ string, rec *taxii.Record) bool {
	if _, ok := r.members[c.Name]; !ok || rec == nil {
		return false
	}
	t, err := partner.TLPOf(rec.Raw)
	return err == nil && t != intel.TLPRed
}

type instance struct {
	svc   *Service
	store *taxii.Store
	intel *intel.Topic
	kc    kafka.Config
}

func open(t *testing.T, brokers []string, m member, partners Partners, c clock.Clock) *instance {
	t.Helper()
	kc := kafka.Config{Auth: kafkatest.Keys(), Brokers: brokers, CreateTopics: true}
	it, err := intel.OpenTopic(kc)
	require.NoError(t, err)
	st := taxii.NewStore(c, Collection, Inbox)
	svc, err := Open(context.Background(), ServiceConfig{Self: m.self, Partners: partners, Kafka: kc, Intel: it, Store: st, Clock: c})
	require.NoError(t, err)
	t.Cleanup(svc.Close)
	return &instance{svc: svc, store: st, intel: it, kc: kc}
}

// indicators reads the instance's indicator topic as its intel store
// would.
func (in *instance) indicators(t *testing.T) map[string]intel.Indicator {
	t.Helper()
	out := map[string]intel.Indicator{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, in.intel.Read(ctx, false, func(k intel.Key, i *intel.Indicator) error {
		if i == nil {
			delete(out, k.String())
		} else {
			out[k.String()] = *i
		}
		return nil
	}, nil))
	return out
}

// objects decodes the records of a collection after a date-added
// position, as a pull would get them.
func objects(t *testing.T, st *taxii.Store, col string, after time.Time) ([]stix.Object, time.Time) {
	t.Helper()
	p, err := st.Query(col, taxii.Filter{AddedAfter: after, Versions: []string{"all"}}, 1000)
	require.NoError(t, err)
	out := make([]stix.Object, 0, len(p.Records))
	last := after
	for _, r := range p.Records {
		o, err := stix.DecodeObject(r.Raw, stix.DefaultLimits)
		require.NoError(t, err)
		out = append(out, *o)
		last = r.DateAdded
	}
	return out, last
}

const ethAddr = "0x098b716b8aaf21512996dc57eb0615e2383e2f96"

func reason(t *testing.T, err error) string {
	t.Helper()
	var r *Refused
	require.True(t, errors.As(err, &r), "%v is not a refusal", err)
	return r.Reason
}

// TestPublishIngestRevokeRestart: A's listing, signed, is taken by B
// (pulled), enters B's indicators as A's and flags there; the same page
// again is duplicates; A's revocation clears it at B; after B restarts,
// its position and held versions are back, so an old version replayed
// is refused as stale and nothing is taken twice.
func TestPublishIngestRevokeRestart(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	c := clock.NewManual(at)
	a, b := newMember("exchange-a"), newMember("exchange-b")
	ka := kafkatest.Brokers(t)
	kb := kafkatest.Brokers(t)
	A := open(t, ka, a, newRing(b), c)
	B := open(t, kb, b, newRing(a), c)

	pub, err := A.svc.Publish(ctx, Listing{Chain: chain.ETH, Network: "mainnet", Values: []string{"0x098B716B8Aaf21512996dC57EB0615e2383E2f96"},
		Category: "hack", Confidence: 90, TLP: intel.TLPAmber, Urgent: true, Description: "theft of 2026-12-02"})
	require.NoError(t, err)
	require.Len(t, pub, 1)
	require.Equal(t, ethAddr, pub[0].Value)
	require.True(t, pub[0].Urgent)
	own := A.indicators(t)
	require.Contains(t, own, "share:exchange-a/"+pub[0].ID, "A screens with its own listing")

	c.Advance(time.Second)
	objs, last := objects(t, A.store, Collection, time.Time{})
	require.Len(t, objs, 1)
	out, err := B.svc.Ingest(ctx, "exchange-a", Collection, objs, last)
	require.NoError(t, err)
	require.NoError(t, out[0].Err)
	require.False(t, out[0].Duplicate)
	got := B.indicators(t)
	in, ok := got["partner:exchange-a/"+pub[0].ID]
	require.True(t, ok, "B holds A's indicator under A's feed: %v", got)
	require.Equal(t, "exchange-a", in.Source)
	require.Equal(t, "hack", in.Category)
	require.Equal(t, 90, in.Confidence)
	require.Equal(t, intel.TLPAmber, in.TLP)
	require.True(t, in.Active(c.Now()))
	require.Equal(t, last, B.svc.Cursor("exchange-a", Collection))

	out, err = B.svc.Ingest(ctx, "exchange-a", Collection, objs, last)
	require.NoError(t, err)
	require.True(t, out[0].Duplicate, "the same version again is a duplicate, not an error")

	c.Advance(time.Second)
	rev, err := A.svc.RevokeValues(ctx, chain.ETH, "mainnet", "", []string{ethAddr}, false)
	require.NoError(t, err)
	require.Len(t, rev, 1)
	require.True(t, rev[0].Revoked)
	revs, last2 := objects(t, A.store, Collection, last)
	require.Len(t, revs, 1)
	out, err = B.svc.Ingest(ctx, "exchange-a", Collection, revs, last2)
	require.NoError(t, err)
	require.NoError(t, out[0].Err)
	in = B.indicators(t)["partner:exchange-a/"+pub[0].ID]
	require.True(t, in.Revoked)
	require.False(t, in.Active(c.Now()), "the revocation clears it at B")

	// B restarts: a new instance fences the old one and reads its state.
	B.svc.Close()
	B2 := open(t, kb, b, newRing(a), c)
	require.Equal(t, last2, B2.svc.Cursor("exchange-a", Collection))
	out, err = B2.svc.Ingest(ctx, "exchange-a", Collection, objs, last2)
	require.NoError(t, err)
	require.Equal(t, ReasonStale, reason(t, out[0].Err), "the listing replayed after its revocation")
	require.True(t, B2.indicators(t)["partner:exchange-a/"+pub[0].ID].Revoked, "nothing accepted before is lost")

	// A restarts too: its collection is served again, byte for byte.
	A.svc.Close()
	A2 := open(t, ka, a, newRing(b), c)
	again, _ := objects(t, A2.store, Collection, time.Time{})
	require.Len(t, again, 2)
	require.JSONEq(t, string(pub[0].Object), string(again[0].Raw))
	require.Equal(t, string(rev[0].Object), string(again[1].Raw))
}

// TestHostileObjects: every object a hostile partner may send is refused
// with its reason, and the good one in the same batch is taken.
func TestHostileObjects(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	c := clock.NewManual(at)
	a, b, x := newMember("exchange-a"), newMember("exchange-b"), newMember("exchange-x")
	A := open(t, kafkatest.Brokers(t), a, newRing(b), c)
	C := open(t, kafkatest.Brokers(t), newMember("exchange-c"), newRing(a, b), c)

	pub, err := A.svc.Publish(ctx, Listing{Chain: chain.ETH, Network: "mainnet", Values: []string{ethAddr}, Category: "hack", Confidence: 80})
	require.NoError(t, err)
	good, err := stix.DecodeObject(pub[0].Object, stix.DefaultLimits)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(pub[0].Object, &m))
	resign := func(k member, edit func(map[string]any)) stix.Object {
		mm := map[string]any{}
		for k, v := range m {
			mm[k] = v
		}
		delete(mm, stix.SignatureProperty)
		edit(mm)
		raw, err := json.Marshal(mm)
		require.NoError(t, err)
		signed, err := stix.Sign(raw, stix.SigningKey{Identity: fmt.Sprint(mm["created_by_ref"]), Key: k.self.Key})
		require.NoError(t, err)
		o, err := stix.DecodeObject(signed, stix.DefaultLimits)
		require.NoError(t, err)
		return *o
	}
	cases := []struct {
		name   string
		obj    stix.Object
		reason string
	}{
		{"tampered after signing", func() stix.Object {
			var mm map[string]any
			require.NoError(t, json.Unmarshal(good.Raw, &mm))
			mm["confidence"] = 1
			raw, _ := json.Marshal(mm)
			o, err := stix.DecodeObject(raw, stix.DefaultLimits)
			require.NoError(t, err)
			return *o
		}(), ReasonSignature},
		{"signed by an unknown key", resign(x, func(mm map[string]any) { mm["created_by_ref"] = a.self.Identity }), ReasonSignature},
		{"B's key claiming A's identity", resign(b, func(mm map[string]any) { mm["created_by_ref"] = a.self.Identity }), ReasonSignature},
		{"B's own object relayed by A", resign(b, func(mm map[string]any) {
			mm["created_by_ref"] = b.self.Identity
			mm["id"] = "indicator--9f0e8a34-1b2c-4d5e-8f60-123456789abc"
		}), ReasonRelay},
		{"B revoking A's indicator", resign(b, func(mm map[string]any) {
			mm["created_by_ref"] = b.self.Identity
			mm["revoked"] = true
			mm["modified"] = stix.FormatTimestamp(at.Add(time.Minute))
		}), ReasonOwner},
		{"future-dated", resign(a, func(mm map[string]any) { mm["modified"] = stix.FormatTimestamp(at.Add(time.Hour)) }), ReasonFuture},
		{"not an accepted type", resign(a, func(mm map[string]any) {
			mm["type"] = "malware"
			mm["id"] = "malware--9f0e8a34-1b2c-4d5e-8f60-123456789abc"
		}), ReasonType},
		{"an invalid address", resign(a, func(mm map[string]any) {
			mm["id"] = "indicator--1f0e8a34-1b2c-4d5e-8f60-123456789abc"
			mm["pattern"] = "[cryptocurrency-wallet:value = '0x098b716b8aaf21512996dc57eb0615e2383e2fzz']"
		}), ReasonValue},
	}
	// B's object relayed by A needs B's object held first for the owner
	// case: C takes A's good one first.
	out, err := C.svc.Ingest(ctx, "exchange-a", Collection, []stix.Object{*good}, at)
	require.NoError(t, err)
	require.NoError(t, out[0].Err)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			from := "exchange-a"
			if tc.reason == ReasonOwner {
				from = "exchange-b"
			}
			out := C.svc.Accept(ctx, taxii.Caller{Name: from}, Inbox, []stix.Object{tc.obj})
			require.Error(t, out[0].Err)
			require.Equal(t, tc.reason, reason(t, out[0].Err), "%v", out[0].Err)
		})
	}
	// An older version after a newer one is stale; other content under
	// the same modified is a conflict.
	newer := resign(a, func(mm map[string]any) { mm["modified"] = stix.FormatTimestamp(at.Add(2 * time.Second)) })
	c.Advance(3 * time.Second)
	out = C.svc.Accept(ctx, taxii.Caller{Name: "exchange-a"}, Inbox, []stix.Object{newer, *good,
		resign(a, func(mm map[string]any) {
			mm["modified"] = stix.FormatTimestamp(at.Add(2 * time.Second))
			mm["confidence"] = 10
		})})
	require.NoError(t, out[0].Err)
	require.Equal(t, ReasonStale, reason(t, out[1].Err))
	require.Equal(t, ReasonConflict, reason(t, out[2].Err))
	in := C.indicators(t)["partner:exchange-a/"+good.ID]
	require.Equal(t, 80, in.Confidence, "the refused conflict changed nothing")
}
