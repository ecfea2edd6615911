package address

import (
	"crypto/sha256"
	"encoding/binary"

	"golang.org/x/crypto/ripemd160" //nolint:staticcheck,gosec // Bitcoin's HASH160 is RIPEMD-160 by definition.
)

// Script types of outputs. The names are short forms of Bitcoin Core's
// (pubkeyhash, scripthash, witness_v0_keyhash, witness_v0_scripthash,
// witness_v1_taproot, witness_unknown, pubkey, multisig, nulldata,
// nonstandard).
const (
	ScriptP2PKH          = "p2pkh"
	ScriptP2SH           = "p2sh"
	ScriptP2WPKH         = "p2wpkh"
	ScriptP2WSH          = "p2wsh"
	ScriptP2TR           = "p2tr"
	ScriptWitnessUnknown = "witness_unknown"
	ScriptP2PK           = "p2pk"
	ScriptMultisig       = "multisig"
	ScriptOpReturn       = "op_return"
	ScriptNonStandard    = "nonstandard"
)

// Script opcodes the classifier needs.
const (
	op0             = 0x00
	op1             = 0x51
	op16            = 0x60
	opReturn        = 0x6a
	opDup           = 0x76
	opEqual         = 0x87
	opEqualVerify   = 0x88
	opHash160       = 0xa9
	opCheckSig      = 0xac
	opCheckMultisig = 0xae
)

// ClassifyScript returns an output script's type and the address it pays,
// encoded for net ("" when the script has no address form). P2PK outputs
// are given the P2PKH address of their key, as block explorers show them.
func ClassifyScript(script []byte, net *BTCNetwork) (typ, addr string) {
	var buf [90]byte
	typ, a := AppendClassify(buf[:0], script, net)
	return typ, string(a)
}

// AppendClassify is ClassifyScript appending the address to dst; the
// address is dst's new bytes (none when the script has no address form).
// It is the watcher's hot path: no allocation per output.
func AppendClassify(dst, script []byte, net *BTCNetwork) (string, []byte) {
	n := len(script)
	switch {
	case n == 25 && script[0] == opDup && script[1] == opHash160 && script[2] == 20 && script[23] == opEqualVerify && script[24] == opCheckSig:
		return ScriptP2PKH, appendBase58Check(dst, net.PubKeyHashID, script[3:23])
	case n == 23 && script[0] == opHash160 && script[1] == 20 && script[22] == opEqual:
		return ScriptP2SH, appendBase58Check(dst, net.ScriptHashID, script[2:22])
	case n == 22 && script[0] == op0 && script[1] == 20:
		return ScriptP2WPKH, appendSegwit(dst, net.HRP, 0, script[2:])
	case n == 34 && script[0] == op0 && script[1] == 32:
		return ScriptP2WSH, appendSegwit(dst, net.HRP, 0, script[2:])
	case n == 34 && script[0] == op1 && script[1] == 32:
		return ScriptP2TR, appendSegwit(dst, net.HRP, 1, script[2:])
	case n >= 4 && n <= 42 && script[0] >= op1 && script[0] <= op16 && int(script[1]) == n-2:
		// BIP 141: a version byte and a 2 to 40 byte program. Versions 2 to
		// 16 (and v1 with another length) are not yet defined but already
		// have bech32m addresses (BIP 350).
		return ScriptWitnessUnknown, appendSegwit(dst, net.HRP, script[0]-op1+1, script[2:])
	case (n == 35 && script[0] == 33 && (script[1] == 2 || script[1] == 3) || n == 67 && script[0] == 65 && (script[1] == 4 || script[1] == 6 || script[1] == 7)) && script[n-1] == opCheckSig:
		return ScriptP2PK, appendBase58Check(dst, net.PubKeyHashID, hash160(script[1:n-1]))
	case n > 0 && script[0] == opReturn:
		return ScriptOpReturn, dst
	case isMultisig(script):
		return ScriptMultisig, dst
	}
	return ScriptNonStandard, dst
}

// isMultisig matches bare "m <keys> n OP_CHECKMULTISIG" with 1 ≤ m ≤ n ≤ 16
// and n compressed or uncompressed keys.
func isMultisig(s []byte) bool {
	if len(s) < 3 || s[len(s)-1] != opCheckMultisig {
		return false
	}
	m, n := s[0], s[len(s)-2]
	if m < op1 || m > op16 || n < op1 || n > op16 || m > n {
		return false
	}
	keys, i := 0, 1
	for i < len(s)-2 {
		l := int(s[i])
		if l != 33 && l != 65 || i+1+l > len(s)-2 {
			return false
		}
		i += 1 + l
		keys++
	}
	return keys == int(n-op1+1)
}

func hash160(b []byte) []byte {
	sum := sha256.Sum256(b)
	h := ripemd160.New() //nolint:gosec // consensus-defined, not a security choice
	h.Write(sum[:])
	return h.Sum(nil)
}

const b58Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

// appendBase58Check appends version ‖ payload ‖ checksum (payload ≤ 20
// bytes) in base58, the legacy address format.
func appendBase58Check(dst []byte, version byte, payload []byte) []byte {
	var buf [25]byte
	buf[0] = version
	n := 1 + copy(buf[1:21], payload)
	sum := sha256.Sum256(buf[:n])
	sum = sha256.Sum256(sum[:])
	n += copy(buf[n:], sum[:4])
	return appendBase58(dst, buf[:n])
}

// appendBase58 appends the base58 form of up to 25 bytes. The number is converted to limbs of
// base 58^5 (which fit 32 bits) 4 bytes at a time, then each limb to 5
// digits.
func appendBase58(dst, in []byte) []byte {
	const limbBase = 58 * 58 * 58 * 58 * 58
	zeros := 0
	for zeros < len(in) && in[zeros] == 0 {
		zeros++
	}
	var limbs [8]uint64 // least significant first; 25 bytes < 58^40
	nl := 0
	rest := in[zeros:]
	// Feed the first len%4 bytes, then 4 bytes at a time.
	feed := func(v uint64, shift uint) {
		carry := v
		for i := 0; i < nl; i++ {
			t := limbs[i]<<shift + carry
			limbs[i] = t % limbBase
			carry = t / limbBase
		}
		for carry > 0 {
			limbs[nl] = carry % limbBase
			carry /= limbBase
			nl++
		}
	}
	if h := len(rest) % 4; h > 0 {
		var v uint64
		for _, c := range rest[:h] {
			v = v<<8 | uint64(c)
		}
		feed(v, uint(8*h))
		rest = rest[h:]
	}
	for ; len(rest) > 0; rest = rest[4:] {
		feed(uint64(binary.BigEndian.Uint32(rest)), 32)
	}
	var out [40]byte
	p := len(out)
	for i := 0; i < nl; i++ {
		v := limbs[i]
		for j := 0; j < 5; j++ {
			p--
			out[p] = b58Alphabet[v%58]
			v /= 58
		}
	}
	for p < len(out) && out[p] == '1' { // leading zero digits of the top limb
		p++
	}
	for range zeros {
		p--
		out[p] = '1'
	}
	return append(dst, out[p:]...)
}

const bech32Charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"

// bech32Gen[t] is the XOR of the BCH generators selected by the 5 bits t
// shifted out of the checksum state (BIP 173), so one step is one lookup.
var bech32Gen = func() (t [32]uint32) {
	g := [5]uint32{0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3}
	for top := range t {
		for i := range g {
			if top>>i&1 == 1 {
				t[top] ^= g[i]
			}
		}
	}
	return t
}()

func bech32Polymod(v uint32, b byte) uint32 {
	return (v&0x1ffffff)<<5 ^ uint32(b) ^ bech32Gen[v>>25]
}

// hrpState is the checksum state after the expanded human-readable part.
func hrpState(hrp string) uint32 {
	chk := uint32(1)
	for i := 0; i < len(hrp); i++ {
		chk = bech32Polymod(chk, hrp[i]>>5)
	}
	chk = bech32Polymod(chk, 0)
	for i := 0; i < len(hrp); i++ {
		chk = bech32Polymod(chk, hrp[i]&31)
	}
	return chk
}

// appendSegwit appends the address of a witness program: bech32 for
// version 0 (BIP 173), bech32m for later versions (BIP 350).
func appendSegwit(dst []byte, hrp string, version byte, program []byte) []byte {
	var data [66]byte // version + ≤ 40 bytes as 5-bit groups (64)
	data[0] = version
	nd := 1
	var acc uint32
	bits := 0
	for _, b := range program {
		acc = acc<<8 | uint32(b)
		bits += 8
		for bits >= 5 {
			bits -= 5
			data[nd] = byte(acc >> bits & 31)
			nd++
		}
	}
	if bits > 0 {
		data[nd] = byte(acc << (5 - bits) & 31)
		nd++
	}
	chk := hrpState(hrp)
	for _, d := range data[:nd] {
		chk = bech32Polymod(chk, d)
	}
	for range 6 {
		chk = bech32Polymod(chk, 0)
	}
	if version == 0 {
		chk ^= 1
	} else {
		chk ^= 0x2bc830a3
	}
	out := append(dst, hrp...)
	out = append(out, '1')
	for _, d := range data[:nd] {
		out = append(out, bech32Charset[d])
	}
	for i := range 6 {
		out = append(out, bech32Charset[chk>>(5*(5-i))&31])
	}
	return out
}
