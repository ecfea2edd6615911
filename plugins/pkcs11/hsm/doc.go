// Package hsm is cordon's PKCS#11 signer: an sdk.Signer whose
// secp256k1 keys live on a token (a hardware security module, or
// SoftHSM2 in tests and dev) and never leave it.
//
// The token signs a 32-byte digest with CKM_ECDSA and returns r‖s. The
// signer checks that reply strictly (64 bytes, 0 < r, s < n), brings s
// into the lower half of the group order, finds the recovery id by
// recovering the public key it already holds, and verifies the final
// signature before it returns it; a reply that fails any step is an
// error, never a signature.
//
// A Signer keeps a fixed pool of sessions, logged in once; a session the
// token no longer knows is replaced. All methods are safe for concurrent
// use. Configuration comes as command-line arguments (ParseArgs), the PIN
// from a file only the plugin's user may read.
package hsm
