// Package watchers holds cordon's chain followers: watchers/follow is the
// chain-independent head tracking, ordered parallel backfill and reorg
// handling; watchers/eth (and later watchers/btc) plug a node client into it.
package watchers
