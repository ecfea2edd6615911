// Package partner is the registry of alliance members cordon shares
// threat intelligence with over TAXII 2.1: who a mutual-TLS client is,
// what it may read and post, what may be sent to it, whose keys sign
// what, and how fast it may ask. The Registry implements taxii.Access
// for the server and stix.KeyLookup for signature checks.
//
// A partner is identified by its client certificate only: either pinned
// (the SHA-256 of the certificate's DER) or issued by the partner's CA
// with the partner's subject as CommonName. ServerTLS refuses every other
// certificate in the TLS handshake, and a connection without one; so a
// handler only ever sees partners, and Identify re-derives which from
// the certificate on each request. Resumed sessions are checked again.
// In TLS 1.3 the client finishes its side of the handshake before the
// server judges its certificate, so a refused client learns of it from
// the server's alert on its first read ("tls: bad certificate", or
// "tls: certificate required" when it sent none).
//
// TLP on the way out (MayReceive) fails closed: the most restricted TLP
// marking of an object wins (object-level and granular markings, TLP 1.0
// and 2.0 ids); an object without a TLP marking counts as AMBER; RED
// never leaves; AMBER+STRICT goes only to partners named amber_strict,
// AMBER only to those named amber or amber_strict; nothing goes above a
// partner's max_tlp, nor from a collection it may not read.
//
// Each partner has a token bucket (rate per second, burst) that Allow
// draws from. DevCA makes throwaway certificates for development and
// tests.
package partner
