// Package policy is the withdrawal gate's policy: rules from an approved
// policy file (or the shipped default), evaluated top-down, first match
// wins, the last a catch-all deny. Conditions are CEL over the intent, its
// exact dollar value (unknown above every amount), the risk layer's
// findings, the gate's velocity windows and whether the destination is
// whitelisted; money is compared exactly, never in floating point.
//
// Evaluate decides allow, approve (with quorum Terms) or deny, naming the
// rule and why; a condition that fails to evaluate denies. CheckQuorum is
// a pure function of the terms, the approver list, the intent, its signed
// approvals and the time, so the signing stage re-checks a quorum without
// the gate. Prices values amounts; a missing or stale price is unknown.
// A policy file loads only with an approval record (VerifyRecord) meeting
// the configured policy quorum. docs/gate/policy.md says how to write rules.
package policy
