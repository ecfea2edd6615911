// Package chain is cordon's normalized chain event model, shared by every
// watcher and every consumer: block events (block_added / block_removed with
// a per-chain sequence number), transactions and transfers with exact integer
// amounts in base units, and the deterministic Kafka keys of each record.
//
// Amount is an exact non-negative integer in base units (wei, satoshi,
// token units), never a float. ParseAmountIn reads one written with a
// coin unit (1.5eth, 20gwei, 0.1btc, 5000sat) exactly, refusing what it
// cannot represent; Decimal and FormatCoin show one in whole coins.
//
// The JSON encoding of these types is the wire schema documented in
// docs/events.md; SchemaVersion names its version.
package chain
