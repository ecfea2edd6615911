package hsm

import (
	"errors"
	"fmt"

	"github.com/btcsuite/btcd/btcec/v2"

	"github.com/cordonhq/cordon/plugins/sdk"
)

// secp256k1Params is CKA_EC_PARAMS for secp256k1: the DER of its named
// curve OID, 1.3.132.0.10.
var secp256k1Params = []byte{0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a}

// unwrapECPoint reads CKA_EC_POINT as PKCS#11 v2.20+ defines it: a DER
// OCTET STRING around the 65-byte uncompressed SEC1 point, nothing else
// (no raw point, no long-form length, no trailing bytes), and the point
// on secp256k1.
func unwrapECPoint(der []byte) (*btcec.PublicKey, error) {
	if len(der) != 2+65 || der[0] != 0x04 || der[1] != 65 {
		return nil, fmt.Errorf("CKA_EC_POINT: not a DER OCTET STRING of a 65-byte point (%d bytes)", len(der))
	}
	if der[2] != 0x04 {
		return nil, errors.New("CKA_EC_POINT: not an uncompressed point")
	}
	pub, err := btcec.ParsePubKey(der[2:])
	if err != nil {
		return nil, fmt.Errorf("CKA_EC_POINT: %w", err)
	}
	return pub, nil
}

// finish turns the token's raw reply into a checked sdk.Signature for
// digest under pub: it refuses a reply that is not exactly r‖s with
// 0 < r, s < n, brings s into the lower half (reporting whether it had
// to), finds V by recovering pub, and verifies the result.
func finish(raw []byte, digest [32]byte, pub *btcec.PublicKey) (sig sdk.Signature, wasHighS bool, err error) {
	if len(raw) != 64 {
		return sdk.Signature{}, false, fmt.Errorf("token returned a %d-byte signature, not r‖s of 64", len(raw))
	}
	var r, s btcec.ModNScalar
	if r.SetByteSlice(raw[:32]) || r.IsZero() {
		return sdk.Signature{}, false, errors.New("token returned r = 0 or r ≥ n")
	}
	if s.SetByteSlice(raw[32:]) || s.IsZero() {
		return sdk.Signature{}, false, errors.New("token returned s = 0 or s ≥ n")
	}
	if s.IsOverHalfOrder() {
		s.Negate()
		wasHighS = true
	}
	r.PutBytes(&sig.R)
	s.PutBytes(&sig.S)

	v, ok := recoveryID(&r, &s, digest, pub)
	if !ok {
		return sdk.Signature{}, false, errors.New("token's signature does not verify under the key's public key")
	}
	sig.V = v
	return sig, wasHighS, nil
}

// recoveryID verifies (r, s) over digest under pub and returns the
// recovery id at once: ECDSA verification computes the point
// R = (e·s⁻¹)·G + (r·s⁻¹)·Q and accepts when x(R) mod n = r; the parity
// of R's y is the recovery id. One double scalar multiplication, where
// recovering with V 0 and 1 and then verifying took three. A signature
// whose x(R) is at least n (recovery id 2 or 3, probability about
// 2⁻¹²⁸) is refused: Ethereum and this contract take V 0 or 1 only.
func recoveryID(r, s *btcec.ModNScalar, digest [32]byte, pub *btcec.PublicKey) (byte, bool) {
	var e btcec.ModNScalar
	e.SetByteSlice(digest[:]) // a 32-byte digest, reduced mod n as ECDSA does
	w := new(btcec.ModNScalar).InverseValNonConst(s)
	u1 := new(btcec.ModNScalar).Mul2(&e, w)
	u2 := new(btcec.ModNScalar).Mul2(r, w)
	var q, p1, p2, pt btcec.JacobianPoint
	pub.AsJacobian(&q)
	btcec.ScalarBaseMultNonConst(u1, &p1)
	btcec.ScalarMultNonConst(u2, &q, &p2)
	btcec.AddNonConst(&p1, &p2, &pt)
	if pt.Z.IsZero() {
		return 0, false // the point at infinity
	}
	pt.ToAffine()
	var x btcec.ModNScalar
	if overflow := x.SetBytes(pt.X.Bytes()); overflow != 0 || !x.Equals(r) {
		return 0, false
	}
	if pt.Y.IsOdd() {
		return 1, true
	}
	return 0, true
}
