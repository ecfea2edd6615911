// Package wallet builds the unsigned transactions of cordon's hot
// wallets and finishes them with the signer plugins' signatures.
//
// Bitcoin: a Config names each hot wallet (a P2WPKH key or a P2WSH 2-of-3
// multisig, every key a plugin reference with its expected public key,
// so the wallet's scripts come from config alone). A UTXOView follows the
// block stream (internal/chain events) and holds the wallet's spendable
// coins, undoing removed blocks exactly; BuildBTC selects coins
// (largest first), pays one or several intents and builds the PSBT that
// signer/txcheck.CheckBTC accepts; Digests gives the BIP-143 sighash of
// every input and the keys that sign it; Finalize assembles the
// witnesses and verifies every input with btcd's script engine.
//
// Ethereum: ETHWallet.Call is the call a withdrawal makes (for the
// node's gas estimate); BuildETH makes the unsigned EIP-1559 payload that
// txcheck.CheckETH accepts, with its signing hash, its gas limit the
// estimate with a margin under the wallet's cap (ErrGasCap above it); FinalizeETH turns a
// signature into a signed transaction whose sender is the wallet. A
// NonceLedger assigns nonces per sending address and follows the block
// stream: a nonce is never given to another transaction unless released.
//
// Fee rates above the configured cap are refused, never clamped
// silently (ErrFeeCap); the second risk layer checks the cap again.
//
// Every type here is safe for concurrent use where it says so (UTXOView,
// NonceLedger); builds are pure functions of their inputs.
package wallet
