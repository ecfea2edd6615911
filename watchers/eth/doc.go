// Package eth follows an Ethereum node (geth, erigon, reth, nethermind or a
// provider) over standard JSON-RPC and normalizes each block into the chain
// event model: the block, its transactions, native ETH transfers of
// successful transactions, contract creations, and ERC-20 / ERC-721
// transfers decoded from receipt logs.
//
// Replies are decoded by this package, not trusted: a block for another
// height, a header whose hash does not match, receipts of another block or
// malformed JSON is an error naming the endpoint, and the call moves to the
// next healthy endpoint of the Pool. Transactions and receipts are checked
// against the header's roots, and a receipt after Byzantium must have a
// status. With a quorum above 1 (the default with three endpoints or more)
// the block at a height is the one whose hash a quorum of endpoints report
// (HashesAt gives each endpoint's answer).
package eth
