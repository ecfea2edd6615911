// Package registry is the exchange's own addresses: deposit addresses
// (each with its account and asset) and its hot and cold wallets,
// validated per chain, shared between instances through the compacted
// Kafka topic cordon.addresses (POST /v1/addresses, cordon addresses
// import), and held in memory compactly enough for hundreds of millions
// of addresses (Index). Crediting, detection and the custody pipeline all
// read it; it imports none of them.
package registry
