// Package credit turns deposits to the exchange's addresses into credit
// decisions. This first part is the address registry: the exchange's
// deposit addresses (each with its account and asset) and its own hot and
// cold wallets, validated per chain, shared between instances through the
// compacted Kafka topic cordon.addresses, and held in memory compactly
// enough for hundreds of millions of addresses.
package credit
