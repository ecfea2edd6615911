package party

import (
	"bytes"
	"crypto/ed25519"
	"testing"
)

func FuzzDecodeEnvelope(f *testing.F) {
	key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	for _, e := range []Envelope{
		{Session: "s", From: "p0", Seq: 1, Broadcast: true, Wire: []byte("m")},
		{Session: "abcdef0123456789", From: "p1", To: []string{"p0", "p2"}, Seq: 1 << 33, Wire: bytes.Repeat([]byte{7}, 300)},
	} {
		b, err := e.Seal(key, bind("fuzz"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)-1])
		f.Add(append(b, 0))
	}
	f.Add([]byte{})
	f.Add([]byte{1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeEnvelope(b)
		if err != nil {
			return
		}
		// What decodes is canonical: encoding it again gives the same bytes.
		body, err := e.body()
		if err != nil {
			t.Fatalf("decoded an envelope that does not encode: %v", err)
		}
		if !bytes.Equal(append(body, e.Sig[:]...), b) {
			t.Fatalf("decoding is not canonical")
		}
		_ = e.Verify(key.Public().(ed25519.PublicKey), bind("fuzz"))
	})
}
