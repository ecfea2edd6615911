// Package intel holds the indicators partner exchanges and public feeds
// share — addresses and transactions of thieves, sanctioned entities,
// mixers, phishing operations — and matches deposits and withdrawals
// against them.
//
// The model follows STIX 2.1 indicators: every indicator has an id, a
// source (its publisher), a category, a confidence, a TLP marking and a
// validity window, and may be revoked. The same address listed by several
// sources is several indicators, and each one matches.
//
// The compacted Kafka topic cordon.intel (keyed by indicator id) is the
// source of truth: imports publish to it in one Kafka transaction, and
// every cordon instance rebuilds the same in-memory index from it.
package intel
