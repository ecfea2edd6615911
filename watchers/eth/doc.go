// Package eth follows an Ethereum node (geth, erigon, reth, nethermind or a
// provider) over standard JSON-RPC and normalizes each block into the chain
// event model: the block, its transactions, native ETH transfers of
// successful transactions, contract creations, and ERC-20 / ERC-721
// transfers decoded from receipt logs.
//
// Replies are decoded by this package, not trusted: a block for another
// height, a header whose hash does not match, receipts of another block or
// malformed JSON is an error naming the endpoint, and the call moves to the
// next healthy endpoint of the Pool.
package eth
