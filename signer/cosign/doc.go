// Package cosign is the signer's side of threshold signing: a Group
// signs with a threshold key whose shares are held by cosigner plugins
// (plugins/threshold), each a sdk.Cosigner (a pluginhost.Plugin, or a
// party.Share in process).
//
// Sign picks two parties, in a deterministic order (the first pair of
// healthy parties by id), opens a session with a fresh 32-byte random
// id, runs both parties' Cosign concurrently with an in-memory router
// between them (a message goes to its To, or to the session's other
// party), and returns the signature only if both parties return the
// same one and it verifies against the group key. The router is only a
// router: the parties authenticate each other's messages themselves.
//
// A failed session fails the signing (fail closed): the Group does not
// try again unless it was made WithRetry, and then once, with the next
// healthy pair and a fresh session (never the same session id twice).
// Group is safe for concurrent use; each Sign is its own session.
package cosign
