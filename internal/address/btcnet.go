package address

import (
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
)

// BTCNetwork is what address encoding and node identity need to know
// about a Bitcoin network.
type BTCNetwork struct {
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

// LookupBTC returns the Bitcoin network called name.
func LookupBTC(name string) (BTCNetwork, error) {
	p, err := BTCParams(name)
	if err != nil {
		return BTCNetwork{}, err
	}
	return BTCNetwork{Name: name, Genesis: *p.GenesisHash, PubKeyHashID: p.PubKeyHashAddrID,
		ScriptHashID: p.ScriptHashAddrID, HRP: p.Bech32HRPSegwit, CoinbaseMaturity: p.CoinbaseMaturity}, nil
}

// Params returns btcd's parameters of the network.
func (n BTCNetwork) Params() *chaincfg.Params {
	p, _ := BTCParams(n.Name)
	return p
}
