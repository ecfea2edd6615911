// Package rpcpool spreads a chain's node calls over several endpoints: the
// healthiest first, the next one on failure. It is chain-independent; each
// watcher supplies its connection type and a health check (chain identity
// and head height), and the pool does ordering, failover, penalties, lag
// detection and the cordon_rpc_* metrics.
package rpcpool
