package hsm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/miekg/pkcs11"

	"github.com/cordonhq/cordon/plugins/sdk"
)

// Name and Version of the plugin, as Describe gives them.
const (
	Name    = "pkcs11"
	Version = "0.1.0"
)

// Signer signs with the secp256k1 keys of one PKCS#11 token. Its keys
// are the token's EC private keys on secp256k1 that may sign, are
// sensitive and not extractable, and have a label (the key's ID) and a
// matching public key object; any other object is ignored.
type Signer struct {
	cfg  Config
	log  *slog.Logger
	mod  *module
	slot uint
	pool *pool

	// keysMu guards keys, the token's keys by ID as last listed; reload
	// serializes listings and key generation.
	keysMu sync.RWMutex
	keys   map[string]*key
	reload sync.Mutex

	closeOnce sync.Once
	// highS counts the token's signatures that came back with a high s
	// (and were normalized); signed counts the signatures returned.
	highS, signed atomic.Uint64
}

type key struct {
	id   string
	priv pkcs11.ObjectHandle
	pub  *btcec.PublicKey
	// dup: more than one usable private key carries this label.
	dup int
}

// New opens the token cfg names, logs in with the PIN from cfg.PINFile
// and opens cfg.PoolSize sessions. A nil log discards.
func New(cfg Config, log *slog.Logger) (*Signer, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.PoolSize < 1 || cfg.PoolSize > MaxPoolSize {
		return nil, fmt.Errorf("pkcs11: -pool-size: %d is not within 1..%d", cfg.PoolSize, MaxPoolSize)
	}
	pin, err := readPIN(cfg.PINFile)
	if err != nil {
		return nil, fmt.Errorf("pkcs11: %w", err)
	}
	mod, err := openModule(cfg.Module)
	if err != nil {
		return nil, fmt.Errorf("pkcs11: %w", err)
	}
	slot, err := findSlot(mod.ctx, cfg)
	if err != nil {
		mod.release()
		return nil, fmt.Errorf("pkcs11: %w", err)
	}
	p, err := newPool(mod.ctx, slot, pin, cfg.PoolSize)
	if err != nil {
		mod.release()
		return nil, fmt.Errorf("pkcs11: token in slot %d: %w", slot, err)
	}
	s := &Signer{cfg: cfg, log: log, mod: mod, slot: slot, pool: p}
	if err := s.loadKeys(context.Background()); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the sessions, waiting for the calls using them, and
// unloads the library when no other Signer uses it.
func (s *Signer) Close() {
	s.closeOnce.Do(func() {
		s.pool.closeAll()
		s.mod.release()
	})
}

// Describe lists the token's keys, read afresh.
func (s *Signer) Describe(ctx context.Context) (sdk.Description, error) {
	if err := s.loadKeys(ctx); err != nil {
		return sdk.Description{}, err
	}
	s.keysMu.RLock()
	defer s.keysMu.RUnlock()
	d := sdk.Description{Name: Name, Version: Version, Capabilities: []string{sdk.CapSign}}
	for _, k := range s.keys {
		if k.dup > 1 {
			continue
		}
		d.Keys = append(d.Keys, sdk.KeyInfo{
			ID:        k.id,
			Curve:     sdk.CurveSecp256k1,
			PublicKey: k.pub.SerializeCompressed(),
			Networks:  slices.Clone(s.cfg.Networks),
		})
	}
	slices.SortFunc(d.Keys, func(a, b sdk.KeyInfo) int { return strings.Compare(a.ID, b.ID) })
	return d, nil
}

// PublicKey is keyID's 33-byte compressed public key.
func (s *Signer) PublicKey(ctx context.Context, keyID string) ([]byte, error) {
	k, err := s.key(ctx, keyID)
	if err != nil {
		return nil, err
	}
	return k.pub.SerializeCompressed(), nil
}

// Sign signs req.Digest on the token with CKM_ECDSA and returns the
// signature low-S, with its recovery id, verified.
func (s *Signer) Sign(ctx context.Context, req sdk.SignRequest) (sdk.Signature, error) {
	if req.KeyID == "" {
		return sdk.Signature{}, fmt.Errorf("pkcs11: sign: %w: no key id", sdk.ErrBadRequest)
	}
	if !s.cfg.allows(req.Context.Chain, req.Context.Network) {
		return sdk.Signature{}, fmt.Errorf("pkcs11: sign with %q: %w: network %s/%s is not in -networks",
			req.KeyID, sdk.ErrRefused, req.Context.Chain, req.Context.Network)
	}
	k, err := s.key(ctx, req.KeyID)
	if err != nil {
		return sdk.Signature{}, err
	}
	var raw []byte
	for attempt := 0; ; attempt++ {
		raw, err = s.signRaw(ctx, k, req.Digest)
		if err == nil || attempt > 0 {
			break
		}
		switch {
		case sessionLost(err):
			s.log.Warn("pkcs11 session lost; replaced", "key_id", k.id, "err", err)
		case errors.Is(err, pkcs11.Error(pkcs11.CKR_KEY_HANDLE_INVALID)),
			errors.Is(err, pkcs11.Error(pkcs11.CKR_OBJECT_HANDLE_INVALID)):
			if k, err = s.key(ctx, req.KeyID, true); err != nil {
				return sdk.Signature{}, err
			}
		default:
			return sdk.Signature{}, fmt.Errorf("pkcs11: sign with %q: %w", k.id, err)
		}
	}
	if err != nil {
		return sdk.Signature{}, fmt.Errorf("pkcs11: sign with %q: %w", k.id, err)
	}
	sig, high, err := finish(raw, req.Digest, k.pub)
	if err != nil {
		s.log.Error("pkcs11 token returned a signature that does not check", "key_id", k.id, "err", err)
		return sdk.Signature{}, fmt.Errorf("pkcs11: sign with %q: %w", k.id, err)
	}
	if high {
		s.highS.Add(1)
	}
	s.signed.Add(1)
	return sig, nil
}

func (s *Signer) signRaw(ctx context.Context, k *key, digest [32]byte) (raw []byte, err error) {
	sess, err := s.pool.get(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { s.pool.put(sess, err) }()
	if err = s.mod.ctx.SignInit(sess.h, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_ECDSA, nil)}, k.priv); err != nil {
		return nil, fmt.Errorf("C_SignInit: %w", err)
	}
	raw, err = s.mod.ctx.Sign(sess.h, digest[:])
	if err != nil {
		return nil, fmt.Errorf("C_Sign: %w", err)
	}
	return raw, nil
}

// key returns keyID, listing the token's keys again when it is not
// known (a key generated since) or when fresh is given.
func (s *Signer) key(ctx context.Context, keyID string, fresh ...bool) (*key, error) {
	if keyID == "" {
		return nil, fmt.Errorf("pkcs11: %w: no key id", sdk.ErrBadRequest)
	}
	s.keysMu.RLock()
	k := s.keys[keyID]
	s.keysMu.RUnlock()
	if k == nil || len(fresh) > 0 {
		if err := s.loadKeys(ctx); err != nil {
			return nil, err
		}
		s.keysMu.RLock()
		k = s.keys[keyID]
		s.keysMu.RUnlock()
	}
	switch {
	case k == nil:
		return nil, fmt.Errorf("pkcs11: key %q: %w (no secp256k1 signing key with that label on the token)", keyID, sdk.ErrUnknownKey)
	case k.dup > 1:
		return nil, fmt.Errorf("pkcs11: key %q: %w: %d private keys carry that label", keyID, sdk.ErrRefused, k.dup)
	}
	return k, nil
}

// loadKeys lists the token's usable keys into s.keys.
func (s *Signer) loadKeys(ctx context.Context) (err error) {
	s.reload.Lock()
	defer s.reload.Unlock()
	sess, err := s.pool.get(ctx)
	if err != nil {
		return fmt.Errorf("pkcs11: list keys: %w", err)
	}
	defer func() { s.pool.put(sess, err) }()
	keys, err := s.listKeys(sess.h)
	if err != nil {
		return fmt.Errorf("pkcs11: list keys: %w", err)
	}
	s.keysMu.Lock()
	s.keys = keys
	s.keysMu.Unlock()
	return nil
}

func (s *Signer) listKeys(h pkcs11.SessionHandle) (map[string]*key, error) {
	c := s.mod.ctx
	privs, err := findAll(c, h, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC),
	})
	if err != nil {
		return nil, err
	}
	keys := map[string]*key{}
	for _, o := range privs {
		attrs, err := c.GetAttributeValue(h, o, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, nil),
			pkcs11.NewAttribute(pkcs11.CKA_ID, nil),
			pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, nil),
			pkcs11.NewAttribute(pkcs11.CKA_SIGN, nil),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, nil),
			pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, nil),
		})
		if err != nil {
			return nil, fmt.Errorf("C_GetAttributeValue(private key %d): %w", o, err)
		}
		label, id, params := string(attrs[0].Value), attrs[1].Value, attrs[2].Value
		switch {
		case label == "":
			continue
		case !bytes.Equal(params, secp256k1Params):
			s.log.Debug("pkcs11 key not on secp256k1; ignored", "key_id", label)
			continue
		case !isTrue(attrs[3].Value):
			s.log.Warn("pkcs11 key may not sign; ignored", "key_id", label)
			continue
		case !isTrue(attrs[4].Value) || isTrue(attrs[5].Value):
			s.log.Warn("pkcs11 key is not sensitive or is extractable; ignored", "key_id", label)
			continue
		}
		pub, err := s.publicKey(h, label, id)
		if err != nil {
			s.log.Warn("pkcs11 key has no usable public key; ignored", "key_id", label, "err", err)
			continue
		}
		if k := keys[label]; k != nil {
			k.dup++
			continue
		}
		keys[label] = &key{id: label, priv: o, pub: pub, dup: 1}
	}
	return keys, nil
}

// publicKey finds the one public key object matching a private key
// (by CKA_ID, or by label when it has none) and reads its point.
func (s *Signer) publicKey(h pkcs11.SessionHandle, label string, id []byte) (*btcec.PublicKey, error) {
	c := s.mod.ctx
	tmpl := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC),
	}
	if len(id) > 0 {
		tmpl = append(tmpl, pkcs11.NewAttribute(pkcs11.CKA_ID, id))
	} else {
		tmpl = append(tmpl, pkcs11.NewAttribute(pkcs11.CKA_LABEL, label))
	}
	objs, err := findAll(c, h, tmpl)
	if err != nil {
		return nil, err
	}
	if len(objs) != 1 {
		return nil, fmt.Errorf("%d public key objects match", len(objs))
	}
	attrs, err := c.GetAttributeValue(h, objs[0], []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, nil),
		pkcs11.NewAttribute(pkcs11.CKA_EC_POINT, nil),
	})
	if err != nil {
		return nil, fmt.Errorf("C_GetAttributeValue(public key): %w", err)
	}
	if !bytes.Equal(attrs[0].Value, secp256k1Params) {
		return nil, errors.New("public key is not on secp256k1")
	}
	return unwrapECPoint(attrs[1].Value)
}

func findAll(c *pkcs11.Ctx, h pkcs11.SessionHandle, tmpl []*pkcs11.Attribute) ([]pkcs11.ObjectHandle, error) {
	if err := c.FindObjectsInit(h, tmpl); err != nil {
		return nil, fmt.Errorf("C_FindObjectsInit: %w", err)
	}
	var all []pkcs11.ObjectHandle
	for {
		objs, _, err := c.FindObjects(h, 64)
		if err != nil {
			_ = c.FindObjectsFinal(h)
			return nil, fmt.Errorf("C_FindObjects: %w", err)
		}
		all = append(all, objs...)
		if len(objs) == 0 {
			break
		}
	}
	if err := c.FindObjectsFinal(h); err != nil {
		return nil, fmt.Errorf("C_FindObjectsFinal: %w", err)
	}
	return all, nil
}

func isTrue(v []byte) bool { return len(v) == 1 && v[0] != 0 }
