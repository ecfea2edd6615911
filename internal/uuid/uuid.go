// Package uuid writes the two kinds of RFC 4122 UUIDs cordon makes, in
// their lowercase string form: name-based (version 5), for ids that are
// the same wherever they are derived (an indicator of a source and
// value, a collection of an alias, a sighting of a match), and random
// (version 4).
package uuid

import (
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // RFC 4122 name-based (v5) UUIDs are defined on SHA-1
	"encoding/hex"
)

// V5 is the name-based UUID of name in the namespace ns.
func V5(ns [16]byte, name string) string {
	h := sha1.New() //nolint:gosec // RFC 4122 version 5
	h.Write(ns[:])
	h.Write([]byte(name))
	var u [16]byte
	copy(u[:], h.Sum(nil))
	return format(u, 0x50)
}

// V4 is a random UUID.
func V4() (string, error) {
	var u [16]byte
	if _, err := rand.Read(u[:]); err != nil {
		return "", err
	}
	return format(u, 0x40), nil
}

func format(u [16]byte, version byte) string {
	u[6] = u[6]&0x0f | version
	u[8] = u[8]&0x3f | 0x80
	x := hex.EncodeToString(u[:])
	return x[:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:]
}
