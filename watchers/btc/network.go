package btc

import (
	"fmt"
	"sort"
	"strings"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
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

var networks = map[string]*chaincfg.Params{
	"mainnet": &chaincfg.MainNetParams,
	"testnet": &chaincfg.TestNet3Params,
	"signet":  &chaincfg.SigNetParams,
	"regtest": &chaincfg.RegressionNetParams,
	"simnet":  &chaincfg.SimNetParams,
}

// Networks lists the supported network names.
func Networks() []string {
	out := make([]string, 0, len(networks))
	for n := range networks {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// LookupNetwork returns the network called name.
func LookupNetwork(name string) (Network, error) {
	p, ok := networks[name]
	if !ok {
		return Network{}, fmt.Errorf("unknown bitcoin network %q (want one of %s)", name, strings.Join(Networks(), ", "))
	}
	return Network{Name: name, Genesis: *p.GenesisHash, PubKeyHashID: p.PubKeyHashAddrID,
		ScriptHashID: p.ScriptHashAddrID, HRP: p.Bech32HRPSegwit, CoinbaseMaturity: p.CoinbaseMaturity}, nil
}

// Params returns btcd's parameters of the network.
func (n Network) Params() *chaincfg.Params { return networks[n.Name] }
