package intel

import (
	"errors"
	"fmt"
	"strings"
)

// Key is an indicator's identity: the feed that imported it and the id
// the feed gave it. Feeds choose their ids (a CSV id column, STIX ids,
// MISP uuids) and OFAC's are computable, so an id alone names nothing:
// a feed adds, changes and revokes only the indicators of its own keys.
type Key struct {
	Feed string
	ID   string
}

// KeySep separates the feed from the id in a record key; neither holds
// it.
const KeySep = '/'

// String is the record key on cordon.intel: "<feed>/<id>", for example
// "ofac:sanctioned_addresses_XBT/indicator--5b1c…".
func (k Key) String() string { return k.Feed + string(KeySep) + k.ID }

// KeyOf is an indicator's key.
func KeyOf(in *Indicator) Key { return Key{Feed: in.Feed, ID: in.ID} }

// Errors ParseKey wraps.
var (
	// ErrLegacyKey: the key is a bare indicator id, as cordon wrote
	// before indicators were namespaced by feed. Such a record names no
	// feed and is never applied (docs/intel.md, "Migration").
	ErrLegacyKey = errors.New("record key is a bare indicator id, not feed/id")
	// ErrBadKey: the key is neither feed/id nor a bare id.
	ErrBadKey = errors.New("record key is not feed/id")
)

// maxFeedName bounds a feed name.
const maxFeedName = 128

// ValidFeedName tells whether s can name a feed: 1-128 characters,
// letters, digits and ._:@+-_, starting with a letter or digit. The name
// is the feed's namespace; it never holds KeySep.
func ValidFeedName(s string) bool {
	if len(s) == 0 || len(s) > maxFeedName {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || strings.IndexByte("._:@+-_", c) < 0) {
			return false
		}
	}
	return true
}

// validID tells whether s is an indicator id: indicator--<lowercase uuid>.
func validID(s string) bool {
	return strings.HasPrefix(s, "indicator--") && isUUID(s[len("indicator--"):])
}

// ParseKey reads a record key. A bare id (a record written before
// namespacing) is ErrLegacyKey; anything else that is not a valid feed
// name, KeySep and a valid id is ErrBadKey.
func ParseKey(b []byte) (Key, error) {
	s := string(b)
	i := strings.IndexByte(s, KeySep)
	if i < 0 {
		if validID(s) {
			return Key{}, ErrLegacyKey
		}
		return Key{}, fmt.Errorf("%w: %q", ErrBadKey, clip(s))
	}
	k := Key{Feed: s[:i], ID: s[i+1:]}
	if !ValidFeedName(k.Feed) {
		return Key{}, fmt.Errorf("%w: feed %q", ErrBadKey, clip(k.Feed))
	}
	if !validID(k.ID) {
		return Key{}, fmt.Errorf("%w: id %q", ErrBadKey, clip(k.ID))
	}
	return k, nil
}

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
