package stix

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/intel"
	"github.com/cordonhq/cordon/internal/chain"
)

const (
	publisher = "identity--0b3b3c1e-5d1a-4c55-9a0e-6f1d2b7c8a90"
	convID    = "indicator--3f9a8c12-7b4e-4d21-9c5a-1e2f3a4b5c6d"
	convFeed  = "taxii:partner-a"
	convSrc   = "partner-a"
)

// Address fixtures: OFAC-listed mainnet addresses (shared/data/ofac) and
// addresses of btcd's regtest and simnet parameters made with btcutil.
const (
	ethOFAC    = "0x01e2919679362dFBC9ee1644Ba9C6da6D6245BB1"
	btcOFAC    = "123WBUDmSJv4GctdVEz6Qq6z8nXSKrJ4KX"
	btcOFACSeg = "bc1q05aktddf9ce4p7hh3stgsf253m4vweu7nkhtmw"
)

func btcAddr(t testing.TB, params *chaincfg.Params, segwit bool) string {
	t.Helper()
	h := bytes.Repeat([]byte{0x5a}, 20)
	var a btcutil.Address
	var err error
	if segwit {
		a, err = btcutil.NewAddressWitnessPubKeyHash(h, params)
	} else {
		a, err = btcutil.NewAddressPubKeyHash(h, params)
	}
	require.NoError(t, err)
	return a.EncodeAddress()
}

func generatedKey(t testing.TB) SigningKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	return SigningKey{Identity: publisher, Key: priv}
}

var (
	t0  = time.Date(2026, 11, 30, 8, 15, 30, 123e6, time.UTC)
	now = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
)

func baseIndicator() intel.Indicator {
	return intel.Indicator{
		ID: convID, Kind: intel.KindAddress, Chain: chain.ETH, Network: "mainnet", Value: ethOFAC,
		Category: intel.CategorySanctions, Confidence: 90, TLP: intel.TLPAmber,
		ValidFrom: t0, Created: t0, Modified: t0.Add(time.Hour + 7*time.Millisecond),
		Description: "Lazarus <cash-out> & \"bridge\"\nwallet é 🚀",
	}
}

// publish is what a publisher does: FromIndicator, then Sign.
func publish(t testing.TB, in *intel.Indicator, k SigningKey, opts Options) []byte {
	t.Helper()
	raw, err := FromIndicator(in, k.Identity, opts)
	require.NoError(t, err)
	signed, err := Sign(raw, k)
	require.NoError(t, err)
	return signed
}

// receive is what a partner does: DecodeObject, Verify, Check, then
// ToIndicators.
func receive(t testing.TB, signed []byte, k SigningKey) ([]intel.Indicator, *Object) {
	t.Helper()
	o, err := DecodeObject(signed, DefaultLimits)
	require.NoError(t, err)
	s, err := Verify(signed, ring(k))
	require.NoError(t, err)
	require.Equal(t, publisher, s.Identity)
	require.NoError(t, Check(o, now, MaxSkew))
	ins, err := ToIndicators(o, convFeed, convSrc, now)
	require.NoError(t, err)
	return ins, o
}

func TestFromIndicatorForm(t *testing.T) {
	in := baseIndicator()
	in.ValidUntil = t0.Add(24 * time.Hour)
	in.Refs = []intel.Ref{{SourceName: "ofac", URL: "https://sanctionssearch.ofac.treas.gov/"}}
	raw, err := FromIndicator(&in, publisher, Options{Urgent: true})
	require.NoError(t, err)
	want := `{"confidence":90,"created":"2026-11-30T08:15:30.123Z","created_by_ref":"` + publisher + `",` +
		`"description":"Lazarus <cash-out> & \"bridge\"\nwallet é 🚀",` +
		`"external_references":[{"source_name":"ofac","url":"https://sanctionssearch.ofac.treas.gov/"}],` +
		`"id":"` + convID + `","indicator_types":["malicious-activity"],"labels":["sanctions"],` +
		`"modified":"2026-11-30T09:15:30.130Z","object_marking_refs":["marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"],` +
		`"pattern":"[cryptocurrency-wallet:value = '0x01e2919679362dfbc9ee1644ba9c6da6d6245bb1']","pattern_type":"stix",` +
		`"spec_version":"2.1","type":"indicator","valid_from":"2026-11-30T08:15:30.123Z","valid_until":"2026-12-01T08:15:30.123Z",` +
		`"x_cordon_chain":"eth","x_cordon_kind":"address","x_cordon_network":"mainnet","x_cordon_urgent":true}`
	require.Equal(t, want, string(raw))

	// Not revoked, not urgent: the members are absent, not false.
	in.ValidUntil, in.Refs = time.Time{}, nil
	raw, err = FromIndicator(&in, publisher, Options{})
	require.NoError(t, err)
	for _, absent := range []string{"revoked", "x_cordon_urgent", "valid_until", "external_references"} {
		require.NotContains(t, string(raw), `"`+absent+`"`)
	}
}

// The markings are the ids intel reads: the same TLP comes back from
// intel's own reader, and every marking is distinct.
func TestMarkingsAreIntels(t *testing.T) {
	seen := map[string]bool{}
	for _, tlp := range []intel.TLP{intel.TLPClear, intel.TLPGreen, intel.TLPAmber, intel.TLPAmberStrict, intel.TLPRed} {
		in := baseIndicator()
		in.TLP = tlp
		raw, err := FromIndicator(&in, publisher, Options{})
		require.NoError(t, err)
		ins, _, err := intel.IndicatorsFromSTIX(raw, convFeed, convSrc, now)
		require.NoError(t, err)
		require.Equal(t, tlp, ins[0].TLP)
		id, err := markingID(tlp)
		require.NoError(t, err)
		require.False(t, seen[id])
		seen[id] = true
	}
}

func TestRoundTrip(t *testing.T) {
	k := generatedKey(t)
	type place struct {
		name           string
		chain          chain.Chain
		network        string
		kind           intel.Kind
		value, normal  string
		categoryIntels string // what intel alone reads as the category of "rugpull"
	}
	places := []place{
		{"eth mainnet", chain.ETH, "mainnet", intel.KindAddress, ethOFAC, "0x01e2919679362dfbc9ee1644ba9c6da6d6245bb1", ""},
		{"eth mainnet contract", chain.ETH, "mainnet", intel.KindContract, "0x8589427373D6D84E98730D7795D8f6f8731FDA16", "0x8589427373d6d84e98730d7795d8f6f8731fda16", ""},
		{"eth devnet", chain.ETH, "devnet", intel.KindAddress, "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", ""},
		{"btc mainnet p2pkh", chain.BTC, "mainnet", intel.KindAddress, btcOFAC, btcOFAC, ""},
		{"btc mainnet segwit", chain.BTC, "mainnet", intel.KindAddress, "BC1Q05AKTDDF9CE4P7HH3STGSF253M4VWEU7NKHTMW", btcOFACSeg, ""},
		{"btc regtest segwit", chain.BTC, "regtest", intel.KindAddress, btcAddr(t, &chaincfg.RegressionNetParams, true), btcAddr(t, &chaincfg.RegressionNetParams, true), ""},
		{"btc regtest p2pkh", chain.BTC, "regtest", intel.KindAddress, btcAddr(t, &chaincfg.RegressionNetParams, false), btcAddr(t, &chaincfg.RegressionNetParams, false), ""},
		{"btc simnet segwit", chain.BTC, "simnet", intel.KindAddress, btcAddr(t, &chaincfg.SimNetParams, true), btcAddr(t, &chaincfg.SimNetParams, true), ""},
		{"btc simnet p2pkh", chain.BTC, "simnet", intel.KindAddress, btcAddr(t, &chaincfg.SimNetParams, false), btcAddr(t, &chaincfg.SimNetParams, false), ""},
	}
	require.Regexp(t, `^bcrt1q`, places[5].normal)
	require.Regexp(t, `^sb1q`, places[7].normal)
	tlps := []intel.TLP{intel.TLPClear, intel.TLPGreen, intel.TLPAmber, intel.TLPAmberStrict, intel.TLPRed}
	categories := []string{intel.CategorySanctions, intel.CategoryMixer, intel.CategoryHack, "rugpull", intel.CategoryOther}
	n := 0
	for _, p := range places {
		for i, tlp := range tlps {
			for variant := range 4 {
				in := baseIndicator()
				in.Chain, in.Network, in.Kind, in.Value, in.TLP = p.chain, p.network, p.kind, p.value, tlp
				in.Category = categories[(i+variant)%len(categories)]
				in.Confidence = (i*17 + variant) % 101
				if variant&1 == 1 {
					in.ValidUntil = in.ValidFrom.Add(90 * 24 * time.Hour)
				}
				if variant&2 == 2 {
					in.Revoked = true
					in.Refs = []intel.Ref{{SourceName: "chainabuse", URL: "https://www.chainabuse.com/report/1"}, {SourceName: "case", ExternalID: "INC-42"}}
				}
				name := fmt.Sprintf("%s/%s/%d", p.name, tlp, variant)
				urgent := variant == 3
				signed := publish(t, &in, k, Options{Urgent: urgent})
				got, o := receive(t, signed, k)
				require.Equal(t, urgent, Urgent(o), name)

				want := in
				want.Value, want.Source, want.Feed = p.normal, convSrc, convFeed
				want.Refs = append(append([]intel.Ref(nil), in.Refs...), intel.Ref{SourceName: "stix", ExternalID: convID})
				require.Equal(t, []intel.Indicator{want}, got, name)

				// Written again, the indicator read gives the same bytes: the
				// reference intel adds is not written twice.
				again, err := FromIndicator(&got[0], publisher, Options{Urgent: urgent})
				require.NoError(t, err)
				first, err := FromIndicator(&in, publisher, Options{Urgent: urgent})
				require.NoError(t, err)
				require.Equal(t, string(first), string(again), name)
				n++
			}
		}
	}
	require.Equal(t, len(places)*len(tlps)*4, n)
}

// Without the x_cordon_ properties an object is another producer's and
// intel reads it as it reads any: mainnet, the chain of the address's
// shape. Off mainnet, the properties are what makes it readable at all.
func TestOtherProducers(t *testing.T) {
	strip := func(raw []byte) *Object {
		var m map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(raw, &m))
		for _, p := range []string{"x_cordon_chain", "x_cordon_network", "x_cordon_kind"} {
			delete(m, p)
		}
		b, err := json.Marshal(m)
		require.NoError(t, err)
		o, err := DecodeObject(b, DefaultLimits)
		require.NoError(t, err)
		return o
	}
	in := baseIndicator()
	in.Chain, in.Network, in.Value = chain.BTC, "mainnet", btcOFACSeg
	in.Category = "rugpull"
	raw, err := FromIndicator(&in, publisher, Options{})
	require.NoError(t, err)
	got, err := ToIndicators(strip(raw), convFeed, convSrc, now)
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, chain.BTC, got[0].Chain)
	require.Equal(t, "mainnet", got[0].Network)
	require.Equal(t, intel.CategoryOther, got[0].Category, "intel knows no rugpull: indicator_types unknown")

	in.Network, in.Value = "regtest", btcAddr(t, &chaincfg.RegressionNetParams, true)
	raw, err = FromIndicator(&in, publisher, Options{})
	require.NoError(t, err)
	_, err = ToIndicators(strip(raw), convFeed, convSrc, now)
	require.ErrorIs(t, err, intel.ErrEmpty, "intel alone does not take a regtest address")
}

// edit changes an object of cordon's form and decodes it.
func edit(t testing.TB, raw []byte, set map[string]any) *Object {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m))
	for k, v := range set {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	b, err := json.Marshal(m)
	require.NoError(t, err)
	o, err := DecodeObject(b, DefaultLimits)
	require.NoError(t, err)
	return o
}

func TestToIndicatorsRefuses(t *testing.T) {
	eth := baseIndicator()
	ethRaw, err := FromIndicator(&eth, publisher, Options{})
	require.NoError(t, err)
	btc := baseIndicator()
	btc.Chain, btc.Value = chain.BTC, btcOFAC
	btcRaw, err := FromIndicator(&btc, publisher, Options{})
	require.NoError(t, err)
	regtest := btcAddr(t, &chaincfg.RegressionNetParams, true)
	pat := func(v string) string { return "[cryptocurrency-wallet:value = '" + v + "']" }

	for name, c := range map[string]struct {
		raw     []byte
		set     map[string]any
		is      error
		message string
	}{
		"eth address named btc":         {ethRaw, map[string]any{"x_cordon_chain": "btc"}, ErrChainMismatch, "x_cordon_chain btc"},
		"btc address named eth":         {btcRaw, map[string]any{"x_cordon_chain": "eth"}, ErrChainMismatch, "x_cordon_chain eth"},
		"mainnet address on regtest":    {btcRaw, map[string]any{"x_cordon_network": "regtest"}, nil, "regtest"},
		"regtest address on mainnet":    {btcRaw, map[string]any{"pattern": pat(regtest)}, nil, "btc mainnet"},
		"regtest address on testnet":    {btcRaw, map[string]any{"pattern": pat(regtest), "x_cordon_network": "testnet"}, nil, "testnet"},
		"unknown bitcoin network":       {btcRaw, map[string]any{"x_cordon_network": "nosuchnet"}, nil, "nosuchnet"},
		"bad checksum":                  {btcRaw, map[string]any{"pattern": pat(btcOFAC[:len(btcOFAC)-1] + "Y")}, nil, "btc mainnet"},
		"eth address too short":         {ethRaw, map[string]any{"pattern": pat("0x01e2919679362dfbc9ee1644ba9c6da6d6245b")}, nil, "eth mainnet"},
		"bitcoin contract":              {btcRaw, map[string]any{"x_cordon_kind": "contract"}, nil, "contracts are Ethereum"},
		"transaction kind":              {ethRaw, map[string]any{"x_cordon_kind": "transaction"}, ErrUnsupportedKind, "transaction"},
		"chain without network":         {ethRaw, map[string]any{"x_cordon_network": nil}, ErrMalformed, "go together"},
		"kind alone":                    {ethRaw, map[string]any{"x_cordon_network": nil, "x_cordon_chain": nil}, ErrMalformed, "go together"},
		"other chain":                   {ethRaw, map[string]any{"x_cordon_chain": "sol"}, ErrMalformed, "sol"},
		"network not a name":            {ethRaw, map[string]any{"x_cordon_network": "Main Net"}, ErrMalformed, "Main Net"},
		"chain not a string":            {ethRaw, map[string]any{"x_cordon_chain": true}, ErrMalformed, ""},
		"two values":                    {ethRaw, map[string]any{"pattern": pat(eth.Value) + " OR " + pat("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed")}, ErrMalformed, "cordon's form"},
		"address path":                  {ethRaw, map[string]any{"pattern": "[cryptocurrency-wallet:address = '" + eth.Value + "']"}, ErrMalformed, "cordon's form"},
		"intel's checks still apply":    {ethRaw, map[string]any{"confidence": 101}, nil, "confidence 101"},
		"valid_until before valid_from": {ethRaw, map[string]any{"valid_until": "2026-01-01T00:00:00.000Z"}, nil, "valid_until"},
	} {
		_, err := ToIndicators(edit(t, c.raw, c.set), convFeed, convSrc, now)
		require.Error(t, err, name)
		if c.is != nil {
			require.ErrorIs(t, err, c.is, name)
		}
		require.ErrorContains(t, err, c.message, name)
		require.ErrorContains(t, err, convID, name)
	}
	_, err = ToIndicators(object(t, `{"type":"sighting","spec_version":"2.1","id":"sighting--3f9a8c12-7b4e-4d21-9c5a-1e2f3a4b5c6d","created":"2026-12-01T10:00:00Z"}`), convFeed, convSrc, now)
	require.ErrorContains(t, err, "want indicator")
}

func TestFromIndicatorRefuses(t *testing.T) {
	for name, c := range map[string]struct {
		change  func(*intel.Indicator)
		is      error
		message string
	}{
		"id of another type": {func(in *intel.Indicator) { in.ID = "malware--3f9a8c12-7b4e-4d21-9c5a-1e2f3a4b5c6d" }, nil, "indicator--<uuid>"},
		"derived id missing": {func(in *intel.Indicator) { in.ID = "" }, nil, "indicator--<uuid>"},
		"transaction": {func(in *intel.Indicator) {
			in.Kind = intel.KindTransaction
			in.Value = "0x" + string(bytes.Repeat([]byte("ab"), 32))
		}, ErrUnsupportedKind, "transaction"},
		"modified below a ms":     {func(in *intel.Indicator) { in.Modified = in.Modified.Add(time.Microsecond) }, nil, "modified 2026-11-30T09:15:30.130001Z: finer than a millisecond"},
		"created below a ms":      {func(in *intel.Indicator) { in.Created = in.Created.Add(1) }, nil, "created"},
		"valid_from below a ms":   {func(in *intel.Indicator) { in.ValidFrom = in.ValidFrom.Add(999) }, nil, "valid_from"},
		"valid_until below a ms":  {func(in *intel.Indicator) { in.ValidUntil = in.ValidFrom.Add(time.Hour + 1) }, nil, "valid_until"},
		"valid_until first":       {func(in *intel.Indicator) { in.ValidUntil = in.ValidFrom }, nil, "not after valid_from"},
		"modified before created": {func(in *intel.Indicator) { in.Modified = in.Created.Add(-time.Millisecond) }, nil, "before created"},
		"no modified":             {func(in *intel.Indicator) { in.Modified = time.Time{} }, nil, "modified is required"},
		"no TLP":                  {func(in *intel.Indicator) { in.TLP = "" }, nil, "TLP"},
		"TLP 1.0 name":            {func(in *intel.Indicator) { in.TLP = "white" }, nil, "TLP"},
		"mainnet address regtest": {func(in *intel.Indicator) { in.Chain, in.Network, in.Value = chain.BTC, "regtest", btcOFAC }, nil, "btc regtest"},
		"eth address as btc":      {func(in *intel.Indicator) { in.Chain = chain.BTC }, nil, "btc mainnet"},
		"no network":              {func(in *intel.Indicator) { in.Network = "" }, nil, "network"},
		"other chain":             {func(in *intel.Indicator) { in.Chain = "sol" }, nil, "sol"},
		"confidence":              {func(in *intel.Indicator) { in.Confidence = -1 }, nil, "confidence -1"},
		"category too long":       {func(in *intel.Indicator) { in.Category = string(bytes.Repeat([]byte("x"), 41)) }, nil, "category"},
		"description not UTF-8":   {func(in *intel.Indicator) { in.Description = "\xff" }, nil, "description"},
		"reference unnamed":       {func(in *intel.Indicator) { in.Refs = []intel.Ref{{URL: "https://x"}} }, nil, "source_name"},
		"too many references": {func(in *intel.Indicator) {
			for i := range 32 {
				in.Refs = append(in.Refs, intel.Ref{SourceName: fmt.Sprint("r", i)})
			}
		}, nil, "32 external references"},
	} {
		in := baseIndicator()
		c.change(&in)
		_, err := FromIndicator(&in, publisher, Options{})
		require.Error(t, err, name)
		if c.is != nil {
			require.ErrorIs(t, err, c.is, name)
		}
		require.ErrorContains(t, err, c.message, name)
	}
	in := baseIndicator()
	_, err := FromIndicator(&in, "organization--0b3b3c1e-5d1a-4c55-9a0e-6f1d2b7c8a90", Options{})
	require.ErrorContains(t, err, "identity--<uuid>")
	// 31 references and intel's own make the 32 intel keeps.
	for i := range 31 {
		in.Refs = append(in.Refs, intel.Ref{SourceName: fmt.Sprint("r", i)})
	}
	k := generatedKey(t)
	got, _ := receive(t, publish(t, &in, k, Options{}), k)
	require.Len(t, got[0].Refs, 32)
	require.Equal(t, "r0", got[0].Refs[0].SourceName)
}

func TestRevoke(t *testing.T) {
	k := generatedKey(t)
	in := baseIndicator()
	signed := publish(t, &in, k, Options{Urgent: true})
	held, err := DecodeObject(signed, DefaultLimits)
	require.NoError(t, err)

	later := in.Modified.Add(time.Millisecond)
	next, err := Revoke(signed, later)
	require.NoError(t, err)
	require.NotContains(t, string(next), SignatureProperty)
	_, err = Verify(next, ring(k))
	require.ErrorIs(t, err, ErrUnsigned)
	resigned, err := Sign(next, k)
	require.NoError(t, err)
	got, o := receive(t, resigned, k)
	require.True(t, got[0].Revoked)
	require.Equal(t, later, got[0].Modified)
	require.Equal(t, in.Created, got[0].Created)
	require.True(t, Urgent(o), "the rest of the object is kept")
	take, err := Newer(held, o)
	require.NoError(t, err)
	require.True(t, take, "a partner takes the revocation over the version it holds")
	// Apart from revoked and modified, the next version is the same.
	want := in
	want.Revoked, want.Modified = true, later
	wantRaw, err := FromIndicator(&want, publisher, Options{Urgent: true})
	require.NoError(t, err)
	require.Equal(t, string(wantRaw), string(next))

	_, err = Revoke(signed, in.Modified)
	require.ErrorIs(t, err, ErrStale, "the same modified")
	_, err = Revoke(signed, in.Modified.Add(-time.Hour))
	require.ErrorIs(t, err, ErrStale, "an older modified")
	_, err = Revoke(signed, later.Add(time.Microsecond))
	require.ErrorContains(t, err, "finer than a millisecond")
	_, err = Revoke(resigned, later.Add(time.Second))
	require.ErrorIs(t, err, ErrRevoked)
	_, err = Revoke([]byte(`{"type":"indicator","id":"x"}`), later)
	require.ErrorIs(t, err, ErrMalformed)
	sighting, err := Sighting(convID, publisher, t0, 1, "", intel.TLPGreen, "sighting--3f9a8c12-7b4e-4d21-9c5a-1e2f3a4b5c6d")
	require.NoError(t, err)
	_, err = Revoke(sighting, later)
	require.ErrorContains(t, err, "want indicator")
}

func TestUrgent(t *testing.T) {
	in := baseIndicator()
	for _, c := range []struct {
		set  any
		want bool
	}{{true, true}, {false, false}, {"true", false}, {1, false}, {nil, false}} {
		raw, err := FromIndicator(&in, publisher, Options{})
		require.NoError(t, err)
		require.Equal(t, c.want, Urgent(edit(t, raw, map[string]any{"x_cordon_urgent": c.set})), "%v", c.set)
	}
}

// FuzzToIndicators: a partner's object never panics the reader, and
// what it accepts is one valid indicator on the chain and network the
// object names, which cordon can write again.
func FuzzToIndicators(f *testing.F) {
	in := baseIndicator()
	raw, err := FromIndicator(&in, publisher, Options{Urgent: true})
	require.NoError(f, err)
	f.Add(raw)
	in.Chain, in.Network, in.Value = chain.BTC, "regtest", btcAddr(f, &chaincfg.RegressionNetParams, true)
	raw, err = FromIndicator(&in, publisher, Options{})
	require.NoError(f, err)
	f.Add(raw)
	f.Add([]byte(indicator("2026-12-02T12:00:00.000Z", "other producer")))
	f.Fuzz(func(t *testing.T, raw []byte) {
		o, err := DecodeObject(raw, DefaultLimits)
		if err != nil {
			return
		}
		ins, err := ToIndicators(o, convFeed, convSrc, now)
		if err != nil {
			return
		}
		var p cordonProps
		require.NoError(t, json.Unmarshal(raw, &p))
		if p.Chain != nil {
			require.Len(t, ins, 1)
			require.Equal(t, *p.Chain, string(ins[0].Chain))
			require.Equal(t, *p.Network, ins[0].Network)
		}
		for i := range ins {
			require.NoError(t, ins[i].Validate())
		}
	})
}

// TestHashedIndicatorRoundTrip: a hashed indicator (privacy mode) is
// written with a pattern no STIX consumer takes for an address, and reads
// back as the same hash on the same chain and network.
func TestHashedIndicatorRoundTrip(t *testing.T) {
	at := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	key := bytes.Repeat([]byte{9}, 32)
	for _, c := range []struct {
		chain   chain.Chain
		network string
		addr    string
	}{{chain.ETH, "mainnet", "0x098B716B8Aaf21512996dC57EB0615e2383E2f96"}, {chain.BTC, "mainnet", "12QtD5BFwRsdNsAZY76UVE1xyCGNTojH9h"}} {
		h, err := HashValue(key, c.chain, c.network, c.addr)
		require.NoError(t, err)
		in := intel.Indicator{ID: "indicator--11111111-2222-4333-8444-555555555555", Kind: intel.KindAddressHash, Chain: c.chain, Network: c.network,
			Value: h, Category: "fraud", Confidence: 70, TLP: intel.TLPAmber, ValidFrom: at, Created: at, Modified: at}
		raw, err := FromIndicator(&in, "identity--11111111-1111-4111-8111-111111111111", Options{})
		require.NoError(t, err)
		require.Contains(t, string(raw), `"pattern":"[x-cordon-address-hash:value = '`+h+`']"`)
		require.NotContains(t, strings.ToLower(string(raw)), strings.ToLower(c.addr[2:]), "the address never appears")
		o, err := DecodeObject(raw, DefaultLimits)
		require.NoError(t, err)
		ins, err := ToIndicators(o, "partner:x", "x", at)
		require.NoError(t, err)
		require.Len(t, ins, 1)
		require.Equal(t, intel.KindAddressHash, ins[0].Kind)
		require.Equal(t, h, ins[0].Value)
		require.Equal(t, c.chain, ins[0].Chain)
		require.Equal(t, "fraud", ins[0].Category)
		require.Equal(t, intel.TLPAmber, ins[0].TLP)
		// An index with the alliance key matches the address; without it,
		// nothing.
		x := intel.NewIndex()
		x.Put(&ins[0])
		require.Equal(t, "clean", intel.Screen(x, c.chain, c.network, c.addr, at).Verdict)
		x.SetPrivacyKey(key)
		require.Equal(t, "flagged", intel.Screen(x, c.chain, c.network, c.addr, at).Verdict)
		if c.chain == chain.ETH {
			require.Equal(t, "clean", intel.Screen(x, c.chain, "sepolia", c.addr, at).Verdict, "another network hashes otherwise")
		}
	}
}
