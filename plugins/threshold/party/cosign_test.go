package party

import (
	"context"
	"crypto/rand"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	ethcrypto "github.com/ethereum/go-ethereum/crypto"
	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/plugins/sdk"
)

func randomDigest(tb testing.TB) [32]byte {
	tb.Helper()
	var d [32]byte
	_, err := rand.Read(d[:])
	require.NoError(tb, err)
	return d
}

// requireGroupSignature checks sig against the group key with btcec and
// go-ethereum's Ecrecover.
func requireGroupSignature(tb testing.TB, groupKey []byte, digest [32]byte, sig sdk.Signature) {
	tb.Helper()
	pub, err := btcec.ParsePubKey(groupKey)
	require.NoError(tb, err)
	var r, s btcec.ModNScalar
	require.Zero(tb, r.SetBytes(&sig.R))
	require.Zero(tb, s.SetBytes(&sig.S))
	require.False(tb, s.IsOverHalfOrder(), "S is low")
	require.True(tb, ecdsa.NewSignature(&r, &s).Verify(digest[:], pub), "btcec verifies the signature")
	require.LessOrEqual(tb, sig.V, byte(1))

	rsv := append(append(sig.R[:], sig.S[:]...), sig.V)
	got, err := ethcrypto.Ecrecover(digest[:], rsv)
	require.NoError(tb, err)
	ecPub, err := ethcrypto.UnmarshalPubkey(got)
	require.NoError(tb, err)
	require.Equal(tb, ethcrypto.PubkeyToAddress(*pub.ToECDSA()), ethcrypto.PubkeyToAddress(*ecPub), "Ecrecover gives the group's address")
}

func TestCosignEveryPair(t *testing.T) {
	f := shares(t)
	for _, pair := range [][2]int{{0, 1}, {0, 2}, {1, 2}} {
		a, b := &f.shares[pair[0]], &f.shares[pair[1]]
		t.Run(a.ID+"+"+b.ID, func(t *testing.T) {
			digest := randomDigest(t)
			start := time.Now()
			res := runSession(t, []*Share{a, b}, []string{b.ID, a.ID}, digest, nil)
			t.Logf("signed in %v", time.Since(start))
			require.NoError(t, res[a.ID].err)
			require.NoError(t, res[b.ID].err)
			require.Equal(t, res[a.ID].sig, res[b.ID].sig, "both parties return the same signature")
			requireGroupSignature(t, a.GroupKey, digest, res[a.ID].sig)
		})
	}
}

func TestCosignDigestAboveOrder(t *testing.T) {
	f := shares(t)
	var digest [32]byte
	for i := range digest {
		digest[i] = 0xff // > q: signed as digest mod q, as ECDSA does
	}
	res := runSession(t, []*Share{&f.shares[0], &f.shares[2]}, []string{"p0", "p2"}, digest, nil)
	require.NoError(t, res["p0"].err)
	requireGroupSignature(t, f.shares[0].GroupKey, digest, res["p0"].sig)
}

func TestCosignAloneTimesOut(t *testing.T) {
	f := shares(t)
	start := time.Now()
	res := runSession(t, []*Share{&f.shares[0]}, []string{"p0", "p1"}, randomDigest(t),
		map[string]testParty{"p0": {opts: cosignOptions{timeout: 300 * time.Millisecond}}})
	require.ErrorIs(t, res["p0"].err, ErrTimeout)
	require.Less(t, time.Since(start), 5*time.Second)
}

func TestCosignHonorsContext(t *testing.T) {
	f := shares(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := f.shares[1].Cosign(ctx, sdk.CosignRequest{
			Session: newSessionID(t), KeyID: f.shares[1].KeyID, Parties: []string{"p1", "p2"},
		}, newMemRouter([]string{"p1", "p2"}).channel("p1"))
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(5 * time.Second):
		t.Fatal("Cosign did not return after its context was canceled")
	}
}

func TestCosignRefusesRequest(t *testing.T) {
	f := shares(t)
	s := &f.shares[0]
	ok := sdk.CosignRequest{Session: newSessionID(t), KeyID: s.KeyID, Parties: []string{"p0", "p1"}}
	for _, tc := range []struct {
		name string
		edit func(*sdk.CosignRequest)
		want error
	}{
		{"one party alone", func(r *sdk.CosignRequest) { r.Parties = []string{"p0"} }, sdk.ErrRefused},
		{"all three parties", func(r *sdk.CosignRequest) { r.Parties = []string{"p0", "p1", "p2"} }, sdk.ErrRefused},
		{"self not in the session", func(r *sdk.CosignRequest) { r.Parties = []string{"p1", "p2"} }, sdk.ErrRefused},
		{"unknown party", func(r *sdk.CosignRequest) { r.Parties = []string{"p0", "p9"} }, sdk.ErrRefused},
		{"a party twice", func(r *sdk.CosignRequest) { r.Parties = []string{"p0", "p0"} }, sdk.ErrRefused},
		{"another key", func(r *sdk.CosignRequest) { r.KeyID = "other" }, sdk.ErrUnknownKey},
		{"no session", func(r *sdk.CosignRequest) { r.Session = "" }, sdk.ErrBadRequest},
		{"session not hex", func(r *sdk.CosignRequest) { r.Session = "zz" + ok.Session[2:] }, sdk.ErrBadRequest},
		{"session too short", func(r *sdk.CosignRequest) { r.Session = "abcd" }, sdk.ErrBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := ok
			req.Parties = append([]string(nil), ok.Parties...)
			tc.edit(&req)
			_, err := s.Cosign(context.Background(), req, newMemRouter([]string{"p0", "p1"}).channel("p0"))
			require.ErrorIs(t, err, tc.want)
		})
	}
}

func TestCosignRefusesAnotherSession(t *testing.T) {
	f := shares(t)
	res := runSession(t, []*Share{&f.shares[0], &f.shares[1]}, []string{"p0", "p1"}, randomDigest(t),
		map[string]testParty{
			// p0 reads late, so that its round-1 envelopes reach p1 first.
			"p0": {opts: cosignOptions{timeout: time.Second}, wrap: func(c sdk.Channel) sdk.Channel { return &slowChannel{Channel: c} }},
			"p1": {session: newSessionID(t), opts: cosignOptions{timeout: time.Second}},
		})
	require.ErrorIs(t, res["p1"].err, ErrWrongSession)
	require.ErrorContains(t, res["p1"].err, "envelope of another session")
	require.Error(t, res["p0"].err, "p0 refuses p1's envelopes, or times out when p1 gave up before sending")
}

// slowChannel waits before its first Recv.
type slowChannel struct {
	sdk.Channel
	once sync.Once
}

func (c *slowChannel) Recv(ctx context.Context) (sdk.PartyMessage, error) {
	c.once.Do(func() { time.Sleep(200 * time.Millisecond) })
	return c.Channel.Recv(ctx)
}

// tamperChannel changes the first payload it receives.
type tamperChannel struct {
	sdk.Channel
	edit func([]byte) []byte
	done bool
}

func (c *tamperChannel) Recv(ctx context.Context) (sdk.PartyMessage, error) {
	m, err := c.Channel.Recv(ctx)
	if err == nil && !c.done {
		c.done = true
		m.Payload = c.edit(append([]byte(nil), m.Payload...))
	}
	return m, err
}

func TestCosignRefusesTamperedEnvelope(t *testing.T) {
	f := shares(t)
	flip := func(b []byte) []byte { b[len(b)-100] ^= 1; return b } // a byte of the tss message
	res := runSession(t, []*Share{&f.shares[1], &f.shares[2]}, []string{"p1", "p2"}, randomDigest(t),
		map[string]testParty{
			"p2": {wrap: func(c sdk.Channel) sdk.Channel { return &tamperChannel{Channel: c, edit: flip} }},
			"p1": {opts: cosignOptions{timeout: time.Second}},
		})
	require.ErrorIs(t, res["p2"].err, ErrBadSignature)
	require.Error(t, res["p1"].err, "the other party does not complete either")
}

func TestCosignRefusesMaliciousRangeProof(t *testing.T) {
	// p1 plays a malicious Alice: its round-1 range proof to p0 has
	// s1 == s2. It signs its envelope honestly, so only the boundary
	// check stands between the proof and tss-lib.
	f := shares(t)
	hook := func(_ string, _ []string, _ bool, wire []byte) []byte {
		if wireType(wire) != typeSignR1M1 {
			return wire
		}
		return tamper(t, wire, func(m *signingR1M1) { m.RangeProofAlice[5] = m.RangeProofAlice[4] })
	}
	res := runSession(t, []*Share{&f.shares[0], &f.shares[1]}, []string{"p0", "p1"}, randomDigest(t),
		map[string]testParty{"p1": {opts: cosignOptions{hook: hook, timeout: time.Second}}})
	var be *BoundaryError
	require.ErrorAs(t, res["p0"].err, &be)
	require.Equal(t, CheckMtARange, be.Check)
	require.Equal(t, "p1", be.From)
	require.Contains(t, res["p0"].err.Error(), "s1 == s2")
	require.True(t, errors.Is(res["p0"].err, ErrBoundary))
}

func TestCosignRefusesAnotherDigest(t *testing.T) {
	// The router asks p0 and p1 for different digests under one session
	// id: their envelopes are bound to the digest, so neither accepts the
	// other's.
	f := shares(t)
	sid := newSessionID(t)
	router := newMemRouter([]string{"p0", "p1"})
	errs := make(chan error, 2)
	for i, s := range []*Share{&f.shares[0], &f.shares[1]} {
		go func() {
			d := randomDigest(t)
			_, err := s.CosignTimeout(context.Background(), sdk.CosignRequest{
				Session: sid, KeyID: s.KeyID, Digest: d, Parties: []string{"p0", "p1"},
			}, &slowChannel{Channel: router.channel(s.ID)}, time.Duration(i+1)*time.Second)
			errs <- err
		}()
	}
	first := <-errs
	require.ErrorIs(t, first, ErrBadSignature)
	require.Error(t, <-errs)
}
