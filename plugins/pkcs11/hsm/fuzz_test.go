package hsm

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzUnwrapECPoint: whatever a token returns as CKA_EC_POINT, the
// unwrapping either refuses it or yields a point that re-encodes to the
// 65 bytes inside a DER OCTET STRING of exactly the input.
func FuzzUnwrapECPoint(f *testing.F) {
	f.Add([]byte{0x04, 0x41, 0x04})
	f.Add(append([]byte{0x04, 0x41}, make([]byte, 65)...))
	f.Fuzz(func(t *testing.T, der []byte) {
		pub, err := unwrapECPoint(der)
		if err != nil {
			return
		}
		want := append([]byte{0x04, 0x41}, pub.SerializeUncompressed()...)
		if !bytes.Equal(der, want) {
			t.Fatalf("accepted %x, which is not the DER of the point %x", der, pub.SerializeUncompressed())
		}
	})
}

// FuzzParseArgs: any argument list is parsed or refused, never a panic;
// an accepted one names a module and a PIN file.
func FuzzParseArgs(f *testing.F) {
	f.Add("-module\x00/lib/x.so\x00-token-label\x00t\x00-pin-file\x00/p")
	f.Add("-slot\x0012\x00-pool-size\x00-1")
	f.Fuzz(func(t *testing.T, s string) {
		cfg, err := ParseArgs(strings.Split(s, "\x00"))
		if err == nil && (cfg.Module == "" || cfg.PINFile == "") {
			t.Fatalf("accepted %q without a module or a PIN file: %+v", s, cfg)
		}
	})
}
