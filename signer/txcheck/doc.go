// Package txcheck is the second risk layer's check of an unsigned
// transaction against the approved intents it claims to carry out
// (issue 15, in progress): it decodes the transaction itself, strictly,
// trusting nothing the builder says about it, and refuses with a reason
// code (Refusal) anything that is not exactly the intents: another
// chain or chain id, destination, asset or amount, an extra output or
// call, change to a script that is not the wallet's own, a fee above its
// cap, an input amount the previous transaction does not confirm.
//
// CheckETH takes an unsigned EIP-1559 transaction (0x02 || RLP) of a
// native transfer or an ERC-20 transfer; CheckBTC a PSBT.
package txcheck
