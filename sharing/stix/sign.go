package stix

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cordonhq/cordon/internal/jcs"
	"github.com/cordonhq/cordon/internal/recordauth"
)

// SignatureProperty is the member holding an object's signature.
const SignatureProperty = "x_cordon_signature"

// Signature errors.
var (
	ErrUnsigned         = errors.New("object is not signed")
	ErrBadSignature     = errors.New("signature does not verify")
	ErrUnknownSigner    = errors.New("unknown signing key")
	ErrIdentityMismatch = errors.New("created_by_ref is not the signing key's identity")
)

// Signature is the value of x_cordon_signature: alg "ed25519", key the
// key id (recordauth.KeyID: hex of the first 8 bytes of the public
// key's SHA-256), sig the base64url (no padding) Ed25519 signature of
// the RFC 8785 form of the object without x_cordon_signature.
type Signature struct {
	Alg string `json:"alg"`
	Key string `json:"key"`
	Sig string `json:"sig"`
}

// SigningKey is the publishing exchange's key and STIX identity.
type SigningKey struct {
	Identity string
	Key      ed25519.PrivateKey
}

// Signer is who signed a verified object.
type Signer struct {
	Identity string
	KeyID    string
}

// KeyLookup finds a trusted key by id, with the identity it signs for.
type KeyLookup interface {
	LookupKey(keyID string) (identity string, pub ed25519.PublicKey, ok bool)
}

// message splits raw into its members without the signature and
// returns the signed bytes.
func message(raw []byte) (map[string]json.RawMessage, json.RawMessage, []byte, error) {
	if _, err := jcs.Transform(raw); err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, nil, nil, fmt.Errorf("%w: not a JSON object: %w", ErrMalformed, err)
	}
	sig := m[SignatureProperty]
	delete(m, SignatureProperty)
	b, err := jcs.Marshal(m)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return m, sig, b, nil
}

func createdBy(m map[string]json.RawMessage) string {
	var s string
	_ = json.Unmarshal(m["created_by_ref"], &s)
	return s
}

// Sign signs raw (replacing any signature) with k and returns the
// object's RFC 8785 form with x_cordon_signature. created_by_ref must be
// k's identity.
func Sign(raw []byte, k SigningKey) ([]byte, error) {
	m, _, msg, err := message(raw)
	if err != nil {
		return nil, err
	}
	if got := createdBy(m); got != k.Identity {
		return nil, fmt.Errorf("sign: %w: created_by_ref %q, key of %q", ErrIdentityMismatch, got, k.Identity)
	}
	pub, _ := k.Key.Public().(ed25519.PublicKey)
	s := Signature{Alg: "ed25519", Key: recordauth.KeyID(pub), Sig: base64.RawURLEncoding.EncodeToString(ed25519.Sign(k.Key, msg))}
	sb, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	m[SignatureProperty] = sb
	return jcs.Marshal(m)
}

// Verify checks raw's signature with keys and that the key signs for
// the object's created_by_ref.
func Verify(raw []byte, keys KeyLookup) (Signer, error) {
	s, _, err := VerifyHash(raw, keys)
	return s, err
}

// VerifyHash is Verify, also returning the SHA-256 of the bytes signed
// (the object's RFC 8785 form without its signature; one
// canonicalization for both): two objects with the same hash are the
// same version, however they were signed, so a holder keeps the hash to
// tell a duplicate from a conflict without keeping the object.
func VerifyHash(raw []byte, keys KeyLookup) (Signer, [32]byte, error) {
	m, sb, msg, err := message(raw)
	if err != nil {
		return Signer{}, [32]byte{}, err
	}
	s, err := verify(m, sb, msg, keys)
	return s, sha256.Sum256(msg), err
}

func verify(m map[string]json.RawMessage, sb json.RawMessage, msg []byte, keys KeyLookup) (Signer, error) {
	if sb == nil {
		return Signer{}, ErrUnsigned
	}
	var s Signature
	if err := json.Unmarshal(sb, &s); err != nil || s.Alg != "ed25519" {
		return Signer{}, fmt.Errorf("%w: %s: want {\"alg\":\"ed25519\",\"key\":…,\"sig\":…}", ErrBadSignature, SignatureProperty)
	}
	id, pub, ok := keys.LookupKey(s.Key)
	if !ok {
		return Signer{}, fmt.Errorf("%w: key %q", ErrUnknownSigner, s.Key)
	}
	sig, err := base64.RawURLEncoding.DecodeString(s.Sig)
	if err != nil || len(sig) != ed25519.SignatureSize || !ed25519.Verify(pub, msg, sig) {
		return Signer{}, fmt.Errorf("%w: key %s", ErrBadSignature, s.Key)
	}
	if got := createdBy(m); got != id {
		return Signer{}, fmt.Errorf("%w: created_by_ref %q, key %s signs for %q", ErrIdentityMismatch, got, s.Key, id)
	}
	return Signer{Identity: id, KeyID: s.Key}, nil
}
