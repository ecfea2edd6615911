// Package rpcpool spreads a chain's node calls over several endpoints and
// decides what they agree on. It is chain-independent; each watcher
// supplies its connection type and a health check (chain identity and head
// height), and the pool does ordering, failover, penalties, lag detection
// and the cordon_rpc_* metrics.
//
// No endpoint is believed alone unless the quorum is 1. The pool's head is
// the agreed head, the highest height a quorum of endpoints report
// (AgreedHead, AgreedHeight); endpoints are ranked by health and latency
// among those at or above it. Agree takes the block hash a quorum reports
// at a height, penalizes and alerts on endpoints that report another, and
// returns follow.ErrNotAgreed when no hash reaches the quorum. Reports
// gives every configured endpoint's answer, for callers that count votes
// themselves (crediting at confirmation depth).
package rpcpool
