package intel

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// ErrUnsupportedPattern is returned by IndicatorsFromSTIX for an
// indicator whose pattern is outside the subset cordon matches.
var ErrUnsupportedPattern = errors.New("unsupported STIX pattern")

// IndicatorsFromSTIX reads one STIX 2.1 indicator object as ParseSTIX
// reads it in a bundle (pattern, validity, revocation, confidence,
// labels, external references), for feed, published by source — both
// the caller's, never the object's. Markings are read by the standard
// TLP 1.0 and 2.0 marking-definition ids only, and no creator is named.
// Wallet values of chains cordon does not follow are returned in
// skipped; an object that yields no indicator is an error.
func IndicatorsFromSTIX(raw json.RawMessage, feed, source string, now time.Time) (ins []Indicator, skipped []string, err error) {
	col, err := newCollector(feed, source, now)
	if err != nil {
		return nil, nil, err
	}
	var o stixObject
	if err := json.Unmarshal(raw, &o); err != nil {
		return nil, nil, fmt.Errorf("STIX object: %w", err)
	}
	if !isObjectID(o.ID) {
		return nil, nil, fmt.Errorf("STIX object: id %q: want type--uuid", o.ID)
	}
	if o.Type != "indicator" {
		return nil, nil, fmt.Errorf("object %s: type %q, want indicator", o.ID, o.Type)
	}
	if o.PatternType != "" && o.PatternType != "stix" {
		return nil, nil, fmt.Errorf("object %s: %w: pattern_type %s", o.ID, ErrUnsupportedPattern, o.PatternType)
	}
	pat, err := parsePattern(o.Pattern)
	if err != nil {
		return nil, nil, fmt.Errorf("object %s: pattern: %w", o.ID, err)
	}
	values, err := walletValues(pat)
	if err != nil {
		return nil, nil, fmt.Errorf("object %s: %w: %w", o.ID, ErrUnsupportedPattern, err)
	}
	if o.ValidFrom.IsZero() {
		return nil, nil, fmt.Errorf("object %s: valid_from is required", o.ID)
	}
	for _, v := range values {
		col.stixIndicator(&o, v, len(values) == 1, nil, nil)
	}
	if len(col.problems) > 0 {
		return nil, nil, col.problems
	}
	if len(col.feed.Indicators) == 0 {
		return nil, col.feed.Skipped, fmt.Errorf("object %s: %w", o.ID, ErrEmpty)
	}
	return col.feed.Indicators, col.feed.Skipped, nil
}
