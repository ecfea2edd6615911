// Package intent is the ground the custody pipeline's stages meet on: a
// withdrawal Intent, its canonical bytes (RFC 8785 JSON) and their SHA-256
// hash, the Approvers configured to approve and the Approvals they sign
// over that hash with their own Ed25519 keys, the Findings the risk layer
// reports, and exact dollar values (USD) that may be unknown.
//
// Every stage verifies an approval from the bytes alone: the gate when it
// takes one, and the signing stage again, against its own approver list,
// before anything is signed. Nothing here trusts where a value came from.
package intent
