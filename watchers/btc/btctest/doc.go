// Package btctest starts btcd nodes for tests.
package btctest
