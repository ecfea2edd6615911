// Package address validates and normalizes the addresses cordon accepts
// from people and files (trace start points, sink lists, and later
// indicator feeds and the deposit registry), in the form the watchers
// write them: Ethereum as lowercase 0x hex, Bitcoin as the network's
// base58check or lowercase bech32/bech32m encoding.
package address
