// Package stix reads and writes the STIX 2.1 objects partner exchanges
// share: strict decoding of untrusted bundles (DecodeBundle), Ed25519
// signatures over an object's RFC 8785 form (Sign, Verify), validation
// of a received object and its conversion to intel indicators (Check,
// Indicators), the reverse (FromIndicator), revocation, version order
// (Newer), keyed hashes for privacy mode (HashValue) and sightings.
// Objects keep their raw bytes so they are re-served byte-identically.
// The format is described in docs/sharing/stix.md.
package stix
