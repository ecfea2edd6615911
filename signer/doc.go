// Package signer is the custody pipeline: the withdrawal gate (intake,
// online risk, policy, approvals, breaker, audit log) and, after it, the
// signing stage. Its parts live in subpackages:
//
//   - intent: a withdrawal intent, its canonical bytes and hash, approvers
//     and the approvals they sign over that hash, exact dollar values;
//   - risk: the online risk layer's findings;
//   - policy: the rules (CEL) that decide allow, approve or deny;
//   - audit: the hash-chained audit log;
//   - gate: the service that runs them on Kafka, its API and CLI.
package signer
