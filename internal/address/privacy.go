package address

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/cordonhq/cordon/internal/chain"
)

// MinPrivacyKey is the shortest alliance key PrivacyHash takes.
const MinPrivacyKey = 32

// PrivacyHash is an address's keyed hash for partner sharing's privacy
// mode: partners who hold the alliance key match an address against a
// collection of such hashes without the collection revealing its
// addresses. It is the lowercase hex of HMAC-SHA256(key,
// "cordon-privacy/v1" 0x00 chain 0x00 network 0x00 address), the
// address in its one normal form per chain and network (Normalize), so
// every partner hashes the same address to the same value however it
// was written, and the same string on another chain or network to
// another one.
func PrivacyHash(key []byte, c chain.Chain, network, addr string) (string, error) {
	if len(key) < MinPrivacyKey {
		return "", fmt.Errorf("privacy hash: the alliance key has %d bytes: want at least %d", len(key), MinPrivacyKey)
	}
	if network == "" {
		return "", errors.New("privacy hash: no network")
	}
	v, err := Normalize(c, network, addr)
	if err != nil {
		return "", fmt.Errorf("privacy hash: %w", err)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte("cordon-privacy/v1\x00" + string(c) + "\x00" + network + "\x00" + v))
	return hex.EncodeToString(m.Sum(nil)), nil
}
