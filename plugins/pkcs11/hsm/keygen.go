package hsm

import (
	"context"
	"errors"
	"fmt"
	"unicode"

	"github.com/miekg/pkcs11"
)

// ErrKeyExists is returned by GenerateKey for an ID already on the token.
var ErrKeyExists = errors.New("pkcs11: a key with that id exists")

// GenerateKey creates a secp256k1 key pair on the token, labelled id
// (CKA_LABEL and CKA_ID): a token object whose private half is
// sensitive, not extractable and may only sign. It returns the 33-byte
// compressed public key. It reads the private key's attributes back and
// destroys the pair if the token did not honor them.
func (s *Signer) GenerateKey(ctx context.Context, id string) ([]byte, error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	if err := s.generate(ctx, id, secp256k1Params, false); err != nil {
		return nil, err
	}
	if err := s.loadKeys(ctx); err != nil {
		return nil, err
	}
	return s.PublicKey(ctx, id)
}

func validID(id string) error {
	if id == "" || len(id) > 64 {
		return fmt.Errorf("pkcs11: key id %q: 1 to 64 bytes", id)
	}
	for _, r := range id {
		if r > unicode.MaxASCII || !unicode.IsPrint(r) || r == ' ' {
			return fmt.Errorf("pkcs11: key id %q: printable ASCII without spaces only", id)
		}
	}
	return nil
}

// generate makes an EC key pair with the given CKA_EC_PARAMS; tests
// also make other curves' keys, and extractable ones, with it.
func (s *Signer) generate(ctx context.Context, id string, params []byte, extractable bool) (err error) {
	s.reload.Lock() // no listing, and no other generation, meanwhile
	defer s.reload.Unlock()
	sess, err := s.pool.get(ctx)
	if err != nil {
		return fmt.Errorf("pkcs11: generate key %q: %w", id, err)
	}
	defer func() { s.pool.put(sess, err) }()
	c, h := s.mod.ctx, sess.h
	existing, err := findAll(c, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, id)})
	if err != nil {
		return fmt.Errorf("pkcs11: generate key %q: %w", id, err)
	}
	if len(existing) > 0 {
		return fmt.Errorf("%w: %q", ErrKeyExists, id)
	}
	pubT := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, false),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true),
		pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, params),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, id),
		pkcs11.NewAttribute(pkcs11.CKA_ID, []byte(id)),
	}
	privT := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, extractable),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, false),
		pkcs11.NewAttribute(pkcs11.CKA_DERIVE, false),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, id),
		pkcs11.NewAttribute(pkcs11.CKA_ID, []byte(id)),
	}
	pub, priv, err := c.GenerateKeyPair(h, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_EC_KEY_PAIR_GEN, nil)}, pubT, privT)
	if err != nil {
		return fmt.Errorf("pkcs11: generate key %q: C_GenerateKeyPair: %w", id, err)
	}
	attrs, err := c.GetAttributeValue(h, priv, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, nil),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, nil),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, nil),
	})
	if err == nil && (!isTrue(attrs[0].Value) || !isTrue(attrs[1].Value) || isTrue(attrs[2].Value) != extractable) {
		err = errors.New("the token did not keep CKA_TOKEN, CKA_SENSITIVE and CKA_EXTRACTABLE as asked")
	}
	if err != nil {
		_ = c.DestroyObject(h, priv)
		_ = c.DestroyObject(h, pub)
		return fmt.Errorf("pkcs11: generate key %q: %w", id, err)
	}
	s.log.Info("pkcs11 key generated", "key_id", id)
	return nil
}
