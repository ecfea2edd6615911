package intel

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/cordonhq/cordon/internal/address"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/uuid"
)

// Kind is what an indicator's value is.
type Kind string

// Indicator kinds.
const (
	KindAddress     Kind = "address"
	KindTransaction Kind = "transaction"
	KindContract    Kind = "contract"
	// KindAddressHash is an address's keyed hash (address.PrivacyHash,
	// 64 lowercase hex digits): partner sharing's privacy mode, matched
	// when the index holds the alliance key.
	KindAddressHash Kind = "address-hash"
)

// Categories an indicator may have. Others are accepted as given
// (lowercase) and rank with "other".
const (
	CategorySanctions  = "sanctions"
	CategoryHack       = "hack"
	CategoryPhishing   = "phishing"
	CategoryMixer      = "mixer"
	CategoryScam       = "scam"
	CategoryRansomware = "ransomware"
	CategoryDarknet    = "darknet"
	CategoryFraud      = "fraud"
	CategoryTerrorism  = "terrorism-financing"
	CategoryOther      = "other"
)

// severity orders categories for a verdict's "strongest category".
var severity = map[string]int{
	CategorySanctions: 9, CategoryTerrorism: 9, CategoryHack: 8, CategoryRansomware: 7, CategoryDarknet: 6,
	CategoryMixer: 5, CategoryPhishing: 5, CategoryScam: 4, CategoryFraud: 4, CategoryOther: 1,
}

// Severity ranks a category (unknown ones rank with other).
func Severity(category string) int {
	if s, ok := severity[category]; ok {
		return s
	}
	return 1
}

// TLP is a Traffic Light Protocol 2.0 marking.
type TLP string

// TLP markings, least restricted first.
const (
	TLPClear       TLP = "clear"
	TLPGreen       TLP = "green"
	TLPAmber       TLP = "amber"
	TLPAmberStrict TLP = "amber+strict"
	TLPRed         TLP = "red"
)

// ParseTLP reads a marking, accepting "white" (TLP 1.0) as clear and the
// "tlp:" prefix.
func ParseTLP(s string) (TLP, error) {
	s = strings.TrimPrefix(strings.ToLower(strings.TrimSpace(s)), "tlp:")
	switch TLP(s) {
	case TLPClear, TLPGreen, TLPAmber, TLPAmberStrict, TLPRed:
		return TLP(s), nil
	case "white", "":
		return TLPClear, nil
	}
	return "", fmt.Errorf("TLP %q: want clear, green, amber, amber+strict or red", s)
}

// Ref is an external reference (STIX external_references).
type Ref struct {
	SourceName string `json:"source_name"`
	URL        string `json:"url,omitempty"`
	ExternalID string `json:"external_id,omitempty"`
}

// Indicator is one feed's statement about one value. Its identity is
// (Feed, ID) (Key): the id is the feed's own, unique only inside it.
type Indicator struct {
	// ID is the feed's id for it ("indicator--<uuid>": the STIX id, the
	// MISP attribute uuid, a CSV id column); importers of feeds without
	// ids derive it from source, chain and value (ID), so re-importing
	// gives the same id.
	ID      string      `json:"id"`
	Kind    Kind        `json:"kind"`
	Chain   chain.Chain `json:"chain"`
	Network string      `json:"network,omitempty"`
	// Value is normalized: Ethereum lowercase hex, Bitcoin in its
	// network's encoding (bech32 lowercase), transaction hashes lowercase
	// hex without 0x for Bitcoin and with it for Ethereum.
	Value    string `json:"value"`
	Category string `json:"category"`
	// Source is the publisher the operator configured for the feed at
	// import (--source), never a field of the file.
	Source     string `json:"source"`
	Confidence int    `json:"confidence"`
	TLP        TLP    `json:"tlp"`
	// ValidFrom and ValidUntil bound when the indicator matches (zero
	// ValidUntil: no end).
	ValidFrom  time.Time `json:"valid_from"`
	ValidUntil time.Time `json:"valid_until,omitzero"`
	Revoked    bool      `json:"revoked,omitempty"`
	Created    time.Time `json:"created"`
	Modified   time.Time `json:"modified"`
	// Feed is the name of the feed that imported the indicator (its
	// namespace, part of its key); FeedVersion the version of the file
	// that last wrote it.
	Feed        string `json:"feed"`
	FeedVersion string `json:"feed_version,omitempty"`
	// Creator is who the file says created the indicator (a STIX
	// created_by_ref identity's name, a MISP event's Orgc, a CSV source
	// column): informational only, it names no feed and grants nothing.
	Creator     string `json:"creator,omitempty"`
	Description string `json:"description,omitempty"`
	Refs        []Ref  `json:"external_references,omitempty"`
}

// Active tells whether the indicator matches at t.
func (in *Indicator) Active(t time.Time) bool {
	return !in.Revoked && !t.Before(in.ValidFrom) && (in.ValidUntil.IsZero() || t.Before(in.ValidUntil))
}

var (
	btcTxHash = regexp.MustCompile(`^[0-9a-f]{64}$`)
	ethTxHash = regexp.MustCompile(`^0x[0-9a-f]{64}$`)
)

// isUUID tells whether s is a lowercase RFC 4122 string form.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
				return false
			}
		}
	}
	return true
}

// isObjectID tells whether s is a STIX identifier: type--uuid, the type
// lowercase letters, digits and hyphens.
func isObjectID(s string) bool {
	i := strings.Index(s, "--")
	if i <= 0 || !isUUID(s[i+2:]) {
		return false
	}
	for j := 0; j < i; j++ {
		if c := s[j]; (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// validSource: 1-64 characters, letters, digits, space and ._:/@-,
// starting with a letter or digit.
func validSource(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || strings.IndexByte(" ._:/@-", c) < 0) {
			return false
		}
	}
	return true
}

// ErrInvalid is wrapped by every validation error.
var ErrInvalid = errors.New("invalid indicator")

// NormalizeValue validates value as a value of kind on chain and network
// and returns its normal form.
func NormalizeValue(kind Kind, c chain.Chain, network, value string) (string, error) {
	switch kind {
	case KindAddress, KindContract:
		v, err := address.Normalize(c, network, value)
		if err != nil {
			return "", err
		}
		if kind == KindContract && c != chain.ETH {
			return "", fmt.Errorf("%w: contracts are Ethereum addresses", ErrInvalid)
		}
		return v, nil
	case KindAddressHash:
		v := strings.ToLower(strings.TrimSpace(value))
		if !btcTxHash.MatchString(v) {
			return "", fmt.Errorf("%w: %q is not an address hash (64 hex digits)", ErrInvalid, value)
		}
		if c != chain.ETH && c != chain.BTC {
			return "", fmt.Errorf("%w: unknown chain %q", ErrInvalid, c)
		}
		if network == "" {
			return "", fmt.Errorf("%w: an address hash names its network", ErrInvalid)
		}
		return v, nil
	case KindTransaction:
		v := strings.ToLower(strings.TrimSpace(value))
		switch c {
		case chain.BTC:
			v = strings.TrimPrefix(v, "0x")
			if !btcTxHash.MatchString(v) {
				return "", fmt.Errorf("%w: %q is not a Bitcoin transaction id (64 hex digits)", ErrInvalid, value)
			}
		case chain.ETH:
			if !strings.HasPrefix(v, "0x") {
				v = "0x" + v
			}
			if !ethTxHash.MatchString(v) {
				return "", fmt.Errorf("%w: %q is not an Ethereum transaction hash (0x and 64 hex digits)", ErrInvalid, value)
			}
		default:
			return "", fmt.Errorf("%w: unknown chain %q", ErrInvalid, c)
		}
		return v, nil
	}
	return "", fmt.Errorf("%w: kind %q: want address, transaction, contract or address-hash", ErrInvalid, kind)
}

// Validate checks an indicator and normalizes its value, category and
// marking in place.
func (in *Indicator) Validate() error {
	if in.Kind == "" {
		in.Kind = KindAddress
	}
	v, err := NormalizeValue(in.Kind, in.Chain, in.Network, in.Value)
	if err != nil {
		return err
	}
	in.Value = v
	if !validSource(in.Source) {
		return fmt.Errorf("%w: source %q: 1-64 letters, digits, spaces and ._:/@-", ErrInvalid, in.Source)
	}
	if !ValidFeedName(in.Feed) {
		return fmt.Errorf("%w: feed %q: 1-128 letters, digits and ._:@+-_", ErrInvalid, in.Feed)
	}
	if in.Creator != "" && !validSource(in.Creator) {
		return fmt.Errorf("%w: creator %q: 1-64 letters, digits, spaces and ._:/@-", ErrInvalid, in.Creator)
	}
	if in.ID == "" {
		in.ID = ID(in.Source, in.Chain, in.Kind, in.Value)
	}
	if !validID(in.ID) {
		return fmt.Errorf("%w: id %q: want indicator--<uuid>", ErrInvalid, in.ID)
	}
	in.Category = strings.ToLower(strings.TrimSpace(in.Category))
	if in.Category == "" {
		in.Category = CategoryOther
	}
	if len(in.Category) > 40 {
		return fmt.Errorf("%w: category %q: at most 40 characters", ErrInvalid, in.Category)
	}
	if in.Confidence < 0 || in.Confidence > 100 {
		return fmt.Errorf("%w: confidence %d: want 0-100", ErrInvalid, in.Confidence)
	}
	if in.TLP, err = ParseTLP(string(in.TLP)); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if !in.ValidUntil.IsZero() && !in.ValidUntil.After(in.ValidFrom) {
		return fmt.Errorf("%w: valid_until %s is not after valid_from %s", ErrInvalid,
			in.ValidUntil.UTC().Format(time.RFC3339), in.ValidFrom.UTC().Format(time.RFC3339))
	}
	if len(in.Description) > 4096 || len(in.Refs) > 32 {
		return fmt.Errorf("%w: description over 4 KiB or more than 32 references", ErrInvalid)
	}
	return nil
}

// idNamespace is the UUID namespace of cordon's derived indicator ids.
var idNamespace = [16]byte{0x6b, 0x1f, 0x43, 0x0e, 0x8c, 0x2a, 0x4e, 0x55, 0x9b, 0x52, 0x3c, 0x0d, 0x7e, 0x11, 0xa4, 0x90}

// ID is the deterministic id of source's indicator for a value: a
// name-based (version 5) UUID, so importing a feed twice gives the same
// ids.
func ID(source string, c chain.Chain, kind Kind, value string) string {
	return "indicator--" + uuid.V5(idNamespace, source+"\x00"+string(c)+"\x00"+string(kind)+"\x00"+value)
}
