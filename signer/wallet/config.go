package wallet

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"math/big"
	"sort"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/signer/txcheck"
)

// Bitcoin wallet kinds.
const (
	KindP2WPKH = "p2wpkh" // one key
	KindP2WSH  = "p2wsh"  // a 2-of-3 CHECKMULTISIG, keys in BIP-67 order
)

// Config is the wallet section: the hot wallets, per chain and network.
type Config struct {
	BTC []BTCWallet `yaml:"btc"`
	ETH []ETHWallet `yaml:"eth"`
}

// KeyRef names one key a signer plugin holds, with the compressed
// public key (33 bytes, hex) the wallet's scripts are derived from: a
// plugin answering with another key is refused, never followed.
type KeyRef struct {
	Plugin    string `yaml:"plugin" json:"plugin"`
	KeyID     string `yaml:"key_id" json:"key_id"`
	PublicKey string `yaml:"public_key" json:"public_key"`
}

// pubKey parses the reference's public key.
func (k KeyRef) pubKey() (*btcec.PublicKey, error) {
	b, err := hex.DecodeString(k.PublicKey)
	if err != nil || len(b) != btcec.PubKeyBytesLenCompressed {
		return nil, fmt.Errorf("%q: want a 33-byte compressed public key in hex", k.PublicKey)
	}
	pk, err := btcec.ParsePubKey(b)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", k.PublicKey, err)
	}
	return pk, nil
}

// BTCWallet is one Bitcoin hot wallet. Change always goes back to the
// wallet's own script.
type BTCWallet struct {
	Name string `yaml:"name"`
	// Network is the chaincfg name: mainnet, testnet3, regtest, simnet.
	Network string `yaml:"network"`
	// Kind is p2wpkh (Keys has one key) or p2wsh (Keys has three: a
	// 2-of-3 multisig, OP_2 <k1> <k2> <k3> OP_3 OP_CHECKMULTISIG with the
	// compressed keys sorted bytewise, BIP 67).
	Kind string   `yaml:"kind"`
	Keys []KeyRef `yaml:"keys"`
	// MinConfirmations is the depth a coin needs before it is spent
	// (default 1; coinbase outputs need 100 whatever this says).
	MinConfirmations int `yaml:"min_confirmations"`
	// MaxFeeRate (sat/vbyte) and MaxFee (sat) cap a build: a higher rate
	// is refused (ErrFeeCap), not clamped.
	MaxFeeRate int64 `yaml:"max_fee_rate"`
	MaxFee     int64 `yaml:"max_fee"`
	// DustLimit: change below it goes to the fee (default 546 sat).
	DustLimit int64 `yaml:"dust_limit"`
}

// ETHWallet is one Ethereum hot wallet: an externally owned account.
type ETHWallet struct {
	Name    string `yaml:"name"`
	Network string `yaml:"network"`
	ChainID uint64 `yaml:"chain_id"`
	Key     KeyRef `yaml:"key"`
	// GasNative and GasToken are the most gas a native and an ERC-20
	// transfer may take (defaults 21000 and 100000): the limit BuildETH
	// gives a transfer the node estimates (the estimate and a quarter,
	// up to this), and the fixed limit when there is no estimate. A
	// transfer estimated above it is refused (ErrGasCap): a contract
	// destination that needs more than 21000, or a chain whose storage
	// writes cost more.
	GasNative uint64 `yaml:"gas_native"`
	GasToken  uint64 `yaml:"gas_token"`
	// MaxFeePerGas and MaxPriorityFeePerGas cap the fees, in wei
	// (decimal strings).
	MaxFeePerGas         string `yaml:"max_fee_per_gas"`
	MaxPriorityFeePerGas string `yaml:"max_priority_fee_per_gas"`
}

// Defaults.
const (
	DefaultDustLimit = 546
	DefaultGasNative = 21_000
	DefaultGasToken  = 100_000
	// CoinbaseMaturity is the depth a coinbase output needs.
	CoinbaseMaturity = 100
)

// Validate checks the section (key is "wallet"), naming each bad key,
// and fills in the defaults.
func (c *Config) Validate(p *config.Problems, key string) {
	names := map[string]bool{}
	for i := range c.BTC {
		w := &c.BTC[i]
		k := fmt.Sprintf("%s.btc[%d]", key, i)
		if w.Name == "" {
			p.Add(k+".name", "empty: name the wallet")
		} else if names["btc/"+w.Name] {
			p.Add(k+".name", "%q: named twice", w.Name)
		}
		names["btc/"+w.Name] = true
		w.validate(p, k)
	}
	for i := range c.ETH {
		w := &c.ETH[i]
		k := fmt.Sprintf("%s.eth[%d]", key, i)
		if w.Name == "" {
			p.Add(k+".name", "empty: name the wallet")
		} else if names["eth/"+w.Name] {
			p.Add(k+".name", "%q: named twice", w.Name)
		}
		names["eth/"+w.Name] = true
		w.validate(p, k)
	}
}

func (w *BTCWallet) validate(p *config.Problems, k string) {
	if _, err := btcParams(w.Network); err != nil {
		p.Add(k+".network", "%v", err)
	}
	want := 0
	switch w.Kind {
	case KindP2WPKH:
		want = 1
	case KindP2WSH:
		want = 3
	default:
		p.Add(k+".kind", "%q: want p2wpkh or p2wsh", w.Kind)
	}
	if want != 0 && len(w.Keys) != want {
		p.Add(k+".keys", "%d keys: a %s wallet has %d", len(w.Keys), w.Kind, want)
	}
	seen := map[string]bool{}
	for j, ref := range w.Keys {
		validateRef(p, fmt.Sprintf("%s.keys[%d]", k, j), ref)
		if pk, err := ref.pubKey(); err == nil {
			s := hex.EncodeToString(pk.SerializeCompressed())
			if seen[s] {
				p.Add(fmt.Sprintf("%s.keys[%d].public_key", k, j), "the same key twice: the multisig would need fewer parties")
			}
			seen[s] = true
		}
	}
	if w.MinConfirmations == 0 {
		w.MinConfirmations = 1
	}
	if w.MinConfirmations < 0 {
		p.Add(k+".min_confirmations", "%d: want at least 1", w.MinConfirmations)
	}
	if w.MaxFeeRate <= 0 {
		p.Add(k+".max_fee_rate", "%d: want a positive cap in sat/vbyte", w.MaxFeeRate)
	}
	if w.MaxFee <= 0 {
		p.Add(k+".max_fee", "%d: want a positive cap in sat", w.MaxFee)
	}
	if w.DustLimit == 0 {
		w.DustLimit = DefaultDustLimit
	}
	if w.DustLimit < 0 {
		p.Add(k+".dust_limit", "%d: want a positive amount", w.DustLimit)
	}
}

func (w *ETHWallet) validate(p *config.Problems, k string) {
	if w.Network == "" {
		p.Add(k+".network", "empty: name the network")
	}
	if w.ChainID == 0 {
		p.Add(k+".chain_id", "0: the chain id is always set (EIP-155)")
	}
	validateRef(p, k+".key", w.Key)
	if w.GasNative == 0 {
		w.GasNative = DefaultGasNative
	}
	if w.GasToken == 0 {
		w.GasToken = DefaultGasToken
	}
	if w.GasNative < 21_000 {
		p.Add(k+".gas_native", "%d: a transfer needs 21000", w.GasNative)
	}
	if w.GasToken < 21_000 {
		p.Add(k+".gas_token", "%d: a token transfer needs more than 21000", w.GasToken)
	}
	if _, err := weiCap(w.MaxFeePerGas); err != nil {
		p.Add(k+".max_fee_per_gas", "%v", err)
	}
	if _, err := weiCap(w.MaxPriorityFeePerGas); err != nil {
		p.Add(k+".max_priority_fee_per_gas", "%v", err)
	}
}

func validateRef(p *config.Problems, k string, ref KeyRef) {
	if ref.Plugin == "" {
		p.Add(k+".plugin", "empty: name the signer plugin")
	}
	if ref.KeyID == "" {
		p.Add(k+".key_id", "empty: name the plugin's key")
	}
	if _, err := ref.pubKey(); err != nil {
		p.Add(k+".public_key", "%v", err)
	}
}

func weiCap(s string) (*big.Int, error) {
	v, ok := new(big.Int).SetString(s, 10)
	if !ok || v.Sign() <= 0 || v.String() != s {
		return nil, fmt.Errorf("%q: want a positive decimal amount of wei", s)
	}
	return v, nil
}

func btcParams(network string) (*chaincfg.Params, error) {
	for _, p := range []*chaincfg.Params{&chaincfg.MainNetParams, &chaincfg.TestNet3Params, &chaincfg.RegressionNetParams, &chaincfg.SimNetParams} {
		if p.Name == network {
			return p, nil
		}
	}
	return nil, fmt.Errorf("%q: want mainnet, testnet3, regtest or simnet", network)
}

// BTCScript is a Bitcoin wallet's script, derived from config alone.
type BTCScript struct {
	Params *chaincfg.Params
	// PkScript is the output script (P2WPKH or P2WSH) and Address its
	// address.
	PkScript []byte
	Address  string
	// WitnessScript is the P2WSH multisig script (nil for P2WPKH).
	WitnessScript []byte
	// Keys are the wallet's keys in the script's order (for P2WSH, BIP 67
	// order: sorted by compressed public key), with their parsed keys.
	Keys    []KeyRef
	pubKeys []*btcec.PublicKey
}

// Script derives the wallet's script. The wallet must have been
// validated.
func (w *BTCWallet) Script() (*BTCScript, error) {
	params, err := btcParams(w.Network)
	if err != nil {
		return nil, fmt.Errorf("wallet %s: %w", w.Name, err)
	}
	type kp struct {
		ref KeyRef
		pk  *btcec.PublicKey
		b   []byte
	}
	keys := make([]kp, len(w.Keys))
	for i, ref := range w.Keys {
		pk, err := ref.pubKey()
		if err != nil {
			return nil, fmt.Errorf("wallet %s: key %d: %w", w.Name, i, err)
		}
		keys[i] = kp{ref, pk, pk.SerializeCompressed()}
	}
	s := &BTCScript{Params: params}
	switch {
	case w.Kind == KindP2WPKH && len(keys) == 1:
		addr, err := btcutil.NewAddressWitnessPubKeyHash(btcutil.Hash160(keys[0].b), params)
		if err != nil {
			return nil, err
		}
		s.Address = addr.EncodeAddress()
		if s.PkScript, err = txscript.PayToAddrScript(addr); err != nil {
			return nil, err
		}
	case w.Kind == KindP2WSH && len(keys) == 3:
		sort.Slice(keys, func(i, j int) bool { return bytes.Compare(keys[i].b, keys[j].b) < 0 })
		b := txscript.NewScriptBuilder().AddOp(txscript.OP_2)
		for _, k := range keys {
			b.AddData(k.b)
		}
		ws, err := b.AddOp(txscript.OP_3).AddOp(txscript.OP_CHECKMULTISIG).Script()
		if err != nil {
			return nil, err
		}
		h := sha256Sum(ws)
		addr, err := btcutil.NewAddressWitnessScriptHash(h[:], params)
		if err != nil {
			return nil, err
		}
		s.WitnessScript, s.Address = ws, addr.EncodeAddress()
		if s.PkScript, err = txscript.PayToAddrScript(addr); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("wallet %s: kind %q with %d keys", w.Name, w.Kind, len(keys))
	}
	for _, k := range keys {
		s.Keys = append(s.Keys, k.ref)
		s.pubKeys = append(s.pubKeys, k.pk)
	}
	return s, nil
}

// Own reports whether pkScript is the wallet's: txcheck.BTCPolicy.Own.
func (s *BTCScript) Own(pkScript []byte) bool { return bytes.Equal(pkScript, s.PkScript) }

// Address is the wallet's account address (lowercase 0x hex), derived
// from the configured public key.
func (w *ETHWallet) Address() (common.Address, error) {
	pk, err := w.Key.pubKey()
	if err != nil {
		return common.Address{}, fmt.Errorf("wallet %s: %w", w.Name, err)
	}
	return crypto.PubkeyToAddress(*pk.ToECDSA()), nil
}

// OwnAddresses are the addresses of every configured hot wallet, by
// chain ("btc", "eth") and network: what the address registry records
// as hot.
func (c *Config) OwnAddresses() (map[string]map[string][]string, error) {
	out := map[string]map[string][]string{"btc": {}, "eth": {}}
	for i := range c.BTC {
		s, err := c.BTC[i].Script()
		if err != nil {
			return nil, err
		}
		out["btc"][c.BTC[i].Network] = append(out["btc"][c.BTC[i].Network], s.Address)
	}
	for i := range c.ETH {
		a, err := c.ETH[i].Address()
		if err != nil {
			return nil, err
		}
		out["eth"][c.ETH[i].Network] = append(out["eth"][c.ETH[i].Network], lower(a))
	}
	return out, nil
}

// CheckPolicy is the txcheck policy of the wallet's own caps over s, its
// script (derived by the caller from this same config).
func (w *BTCWallet) CheckPolicy(s *BTCScript) txcheck.BTCPolicy {
	return txcheck.BTCPolicy{Params: s.Params, Own: s.Own, MaxFee: w.MaxFee, MaxFeeRate: w.MaxFeeRate}
}

// CheckPolicy is the txcheck policy of the wallet's own caps: its chain
// id, the larger of its gas limits and its fee caps. The wallet must
// have been validated.
func (w *ETHWallet) CheckPolicy() (txcheck.ETHPolicy, error) {
	maxFee, err := weiCap(w.MaxFeePerGas)
	if err != nil {
		return txcheck.ETHPolicy{}, fmt.Errorf("wallet %s: max_fee_per_gas: %w", w.Name, err)
	}
	maxTip, err := weiCap(w.MaxPriorityFeePerGas)
	if err != nil {
		return txcheck.ETHPolicy{}, fmt.Errorf("wallet %s: max_priority_fee_per_gas: %w", w.Name, err)
	}
	return txcheck.ETHPolicy{Network: w.Network, ChainID: w.ChainID, MaxGas: max(w.GasNative, w.GasToken),
		MaxFeePerGas: maxFee, MaxPriorityFeePerGas: maxTip}, nil
}
