// Package ingest moves the chain event stream into the exchange's systems:
// ingest/kafka is the Kafka producer and stream reader.
package ingest
