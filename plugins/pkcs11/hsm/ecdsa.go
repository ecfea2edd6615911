package hsm

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"

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

	want := pub.SerializeCompressed()
	found := -1
	compact := make([]byte, 65)
	copy(compact[1:33], sig.R[:])
	copy(compact[33:], sig.S[:])
	for v := range 2 {
		compact[0] = byte(27 + 4 + v) // compressed key, recovery id v
		got, _, err := ecdsa.RecoverCompact(compact, digest[:])
		if err == nil && bytes.Equal(got.SerializeCompressed(), want) {
			found = v
			break
		}
	}
	if found < 0 {
		return sdk.Signature{}, false, errors.New("token's signature does not recover the key's public key with V 0 or 1")
	}
	sig.V = byte(found)
	if !ecdsa.NewSignature(&r, &s).Verify(digest[:], pub) {
		return sdk.Signature{}, false, errors.New("token's signature does not verify under the key's public key")
	}
	return sig, wasHighS, nil
}
