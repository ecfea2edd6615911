package stix

import (
	"github.com/cordonhq/cordon/internal/address"
	"github.com/cordonhq/cordon/internal/chain"
)

// MinAllianceKey is the shortest alliance key HashValue takes.
const MinAllianceKey = address.MinPrivacyKey

// HashValue is an address's keyed hash for the privacy mode
// (address.PrivacyHash): the value of a hashed indicator
// (intel.KindAddressHash).
func HashValue(key []byte, c chain.Chain, network, addr string) (string, error) {
	return address.PrivacyHash(key, c, network, addr)
}
