package stix

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cordonhq/cordon/intel"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/jcs"
)

// Errors of FromIndicator, ToIndicators and Revoke.
var (
	// ErrUnsupportedKind: only address and contract indicators have a
	// STIX form intel reads back (its patterns name wallet values);
	// transactions are not shared.
	ErrUnsupportedKind = errors.New("indicator kind has no STIX form")
	// ErrChainMismatch: x_cordon_chain names another chain than the
	// value's shape (0x… is Ethereum, anything else Bitcoin).
	ErrChainMismatch = errors.New("x_cordon_chain disagrees with the value")
	// ErrRevoked: a revoked object has no later versions.
	ErrRevoked = errors.New("object already revoked")
)

// Options are how FromIndicator writes an indicator.
type Options struct {
	// Urgent asks partners to apply the indicator at once
	// (x_cordon_urgent: true).
	Urgent bool
}

// tlpMarking are the TLP 2.0 marking-definition ids, the same intel
// reads (its table also has the TLP 1.0 ids, which cordon never writes).
var tlpMarking = map[intel.TLP]string{
	intel.TLPClear:       "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
	intel.TLPGreen:       "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
	intel.TLPAmber:       "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
	intel.TLPAmberStrict: "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
	intel.TLPRed:         "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}

// markingID is the marking-definition id of t; an empty or unknown
// marking is an error (an unmarked object would be shared as clear).
func markingID(t intel.TLP) (string, error) {
	id, ok := tlpMarking[t]
	if !ok {
		return "", fmt.Errorf("TLP %q: want clear, green, amber, amber+strict or red", t)
	}
	return id, nil
}

// indicatorObject is cordon's STIX form of an indicator. Its only JSON
// number is confidence.
type indicatorObject struct {
	Type           string      `json:"type"`
	SpecVersion    string      `json:"spec_version"`
	ID             string      `json:"id"`
	Created        string      `json:"created"`
	Modified       string      `json:"modified"`
	CreatedByRef   string      `json:"created_by_ref"`
	Description    string      `json:"description,omitempty"`
	Pattern        string      `json:"pattern"`
	PatternType    string      `json:"pattern_type"`
	ValidFrom      string      `json:"valid_from"`
	ValidUntil     string      `json:"valid_until,omitempty"`
	Revoked        bool        `json:"revoked,omitempty"`
	Confidence     int         `json:"confidence"`
	Labels         []string    `json:"labels"`
	IndicatorTypes []string    `json:"indicator_types"`
	ExternalRefs   []intel.Ref `json:"external_references,omitempty"`
	MarkingRefs    []string    `json:"object_marking_refs"`
	Chain          string      `json:"x_cordon_chain"`
	Network        string      `json:"x_cordon_network"`
	Kind           string      `json:"x_cordon_kind"`
	Urgent         bool        `json:"x_cordon_urgent,omitempty"`
}

// valueRE is what a normalized address looks like; it needs no quoting
// in a pattern.
var valueRE = regexp.MustCompile(`^[0-9A-Za-z]{1,100}$`)

// patternRE is the one pattern cordon writes, the comparison intel's
// walletValues reads.
var patternRE = regexp.MustCompile(`^\[cryptocurrency-wallet:value = '([0-9A-Za-z]{1,100})'\]$`)

func walletPattern(v string) string { return "[cryptocurrency-wallet:value = '" + v + "']" }

// hashPatternRE is the pattern of a hashed indicator (privacy mode): a
// custom object type, so that no STIX consumer takes the hash for an
// address.
var hashPatternRE = regexp.MustCompile(`^\[x-cordon-address-hash:value = '([0-9a-f]{64})'\]$`)

func hashPattern(v string) string { return "[x-cordon-address-hash:value = '" + v + "']" }

// patternOf is the pattern of a value of kind.
func patternOf(kind intel.Kind, v string) string {
	if kind == intel.KindAddressHash {
		return hashPattern(v)
	}
	return walletPattern(v)
}

// networkRE is a network's name: mainnet, devnet, sepolia, regtest…
var networkRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)

// msTime refuses a zero time, one outside the years a STIX timestamp
// writes, and one finer than a millisecond, which FormatTimestamp would
// truncate.
func msTime(name string, t time.Time) error {
	switch {
	case t.IsZero():
		return fmt.Errorf("%s is required", name)
	case t.UTC().Year() < 1 || t.UTC().Year() > 9999:
		return fmt.Errorf("%s %s: outside the years 1-9999", name, t.UTC().Format(time.RFC3339))
	case t.Nanosecond()%int(time.Millisecond) != 0:
		return fmt.Errorf("%s %s: finer than a millisecond (truncate it: STIX timestamps are written in milliseconds)",
			name, t.UTC().Format(time.RFC3339Nano))
	}
	return nil
}

// indicatorType is the STIX indicator_types value for a category, the
// one intel maps back to it where it has one: anonymization for mixers,
// malicious-activity for the other known categories, unknown for other
// and categories intel does not know.
func indicatorType(category string) string {
	switch {
	case category == intel.CategoryMixer:
		return "anonymization"
	case intel.Severity(category) > intel.Severity(intel.CategoryOther):
		return "malicious-activity"
	}
	return "unknown"
}

// FromIndicator writes in as cordon's STIX 2.1 indicator object, created
// by identity, unsigned (the caller signs it with Sign), in its RFC 8785
// form. The pattern is [cryptocurrency-wallet:value = 'VALUE'], the
// value normalized; chain, network and kind are the extension
// properties x_cordon_chain, x_cordon_network and x_cordon_kind, so that
// ToIndicators reads them back off mainnet too. Only address and
// contract indicators have this form (ErrUnsupportedKind otherwise).
//
// Times are written in milliseconds and must be given so (an error
// otherwise: the caller truncates): a version is told from the next by
// its modified, so each new version of an indicator must have a
// modified strictly later, at millisecond precision, than the last.
// The marking is the TLP 2.0 marking definition of in.TLP (required);
// a reference {"source_name":"stix","external_id":in.ID}, which intel
// adds on reading, is left out. Source, Feed and Creator are the
// reader's and are not written.
func FromIndicator(in *intel.Indicator, identity string, opts Options) ([]byte, error) {
	o, err := fromIndicator(in, identity, opts)
	if err != nil {
		return nil, fmt.Errorf("STIX form of indicator %s: %w", in.ID, err)
	}
	return jcs.Marshal(o)
}

func fromIndicator(in *intel.Indicator, identity string, opts Options) (*indicatorObject, error) {
	if !ValidID(in.ID) || !strings.HasPrefix(in.ID, "indicator--") {
		return nil, errors.New("id: want indicator--<uuid>")
	}
	if !ValidID(identity) || !strings.HasPrefix(identity, "identity--") {
		return nil, fmt.Errorf("identity %q: want identity--<uuid>", identity)
	}
	kind := in.Kind
	if kind == "" {
		kind = intel.KindAddress
	}
	if kind != intel.KindAddress && kind != intel.KindContract && kind != intel.KindAddressHash {
		return nil, fmt.Errorf("%w: %s (intel reads wallet values only)", ErrUnsupportedKind, kind)
	}
	if in.Chain != chain.ETH && in.Chain != chain.BTC {
		return nil, fmt.Errorf("chain %q: want eth or btc", in.Chain)
	}
	if !networkRE.MatchString(in.Network) {
		return nil, fmt.Errorf("network %q: want a name such as mainnet (lowercase letters, digits and -)", in.Network)
	}
	v, err := intel.NormalizeValue(kind, in.Chain, in.Network, in.Value)
	if err != nil {
		return nil, fmt.Errorf("value on %s %s: %w", in.Chain, in.Network, err)
	}
	if !valueRE.MatchString(v) {
		return nil, fmt.Errorf("value %q: not writable in a pattern", v)
	}
	marking, err := markingID(in.TLP)
	if err != nil {
		return nil, err
	}
	for _, t := range []struct {
		name string
		t    time.Time
	}{{"created", in.Created}, {"modified", in.Modified}, {"valid_from", in.ValidFrom}} {
		if err := msTime(t.name, t.t); err != nil {
			return nil, err
		}
	}
	if in.Modified.Before(in.Created) {
		return nil, fmt.Errorf("modified %s is before created %s", FormatTimestamp(in.Modified), FormatTimestamp(in.Created))
	}
	o := &indicatorObject{
		Type: "indicator", SpecVersion: "2.1", ID: in.ID, CreatedByRef: identity,
		Created: FormatTimestamp(in.Created), Modified: FormatTimestamp(in.Modified),
		Pattern: patternOf(kind, v), PatternType: "stix", ValidFrom: FormatTimestamp(in.ValidFrom),
		Revoked: in.Revoked, Confidence: in.Confidence, MarkingRefs: []string{marking},
		Chain: string(in.Chain), Network: in.Network, Kind: string(kind), Urgent: opts.Urgent,
	}
	if !in.ValidUntil.IsZero() {
		if err := msTime("valid_until", in.ValidUntil); err != nil {
			return nil, err
		}
		if !in.ValidUntil.After(in.ValidFrom) {
			return nil, fmt.Errorf("valid_until %s is not after valid_from %s", FormatTimestamp(in.ValidUntil), o.ValidFrom)
		}
		o.ValidUntil = FormatTimestamp(in.ValidUntil)
	}
	if in.Confidence < 0 || in.Confidence > 100 {
		return nil, fmt.Errorf("confidence %d: want 0-100", in.Confidence)
	}
	cat := strings.ToLower(strings.TrimSpace(in.Category))
	if cat == "" {
		cat = intel.CategoryOther
	}
	if len(cat) > 40 || !utf8.ValidString(cat) {
		return nil, fmt.Errorf("category %q: at most 40 characters of UTF-8", cat)
	}
	o.Labels, o.IndicatorTypes = []string{cat}, []string{indicatorType(cat)}
	if len(in.Description) > 4096 || !utf8.ValidString(in.Description) {
		return nil, errors.New("description: at most 4 KiB of UTF-8")
	}
	o.Description = in.Description
	for _, r := range in.Refs {
		if r.SourceName == "stix" && r.ExternalID == in.ID && r.URL == "" {
			continue
		}
		if r.SourceName == "" || !utf8.ValidString(r.SourceName+r.URL+r.ExternalID) {
			return nil, fmt.Errorf("external reference %+v: want a source_name, all UTF-8", r)
		}
		o.ExternalRefs = append(o.ExternalRefs, r)
	}
	// intel keeps 32 references, its own "stix" one among them.
	if len(o.ExternalRefs) > 31 {
		return nil, fmt.Errorf("%d external references: at most 31", len(o.ExternalRefs))
	}
	return o, nil
}

// cordonProps are the members ToIndicators reads itself.
type cordonProps struct {
	Chain   *string  `json:"x_cordon_chain"`
	Network *string  `json:"x_cordon_network"`
	Kind    *string  `json:"x_cordon_kind"`
	Pattern string   `json:"pattern"`
	Labels  []string `json:"labels"`
}

// ToIndicators reads a decoded indicator object (already verified and
// checked by the caller) for feed, published by source. An object of
// cordon's form (x_cordon_chain, x_cordon_network and x_cordon_kind, all
// three) is read by intel.IndicatorsFromSTIX for everything but the
// value, which is the pattern's, of the chain and network the
// properties name and valid there: a value of another chain's shape is
// ErrChainMismatch, one invalid on the network an error naming it. Its
// category is its one label, even one intel does not know. Other
// producers' objects are read by intel.IndicatorsFromSTIX as they are
// (mainnet, the chain told by the address's shape).
func ToIndicators(o *Object, feed, source string, now time.Time) ([]intel.Indicator, error) {
	if o.Type != "indicator" {
		return nil, fmt.Errorf("object %s: type %s, want indicator", o.ID, o.Type)
	}
	var p cordonProps
	if err := json.Unmarshal(o.Raw, &p); err != nil {
		return nil, fmt.Errorf("object %s: %w: %w", o.ID, ErrMalformed, err)
	}
	if p.Chain == nil && p.Network == nil && p.Kind == nil {
		ins, _, err := intel.IndicatorsFromSTIX(o.Raw, feed, source, now)
		return ins, err
	}
	in, err := cordonIndicator(o, &p, feed, source, now)
	if err != nil {
		return nil, fmt.Errorf("object %s: %w", o.ID, err)
	}
	return []intel.Indicator{*in}, nil
}

// standIn is a valid mainnet address per chain: what intel reads in
// place of an address of another network, which it would not take.
var standIn = map[chain.Chain]string{
	chain.ETH: "0x0000000000000000000000000000000000000001",
	chain.BTC: "1BitcoinEaterAddressDontSendf59kuE",
}

func cordonIndicator(o *Object, p *cordonProps, feed, source string, now time.Time) (*intel.Indicator, error) {
	if p.Chain == nil || p.Network == nil || p.Kind == nil {
		return nil, fmt.Errorf("%w: x_cordon_chain, x_cordon_network and x_cordon_kind go together", ErrMalformed)
	}
	c, network, kind := chain.Chain(*p.Chain), *p.Network, intel.Kind(*p.Kind)
	if c != chain.ETH && c != chain.BTC {
		return nil, fmt.Errorf("%w: x_cordon_chain %q: want eth or btc", ErrMalformed, c)
	}
	if !networkRE.MatchString(network) {
		return nil, fmt.Errorf("%w: x_cordon_network %q", ErrMalformed, network)
	}
	if kind == intel.KindAddressHash {
		return hashedIndicator(o, p, c, network, feed, source, now)
	}
	if kind != intel.KindAddress && kind != intel.KindContract {
		return nil, fmt.Errorf("%w: x_cordon_kind %q", ErrUnsupportedKind, kind)
	}
	m := patternRE.FindStringSubmatch(p.Pattern)
	if m == nil {
		return nil, fmt.Errorf("%w: pattern %q: cordon's form is %s", ErrMalformed, p.Pattern, walletPattern("VALUE"))
	}
	value := m[1]
	shape := chain.BTC
	if strings.HasPrefix(value, "0x") || strings.HasPrefix(value, "0X") {
		shape = chain.ETH
	}
	if shape != c {
		return nil, fmt.Errorf("%w: x_cordon_chain %s, and %s is shaped as a %s address", ErrChainMismatch, c, value, shape)
	}
	norm, err := intel.NormalizeValue(kind, c, network, value)
	if err != nil {
		return nil, fmt.Errorf("value on %s %s (x_cordon_network): %w", c, network, err)
	}
	raw := o.Raw
	if c == chain.BTC && network != "mainnet" {
		// intel takes Bitcoin addresses on mainnet only; it reads the
		// rest of the object around a stand-in.
		var all map[string]json.RawMessage
		if err := json.Unmarshal(o.Raw, &all); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		all["pattern"], _ = json.Marshal(walletPattern(standIn[c]))
		if raw, err = json.Marshal(all); err != nil {
			return nil, err
		}
	}
	ins, _, err := intel.IndicatorsFromSTIX(raw, feed, source, now)
	if err != nil {
		return nil, err
	}
	if len(ins) != 1 {
		return nil, fmt.Errorf("%d indicators from one wallet value", len(ins))
	}
	in := ins[0]
	in.Kind, in.Chain, in.Network, in.Value = kind, c, network, norm
	if len(p.Labels) == 1 {
		in.Category = p.Labels[0]
	}
	if err := in.Validate(); err != nil {
		return nil, err
	}
	return &in, nil
}

// hashedIndicator reads a hashed indicator (privacy mode): intel reads
// the rest of the object around a stand-in address, and the value is the
// hash.
func hashedIndicator(o *Object, p *cordonProps, c chain.Chain, network, feed, source string, now time.Time) (*intel.Indicator, error) {
	m := hashPatternRE.FindStringSubmatch(p.Pattern)
	if m == nil {
		return nil, fmt.Errorf("%w: pattern %q: a hashed indicator's is %s", ErrMalformed, p.Pattern, hashPattern("64 HEX DIGITS"))
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(o.Raw, &all); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	all["pattern"], _ = json.Marshal(walletPattern(standIn[c]))
	raw, err := json.Marshal(all)
	if err != nil {
		return nil, err
	}
	ins, _, err := intel.IndicatorsFromSTIX(raw, feed, source, now)
	if err != nil {
		return nil, err
	}
	if len(ins) != 1 {
		return nil, fmt.Errorf("%d indicators from one hashed value", len(ins))
	}
	in := ins[0]
	in.Kind, in.Chain, in.Network, in.Value = intel.KindAddressHash, c, network, m[1]
	if len(p.Labels) == 1 {
		in.Category = p.Labels[0]
	}
	if err := in.Validate(); err != nil {
		return nil, err
	}
	return &in, nil
}

// Urgent tells whether o asks to be applied at once (x_cordon_urgent:
// true; anything else is not urgent).
func Urgent(o *Object) bool {
	var p struct {
		Urgent *bool `json:"x_cordon_urgent"`
	}
	return json.Unmarshal(o.Raw, &p) == nil && p.Urgent != nil && *p.Urgent
}

// Revoke returns the next version of the indicator object raw, revoked:
// revoked true, modified the given time (later than the object's, else
// ErrStale; in milliseconds), the signature removed for the caller to
// sign again, in its RFC 8785 form. An object already revoked has no
// next version (ErrRevoked).
func Revoke(raw []byte, modified time.Time) ([]byte, error) {
	o, err := DecodeObject(raw, DefaultLimits)
	if err != nil {
		return nil, fmt.Errorf("revoke: %w", err)
	}
	if o.Type != "indicator" {
		return nil, fmt.Errorf("revoke %s: type %s, want indicator", o.ID, o.Type)
	}
	if err := msTime("modified", modified); err != nil {
		return nil, fmt.Errorf("revoke %s: %w", o.ID, err)
	}
	if !modified.After(o.Modified) {
		return nil, fmt.Errorf("revoke %s: %w: modified %s, and the object's is %s", o.ID, ErrStale, FormatTimestamp(modified), FormatTimestamp(o.Modified))
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("revoke %s: %w: %w", o.ID, ErrMalformed, err)
	}
	if r, ok := m["revoked"]; ok {
		var b bool
		if err := json.Unmarshal(r, &b); err != nil {
			return nil, fmt.Errorf("revoke %s: %w: revoked is not a boolean", o.ID, ErrMalformed)
		}
		if b {
			return nil, fmt.Errorf("revoke %s: %w", o.ID, ErrRevoked)
		}
	}
	delete(m, SignatureProperty)
	m["revoked"] = json.RawMessage("true")
	m["modified"], _ = json.Marshal(FormatTimestamp(modified))
	return jcs.Marshal(m)
}
