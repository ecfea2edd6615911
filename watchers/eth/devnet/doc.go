// Package devnet runs the Ethereum development chain of `cordon dev` and of
// the integration tests: go-ethereum's own node and execution engine driven
// by its simulated beacon (the pieces behind ethclient/simulated), serving
// real HTTP and WebSocket JSON-RPC on loopback, so the watcher talks to it
// exactly as it talks to a production node. Unlike ethclient/simulated, the
// chain can live in a data directory and survive a restart.
//
// Traffic generates ETH payments, ERC-20 and ERC-721 transfers, failed
// transactions, contract creations and short reorganizations.
package devnet
