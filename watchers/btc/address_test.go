package btc_test

import (
	"encoding/hex"
	"math/rand/v2"
	"testing"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/txscript"
	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/watchers/btc"
)

// TestAddressesMatchBtcutil encodes random programs of every address type
// on every network and compares with btcutil's encoders.
func TestAddressesMatchBtcutil(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, name := range btc.Networks() {
		net, err := btc.LookupNetwork(name)
		require.NoError(t, err)
		params := net.Params()
		for i := range 2000 {
			h20 := make([]byte, 20)
			h32 := make([]byte, 32)
			for j := range h20 {
				h20[j] = byte(rng.IntN(256))
			}
			for j := range h32 {
				h32[j] = byte(rng.IntN(256))
			}
			if i%7 == 0 { // leading zero bytes become leading '1's
				h20[0], h20[1] = 0, 0
			}
			var addrs []btcutil.Address
			a1, _ := btcutil.NewAddressPubKeyHash(h20, params)
			a2, _ := btcutil.NewAddressScriptHashFromHash(h20, params)
			a3, _ := btcutil.NewAddressWitnessPubKeyHash(h20, params)
			a4, _ := btcutil.NewAddressWitnessScriptHash(h32, params)
			a5, _ := btcutil.NewAddressTaproot(h32, params)
			addrs = append(addrs, a1, a2, a3, a4, a5)
			for _, a := range addrs {
				script, err := txscript.PayToAddrScript(a)
				require.NoError(t, err)
				_, got := btc.ClassifyScript(script, &net)
				require.Equal(t, a.EncodeAddress(), got, "network %s script %x", name, script)
			}
		}
	}
}

// TestClassifyScript covers each script type, including the BIP 350 test
// vectors for witness versions without a defined meaning yet.
func TestClassifyScript(t *testing.T) {
	main, err := btc.LookupNetwork("mainnet")
	require.NoError(t, err)
	reg, err := btc.LookupNetwork("regtest")
	require.NoError(t, err)
	genesisKey := "04678afdb0fe5548271967f1a67130b7105cd6a828e03909a67962e0ea1f61deb649f6bc3f4cef38c4f35504e51ec112de5c384df7ba0b8d578a4c702b6bf11d5f"
	for _, tc := range []struct {
		name, script, typ, addr string
		net                     *btc.Network
	}{
		{"genesis p2pk", "41" + genesisKey + "ac", btc.ScriptP2PK, "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", &main},
		{"p2pkh", "76a914" + "62e907b15cbf27d5425399ebf6f0fb50ebb88f18" + "88ac", btc.ScriptP2PKH, "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", &main},
		{"p2wpkh bip173", "0014751e76e8199196d454941c45d1b3a323f1433bd6", btc.ScriptP2WPKH, "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", &main},
		{"p2wpkh regtest", "0014751e76e8199196d454941c45d1b3a323f1433bd6", btc.ScriptP2WPKH, "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080", &reg},
		{"v1 40 bytes bip350", "5128751e76e8199196d454941c45d1b3a323f1433bd6751e76e8199196d454941c45d1b3a323f1433bd6", btc.ScriptWitnessUnknown,
			"bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7kt5nd6y", &main},
		{"v16 bip350", "6002751e", btc.ScriptWitnessUnknown, "bc1sw50qgdz25j", &main},
		{"v2 bip350", "5210751e76e8199196d454941c45d1b3a323", btc.ScriptWitnessUnknown, "bc1zw508d6qejxtdg4y5r3zarvaryvaxxpcs", &main},
		{"op_return", "6a0b68656c6c6f20776f726c64", btc.ScriptOpReturn, "", &main},
		{"bare op_return", "6a", btc.ScriptOpReturn, "", &main},
		{"1-of-2 multisig", "5121" + "02" + repeat("11", 32) + "21" + "03" + repeat("22", 32) + "52ae", btc.ScriptMultisig, "", &main},
		{"multisig with wrong key count", "5121" + "02" + repeat("11", 32) + "53ae", btc.ScriptNonStandard, "", &main},
		{"empty", "", btc.ScriptNonStandard, "", &main},
		{"op_true", "51", btc.ScriptNonStandard, "", &main},
		{"v0 with 25-byte program", "0019" + repeat("00", 25), btc.ScriptNonStandard, "", &main},
		{"p2pk bad prefix", "21" + "05" + repeat("11", 32) + "ac", btc.ScriptNonStandard, "", &main},
	} {
		t.Run(tc.name, func(t *testing.T) {
			script, err := hex.DecodeString(tc.script)
			require.NoError(t, err)
			typ, addr := btc.ClassifyScript(script, tc.net)
			require.Equal(t, tc.typ, typ)
			require.Equal(t, tc.addr, addr)
		})
	}
}

func repeat(s string, n int) string {
	out := ""
	for range n {
		out += s
	}
	return out
}

func FuzzClassifyScript(f *testing.F) {
	f.Add([]byte{0x00, 0x14, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20})
	f.Add([]byte{0x51, 0x02, 0xff, 0xff})
	f.Add([]byte{0x51, 0x21, 0x02})
	net, _ := btc.LookupNetwork("mainnet")
	f.Fuzz(func(t *testing.T, script []byte) {
		typ, addr := btc.ClassifyScript(script, &net)
		if addr == "" {
			return
		}
		// Every address given must decode back to the same script.
		a, err := btcutil.DecodeAddress(addr, net.Params())
		if typ == btc.ScriptWitnessUnknown {
			return // btcutil decodes only witness versions 0 and 1
		}
		require.NoError(t, err, "type %s address %s", typ, addr)
		if typ == btc.ScriptP2PK {
			return // the address is the key's hash, not the script
		}
		back, err := txscript.PayToAddrScript(a)
		require.NoError(t, err)
		require.Equal(t, script, back)
	})
}
