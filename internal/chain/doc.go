// Package chain is cordon's normalized chain event model, shared by every
// watcher and every consumer: block events (block_added / block_removed with
// a per-chain sequence number), transactions and transfers with exact integer
// amounts in base units, and the deterministic Kafka keys of each record.
//
// The JSON encoding of these types is the wire schema documented in
// docs/events.md; SchemaVersion names its version.
package chain
