package btc

import (
	"github.com/cordonhq/cordon/internal/address"
)

// Network is what address encoding and node identity need to know about a
// Bitcoin network (defined with the address encoding in internal/address).
type Network = address.BTCNetwork

// Networks lists the supported network names.
func Networks() []string { return address.BTCNetworks() }

// LookupNetwork returns the network called name.
func LookupNetwork(name string) (Network, error) { return address.LookupBTC(name) }
