// Package watchers holds cordon's chain followers: watchers/follow is the
// chain-independent head tracking, ordered parallel backfill and reorg
// handling (the Source and Sink contracts, with their conformance suites
// in watchers/follow/followtest); watchers/eth and watchers/btc plug a
// node client into it; watchers/rpcpool ranks a chain's endpoints.
package watchers
