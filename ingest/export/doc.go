// Package export writes normalized blocks as JSON Lines or CSV files, the
// output of `cordon export` for backfills and audits. Every JSONL line has
// a "type" (block, transaction, transfer) and the fields of the Kafka
// record of that type (docs/events.md).
package export
