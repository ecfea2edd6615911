package stix

import (
	"bytes"
	"errors"
	"fmt"
	"time"
)

// Errors of Check and Newer.
var (
	ErrNotAccepted = errors.New("object type not accepted")
	ErrFuture      = errors.New("object dated in the future")
	ErrOrder       = errors.New("modified before created")
	ErrStale       = errors.New("not newer than the version held")
	ErrConflict    = errors.New("another object under the same version")
)

// Accepted are the object types a partner may post: indicators (the
// listings), sightings (matches reported back), identities (who signs)
// and marking definitions (TLP and others).
var Accepted = map[string]bool{"indicator": true, "sighting": true, "identity": true, "marking-definition": true}

// MaxSkew is how far in the future an object's created or modified may
// be, for partners' clocks.
const MaxSkew = 5 * time.Minute

// Check refuses a received object whose type is not Accepted, whose
// modified is before its created, or that is dated more than skew after
// now: a future-dated version would outrank every later correction.
func Check(o *Object, now time.Time, skew time.Duration) error {
	switch {
	case !Accepted[o.Type]:
		return fmt.Errorf("object %s: %w: %s (accepted: indicator, sighting, identity, marking-definition)", o.ID, ErrNotAccepted, o.Type)
	case o.Modified.Before(o.Created):
		return fmt.Errorf("object %s: %w: modified %s, created %s", o.ID, ErrOrder, FormatTimestamp(o.Modified), FormatTimestamp(o.Created))
	case o.Created.After(now.Add(skew)) || o.Modified.After(now.Add(skew)):
		return fmt.Errorf("object %s: %w: modified %s, more than %s after %s", o.ID, ErrFuture, FormatTimestamp(o.Modified), skew, FormatTimestamp(now))
	}
	return nil
}

// Newer decides whether got, a received version of the object held
// (nil: none), is to be taken: only a later modified is. The same
// version again is a duplicate (false, nil), and not an error; a
// different object under the same id and modified is a conflict, and an
// earlier modified a replay of an old version (ErrStale). The versions
// are compared by their RFC 8785 bytes without the signature, so two
// signatures of the same content are the same version.
func Newer(held, got *Object) (bool, error) {
	if held == nil {
		return true, nil
	}
	if held.ID != got.ID {
		return false, fmt.Errorf("stix: Newer of %s and %s: not one object", held.ID, got.ID)
	}
	switch c := got.Modified.Compare(held.Modified); {
	case c > 0:
		return true, nil
	case c < 0:
		return false, fmt.Errorf("object %s: %w: modified %s, and %s is held", got.ID, ErrStale, FormatTimestamp(got.Modified), FormatTimestamp(held.Modified))
	}
	a, err := unsigned(held.Raw)
	if err != nil {
		return false, err
	}
	b, err := unsigned(got.Raw)
	if err != nil {
		return false, err
	}
	if !bytes.Equal(a, b) {
		return false, fmt.Errorf("object %s: %w: modified %s holds other content", got.ID, ErrConflict, FormatTimestamp(got.Modified))
	}
	return false, nil
}

// unsigned is raw's RFC 8785 form without its signature property: the
// bytes a signature covers.
func unsigned(raw []byte) ([]byte, error) {
	_, _, b, err := message(raw)
	return b, err
}
