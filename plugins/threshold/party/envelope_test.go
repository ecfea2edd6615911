package party

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"
)

var testBinding = bind("test")

type envKeys struct {
	priv map[string]ed25519.PrivateKey
	pub  map[string]ed25519.PublicKey
}

func newEnvKeys(t testing.TB, ids ...string) envKeys {
	t.Helper()
	k := envKeys{priv: map[string]ed25519.PrivateKey{}, pub: map[string]ed25519.PublicKey{}}
	for _, id := range ids {
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		require.NoError(t, err)
		k.priv[id], k.pub[id] = priv, pub
	}
	return k
}

// receiver is id's session among ids.
func (k envKeys) receiver(sid, id string) *session {
	peers := map[string]ed25519.PublicKey{}
	for p, pub := range k.pub {
		if p != id {
			peers[p] = pub
		}
	}
	return newSession(sid, testBinding, id, k.priv[id], peers)
}

func seal(t testing.TB, e Envelope, key ed25519.PrivateKey) []byte {
	t.Helper()
	b, err := e.Seal(key, testBinding)
	require.NoError(t, err)
	return b
}

func TestEnvelopeRoundTrip(t *testing.T) {
	k := newEnvKeys(t, "p0", "p1")
	for _, e := range []Envelope{
		{Session: "s1", From: "p0", Seq: 1, Broadcast: true, Wire: []byte("hello")},
		{Session: "s1", From: "p0", To: []string{"p1"}, Seq: 1 << 40, Wire: make([]byte, MaxWire)},
	} {
		b := seal(t, e, k.priv["p0"])
		got, err := DecodeEnvelope(b)
		require.NoError(t, err)
		require.Equal(t, e.Session, got.Session)
		require.Equal(t, e.From, got.From)
		require.Equal(t, e.To, got.To)
		require.Equal(t, e.Seq, got.Seq)
		require.Equal(t, e.Broadcast, got.Broadcast)
		require.Equal(t, e.Wire, got.Wire)
		require.NoError(t, got.Verify(k.pub["p0"], testBinding))
		require.ErrorIs(t, got.Verify(k.pub["p0"], bind("other")), ErrBadSignature, "the binding is signed")
	}
}

func TestSessionOpen(t *testing.T) {
	k := newEnvKeys(t, "p0", "p1", "p2")
	outsider := newEnvKeys(t, "p9")
	good := Envelope{Session: "s", From: "p1", To: []string{"p0"}, Seq: 1, Wire: []byte("m")}
	for _, tc := range []struct {
		name string
		// before are envelopes p0 opened first.
		before []Envelope
		env    Envelope
		key    ed25519.PrivateKey
		edit   func([]byte) []byte
		want   error
	}{
		{name: "addressed", env: good, key: k.priv["p1"]},
		{name: "broadcast", env: Envelope{Session: "s", From: "p2", Seq: 3, Broadcast: true, Wire: []byte("m")}, key: k.priv["p2"]},
		{name: "another session", env: Envelope{Session: "t", From: "p1", To: []string{"p0"}, Seq: 1, Wire: []byte("m")}, key: k.priv["p1"], want: ErrWrongSession},
		{name: "sender not in the session", env: Envelope{Session: "s", From: "p9", To: []string{"p0"}, Seq: 1, Wire: []byte("m")}, key: outsider.priv["p9"], want: ErrUnknownSender},
		{name: "from ourselves", env: Envelope{Session: "s", From: "p0", To: []string{"p1"}, Seq: 1, Wire: []byte("m")}, key: k.priv["p0"], want: ErrFromSelf},
		{name: "addressed to another", env: Envelope{Session: "s", From: "p1", To: []string{"p2"}, Seq: 1, Wire: []byte("m")}, key: k.priv["p1"], want: ErrNotAddressed},
		{name: "a recipient not in the session", env: Envelope{Session: "s", From: "p1", To: []string{"p0", "p9"}, Seq: 1, Wire: []byte("m")}, key: k.priv["p1"], want: ErrMalformed},
		{name: "signed by another party", env: good, key: k.priv["p2"], want: ErrBadSignature},
		{name: "tampered tss message", env: good, key: k.priv["p1"], edit: func(b []byte) []byte { b[len(b)-65] ^= 1; return b }, want: ErrBadSignature},
		{name: "tampered seq", env: good, key: k.priv["p1"], edit: func(b []byte) []byte {
			off := 1 + 1 + 1 + 1 + 2 + 1 + 1 + 2 // version, "s", "p1", one recipient "p0"
			binary.BigEndian.PutUint64(b[off:], 9)
			return b
		}, want: ErrBadSignature},
		{name: "replayed", before: []Envelope{good}, env: good, key: k.priv["p1"], want: ErrReplay},
		{name: "out of order", before: []Envelope{{Session: "s", From: "p1", Seq: 5, Broadcast: true, Wire: []byte("m")}}, env: good, key: k.priv["p1"], want: ErrReplay},
		{name: "seq of another sender", before: []Envelope{{Session: "s", From: "p2", Seq: 5, Broadcast: true, Wire: []byte("m")}}, env: good, key: k.priv["p1"]},
		{name: "trailing byte", env: good, key: k.priv["p1"], edit: func(b []byte) []byte { return append(b, 0) }, want: ErrMalformed},
		{name: "truncated", env: good, key: k.priv["p1"], edit: func(b []byte) []byte { return b[:len(b)-1] }, want: ErrMalformed},
		{name: "version 2", env: good, key: k.priv["p1"], edit: func(b []byte) []byte { b[0] = 2; return b }, want: ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := k.receiver("s", "p0")
			for _, e := range tc.before {
				_, err := s.open(seal(t, e, k.priv[e.From]))
				require.NoError(t, err)
			}
			b := seal(t, tc.env, tc.key)
			if tc.edit != nil {
				b = tc.edit(b)
			}
			got, err := s.open(b)
			if tc.want == nil {
				require.NoError(t, err)
				require.Equal(t, tc.env.Wire, got.Wire)
				return
			}
			require.ErrorIs(t, err, tc.want)
		})
	}
}

func TestSessionOpenDoesNotBurnSeq(t *testing.T) {
	// A forged envelope with a high seq must not make the sender's real
	// next envelope look replayed.
	k := newEnvKeys(t, "p0", "p1", "p2")
	s := k.receiver("s", "p0")
	forged := seal(t, Envelope{Session: "s", From: "p1", Seq: 99, Broadcast: true, Wire: []byte("m")}, k.priv["p2"])
	_, err := s.open(forged)
	require.ErrorIs(t, err, ErrBadSignature)
	_, err = s.open(seal(t, Envelope{Session: "s", From: "p1", Seq: 1, Broadcast: true, Wire: []byte("m")}, k.priv["p1"]))
	require.NoError(t, err)
}

func TestEnvelopeSealRefusesBadFields(t *testing.T) {
	k := newEnvKeys(t, "p0")
	long := string(make([]byte, MaxIDLen+1))
	for name, e := range map[string]Envelope{
		"no session":               {From: "p0", Seq: 1, Broadcast: true, Wire: []byte("m")},
		"long sender":              {Session: "s", From: long, Seq: 1, Broadcast: true, Wire: []byte("m")},
		"broadcast to someone":     {Session: "s", From: "p0", To: []string{"p1"}, Seq: 1, Broadcast: true, Wire: []byte("m")},
		"point-to-point to no one": {Session: "s", From: "p0", Seq: 1, Wire: []byte("m")},
		"seq 0":                    {Session: "s", From: "p0", Seq: 0, Broadcast: true, Wire: []byte("m")},
		"no message":               {Session: "s", From: "p0", Seq: 1, Broadcast: true},
		"too large":                {Session: "s", From: "p0", Seq: 1, Broadcast: true, Wire: make([]byte, MaxWire+1)},
		"recipient twice":          {Session: "s", From: "p0", To: []string{"p1", "p1"}, Seq: 1, Wire: []byte("m")},
		"too many recipients":      {Session: "s", From: "p0", To: []string{"p1", "p2", "p3"}, Seq: 1, Wire: []byte("m")},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := e.Seal(k.priv["p0"], testBinding)
			require.ErrorIs(t, err, ErrMalformed)
		})
	}
}
