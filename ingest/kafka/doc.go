// Package kafka publishes cordon's chain event stream to Kafka with
// segmentio/kafka-go, and reads the tail of that stream back so a watcher
// resumes exactly where its published output ends.
//
// Ordering: every block event of one chain/network goes to one partition of
// the blocks topic (the partition is chosen by hashing the stream key
// "chain/network", not the record key), so its sequence numbers are in
// order. Transactions and transfers are keyed by block hash, tx hash and
// index, and partitioned by that key (murmur2, as Java clients do). The
// records of a block are acknowledged before its block_added event is
// written, so a consumer that sees the event can rely on them being there.
//
// kafka-go's types stay inside this package.
package kafka
