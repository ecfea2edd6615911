// Package credit turns deposits to the exchange's registered addresses
// into credit decisions, exactly once: confirmation policies (tiers, dust,
// review, Ethereum finality), screening of senders, the deterministic
// crediting engine, the service that runs it on the block stream with one
// Kafka transaction per round and writes cordon.deposits, operators'
// decisions on held deposits, and the deposits view behind GET
// /v1/deposits. It reads the address registry (package registry) and
// screens through a Screener; it imports no other domain.
package credit
