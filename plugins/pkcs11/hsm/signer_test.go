package hsm

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math/big"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/miekg/pkcs11"
	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/plugins/pkcs11/hsmtest"
	"github.com/cordonhq/cordon/plugins/sdk"
)

func open(tb testing.TB, tok *hsmtest.Token, pool int, extra ...string) *Signer {
	tb.Helper()
	cfg, err := ParseArgs(append(append(tok.Args(), "-pool-size", fmt.Sprint(pool)), extra...))
	require.NoError(tb, err)
	s, err := New(cfg, nil)
	require.NoError(tb, err)
	tb.Cleanup(s.Close)
	return s
}

// checkSig verifies sig with code other than the signer's: go-ethereum
// recovers the key from (R, S, V), btcec verifies (R, S).
func checkSig(tb testing.TB, pub []byte, digest [32]byte, sig sdk.Signature) {
	tb.Helper()
	rsv := append(append(append([]byte{}, sig.R[:]...), sig.S[:]...), sig.V)
	got, err := crypto.SigToPub(digest[:], rsv)
	require.NoError(tb, err)
	require.Equal(tb, pub, crypto.CompressPubkey(got))
	require.True(tb, crypto.ValidateSignatureValues(sig.V, new(big.Int).SetBytes(sig.R[:]), new(big.Int).SetBytes(sig.S[:]), true), "homestead low-S")
	pk, err := btcec.ParsePubKey(pub)
	require.NoError(tb, err)
	var r, s btcec.ModNScalar
	r.SetBytes(&sig.R)
	s.SetBytes(&sig.S)
	require.True(tb, ecdsa.NewSignature(&r, &s).Verify(digest[:], pk))
}

func TestSignerSignsVerifiably(t *testing.T) {
	tok := hsmtest.Start(t)
	s := open(t, tok, 2)
	ctx := context.Background()
	pub, err := s.GenerateKey(ctx, "hot-1")
	require.NoError(t, err)
	require.Len(t, pub, 33)
	_, err = s.GenerateKey(ctx, "hot-1")
	require.ErrorIs(t, err, ErrKeyExists)

	d, err := s.Describe(ctx)
	require.NoError(t, err)
	require.Len(t, d.Keys, 1)
	require.Equal(t, "hot-1", d.Keys[0].ID)
	require.Equal(t, pub, d.Keys[0].PublicKey)
	require.Equal(t, sdk.CurveSecp256k1, d.Keys[0].Curve)

	const n = 200
	for i := range n {
		digest := sha256.Sum256(fmt.Appendf(nil, "tx %d", i))
		sig, err := s.Sign(ctx, sdk.SignRequest{KeyID: "hot-1", Digest: digest})
		require.NoError(t, err)
		checkSig(t, pub, digest, sig)
	}
	// SoftHSM2 does not normalize s: about half its signatures are high-S.
	high := s.highS.Load()
	t.Logf("%d of %d token signatures were high-S and normalized", high, n)
	require.Greater(t, high, uint64(n/5))
	require.Less(t, high, uint64(n))

	_, err = s.Sign(ctx, sdk.SignRequest{KeyID: "nope"})
	require.ErrorIs(t, err, sdk.ErrUnknownKey)
	_, err = s.PublicKey(ctx, "nope")
	require.ErrorIs(t, err, sdk.ErrUnknownKey)
	_, err = s.Sign(ctx, sdk.SignRequest{})
	require.ErrorIs(t, err, sdk.ErrBadRequest)
}

func TestPrivateKeyNotExtractable(t *testing.T) {
	tok := hsmtest.Start(t)
	s := open(t, tok, 1)
	ctx := context.Background()
	_, err := s.GenerateKey(ctx, "cold")
	require.NoError(t, err)
	k, err := s.key(ctx, "cold")
	require.NoError(t, err)
	sess, err := s.pool.get(ctx)
	require.NoError(t, err)
	defer s.pool.put(sess, nil)
	_, err = s.mod.ctx.GetAttributeValue(sess.h, k.priv, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)})
	require.ErrorIs(t, err, pkcs11.Error(pkcs11.CKR_ATTRIBUTE_SENSITIVE))
	attrs, err := s.mod.ctx.GetAttributeValue(sess.h, k.priv, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, nil),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, nil),
		pkcs11.NewAttribute(pkcs11.CKA_ALWAYS_SENSITIVE, nil),
		pkcs11.NewAttribute(pkcs11.CKA_NEVER_EXTRACTABLE, nil),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, nil),
	})
	require.NoError(t, err)
	require.True(t, isTrue(attrs[0].Value), "SENSITIVE")
	require.False(t, isTrue(attrs[1].Value), "EXTRACTABLE")
	require.True(t, isTrue(attrs[2].Value), "ALWAYS_SENSITIVE")
	require.True(t, isTrue(attrs[3].Value), "NEVER_EXTRACTABLE")
	require.True(t, isTrue(attrs[4].Value), "TOKEN")
}

func TestOtherKeysNotListed(t *testing.T) {
	tok := hsmtest.Start(t)
	s := open(t, tok, 1)
	ctx := context.Background()
	p256 := []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}
	require.NoError(t, s.generate(ctx, "p256", p256, false))
	require.NoError(t, s.generate(ctx, "loose", secp256k1Params, true))
	_, err := s.GenerateKey(ctx, "good")
	require.NoError(t, err)
	d, err := s.Describe(ctx)
	require.NoError(t, err)
	require.Len(t, d.Keys, 1)
	require.Equal(t, "good", d.Keys[0].ID)
	for _, id := range []string{"p256", "loose"} {
		_, err = s.Sign(ctx, sdk.SignRequest{KeyID: id})
		require.ErrorIs(t, err, sdk.ErrUnknownKey, id)
	}
}

func TestPoolConcurrentAndRecovers(t *testing.T) {
	tok := hsmtest.Start(t)
	s := open(t, tok, 3)
	ctx := context.Background()
	pub, err := s.GenerateKey(ctx, "k")
	require.NoError(t, err)

	// A session closed behind the pool's back is replaced.
	sess, err := s.pool.get(ctx)
	require.NoError(t, err)
	require.NoError(t, s.mod.ctx.CloseSession(sess.h))
	s.pool.put(sess, nil)

	var wg sync.WaitGroup
	errs := make(chan error, 8*50)
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				digest := sha256.Sum256(fmt.Appendf(nil, "%d/%d", g, i))
				sig, err := s.Sign(ctx, sdk.SignRequest{KeyID: "k", Digest: digest})
				if err != nil {
					errs <- err
					continue
				}
				checkSig(t, pub, digest, sig)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Equal(t, uint64(400), s.signed.Load())
}

func TestWaitingForSessionHonorsContext(t *testing.T) {
	tok := hsmtest.Start(t)
	s := open(t, tok, 1)
	_, err := s.GenerateKey(context.Background(), "k")
	require.NoError(t, err)
	sess, err := s.pool.get(context.Background())
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = s.Sign(ctx, sdk.SignRequest{KeyID: "k"})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	s.pool.put(sess, nil)
	_, err = s.Sign(context.Background(), sdk.SignRequest{KeyID: "k"})
	require.NoError(t, err)
}

func TestNetworksAllowList(t *testing.T) {
	tok := hsmtest.Start(t)
	s := open(t, tok, 1, "-networks", "testnet3,eth/sepolia")
	ctx := context.Background()
	_, err := s.GenerateKey(ctx, "k")
	require.NoError(t, err)
	_, err = s.Sign(ctx, sdk.SignRequest{KeyID: "k", Context: sdk.SignContext{Chain: "eth", Network: "mainnet"}})
	require.ErrorIs(t, err, sdk.ErrRefused)
	_, err = s.Sign(ctx, sdk.SignRequest{KeyID: "k", Context: sdk.SignContext{Chain: "eth", Network: "sepolia"}})
	require.NoError(t, err)
	_, err = s.Sign(ctx, sdk.SignRequest{KeyID: "k", Context: sdk.SignContext{Chain: "btc", Network: "testnet3"}})
	require.NoError(t, err)
}

func TestWrongPINRefused(t *testing.T) {
	tok := hsmtest.Start(t)
	bad := tok.PINFile + ".bad"
	require.NoError(t, os.WriteFile(bad, []byte("00000000\n"), 0o600))
	cfg, err := ParseArgs([]string{"-module", tok.Module, "-token-label", tok.Label, "-pin-file", bad})
	require.NoError(t, err)
	_, err = New(cfg, nil)
	require.ErrorContains(t, err, "PIN in -pin-file is wrong")
	require.ErrorIs(t, err, pkcs11.Error(pkcs11.CKR_PIN_INCORRECT))
}

func TestPINFileWorldReadableRefused(t *testing.T) {
	tok := hsmtest.Start(t)
	require.NoError(t, os.Chmod(tok.PINFile, 0o644))
	cfg, err := ParseArgs(tok.Args())
	require.NoError(t, err)
	_, err = New(cfg, nil)
	require.ErrorContains(t, err, "-pin-file")
	require.ErrorContains(t, err, "others may access it")
}

func TestUnknownTokenRefused(t *testing.T) {
	tok := hsmtest.Start(t)
	cfg, err := ParseArgs([]string{"-module", tok.Module, "-token-label", "absent", "-pin-file", tok.PINFile})
	require.NoError(t, err)
	_, err = New(cfg, nil)
	require.ErrorContains(t, err, `-token-label: no initialized token labelled "absent"`)
}
