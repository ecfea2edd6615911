// Package follow turns a node that answers "what is at height h" into the
// ordered, reorg-aware block event stream of the chain event model.
//
// A Follower keeps a window of the newest canonical headers it has
// published. Each new block must name the window's tip as its parent; when
// it does not, the Follower walks back through the node's canonical chain
// to the fork point, publishes block_removed for the abandoned blocks newest
// first, and then fetches the new branch oldest first. A fork point deeper
// than Config.MaxReorgDepth stops the Follower with ErrReorgTooDeep.
//
// Backfill runs Config.Parallel fetches at once and still publishes strictly
// in height order; at most 2×Parallel blocks are held in memory.
//
// Concurrency: Run owns all state. Fetch workers only call Source.BlockAt
// and hand results back through one buffered channel per height.
package follow
