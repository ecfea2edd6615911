// Package sdktest is the conformance suite every signer plugin passes:
// in process (the plugin's library) and through the plugin host (its
// binary). Signatures are checked with code cordon did not write:
// go-ethereum's public key recovery and btcec's verification.
package sdktest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/cordonhq/cordon/plugins/sdk"
)

// Options say what the plugin under test signs for.
type Options struct {
	// Chain and Network the signing context names (one the plugin
	// accepts).
	Chain, Network string
	// Signatures per check (default 32).
	Signatures int
}

// Run runs the suite on s.
func Run(t *testing.T, s sdk.Signer, o Options) {
	t.Helper()
	if o.Signatures == 0 {
		o.Signatures = 32
	}
	ctx := context.Background()
	d, err := s.Describe(ctx)
	if err != nil {
		t.Fatalf("Describe: %v", err)
	}
	if d.Name == "" || !slices.Contains(d.Capabilities, sdk.CapSign) {
		t.Fatalf("Describe: name %q, capabilities %v: want a name and %q", d.Name, d.Capabilities, sdk.CapSign)
	}
	if len(d.Keys) == 0 {
		t.Fatal("Describe lists no keys")
	}
	for _, k := range d.Keys {
		if k.Curve != sdk.CurveSecp256k1 || len(k.PublicKey) != 33 {
			t.Fatalf("key %q: curve %q, public key of %d bytes", k.ID, k.Curve, len(k.PublicKey))
		}
		if _, err := btcec.ParsePubKey(k.PublicKey); err != nil {
			t.Fatalf("key %q: %v", k.ID, err)
		}
		pub, err := s.PublicKey(ctx, k.ID)
		if err != nil || !bytes.Equal(pub, k.PublicKey) {
			t.Fatalf("PublicKey(%q) = %x, %v; Describe said %x", k.ID, pub, err, k.PublicKey)
		}
	}
	key := d.Keys[0]
	t.Run("signatures", func(t *testing.T) {
		for range o.Signatures {
			Check(t, s, key, o)
		}
	})
	t.Run("unknown key", func(t *testing.T) {
		if _, err := s.PublicKey(ctx, "no-such-key"); !errors.Is(err, sdk.ErrUnknownKey) {
			t.Fatalf("PublicKey of an unknown key: %v, want ErrUnknownKey", err)
		}
		_, err := s.Sign(ctx, sdk.SignRequest{KeyID: "no-such-key", Context: sdk.SignContext{Chain: o.Chain, Network: o.Network}})
		if !errors.Is(err, sdk.ErrUnknownKey) {
			t.Fatalf("Sign with an unknown key: %v, want ErrUnknownKey", err)
		}
	})
	t.Run("concurrent", func(t *testing.T) {
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range 8 {
					Check(t, s, key, o)
				}
			})
		}
		wg.Wait()
	})
	t.Run("cancelled", func(t *testing.T) {
		c, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := s.Sign(c, sdk.SignRequest{KeyID: key.ID, Context: sdk.SignContext{Chain: o.Chain, Network: o.Network}}); err == nil {
			t.Fatal("Sign with a cancelled context succeeded")
		}
	})
}

// Check signs one random digest with k and verifies the signature
// independently: low S, V in {0, 1}, go-ethereum recovers k's public
// key from (R, S, V) and btcec verifies (R, S).
func Check(t *testing.T, s sdk.Signer, k sdk.KeyInfo, o Options) {
	t.Helper()
	var dg [32]byte
	_, _ = rand.Read(dg[:])
	sig, err := s.Sign(context.Background(), sdk.SignRequest{KeyID: k.ID, Digest: dg,
		Context: sdk.SignContext{Chain: o.Chain, Network: o.Network}})
	if err != nil {
		t.Errorf("Sign: %v", err)
		return
	}
	var sc btcec.ModNScalar
	if overflow := sc.SetBytes(&sig.S); overflow != 0 || sc.IsZero() {
		t.Errorf("S out of range: %x", sig.S)
		return
	}
	if sc.IsOverHalfOrder() {
		t.Errorf("S is high: %x", sig.S)
	}
	if sig.V > 1 {
		t.Errorf("V = %d", sig.V)
		return
	}
	raw := append(append(sig.R[:], sig.S[:]...), sig.V)
	got, err := crypto.Ecrecover(dg[:], raw)
	if err != nil {
		t.Errorf("go-ethereum cannot recover the signature: %v", err)
		return
	}
	pub, err := crypto.DecompressPubkey(k.PublicKey)
	if err != nil {
		t.Errorf("key %q: %v", k.ID, err)
		return
	}
	if !bytes.Equal(got, crypto.FromECDSAPub(pub)) {
		t.Errorf("the signature recovers another key than %q's", k.ID)
		return
	}
	var r btcec.ModNScalar
	r.SetBytes(&sig.R)
	bpub, _ := btcec.ParsePubKey(k.PublicKey)
	if !ecdsa.NewSignature(&r, &sc).Verify(dg[:], bpub) {
		t.Error("btcec does not verify the signature")
	}
}
