package intel

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/cordonhq/cordon/internal/address"
	"github.com/cordonhq/cordon/internal/chain"
)

// The TLP marking definitions every STIX producer references by id: TLP
// 1.0 (in the STIX 2.1 specification) and TLP 2.0 (the OASIS common
// objects extension).
var stixTLP = map[string]TLP{
	"marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9": TLPClear, // TLP:WHITE
	"marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da": TLPGreen,
	"marking-definition--f88d31f6-486f-44da-b317-01333bde0b82": TLPAmber,
	"marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed": TLPRed,
	"marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487": TLPClear,
	"marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb": TLPGreen,
	"marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421": TLPAmber,
	"marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003": TLPAmberStrict,
	"marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1": TLPRed,
}

// tlpRank orders markings, to keep the most restrictive of several.
var tlpRank = map[TLP]int{TLPClear: 0, TLPGreen: 1, TLPAmber: 2, TLPAmberStrict: 3, TLPRed: 4}

// STIX indicator_types (open vocabulary) to categories; labels naming a
// category take precedence.
var stixTypes = map[string]string{
	"malicious-activity": CategoryHack, "compromised": CategoryHack, "anonymization": CategoryMixer,
	"anomalous-activity": CategoryOther, "attribution": CategoryOther, "unknown": CategoryOther,
}

type stixObject struct {
	Type           string          `json:"type"`
	ID             string          `json:"id"`
	SpecVersion    string          `json:"spec_version"`
	Created        time.Time       `json:"created"`
	Modified       time.Time       `json:"modified"`
	CreatedByRef   string          `json:"created_by_ref"`
	Name           string          `json:"name"`
	Description    string          `json:"description"`
	Pattern        string          `json:"pattern"`
	PatternType    string          `json:"pattern_type"`
	ValidFrom      time.Time       `json:"valid_from"`
	ValidUntil     time.Time       `json:"valid_until"`
	Revoked        bool            `json:"revoked"`
	Confidence     *int            `json:"confidence"`
	Labels         []string        `json:"labels"`
	IndicatorTypes []string        `json:"indicator_types"`
	MarkingRefs    []string        `json:"object_marking_refs"`
	ExternalRefs   []Ref           `json:"external_references"`
	Value          string          `json:"value"`
	DefinitionType string          `json:"definition_type"`
	Definition     json.RawMessage `json:"definition"`
	Extensions     map[string]struct {
		TLP2 string `json:"tlp_2_0"`
	} `json:"extensions"`
}

// ParseSTIX parses a STIX 2.1 bundle: indicator objects whose pattern
// compares cryptocurrency wallet values (OR-ed, or IN a set), and
// cryptocurrency-wallet observables, with revocation, validity,
// confidence, labels and TLP markings. Patterns outside that subset, and
// wallets of other chains, are listed in Skipped by object id; malformed
// objects, patterns and addresses are errors by object id.
func ParseSTIX(content []byte, name, source string, now time.Time) (*Feed, error) {
	col, err := newCollector(name, source, now)
	if err != nil {
		return nil, err
	}
	objs, err := decodeBundle(content, col)
	if err != nil {
		return nil, err
	}
	tlp := map[string]TLP{}
	names := map[string]string{}
	for i := range objs {
		o := &objs[i]
		switch o.Type {
		case "marking-definition":
			var d struct {
				TLP string `json:"tlp"`
			}
			if o.DefinitionType == "tlp" && json.Unmarshal(o.Definition, &d) == nil {
				if t, err := ParseTLP(d.TLP); err == nil {
					tlp[o.ID] = t
				}
			}
			for _, ext := range o.Extensions {
				if t, err := ParseTLP(ext.TLP2); err == nil && ext.TLP2 != "" {
					tlp[o.ID] = t
				}
			}
		case "identity":
			names[o.ID] = o.Name
		}
	}
	for i := range objs {
		o := &objs[i]
		where := "object " + o.ID
		switch o.Type {
		case "indicator":
			if o.PatternType != "" && o.PatternType != "stix" {
				col.feed.Skipped = append(col.feed.Skipped, fmt.Sprintf("%s: pattern_type %s", where, o.PatternType))
				continue
			}
			pat, err := parsePattern(o.Pattern)
			if err != nil {
				if !col.problem(where, fmt.Errorf("pattern: %w", err)) {
					return nil, col.problems
				}
				continue
			}
			values, err := walletValues(pat)
			if err != nil {
				col.feed.Skipped = append(col.feed.Skipped, fmt.Sprintf("%s: unsupported pattern (%v)", where, err))
				continue
			}
			if o.ValidFrom.IsZero() {
				col.problem(where, errors.New("valid_from is required"))
				continue
			}
			for _, v := range values {
				col.stixIndicator(o, v, len(values) == 1, tlp, names)
			}
		case "cryptocurrency-wallet":
			if o.ValidFrom.IsZero() {
				o.ValidFrom = o.Created
			}
			col.stixIndicator(o, o.Value, false, tlp, names)
		}
		if len(col.problems) >= maxProblems {
			return nil, col.problems
		}
	}
	if len(col.problems) == 0 && len(col.feed.Indicators) == 0 && len(col.feed.Skipped) == 0 {
		return nil, ErrEmpty
	}
	if len(col.problems) == 0 && len(col.feed.Indicators) == 0 {
		return nil, fmt.Errorf("%w (everything in it was skipped: %s)", ErrEmpty, strings.Join(col.feed.Skipped[:min(3, len(col.feed.Skipped))], "; "))
	}
	return col.done(content)
}

// walletChain says which chain a wallet value is on: 0x… is Ethereum
// (and must be valid), something shaped like a Bitcoin address must be a
// valid one; anything else is another chain's.
func walletChain(v string) (chain.Chain, bool) {
	v = strings.TrimSpace(v)
	switch {
	case strings.HasPrefix(v, "0x") || strings.HasPrefix(v, "0X"):
		return chain.ETH, true
	case strings.HasPrefix(strings.ToLower(v), "bc1"):
		return chain.BTC, true
	case len(v) >= 26 && len(v) <= 35 && (v[0] == '1' || v[0] == '3'):
		if _, err := address.Normalize(chain.BTC, "mainnet", v); err == nil || !isTron(v) {
			return chain.BTC, true
		}
	}
	return "", false
}

func (c *collector) stixIndicator(o *stixObject, value string, single bool, tlps map[string]TLP, names map[string]string) {
	where := "object " + o.ID
	ch, ok := walletChain(value)
	if !ok {
		c.feed.Skipped = append(c.feed.Skipped, fmt.Sprintf("%s: %q is not a Bitcoin or Ethereum address; not matched", where, value))
		return
	}
	// The producer's identity is informational: the feed's source is the
	// importer's, and its id names only this feed's indicator (Key).
	in := Indicator{Kind: KindAddress, Chain: ch, Network: "mainnet", Value: value, Creator: sanitizeSource(names[o.CreatedByRef]),
		Confidence: 50, TLP: TLPAmber, ValidFrom: o.ValidFrom, ValidUntil: o.ValidUntil, Revoked: o.Revoked,
		Created: o.Created, Modified: o.Modified, Description: o.Description, Refs: o.ExternalRefs}
	if len(in.Description) > 4096 {
		in.Description = in.Description[:4093] + "..."
	}
	if o.Confidence != nil {
		in.Confidence = *o.Confidence
	}
	marked := false
	for _, ref := range o.MarkingRefs {
		t, ok := stixTLP[ref]
		if !ok {
			t, ok = tlps[ref]
		}
		if ok && (!marked || tlpRank[t] > tlpRank[in.TLP]) {
			in.TLP, marked = t, true
		}
	}
	for _, it := range o.IndicatorTypes {
		if cat, ok := stixTypes[it]; ok && in.Category == "" {
			in.Category = cat
		}
	}
	for _, l := range o.Labels {
		if _, known := severity[strings.ToLower(l)]; known {
			in.Category = strings.ToLower(l)
		}
	}
	if len(in.Refs) > 32 {
		in.Refs = in.Refs[:32]
	}
	in.Refs = append(in.Refs[:len(in.Refs):len(in.Refs)], Ref{SourceName: "stix", ExternalID: o.ID})
	if len(in.Refs) > 32 {
		in.Refs = in.Refs[1:]
	}
	norm, err := NormalizeValue(KindAddress, ch, "mainnet", value)
	if err != nil {
		c.problem(where, err)
		return
	}
	in.Value = norm
	if single && o.Type == "indicator" {
		in.ID = o.ID
	} else {
		in.ID = ID(c.feed.Source+"|"+o.ID, ch, KindAddress, norm)
	}
	c.add(where, in)
}

// sanitizeSource makes a producer's name a valid source: disallowed
// characters become '-', at most 64 characters.
func sanitizeSource(s string) string {
	b := []byte(strings.TrimSpace(s))
	for i, c := range b {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(" ._:/@-", c) >= 0
		if !ok {
			b[i] = '-'
		}
	}
	out := strings.TrimLeft(string(b), " ._:/@-")
	if len(out) > 64 {
		out = out[:64]
	}
	return out
}

// decodeBundle reads a bundle's objects in one pass (a bundle of a million
// indicators is hundreds of MB). Objects that do not decode, or whose id
// is malformed, are problems of col and come back with an empty type.
func decodeBundle(content []byte, col *collector) ([]stixObject, error) {
	dec := json.NewDecoder(bytes.NewReader(content))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("STIX bundle: not a JSON object: %w", errOr(err))
	}
	var typ string
	var objs []stixObject
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("STIX bundle: %w", err)
		}
		key, _ := tok.(string)
		switch key {
		case "type":
			if err := dec.Decode(&typ); err != nil {
				return nil, fmt.Errorf("STIX bundle: type: %w", err)
			}
		case "objects":
			if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
				return nil, fmt.Errorf("STIX bundle: objects: not an array: %w", errOr(err))
			}
			var raws []json.RawMessage
			for i := 0; dec.More(); i++ {
				var raw json.RawMessage
				if err := dec.Decode(&raw); err != nil {
					return nil, fmt.Errorf("STIX bundle: object %d: %w", i, err)
				}
				raws = append(raws, raw)
			}
			objs = decodeObjects(raws, col)
			if len(col.problems) >= maxProblems {
				return nil, col.problems
			}
			if _, err := dec.Token(); err != nil {
				return nil, fmt.Errorf("STIX bundle: objects: %w", err)
			}
		default:
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil, fmt.Errorf("STIX bundle: %s: %w", key, err)
			}
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("STIX bundle: %w", err)
	}
	if dec.More() {
		return nil, errors.New("STIX bundle: data after the bundle")
	}
	if typ != "bundle" {
		return nil, fmt.Errorf("STIX bundle: type %q, want bundle", typ)
	}
	return objs, nil
}

// decodeObjects decodes the objects on every core, in order; an object
// that does not decode, or has a malformed id, is a problem and comes
// back with an empty type.
func decodeObjects(raws []json.RawMessage, col *collector) []stixObject {
	objs := make([]stixObject, len(raws))
	errs := make([]error, len(raws))
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(raws); i += workers {
				o := &objs[i]
				if err := json.Unmarshal(raws[i], o); err != nil {
					errs[i] = err
				} else if !isObjectID(o.ID) {
					errs[i] = fmt.Errorf("id %q: want type--uuid", o.ID)
				}
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			objs[i].Type = ""
			if !col.problem(fmt.Sprintf("object %d", i), err) {
				break
			}
		}
	}
	return objs
}

// errOr is err, or an error saying the token was the wrong one.
func errOr(err error) error {
	if err == nil {
		return errors.New("unexpected token")
	}
	return err
}
