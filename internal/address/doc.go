// Package address validates and normalizes the addresses cordon accepts
// from people, files, partners and APIs (trace start points, sink lists,
// indicator feeds, the address registry, withdrawals), in the form the
// watchers write them: Ethereum as lowercase 0x hex, Bitcoin as the
// network's base58check or lowercase bech32/bech32m encoding. It also
// holds the Bitcoin networks' parameters and the output-script classifier
// that turns a script into its type and address (ClassifyScript), shared
// by the watcher and the analysts' reconcile.
package address
