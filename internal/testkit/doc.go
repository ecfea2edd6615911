// Package testkit holds small helpers shared by cordon's tests that need
// nothing above internal/: helper processes for benchmarks (SpawnChild,
// CPUSeconds) and headless Chromium. The starters of real services live
// next to what they start: ingest/kafka/kafkatest (kfake),
// ingest/clickhouse/chtest (clickhouse-server), watchers/btc/btctest
// (btcd), and integration/pipetest (node → watcher → Kafka → ClickHouse).
package testkit
