package intel

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/internal/chain"
)

func TestPatternGrammar(t *testing.T) {
	for _, tc := range []struct {
		pattern string
		values  []string
		why     string // unsupported reason, or "" when supported
		err     string // syntax error
	}{
		{`[cryptocurrency-wallet:value = 'bc1qa']`, []string{"bc1qa"}, "", ""},
		{`[cryptocurrency-wallet:value = 'a' OR cryptocurrency-wallet:value = 'b']`, []string{"a", "b"}, "", ""},
		{`[cryptocurrency-wallet:value IN ('a', 'b','c')]`, []string{"a", "b", "c"}, "", ""},
		{`[cryptocurrency-wallet:value = 'a'] OR ([cryptocurrency-wallet:value = 'b'] OR [cryptocurrency-wallet:value = 'c'])`, []string{"a", "b", "c"}, "", ""},
		{`([cryptocurrency-wallet:value = 'it\'s'])`, []string{"it's"}, "", ""},
		{`[(cryptocurrency-wallet:value = 'a') OR (cryptocurrency-wallet:value = 'b')]`, []string{"a", "b"}, "", ""},
		{`[cryptocurrency-wallet:value = 'a' AND cryptocurrency-wallet:value = 'b']`, nil, "comparisons joined by AND", ""},
		{`[cryptocurrency-wallet:value = 'a'] AND [cryptocurrency-wallet:value = 'b']`, nil, "observations joined by AND", ""},
		{`[cryptocurrency-wallet:value = 'a'] FOLLOWEDBY [cryptocurrency-wallet:value = 'b']`, nil, "observations joined by FOLLOWEDBY", ""},
		// AND binds tighter than OR, OR than FOLLOWEDBY.
		{`[cryptocurrency-wallet:value = 'a'] OR [cryptocurrency-wallet:value = 'b'] AND [cryptocurrency-wallet:value = 'c']`, nil, "observations joined by AND", ""},
		{`[cryptocurrency-wallet:value = 'a'] WITHIN 300 SECONDS`, nil, "WITHIN qualifier", ""},
		{`[cryptocurrency-wallet:value = 'a'] REPEATS 5 TIMES`, nil, "REPEATS qualifier", ""},
		{`[cryptocurrency-wallet:value = 'a'] START t'2016-06-01T00:00:00Z' STOP t'2016-07-01T00:00:00Z'`, nil, "START/STOP qualifier", ""},
		{`[ipv4-addr:value = '198.51.100.1/32']`, nil, "object path ipv4-addr:value", ""},
		{`[file:hashes.'SHA-256' = 'aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f']`, nil, "object path file:hashes.SHA-256", ""},
		{`[network-traffic:extensions.'http-request-ext'.request_header[*] = 'x']`, nil, "object path network-traffic", ""},
		{`[cryptocurrency-wallet:value != 'a']`, nil, "operator !=", ""},
		{`[cryptocurrency-wallet:value NOT IN ('a')]`, nil, "operator NOT IN", ""},
		{`[cryptocurrency-wallet:value LIKE 'bc1%']`, nil, "operator LIKE", ""},
		{`[cryptocurrency-wallet:value MATCHES '^bc1']`, nil, "operator MATCHES", ""},
		{`[EXISTS cryptocurrency-wallet:value]`, nil, "operator EXISTS", ""},
		{`[x-custom:count >= -12.5e3 AND x-custom:flag = true AND x-custom:raw = h'0aff' AND x-custom:b = b'AQID']`, nil, "comparisons joined by AND", ""},
		{`[cryptocurrency-wallet:value = 7]`, nil, "not a string", ""},
		// Syntax errors.
		{`cryptocurrency-wallet:value = 'a'`, nil, "", "expected '[' or '('"},
		{`[cryptocurrency-wallet:value = 'a'`, nil, "", "expected ']'"},
		{`[cryptocurrency-wallet:value = 'a]`, nil, "", "unterminated string"},
		{`[cryptocurrency-wallet:value = 'a\n']`, nil, "", "only \\' and \\\\"},
		{`[cryptocurrency-wallet value = 'a']`, nil, "", "expected ':'"},
		{`[cryptocurrency-wallet:value 'a']`, nil, "", "comparison operator"},
		{`[cryptocurrency-wallet:value = 'a'] OR`, nil, "", "expected '[' or '('"},
		{`[cryptocurrency-wallet:value = 'a'] WITHIN SECONDS`, nil, "", "WITHIN needs a number"},
		{`[cryptocurrency-wallet:value IN ('a',)]`, nil, "", "literal in the set"},
		{`[a:b = 'x'] extra`, nil, "", "after the pattern"},
		{`[a:b ! 'x']`, nil, "", "'!' must be followed"},
		{strings.Repeat("(", 200) + `[a:b = 'x']` + strings.Repeat(")", 200), nil, "", "nested too deeply"},
		{``, nil, "", "expected '[' or '('"},
	} {
		n, err := parsePattern(tc.pattern)
		if tc.err != "" {
			require.ErrorContains(t, err, tc.err, tc.pattern)
			continue
		}
		require.NoError(t, err, tc.pattern)
		vals, err := walletValues(n)
		if tc.why != "" {
			require.ErrorContains(t, err, tc.why, tc.pattern)
			continue
		}
		require.NoError(t, err, tc.pattern)
		require.Equal(t, tc.values, vals, tc.pattern)
	}
}

// A bundle written from the STIX 2.1 specification and OpenCTI's
// cryptocurrency-wallet observable.
const testBundle = `{
  "type": "bundle", "id": "bundle--5d0092c5-5f74-4287-9642-33f4c354e56d",
  "objects": [
    {"type": "identity", "spec_version": "2.1", "id": "identity--f431f809-377b-45e0-aa1c-6a4751cae5ff",
     "created": "2025-02-21T10:00:00.000Z", "modified": "2025-02-21T10:00:00.000Z", "name": "Crypto ISAC (member, tier 1)", "identity_class": "organization"},
    {"type": "marking-definition", "spec_version": "2.1", "id": "marking-definition--0a8e9f6c-7b0c-4c35-9a47-7c2f06b3b1a1",
     "created": "2025-01-01T00:00:00.000Z", "definition_type": "tlp", "definition": {"tlp": "red"}},
    {"type": "indicator", "spec_version": "2.1", "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
     "created": "2025-02-21T11:00:00.000Z", "modified": "2025-02-21T12:00:00.000Z", "created_by_ref": "identity--f431f809-377b-45e0-aa1c-6a4751cae5ff",
     "name": "Exchange hack: thief wallet", "indicator_types": ["malicious-activity"], "confidence": 90,
     "pattern": "[cryptocurrency-wallet:value = '0x47666Fab8bd0Ac7003bce3f5C3585383F09486E2']", "pattern_type": "stix",
     "valid_from": "2025-02-21T11:00:00Z", "object_marking_refs": ["marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"],
     "external_references": [{"source_name": "incident", "url": "https://example.org/incident/1"}]},
    {"type": "indicator", "spec_version": "2.1", "id": "indicator--0c8ed0e1-8a55-4a88-a1f4-4bb0f3d4f8a9",
     "created": "2025-02-21T11:00:00.000Z", "modified": "2025-02-21T11:00:00.000Z",
     "pattern": "[cryptocurrency-wallet:value = 'bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4' OR cryptocurrency-wallet:value = '1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa']",
     "pattern_type": "stix", "valid_from": "2025-02-21T11:00:00Z", "labels": ["ransomware"],
     "object_marking_refs": ["marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da", "marking-definition--0a8e9f6c-7b0c-4c35-9a47-7c2f06b3b1a1"]},
    {"type": "indicator", "spec_version": "2.1", "id": "indicator--1d0c3b4e-5f9b-4f63-8d7c-2b3a4c5d6e7f",
     "created": "2025-01-01T00:00:00.000Z", "modified": "2025-03-01T00:00:00.000Z", "revoked": true,
     "pattern": "[cryptocurrency-wallet:value = '0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed']", "pattern_type": "stix", "valid_from": "2025-01-01T00:00:00Z"},
    {"type": "indicator", "spec_version": "2.1", "id": "indicator--2e1d4c5f-6a0c-4a74-9e8d-3c4b5d6e7f80",
     "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
     "pattern": "[cryptocurrency-wallet:value = '0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359']", "pattern_type": "stix",
     "valid_from": "2024-01-01T00:00:00Z", "valid_until": "2024-06-01T00:00:00Z"},
    {"type": "indicator", "spec_version": "2.1", "id": "indicator--3f2e5d60-7b1d-4b85-8f9e-4d5c6e7f8091",
     "created": "2025-01-01T00:00:00.000Z", "modified": "2025-01-01T00:00:00.000Z",
     "pattern": "[ipv4-addr:value = '198.51.100.1']", "pattern_type": "stix", "valid_from": "2025-01-01T00:00:00Z"},
    {"type": "indicator", "spec_version": "2.1", "id": "indicator--403f6e71-8c2e-4c96-9faf-5e6d7f8091a2",
     "created": "2025-01-01T00:00:00.000Z", "modified": "2025-01-01T00:00:00.000Z",
     "pattern": "title: x", "pattern_type": "sigma", "valid_from": "2025-01-01T00:00:00Z"},
    {"type": "cryptocurrency-wallet", "spec_version": "2.1", "id": "cryptocurrency-wallet--5140af82-9d3f-4da7-a0b0-6f7e8091a2b3",
     "value": "44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2wfn3RVGQBEP3A"},
    {"type": "relationship", "spec_version": "2.1", "id": "relationship--6251b093-ae40-4eb8-b1c1-708091a2b3c4",
     "created": "2025-01-01T00:00:00.000Z", "modified": "2025-01-01T00:00:00.000Z", "relationship_type": "indicates",
     "source_ref": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f", "target_ref": "identity--f431f809-377b-45e0-aa1c-6a4751cae5ff"}
  ]
}`

func TestParseSTIX(t *testing.T) {
	f, err := ParseSTIX([]byte(testBundle), "stix:isac", "fallback-source", now)
	require.NoError(t, err)
	byValue := map[string]Indicator{}
	for _, in := range f.Indicators {
		byValue[in.Value] = in
	}
	require.Len(t, f.Indicators, 5)
	thief := byValue["0x47666fab8bd0ac7003bce3f5c3585383f09486e2"]
	require.Equal(t, "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f", thief.ID, "a single-value indicator keeps its STIX id")
	require.Equal(t, "fallback-source", thief.Source, "the source is the importer's, never the file's")
	require.Equal(t, "Crypto ISAC -member- tier 1-", thief.Creator, "the producer's identity, informational, made a valid name")
	require.Equal(t, "stix:isac", thief.Feed)
	require.Equal(t, CategoryHack, thief.Category)
	require.Equal(t, 90, thief.Confidence)
	require.Equal(t, TLPAmber, thief.TLP)
	require.Equal(t, chain.ETH, thief.Chain)
	require.Equal(t, "https://example.org/incident/1", thief.Refs[0].URL)

	r1, r2 := byValue["bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"], byValue["1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"]
	require.Equal(t, CategoryRansomware, r1.Category, "a label naming a category")
	require.Equal(t, TLPRed, r1.TLP, "the most restrictive of its markings (a bundle-defined TLP:RED)")
	require.NotEqual(t, r1.ID, r2.ID, "values of one indicator get ids of their own")
	require.Equal(t, "indicator--0c8ed0e1-8a55-4a88-a1f4-4bb0f3d4f8a9", r1.Refs[len(r1.Refs)-1].ExternalID)
	require.Equal(t, "fallback-source", r1.Source)

	require.True(t, byValue["0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"].Revoked)
	expired := byValue["0xfb6916095ca1df60bb79ce92ce3ea74c37c5d359"]
	require.False(t, expired.Active(now))

	require.Len(t, f.Skipped, 3)
	require.Contains(t, f.Skipped[0], "indicator--3f2e5d60-7b1d-4b85-8f9e-4d5c6e7f8091: unsupported pattern (object path ipv4-addr:value")
	require.Contains(t, f.Skipped[1], "pattern_type sigma")
	require.Contains(t, f.Skipped[2], "cryptocurrency-wallet--5140af82-9d3f-4da7-a0b0-6f7e8091a2b3")
	require.Contains(t, f.Skipped[2], "not a Bitcoin or Ethereum address")

	// Into a store: revoked and expired ones do not match.
	x := NewIndex()
	for i := range f.Indicators {
		x.Put(&f.Indicators[i])
	}
	at := time.Date(2025, 3, 2, 0, 0, 0, 0, time.UTC)
	require.Equal(t, "flagged", Screen(x, chain.ETH, "mainnet", thief.Value, at).Verdict)
	require.Equal(t, "clean", Screen(x, chain.ETH, "mainnet", "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", at).Verdict)
	require.Equal(t, "clean", Screen(x, chain.ETH, "mainnet", expired.Value, at).Verdict)
	require.Equal(t, "flagged", Screen(x, chain.BTC, "mainnet", "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", at).Verdict)
}

func TestParseSTIXErrors(t *testing.T) {
	var b map[string]any
	require.NoError(t, json.Unmarshal([]byte(testBundle), &b))
	objs := b["objects"].([]any)
	bad := func(mut func(o map[string]any)) string {
		o := map[string]any{}
		raw, _ := json.Marshal(objs[2])
		_ = json.Unmarshal(raw, &o)
		mut(o)
		doc, _ := json.Marshal(map[string]any{"type": "bundle", "id": "bundle--5d0092c5-5f74-4287-9642-33f4c354e56d", "objects": []any{objs[0], o}})
		_, err := ParseSTIX(doc, "x", "s", now)
		require.Error(t, err)
		return err.Error()
	}
	require.Contains(t, bad(func(o map[string]any) { o["pattern"] = "[cryptocurrency-wallet:value = 'x'" }), "object indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f: pattern: ")
	require.Contains(t, bad(func(o map[string]any) {
		o["pattern"] = "[cryptocurrency-wallet:value = '0x47666Fab8bd0Ac7003bce3f5C3585383F09486E3']"
	}), "checksum")
	require.Contains(t, bad(func(o map[string]any) { delete(o, "valid_from") }), "valid_from is required")
	require.Contains(t, bad(func(o map[string]any) { o["id"] = "indicator--nope" }), "want type--uuid")
	require.Contains(t, bad(func(o map[string]any) { o["confidence"] = 150 }), "confidence 150")
	require.Contains(t, bad(func(o map[string]any) { o["valid_from"] = "yesterday" }), "object 1")

	_, err := ParseSTIX([]byte(`{"type":"report"}`), "x", "s", now)
	require.ErrorContains(t, err, `type "report", want bundle`)
	_, err = ParseSTIX([]byte(testBundle[:len(testBundle)/2]), "x", "s", now)
	require.ErrorContains(t, err, "STIX bundle")
	_, err = ParseSTIX([]byte(`{"type":"bundle","objects":[]}`), "x", "s", now)
	require.ErrorIs(t, err, ErrEmpty)
}

// FuzzParsePattern: never panics; a parsed pattern's wallet values come
// only from string literals in it.
func FuzzParsePattern(f *testing.F) {
	f.Add(`[cryptocurrency-wallet:value = 'a' OR cryptocurrency-wallet:value IN ('b', 'c')]`)
	f.Add(`[x:y[*].'z' > 4.5e-3] FOLLOWEDBY ([a:b = t'2020-01-01T00:00:00Z'] REPEATS 2 TIMES) WITHIN 10 SECONDS`)
	f.Add(`[a:b NOT LIKE 'x\'y\\']`)
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parsePattern(s)
		if err != nil {
			return
		}
		vals, err := walletValues(n)
		if err != nil {
			return
		}
		require.NotEmpty(t, vals)
	})
}

// FuzzParseSTIX: hostile bundles never panic; what parses is valid.
func FuzzParseSTIX(f *testing.F) {
	f.Add([]byte(testBundle))
	f.Add([]byte(`{"type":"bundle","objects":[{"type":"indicator","id":"indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		feed, err := ParseSTIX(b, "f", "s", now)
		if err != nil {
			return
		}
		for _, in := range feed.Indicators {
			again := in
			require.NoError(t, again.Validate())
		}
	})
}
