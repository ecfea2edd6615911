package btc

import (
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"

	"github.com/cordonhq/cordon/internal/address"
)

// Network is what address encoding and node identity need to know about a
// Bitcoin network.
type Network struct {
	Name string
	// Genesis is the hash of block 0; an endpoint whose block 0 differs
	// serves another network and is never used.
	Genesis chainhash.Hash
	// PubKeyHashID and ScriptHashID are the base58 version bytes of P2PKH
	// and P2SH addresses; HRP is the bech32 prefix of segwit addresses.
	PubKeyHashID byte
	ScriptHashID byte
	HRP          string
	// CoinbaseMaturity is the confirmations a coinbase output needs
	// before it can be spent.
	CoinbaseMaturity uint16
}

// Networks lists the supported network names.
func Networks() []string { return address.BTCNetworks() }

// LookupNetwork returns the network called name.
func LookupNetwork(name string) (Network, error) {
	p, err := address.BTCParams(name)
	if err != nil {
		return Network{}, err
	}
	return Network{Name: name, Genesis: *p.GenesisHash, PubKeyHashID: p.PubKeyHashAddrID,
		ScriptHashID: p.ScriptHashAddrID, HRP: p.Bech32HRPSegwit, CoinbaseMaturity: p.CoinbaseMaturity}, nil
}

// Params returns btcd's parameters of the network.
func (n Network) Params() *chaincfg.Params {
	p, _ := address.BTCParams(n.Name)
	return p
}
