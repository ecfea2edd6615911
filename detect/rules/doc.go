// Package rules is detection's rule engine: it reads the canonical block
// stream one update at a time (a block added with its contents, or a
// block removed) and raises alerts about the exchange's own addresses —
// large outflows against a wallet's baseline and drains, outflow
// velocity, contact with flagged addresses, address poisoning, and the
// operators' own CEL rules.
//
// The engine is deterministic: its alerts follow from the updates, the
// registry and the screener alone, with ids derived from the chain facts
// (rule, block, transaction, address), so a replay raises the same
// alerts under the same ids. Time is the blocks' time, never the clock.
// A removed block undoes what its addition did to the engine's state and
// retracts the alerts it raised. Its state is exported in records (one
// per wallet, plus the recent blocks' undo log) so a service can commit
// it with its read positions and restore it after a restart.
//
// An Engine is not safe for concurrent use; Apply owns all its state.
package rules
