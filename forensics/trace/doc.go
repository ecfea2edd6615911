// Package trace follows funds through the ClickHouse store hop by hop:
// forward from an address to where its coins went, or backward to where
// they came from. It reads only canonical rows (blocks whose newest event
// is block_added), keeps time order (funds leave an address only after
// they arrived), and stops at known sinks (our wallets, exchanges, flagged
// addresses) and at hubs (addresses with more transfers than a trace can
// follow meaningfully).
//
// Ethereum is traced by transfers (native and token). Bitcoin is traced by
// outputs: forward, the coins followed are exactly the outputs the
// previous hop created (all of the start address's outputs in the
// window); backward, the inputs of the transactions that paid the address.
package trace
