// Package taxii is cordon's TAXII 2.1 server: how alliance members
// exchange STIX objects. It holds the collection store, the TAXII
// resources (wire.go) and the HTTP server over them; the mutual-TLS
// listener and the partner registry (Access) are elsewhere.
//
// # Store
//
// The Store keeps each collection's objects in the order they were added,
// every version of each object, byte for byte as posted. Date-added
// timestamps are strictly increasing at microsecond precision across the
// whole store, so paging with added_after never skips nor repeats an
// object, and an object becomes visible only after the Append hook
// (persistence) took it. Restore rebuilds a collection from what Append
// persisted, refusing records out of date-added order or held twice.
//
// # Server
//
// NewServer serves, per OASIS TAXII 2.1 sections 4 and 5, /taxii2/
// (discovery), one API root ({root}/), its collections ({root}/collections/
// and …/{id}/), manifest, objects (GET and POST), one object (GET;
// DELETE is always refused: cordon revokes by a new signed version with
// revoked: true, never deletes), an object's versions, and status
// resources ({root}/status/{id}/). Each request is identified
// (Access.Identify: 401 without a certificate, 403 otherwise), charged
// to the partner's budget (Access.Allow: 429 with Retry-After), then
// routed (404 for unknown paths, 405 with Allow for wrong methods).
// Accept must name application/taxii+json, with version 2.1 or none and
// q above 0 (wildcards do not count: 406); a POST's Content-Type must be
// that type (415) and its body at most MaxContentLength (413). Every
// answer, refusals included, is application/taxii+json;version=2.1;
// refusals carry the spec's error body, and 5xx never say more than
// "internal error" (the cause is logged).
//
// A collection the caller can neither read nor write does not exist for
// it (404). Records Access.MayReceive refuses the caller (TLP) are left
// out of every answer as if never added: an object none of whose
// versions it may receive is 404, and "last" and "first" are an
// object's last and first versions in the collection, so a newer version
// the caller may not receive hides the older one from match[version]=last
// rather than passing it off as current. An empty page is 200 with an
// envelope without objects.
//
// Versions (the versions endpoint, manifest version, status resources)
// are written with time.RFC3339Nano in UTC (FormatVersion): the exact
// version, so each one names that version in match[version]. Date-added
// times use FormatTime (microseconds).
//
// # Paging
//
// Pages are in date-added order; more is true exactly when more records
// the caller may receive follow, and then next is a stateless cursor:
// the date-added time of the page's last record under an HMAC-SHA256
// (CursorKey) binding it to the caller, the collection, the endpoint and
// object, and the query's filters (added_after and every match[…]; not
// limit, which may change between pages). A cursor outside its binding,
// altered, truncated or not a cursor at all is 400. The manifest and
// versions resources carry next too (an extension of the resources;
// the specification gives them none).
//
// # Long-poll (extension)
//
// A GET of …/objects/ with "Prefer: wait=N" (RFC 7240; N whole seconds,
// capped at MaxWait) that finds nothing waits until the collection takes
// a record the caller may receive and that matches the query, or until
// N seconds passed, and then answers as usual (possibly empty). The
// answer carries "Preference-Applied: wait=N" with the N applied. Records
// the caller may not receive wake the wait once each and it goes on
// waiting; they never end it early.
//
// # Posting
//
// A POST to …/objects/ takes a TAXII envelope ({"objects":[…]}) or a
// STIX bundle, decoded strictly (stix.DecodeEnvelope, stix.DecodeBundle:
// I-JSON, duplicate members refused, depth, count and size limits); a
// malformed body is 400 with the reason and nothing is stored. The
// objects go to Intake.Accept, and the answer is 202 with a complete
// status resource (duplicates count as successes, failures carry the
// Intake's reason). Status resources are kept in memory for 24 hours, at
// most 1,000 per partner (its oldest dropped first), and only the partner that
// posted may read one; others get 404.
//
// # Client
//
// Client is a strict TAXII 2.1 client (NewClient): https only, every
// answer's status, media type and size checked, objects kept byte for
// byte, errors as the server's error body (StatusError, RateLimited), All
// following next (or the date-added header) and refusing a server that
// makes no progress. Query.Wait asks for the long-poll.
//
// The server has no metrics of its own: partner sharing counts per
// partner (sharing/alliance).
package taxii
