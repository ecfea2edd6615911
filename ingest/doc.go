// Package ingest is cordon's transport floor: it carries records and knows
// no domain. ingest/kafka is the one Kafka wrapper (producer, block stream,
// transactional writer, log reader, leader election, the topic list, the
// embedded broker); ingest/clickhouse the store, schema, loader and the
// private server; ingest/export the JSONL/CSV export of a node's blocks.
package ingest
