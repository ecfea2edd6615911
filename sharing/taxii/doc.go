// Package taxii is to be cordon's TAXII 2.1 server and client: how
// alliance members exchange STIX objects. What exists so far is the
// collection store the server will serve from.
//
// The Store keeps each collection's objects in the order they were added,
// every version of each object, byte for byte as posted. Date-added
// timestamps are strictly increasing at microsecond precision across the
// whole store, so paging with added_after never skips nor repeats an
// object, and an object becomes visible only after the Append hook
// (persistence) took it. Restore rebuilds a collection from what Append
// persisted, refusing records out of date-added order or held twice.
//
// Not built yet (issue 16): the HTTP server over mutual TLS, its
// stateless paging cursors, status resources and the long-poll
// extension, and the client.
package taxii
