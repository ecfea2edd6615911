package address

import (
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/cordonhq/cordon/internal/chain"
)

// ErrInvalid is wrapped by every validation error.
var ErrInvalid = errors.New("invalid address")

// MaxLen bounds the input: no valid address is longer (bech32 is at most
// 90 characters).
const MaxLen = 100

// Normalize validates s as an address of chain c on network and returns
// its normal form. Errors wrap ErrInvalid and say what is wrong.
func Normalize(c chain.Chain, network, s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", fmt.Errorf("%w: empty", ErrInvalid)
	}
	if len(s) > MaxLen {
		return "", fmt.Errorf("%w: %d characters, longer than any address", ErrInvalid, len(s))
	}
	switch c {
	case chain.ETH:
		return normalizeETH(s)
	case chain.BTC:
		return normalizeBTC(network, s)
	}
	return "", fmt.Errorf("%w: unknown chain %q (want eth or btc)", ErrInvalid, c)
}

func normalizeETH(s string) (string, error) {
	if len(s) < 2 || (s[:2] != "0x" && s[:2] != "0X") {
		return "", fmt.Errorf("%w: %q: an Ethereum address starts with 0x", ErrInvalid, s)
	}
	h := s[2:]
	if len(h) != 40 {
		return "", fmt.Errorf("%w: %q: %d hex digits, want 40", ErrInvalid, s, len(h))
	}
	if _, err := hex.DecodeString(h); err != nil {
		return "", fmt.Errorf("%w: %q: not hexadecimal", ErrInvalid, s)
	}
	lower := strings.ToLower(h)
	if h != lower && h != strings.ToUpper(h) && h != checksumETH(lower) {
		return "", fmt.Errorf("%w: %q: bad EIP-55 checksum (mixed case must be %s)", ErrInvalid, s, "0x"+checksumETH(lower))
	}
	return "0x" + lower, nil
}

// checksumETH is the EIP-55 mixed-case form of a lowercase hex address.
func checksumETH(lower string) string {
	sum := crypto.Keccak256([]byte(lower))
	out := []byte(lower)
	for i, ch := range out {
		if ch >= 'a' && ch <= 'f' {
			nibble := sum[i/2] >> 4
			if i%2 == 1 {
				nibble = sum[i/2] & 0x0f
			}
			if nibble >= 8 {
				out[i] = ch - 'a' + 'A'
			}
		}
	}
	return string(out)
}

func normalizeBTC(network, s string) (string, error) {
	params, err := BTCParams(network)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	a, err := btcutil.DecodeAddress(s, params)
	if err != nil {
		return "", fmt.Errorf("%w: %q is not a %s address: %w", ErrInvalid, s, network, err)
	}
	if !a.IsForNet(params) {
		return "", fmt.Errorf("%w: %q is an address of another network than %s", ErrInvalid, s, network)
	}
	if _, ok := a.(*btcutil.AddressPubKey); ok {
		// Pay-to-pubkey outputs are recorded under their key's P2PKH address.
		return a.(*btcutil.AddressPubKey).AddressPubKeyHash().EncodeAddress(), nil
	}
	return a.EncodeAddress(), nil
}

var btcNetworks = map[string]*chaincfg.Params{
	"mainnet": &chaincfg.MainNetParams,
	"testnet": &chaincfg.TestNet3Params,
	"signet":  &chaincfg.SigNetParams,
	"regtest": &chaincfg.RegressionNetParams,
	"simnet":  &chaincfg.SimNetParams,
}

// BTCNetworks lists the supported Bitcoin network names.
func BTCNetworks() []string {
	out := make([]string, 0, len(btcNetworks))
	for n := range btcNetworks {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// BTCParams returns btcd's parameters of the Bitcoin network called name.
func BTCParams(name string) (*chaincfg.Params, error) {
	p, ok := btcNetworks[name]
	if !ok {
		return nil, fmt.Errorf("unknown bitcoin network %q (want one of %s)", name, strings.Join(BTCNetworks(), ", "))
	}
	return p, nil
}
