package stix

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cordonhq/cordon/intel"
	"github.com/cordonhq/cordon/internal/jcs"
)

// MaxSightingCount is the largest count STIX 2.1 allows a sighting.
const MaxSightingCount = 999999999

// sightingObject is cordon's STIX form of a sighting: count is its only
// JSON number.
type sightingObject struct {
	Type             string   `json:"type"`
	SpecVersion      string   `json:"spec_version"`
	ID               string   `json:"id"`
	Created          string   `json:"created"`
	Modified         string   `json:"modified"`
	CreatedByRef     string   `json:"created_by_ref"`
	Description      string   `json:"description,omitempty"`
	SightingOfRef    string   `json:"sighting_of_ref"`
	FirstSeen        string   `json:"first_seen"`
	LastSeen         string   `json:"last_seen"`
	Count            int      `json:"count"`
	WhereSightedRefs []string `json:"where_sighted_refs"`
	MarkingRefs      []string `json:"object_marking_refs"`
}

// Sighting writes an unsigned STIX 2.1 sighting, id (sighting--uuid), of
// the indicator indicatorID by identity (created_by_ref, and where it
// was sighted): seen count times at seen (first_seen, last_seen, and
// created and modified: the object is made when the match is), marked
// tlp, where the matching place in words (description, optional). seen
// is in milliseconds (an error otherwise) and count 0 to
// MaxSightingCount. The caller signs it with Sign.
func Sighting(indicatorID, identity string, seen time.Time, count int, where string, tlp intel.TLP, id string) ([]byte, error) {
	if !ValidID(id) || !strings.HasPrefix(id, "sighting--") {
		return nil, fmt.Errorf("sighting %q: id: want sighting--<uuid>", id)
	}
	o, err := sighting(indicatorID, identity, seen, count, where, tlp)
	if err != nil {
		return nil, fmt.Errorf("sighting %s: %w", id, err)
	}
	o.ID = id
	return jcs.Marshal(o)
}

func sighting(indicatorID, identity string, seen time.Time, count int, where string, tlp intel.TLP) (*sightingObject, error) {
	if !ValidID(indicatorID) || !strings.HasPrefix(indicatorID, "indicator--") {
		return nil, fmt.Errorf("sighting_of_ref %q: want indicator--<uuid>", indicatorID)
	}
	if !ValidID(identity) || !strings.HasPrefix(identity, "identity--") {
		return nil, fmt.Errorf("identity %q: want identity--<uuid>", identity)
	}
	if err := msTime("seen", seen); err != nil {
		return nil, err
	}
	if count < 0 || count > MaxSightingCount {
		return nil, fmt.Errorf("count %d: want 0-%d", count, MaxSightingCount)
	}
	if len(where) > 4096 || !utf8.ValidString(where) {
		return nil, errors.New("where: at most 4 KiB of UTF-8")
	}
	marking, err := markingID(tlp)
	if err != nil {
		return nil, err
	}
	ts := FormatTimestamp(seen)
	return &sightingObject{
		Type: "sighting", SpecVersion: "2.1", Created: ts, Modified: ts, CreatedByRef: identity,
		Description: where, SightingOfRef: indicatorID, FirstSeen: ts, LastSeen: ts, Count: count,
		WhereSightedRefs: []string{identity}, MarkingRefs: []string{marking},
	}, nil
}
