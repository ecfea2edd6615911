// Package btc follows Bitcoin nodes (bitcoind or btcd) over JSON-RPC with
// btcd's rpcclient in HTTP POST mode. It fetches raw blocks, checks them
// against their hash and merkle root and their header's proof of work
// (CheckWork: the target of its bits, the network's limit, the parent's
// bits), and normalizes them into cordon's
// event model: the block, its transactions, every output (with its address
// in the configured network's encoding) and every spent outpoint. Head
// following, backfill and reorg handling come from watchers/follow, endpoint
// failover and the quorum (which block a quorum of endpoints report at a
// height; HashesAt) from watchers/rpcpool.
package btc
