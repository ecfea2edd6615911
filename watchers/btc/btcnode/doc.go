// Package btcnode runs a real btcd process on regtest or simnet for
// `cordon dev` and the tests, with its data under a directory of the
// caller's, and drives it: a small wallet of its own keys that mines,
// pays many addresses, spends what it received, and reorganizes the chain
// on demand (invalidateblock, then a longer branch).
package btcnode
