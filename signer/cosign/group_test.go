package cosign

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/plugins/sdk"
	"github.com/cordonhq/cordon/plugins/sdk/sdktest"
)

func groupKey(t *testing.T, g *Group) sdk.KeyInfo {
	t.Helper()
	d, err := g.Describe(context.Background())
	require.NoError(t, err)
	require.Len(t, d.Keys, 1)
	return d.Keys[0]
}

func TestGroupSigns(t *testing.T) {
	g := inProcess(t, nil)
	// sdktest's check: low S, go-ethereum recovers the group key, btcec
	// verifies.
	for range 2 {
		sdktest.Check(t, g, groupKey(t, g), sdktest.Options{Chain: "btc", Network: "regtest"})
	}
}

func TestGroupPicksHealthyPairs(t *testing.T) {
	for _, tc := range []struct {
		down string
		want []string
	}{
		{"", []string{"p0", "p1"}},
		{"p0", []string{"p1", "p2"}},
		{"p1", []string{"p0", "p2"}},
		{"p2", []string{"p0", "p1"}},
	} {
		t.Run("down="+tc.down, func(t *testing.T) {
			rec := map[string]*recording{}
			wrap := map[string]func(sdk.Cosigner) sdk.Cosigner{}
			for _, id := range []string{"p0", "p1", "p2"} {
				wrap[id] = func(c sdk.Cosigner) sdk.Cosigner {
					r := &recording{Cosigner: c}
					rec[id] = r
					if id == tc.down {
						return unhealthy{r}
					}
					return r
				}
			}
			g := inProcess(t, wrap)
			if tc.down != "" {
				require.Len(t, g.pairs(), 1)
				require.Equal(t, tc.want, g.pairs()[0][:])
				return // a signing is shown by TestGroupSigns
			}
			require.Equal(t, [][2]string{{"p0", "p1"}, {"p0", "p2"}, {"p1", "p2"}}, g.pairs())
		})
	}
	g := inProcess(t, map[string]func(sdk.Cosigner) sdk.Cosigner{
		"p0": func(c sdk.Cosigner) sdk.Cosigner { return unhealthy{c} },
		"p2": func(c sdk.Cosigner) sdk.Cosigner { return unhealthy{c} },
	})
	_, err := g.Sign(context.Background(), sdk.SignRequest{KeyID: g.keyID, Digest: randomDigest(t)})
	require.ErrorIs(t, err, ErrNoQuorum)
}

func TestGroupFailsClosed(t *testing.T) {
	broken := &failing{}
	g := inProcess(t, map[string]func(sdk.Cosigner) sdk.Cosigner{"p1": func(sdk.Cosigner) sdk.Cosigner { return broken }})
	_, err := g.Sign(context.Background(), sdk.SignRequest{KeyID: g.keyID, Digest: randomDigest(t)})
	require.ErrorIs(t, err, errBroken)
	require.EqualValues(t, 1, broken.calls.Load(), "no retry unless WithRetry")
}

func TestGroupRetriesOnceWithAFreshSession(t *testing.T) {
	broken := &failing{}
	var p0 *recording
	g := inProcess(t, map[string]func(sdk.Cosigner) sdk.Cosigner{
		"p1": func(sdk.Cosigner) sdk.Cosigner { return broken },
		"p0": func(c sdk.Cosigner) sdk.Cosigner { p0 = &recording{Cosigner: c}; return p0 },
	}, WithRetry())
	digest := randomDigest(t)
	sig, err := g.Sign(context.Background(), sdk.SignRequest{KeyID: g.keyID, Digest: digest})
	require.NoError(t, err, "the retry with p0 and p2 signs")
	require.NoError(t, verify(g.pub, digest, sig))
	require.EqualValues(t, 1, broken.calls.Load())
	require.Len(t, p0.sessions, 2)
	require.NotEqual(t, p0.sessions[0], p0.sessions[1], "a fresh session id for the retry")
	require.Len(t, p0.sessions[1], 64)

	// Both pairs failing: two sessions, then the error.
	broken2 := &failing{}
	g = inProcess(t, map[string]func(sdk.Cosigner) sdk.Cosigner{
		"p0": func(sdk.Cosigner) sdk.Cosigner { return broken2 },
	}, WithRetry())
	_, err = g.Sign(context.Background(), sdk.SignRequest{KeyID: g.keyID, Digest: randomDigest(t)})
	require.ErrorIs(t, err, errBroken)
	require.EqualValues(t, 2, broken2.calls.Load(), "once more, never more")
}

func TestGroupRefusesDisagreement(t *testing.T) {
	g := inProcess(t, map[string]func(sdk.Cosigner) sdk.Cosigner{
		"p1": func(c sdk.Cosigner) sdk.Cosigner { return editing{c, func(s *sdk.Signature) { s.V ^= 1 }} },
	})
	_, err := g.Sign(context.Background(), sdk.SignRequest{KeyID: g.keyID, Digest: randomDigest(t)})
	require.ErrorIs(t, err, ErrDisagree)
}

func TestGroupRefusesBadSignature(t *testing.T) {
	ss := shares(t)
	flipV := func(s *sdk.Signature) { s.V ^= 1 }
	forged := sdk.Signature{V: 0}
	forged.R[31], forged.S[31] = 1, 1
	for name, parties := range map[string]map[string]sdk.Cosigner{
		"wrong V from both": {"p0": editing{&ss[0], flipV}, "p1": editing{&ss[1], flipV}},
		"forged by both":    {"p0": fixed{forged}, "p1": fixed{forged}},
	} {
		t.Run(name, func(t *testing.T) {
			g, err := New(ss[0].KeyID, ss[0].GroupKey, parties, nil)
			require.NoError(t, err)
			_, err = g.Sign(context.Background(), sdk.SignRequest{KeyID: g.keyID, Digest: randomDigest(t)})
			require.ErrorIs(t, err, ErrBadSignature)
		})
	}
}

func TestGroupRefusesUnknownKey(t *testing.T) {
	g := inProcess(t, nil)
	_, err := g.Sign(context.Background(), sdk.SignRequest{KeyID: "other"})
	require.ErrorIs(t, err, sdk.ErrUnknownKey)
	_, err = g.PublicKey(context.Background(), "other")
	require.ErrorIs(t, err, sdk.ErrUnknownKey)
}

func TestNewRefuses(t *testing.T) {
	ss := shares(t)
	one := map[string]sdk.Cosigner{"p0": &ss[0]}
	two := map[string]sdk.Cosigner{"p0": &ss[0], "p1": &ss[1]}
	_, err := New("", ss[0].GroupKey, two, nil)
	require.ErrorContains(t, err, "no key id")
	_, err = New("k", ss[0].GroupKey[:32], two, nil)
	require.ErrorContains(t, err, "33-byte")
	_, err = New("k", ss[0].GroupKey, one, nil)
	require.ErrorContains(t, err, "1 parties")
	_, err = New("k", ss[0].GroupKey, map[string]sdk.Cosigner{"p0": &ss[0], "p1": nil}, nil)
	require.ErrorContains(t, err, "no cosigner")
}

func TestRouter(t *testing.T) {
	ctx := context.Background()
	r := newRouter("s", []string{"p0", "p1"})
	a, b := r.channel("p0"), r.channel("p1")
	require.NoError(t, a.Send(ctx, sdk.PartyMessage{Session: "s", From: "p0", Payload: []byte("hi")}))
	m, err := b.Recv(ctx)
	require.NoError(t, err)
	require.Equal(t, []byte("hi"), m.Payload)
	require.NoError(t, b.Send(ctx, sdk.PartyMessage{Session: "s", From: "p1", To: []string{"p0"}, Payload: []byte("yo")}))
	m, err = a.Recv(ctx)
	require.NoError(t, err)
	require.Equal(t, "p1", m.From)

	for name, m := range map[string]sdk.PartyMessage{
		"another session":           {Session: "t", From: "p0"},
		"posing as another party":   {Session: "s", From: "p1"},
		"to a party not in session": {Session: "s", From: "p0", To: []string{"p2"}},
		"to itself":                 {Session: "s", From: "p0", To: []string{"p0"}},
	} {
		t.Run(name, func(t *testing.T) {
			require.ErrorIs(t, a.Send(ctx, m), ErrRoute)
		})
	}
	c, cancel := context.WithCancel(ctx)
	cancel()
	_, err = a.Recv(c)
	require.ErrorIs(t, err, context.Canceled)
}

func BenchmarkGroupSign(b *testing.B) {
	g := inProcess(b, nil)
	req := sdk.SignRequest{KeyID: g.keyID, Digest: randomDigest(b)}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := g.Sign(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
}

func TestGroupSignsConcurrently(t *testing.T) {
	// Several sessions at once on the same shares: each its own session
	// id, router and tss-lib party.
	g := inProcess(t, nil)
	key := groupKey(t, g)
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() { sdktest.Check(t, g, key, sdktest.Options{Chain: "eth", Network: "sepolia"}) })
	}
	wg.Wait()
}
