// Package pipetest builds the whole ingest path for tests on real services:
// a chain node (the Ethereum devnet or btcd), its watcher publishing into
// kfake, and the ClickHouse loader into a private clickhouse-server.
package pipetest
