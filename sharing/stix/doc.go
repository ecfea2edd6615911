// Package stix reads and signs the STIX 2.1 objects partner exchanges
// share: strict decoding of untrusted bundles and objects (DecodeBundle,
// DecodeObject: size, count and depth limits, duplicate members, STIX ids
// and timestamps, spec version 2.1) and Ed25519 signatures over an
// object's RFC 8785 form without its x_cordon_signature property (Sign,
// Verify), the signer's identity bound to the object's created_by_ref.
// Objects keep their raw bytes so they are re-served byte-identically,
// and large integers are never parsed. Check refuses a received object
// of a type not accepted, modified before created, or dated in the
// future; Newer takes only a later version (the same again is a
// duplicate, an older one a replay, other content under the same
// modified a conflict). HashValue is an address's keyed hash for the
// privacy mode (HMAC-SHA256 with the alliance key over one normal form
// per chain and network).
//
// Signature: "x_cordon_signature": {"alg":"ed25519","key":KEYID,
// "sig":BASE64URL}, KEYID the hex of the first 8 bytes of the SHA-256 of
// the 32-byte public key (as internal/recordauth names keys).
//
// FromIndicator writes an intel indicator (address or contract) as
// cordon's own, unsigned, indicator object: pattern
// [cryptocurrency-wallet:value = 'VALUE'], the TLP 2.0 marking, the
// category as its one label, and x_cordon_chain, x_cordon_network,
// x_cordon_kind (and x_cordon_urgent) so that it reads back off mainnet;
// times in milliseconds, each version with a later modified.
// ToIndicators reads it back (those properties win over intel's reading
// of the address, and must agree with its shape and network), and reads
// other producers' objects as intel does. Revoke makes the next, revoked,
// version to sign again; Urgent reads x_cordon_urgent. Sighting writes a
// sighting of an indicator.
//
// A hashed indicator (the privacy mode, intel.KindAddressHash) is
// written with the pattern [x-cordon-address-hash:value = 'HEX'], which
// no STIX consumer takes for an address, and reads back as the hash.
// VerifyHash verifies and hashes an object in one canonicalization.
package stix
