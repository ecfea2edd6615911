// Package audit is the withdrawal gate's tamper-evident audit log
// (cordon.audit): every request, finding, decision, approval, rejection,
// breaker change and policy change is a Record carrying the SHA-256 of
// the record before it, and the leader periodically appends a checkpoint
// record signing, with its Ed25519 key, the sequence number and hash of
// the record it follows.
//
// A Chain hands out the next records (the gate writes them in the same
// Kafka transaction as the state transitions they describe, then calls
// Commit, or Rollback when the transaction aborted); Verify reads a log
// in offset order and names the first record that was altered, removed
// or reordered, and any checkpoint that does not verify. Verify works
// from the records alone: an outside auditor re-verifies the same log
// with any SHA-256, RFC 8785 and Ed25519 implementation, as
// docs/gate/audit.md describes (testdata/verify.py does it in Python).
//
// Time comes from an internal/clock.Clock.
package audit
