// Package keys is devkey's logic: named secp256k1 keys in a local JSON
// file, signing only for dev and test networks. For development only:
// the keys sit unencrypted on disk.
package keys

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"

	"github.com/cordonhq/cordon/plugins/sdk"
)

// Networks devkey signs for; any other (mainnet) is refused.
var Networks = []string{"devnet", "simnet", "regtest", "testnet", "sepolia", "holesky"}

type fileKey struct {
	ID         string `json:"id"`
	PrivateKey string `json:"private_key"`
}

type file struct {
	Keys []fileKey `json:"keys"`
}

// Generate writes a new key file at path (0600, never over an existing
// file) with one fresh key per name.
func Generate(path string, names []string) error {
	if len(names) == 0 {
		return errors.New("keygen: no key names")
	}
	var f file
	for _, n := range names {
		k, err := btcec.NewPrivateKey()
		if err != nil {
			return fmt.Errorf("keygen: %w", err)
		}
		f.Keys = append(f.Keys, fileKey{ID: n, PrivateKey: hex.EncodeToString(k.Serialize())})
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	if _, err := out.Write(b); err != nil {
		_ = out.Close()
		return fmt.Errorf("keygen: %w", err)
	}
	return out.Close()
}

// Signer is devkey's sdk.Signer.
type Signer struct {
	ids  []string
	keys map[string]*btcec.PrivateKey
}

var _ sdk.Signer = (*Signer)(nil)

// Load reads a key file.
func Load(path string) (*Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load keys: %w", err)
	}
	var f file
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("load keys %s: %w", path, err)
	}
	s := &Signer{keys: map[string]*btcec.PrivateKey{}}
	for _, k := range f.Keys {
		raw, err := hex.DecodeString(k.PrivateKey)
		if err != nil || len(raw) != 32 || k.ID == "" {
			return nil, fmt.Errorf("load keys %s: key %q is malformed", path, k.ID)
		}
		if _, dup := s.keys[k.ID]; dup {
			return nil, fmt.Errorf("load keys %s: key %q twice", path, k.ID)
		}
		priv, _ := btcec.PrivKeyFromBytes(raw)
		s.keys[k.ID] = priv
		s.ids = append(s.ids, k.ID)
	}
	return s, nil
}

// Describe lists the keys.
func (s *Signer) Describe(ctx context.Context) (sdk.Description, error) {
	if err := ctx.Err(); err != nil {
		return sdk.Description{}, err
	}
	d := sdk.Description{Name: "devkey", Version: "0.1.0", Capabilities: []string{sdk.CapSign}}
	for _, id := range s.ids {
		d.Keys = append(d.Keys, sdk.KeyInfo{ID: id, Curve: sdk.CurveSecp256k1,
			PublicKey: s.keys[id].PubKey().SerializeCompressed(), Networks: slices.Clone(Networks)})
	}
	return d, nil
}

// PublicKey returns keyID's compressed key.
func (s *Signer) PublicKey(ctx context.Context, keyID string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	k, ok := s.keys[keyID]
	if !ok {
		return nil, fmt.Errorf("%w: %q", sdk.ErrUnknownKey, keyID)
	}
	return k.PubKey().SerializeCompressed(), nil
}

// Sign signs for dev and test networks only.
func (s *Signer) Sign(ctx context.Context, req sdk.SignRequest) (sdk.Signature, error) {
	if err := ctx.Err(); err != nil {
		return sdk.Signature{}, err
	}
	k, ok := s.keys[req.KeyID]
	if !ok {
		return sdk.Signature{}, fmt.Errorf("%w: %q", sdk.ErrUnknownKey, req.KeyID)
	}
	if !slices.Contains(Networks, req.Context.Network) {
		return sdk.Signature{}, fmt.Errorf("%w: devkey signs for dev and test networks only, not %q", sdk.ErrRefused, req.Context.Network)
	}
	// SignCompact: [27 + 4 (compressed) + recovery id] || R || S, low-S.
	c, err := ecdsa.SignCompact(k, req.Digest[:], true)
	if err != nil {
		return sdk.Signature{}, fmt.Errorf("devkey: sign: %w", err)
	}
	var sig sdk.Signature
	sig.V = c[0] - 27 - 4
	copy(sig.R[:], c[1:33])
	copy(sig.S[:], c[33:65])
	return sig, nil
}
