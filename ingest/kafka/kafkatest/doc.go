// Package kafkatest starts embedded Kafka-protocol brokers (kfake) for tests
// and benchmarks.
package kafkatest
