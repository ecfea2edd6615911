package intel

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/ingest/kafka/kafkatest"
	"github.com/cordonhq/cordon/internal/chain"
)

// The attacks of issue 13 §3: a feed whose file names another feed's
// indicator ids (feeds choose their ids: CSV id, STIX ids, MISP uuids;
// OFAC's are computable with ID) must not change, move or revoke them.

// otherValue is the i-th Ethereum address no fixture lists.
func otherValue(i int) string { return fmt.Sprintf("0x%040x", 0xdead0000+i) }

// importOFAC imports OFAC's XBT and ETH lists and returns their indicators.
func importOFAC(t *testing.T, ctx context.Context, tp *Topic) []Indicator {
	t.Helper()
	var all []Indicator
	for _, cur := range []string{"XBT", "ETH"} {
		f := ofacFeed(t, cur, 0)
		_, err := Import(ctx, tp, f, ImportOptions{})
		require.NoError(t, err)
		all = append(all, f.Indicators...)
	}
	return all
}

// runStore starts a store on the topic and waits until it caught up.
func runStore(t *testing.T, ctx context.Context, tp *Topic) *Store {
	t.Helper()
	s := NewStore(tp)
	sctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	t.Cleanup(func() { stop(); <-done })
	go func() { defer close(done); _ = s.Run(sctx) }()
	require.Eventually(t, s.Ready, 30*time.Second, 10*time.Millisecond)
	return s
}

// requireAllFlagged checks every OFAC indicator still flags its address
// as sanctions, with OFAC among the sources, in a store rebuilt from the
// topic and in ofac's own count of its indicators.
func requireAllFlagged(t *testing.T, ctx context.Context, tp *Topic, ofac []Indicator) {
	t.Helper()
	s := runStore(t, ctx, tp)
	at := time.Now()
	for _, in := range ofac {
		v := Screen(s.Index, in.Chain, "mainnet", in.Value, at)
		require.Equal(t, "flagged", v.Verdict, "OFAC's %s (%s) is no longer flagged", in.Value, in.ID)
		require.Equal(t, CategorySanctions, v.Category, in.Value)
		sources := []string{}
		for _, m := range v.Matches {
			sources = append(sources, m.Source)
		}
		require.Contains(t, sources, "ofac", in.Value)
	}
	cur, err := Current(ctx, tp)
	require.NoError(t, err)
	st := Summarize(cur, at)
	require.Equal(t, len(ofac), st.BySource["ofac"], "every OFAC indicator is still active")
}

// TestAttackCSVReusesOFACIDs: a partner CSV whose rows carry OFAC
// indicators' ids, other values and revoked=true.
func TestAttackCSVReusesOFACIDs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	tp := topic(t, kafkatest.Brokers(t))
	require.NoError(t, tp.Ensure(ctx))
	ofac := importOFAC(t, ctx, tp)

	var b strings.Builder
	b.WriteString("id,address,chain,category,revoked\n")
	for i, in := range ofac {
		fmt.Fprintf(&b, "%s,%s,eth,other,true\n", in.ID, otherValue(i))
	}
	// The same ids on OFAC's own values, revoked, too.
	b2 := strings.Builder{}
	b2.WriteString("id,address,chain,category,revoked\n")
	for _, in := range ofac {
		fmt.Fprintf(&b2, "%s,%s,%s,other,true\n", in.ID, in.Value, in.Chain)
	}
	for i, csv := range []string{b.String(), b2.String()} {
		f, err := ParseCSV([]byte(csv), fmt.Sprintf("csv:partner-%d", i), "partner-x", "", now)
		require.NoError(t, err)
		// If nobody can be told, nothing is imported.
		_, err = Import(ctx, tp, f, ImportOptions{Alerts: failingAlerter{}})
		require.ErrorContains(t, err, "nothing imported")
		al := &recordingAlerter{}
		res, err := Import(ctx, tp, f, ImportOptions{Alerts: al})
		require.NoError(t, err)
		require.Equal(t, len(ofac), res.SharedIDs)
		others := []string{"ofac:ETH", "ofac:XBT"}
		if i == 1 {
			others = append([]string{"csv:partner-0"}, others...)
		}
		require.Equal(t, others, res.OtherFeeds)
		require.Len(t, al.alerts, 1)
		a := al.alerts[0]
		require.Equal(t, "intel_shared_ids", a.Type)
		require.Equal(t, f.Name, a.Details["feed"])
		require.Equal(t, strings.Join(others, ","), a.Details["other_feeds"])
		require.Equal(t, fmt.Sprint(len(ofac)), a.Details["shared_ids"])
	}
	requireAllFlagged(t, ctx, tp, ofac)
}

type recordingAlerter struct{ alerts []chain.Alert }

func (r *recordingAlerter) Alert(_ context.Context, a chain.Alert) error {
	r.alerts = append(r.alerts, a)
	return nil
}

type failingAlerter struct{}

func (failingAlerter) Alert(context.Context, chain.Alert) error {
	return errors.New("alerts topic unavailable")
}

// TestAttackSTIXReusesOFACIDs: a STIX bundle whose single-value
// indicators carry OFAC indicators' ids, on other values, revoked.
func TestAttackSTIXReusesOFACIDs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	tp := topic(t, kafkatest.Brokers(t))
	require.NoError(t, tp.Ensure(ctx))
	ofac := importOFAC(t, ctx, tp)

	objs := []map[string]any{{"type": "identity", "spec_version": "2.1", "id": "identity--f431f809-377b-45e0-aa1c-6a4751cae5ff",
		"created": "2025-01-01T00:00:00Z", "modified": "2025-01-01T00:00:00Z", "name": "ofac", "identity_class": "organization"}}
	for i, in := range ofac {
		value := otherValue(i)
		if i%2 == 1 {
			value = in.Value // and on OFAC's own value
		}
		objs = append(objs, map[string]any{"type": "indicator", "spec_version": "2.1", "id": in.ID,
			"created": "2025-01-01T00:00:00Z", "modified": "2030-01-01T00:00:00Z", "valid_from": "2025-01-01T00:00:00Z",
			"created_by_ref": "identity--f431f809-377b-45e0-aa1c-6a4751cae5ff", "revoked": true,
			"pattern_type": "stix", "pattern": "[cryptocurrency-wallet:value = '" + value + "']"})
	}
	bundle, err := json.Marshal(map[string]any{"type": "bundle", "id": "bundle--5d0092c5-5f74-4287-9642-33f4c354e56d", "objects": objs})
	require.NoError(t, err)
	f, err := ParseSTIX(bundle, "stix:isac", "isac", now)
	require.NoError(t, err)
	_, err = Import(ctx, tp, f, ImportOptions{})
	require.NoError(t, err)
	requireAllFlagged(t, ctx, tp, ofac)
}

// TestAttackMISPReusesOFACIDs: a MISP event whose attributes carry OFAC
// indicators' uuids on other addresses (MISP has no revocation: moving
// an id to another value is what would unlist the OFAC address).
func TestAttackMISPReusesOFACIDs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	tp := topic(t, kafkatest.Brokers(t))
	require.NoError(t, tp.Ensure(ctx))
	ofac := importOFAC(t, ctx, tp)

	var attrs []map[string]any
	for i, in := range ofac {
		attrs = append(attrs, map[string]any{"uuid": strings.TrimPrefix(in.ID, "indicator--"), "type": "btc",
			"value": otherValue(i), "to_ids": true, "distribution": "3"})
	}
	const ev = "5e6b8a0c-2f4d-4c8e-9a1b-3c2d1e0f9a8b"
	body, err := json.Marshal(map[string]any{"Event": map[string]any{"uuid": ev, "info": "x", "timestamp": "1740135600",
		"Orgc": map[string]any{"name": "ofac"}, "Attribute": attrs}})
	require.NoError(t, err)
	fsys := fstest.MapFS{"manifest.json": {Data: []byte(`{"` + ev + `": {}}`)}, ev + ".json": {Data: body}}
	f, err := ParseMISP(fsys, "misp:partners", "misp", now)
	require.NoError(t, err)
	_, err = Import(ctx, tp, f, ImportOptions{})
	require.NoError(t, err)
	requireAllFlagged(t, ctx, tp, ofac)
}

// TestRevokingOneListingKeepsTheOthers: two feeds list the same value
// (with the same publisher name, so importers that derive ids give both
// the same id); when one revokes its listing the value stays flagged by
// the other, and the verdict names only the remaining source.
func TestRevokingOneListingKeepsTheOthers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	tp := topic(t, kafkatest.Brokers(t))
	require.NoError(t, tp.Ensure(ctx))
	imp := func(name, source, csv string, shrink bool) {
		f, err := ParseCSV([]byte(csv), name, source, chain.ETH, now)
		require.NoError(t, err)
		_, err = Import(ctx, tp, f, ImportOptions{AllowShrink: shrink})
		require.NoError(t, err)
	}
	for i, same := range []bool{false, true} {
		shared, onlyA := otherValue(2*i), otherValue(2*i+1)
		a, b := "csv:a", "csv:b"
		srcA, srcB := "partner-a", "partner-b"
		if same {
			a, b, srcA, srcB = "csv:a2", "csv:b2", "partner", "partner"
		}
		imp(a, srcA, "address,category\n"+shared+",hack\n"+onlyA+",hack\n", false)
		imp(b, srcB, "address,category\n"+shared+",scam\n", false)

		// a revokes its listing of shared: by a revoked row, then by no
		// longer listing it.
		imp(a, srcA, "address,category,revoked\n"+shared+",hack,true\n"+onlyA+",hack,\n", false)
		s := runStore(t, ctx, tp)
		v := Screen(s.Index, chain.ETH, "mainnet", shared, time.Now())
		require.Equal(t, "flagged", v.Verdict, "same source name: %v", same)
		require.Len(t, v.Matches, 1)
		require.Equal(t, srcB, v.Matches[0].Source)
		require.Equal(t, CategoryScam, v.Category)

		imp(a, srcA, "address,category\n"+onlyA+",hack\n", true)
		s = runStore(t, ctx, tp)
		v = Screen(s.Index, chain.ETH, "mainnet", shared, time.Now())
		require.Equal(t, "flagged", v.Verdict, "same source name: %v", same)
		require.Len(t, v.Matches, 1)
		require.Equal(t, srcB, v.Matches[0].Source)
		require.Equal(t, "flagged", Screen(s.Index, chain.ETH, "mainnet", onlyA, time.Now()).Verdict)
		// What crediting holds money on: one hit, naming b's indicator.
		hits := s.Index.Hits(chain.ETH, "mainnet", shared)
		require.Len(t, hits, 1)
		require.Equal(t, srcB, hits[0].Source)
		require.Equal(t, Key{Feed: b, ID: ID(srcB, chain.ETH, KindAddress, shared)}.String(), hits[0].Indicator)
	}
}

// writeRaw commits records as they are to the topic, bypassing Publish:
// what an earlier cordon wrote, or a forger.
func writeRaw(t *testing.T, ctx context.Context, tp *Topic, recs ...kafka.Record) {
	t.Helper()
	w, err := kafka.NewTxWriter(tp.cfg, "test-raw", tp.name, 0)
	require.NoError(t, err)
	defer w.Close()
	require.NoError(t, w.Commit(ctx, recs))
}

// legacyRecord is in as cordon wrote it before namespacing: keyed by its
// bare id.
func legacyRecord(t *testing.T, in Indicator) kafka.Record {
	t.Helper()
	v, err := json.Marshal(&in)
	require.NoError(t, err)
	return kafka.Record{Key: []byte(in.ID), Value: v}
}

func refusedMetric(t *testing.T, reg *prometheus.Registry, reason string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "cordon_intel_records_refused_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return -1
}

// TestMigrationAndForgedKeys: a topic written before namespacing (keyed
// by bare ids, with the CSV attack already applied) is not matched:
// every such record is refused and counted, and the importer adds the
// feed anew; a record in the old format written afterwards never
// overrides a namespaced one; records whose key names another feed or
// id than their content, or no feed, are refused and counted.
func TestMigrationAndForgedKeys(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	brokers := kafkatest.Brokers(t)
	tp := topic(t, brokers)
	require.NoError(t, tp.Ensure(ctx))

	xbt := ofacFeed(t, "XBT", 0)
	var legacy []kafka.Record
	for _, in := range xbt.Indicators {
		legacy = append(legacy, legacyRecord(t, in))
	}
	// The old attack, as the old importer wrote it: a CSV feed's record
	// under an OFAC id.
	attack := xbt.Indicators[0]
	attack.Feed, attack.Source, attack.Chain, attack.Value, attack.Revoked = "csv:partner", "partner-x", chain.ETH, otherValue(0), true
	legacy = append(legacy, legacyRecord(t, attack))
	writeRaw(t, ctx, tp, legacy...)

	reg := prometheus.NewRegistry()
	fresh := topic(t, brokers)
	require.NoError(t, fresh.Instrument(nil, reg))
	s := runStore(t, ctx, fresh)
	require.Zero(t, s.Index.Len(), "records keyed by bare ids are never applied")
	require.Equal(t, map[string]int64{RefusedLegacyKey: int64(len(legacy))}, fresh.Refused())
	require.Equal(t, float64(len(legacy)), refusedMetric(t, reg, RefusedLegacyKey))

	// Re-importing the feed (docs/intel.md, Migration) adds it anew.
	res, err := Import(ctx, tp, ofacFeed(t, "XBT", 0), ImportOptions{})
	require.NoError(t, err)
	require.Equal(t, len(xbt.Indicators), res.Added)
	requireAllFlagged(t, ctx, tp, xbt.Indicators)

	// Afterwards: an old-format record revoking an OFAC indicator, a
	// legacy tombstone, a record keyed as OFAC's but stating another
	// feed's indicator, one keyed as another feed's stating OFAC's with
	// another value, a tombstone and a record whose keys name no valid
	// feed or id: none changes anything.
	victim := xbt.Indicators[1]
	revoked := victim
	revoked.Revoked = true
	forged := victim
	forged.Feed, forged.Value, forged.Chain, forged.Revoked = "csv:partner", otherValue(1), chain.ETH, true
	forgedValue, err := json.Marshal(&forged)
	require.NoError(t, err)
	moved := victim
	moved.Value, moved.Chain = otherValue(2), chain.ETH
	movedValue, err := json.Marshal(&moved)
	require.NoError(t, err)
	writeRaw(t, ctx, tp,
		legacyRecord(t, revoked),
		kafka.Record{Key: []byte(victim.ID)},
		kafka.Record{Key: []byte(KeyOf(&victim).String()), Value: forgedValue},
		kafka.Record{Key: []byte(Key{Feed: "csv:partner", ID: victim.ID}.String()), Value: movedValue},
		kafka.Record{Key: []byte("ofac:XBT/" + strings.ToUpper(victim.ID))},
		kafka.Record{Key: []byte("ofac/XBT/" + victim.ID), Value: movedValue},
		kafka.Record{Key: []byte(KeyOf(&victim).String()), Value: []byte(`{"id":`)},
	)
	requireAllFlagged(t, ctx, tp, xbt.Indicators)
	reg = prometheus.NewRegistry()
	fresh = topic(t, brokers)
	var logs bytes.Buffer
	require.NoError(t, fresh.Instrument(slog.New(slog.NewTextHandler(&logs, nil)), reg))
	_, err = Current(ctx, fresh)
	require.NoError(t, err)
	require.Contains(t, logs.String(), "reason="+RefusedKeyMismatch)
	require.Contains(t, logs.String(), "reason="+RefusedBadKey)
	require.Contains(t, logs.String(), fmt.Sprintf("re-import every feed once (docs/intel.md, Migration)\" topic=%s refused=%d", fresh.Name(), len(legacy)+2))
	require.Equal(t, map[string]int64{RefusedLegacyKey: int64(len(legacy)) + 2, RefusedKeyMismatch: 2, RefusedBadKey: 2, RefusedInvalid: 1},
		fresh.Refused())
	require.Equal(t, float64(2), refusedMetric(t, reg, RefusedKeyMismatch))
	require.Equal(t, int64(len(legacy))+7, fresh.Bad())

	// And the importer, reading the same topic, still sees OFAC's feed
	// whole: re-importing it changes nothing.
	res, err = Import(ctx, tp, ofacFeed(t, "XBT", 0), ImportOptions{})
	require.NoError(t, err)
	require.Equal(t, len(xbt.Indicators), res.Unchanged)
}
