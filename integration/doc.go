// Package integration holds test harnesses that sit above the packages
// they start: integration/pipetest runs a chain node, its watcher, Kafka
// and the ClickHouse loader together.
package integration
