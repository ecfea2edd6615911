// Package intel holds the indicators partner exchanges and public feeds
// share — addresses and transactions of thieves, sanctioned entities,
// mixers, phishing operations — and matches deposits and withdrawals
// against them.
//
// The model follows STIX 2.1 indicators: every indicator has an id, a
// source (its publisher), a category, a confidence, a TLP marking and a
// validity window, and may be revoked. An indicator belongs to the feed
// that imported it: its identity is the key (feed, id), so a feed adds,
// changes and revokes only its own, whatever ids its file chooses. The
// same address listed by several feeds is several indicators, and each
// one matches.
//
// The compacted Kafka topic cordon.intel (keyed "feed/id") is the source
// of truth: imports publish to it in one Kafka transaction, and every
// cordon instance rebuilds the same in-memory index from it, refusing
// (and counting) any record not keyed by its own feed and id.
package intel
