// Package taxii is cordon's TAXII 2.1 server and client: how alliance
// members exchange STIX objects.
//
// The server (Handler) serves discovery, API roots, collections, objects,
// manifests, versions and status resources from a Store, behind the
// caller's mutual TLS listener. Who the caller is, what it may read,
// write and receive, and how fast, is asked of an Access; what a caller
// posts is validated by an Ingest. Both are small interfaces declared
// here and implemented by the caller.
//
// The Store keeps each collection's objects in the order they were added,
// every version of each object, byte for byte as posted. Date-added
// timestamps are strictly increasing at microsecond precision across the
// whole store, so added_after never skips nor repeats an object, and an
// object becomes visible only after the Append hook (persistence) took it.
//
// Paging cursors (next) are stateless: an HMAC-SHA256 over the caller, the
// endpoint, the collection, the normalized filters and the position, so a
// cursor of another caller or another query is refused.
//
// The X-Cordon-Wait request header on GET .../objects/ is a cordon
// extension outside TAXII: an empty answer is held until an object arrives
// or the wait ends (long poll, the urgent path).
package taxii
