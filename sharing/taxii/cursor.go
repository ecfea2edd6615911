package taxii

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"time"
)

// A next cursor is stateless: base64url (unpadded) of
//
//	version (1 byte) | position (8 bytes, big-endian Unix microseconds) | HMAC-SHA256 (32 bytes)
//
// where the position is the date-added time of the last record of the
// page it follows, and the HMAC, keyed by ServerConfig.CursorKey, covers
// the version, the position and the binding: the caller, the collection,
// the endpoint (and object id) and the query's filters. A cursor is
// worth nothing outside the query and caller it was minted for.

const (
	cursorVersion = 1
	cursorLen     = 1 + 8 + sha256.Size
	cursorDomain  = "cordon taxii next cursor\x00"
)

// The refusals of a next parameter.
var (
	errCursorMalformed = errors.New("next: not a cursor of this server")
	errCursorBinding   = errors.New("next: not issued for this query or caller")
)

// binding is what a cursor is bound to, written unambiguously (every
// string and list length-prefixed).
type binding []byte

func (b binding) str(s string) binding {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func (b binding) list(l []string) binding {
	b = binary.AppendUvarint(b, uint64(len(l)))
	for _, s := range l {
		b = b.str(s)
	}
	return b
}

func cursorMAC(key []byte, b binding, head []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(cursorDomain))
	m.Write(head)
	m.Write(b)
	return m.Sum(nil)
}

// mintCursor returns the cursor of position pos under binding b.
func mintCursor(key []byte, b binding, pos time.Time) string {
	buf := make([]byte, 1+8, cursorLen)
	buf[0] = cursorVersion
	binary.BigEndian.PutUint64(buf[1:], uint64(pos.UnixMicro())) //nolint:gosec // the two's complement round-trips
	buf = append(buf, cursorMAC(key, b, buf)...)
	return base64.RawURLEncoding.EncodeToString(buf)
}

// openCursor returns the position of a cursor minted under binding b.
func openCursor(key []byte, b binding, s string) (time.Time, error) {
	if base64.RawURLEncoding.DecodedLen(len(s)) != cursorLen {
		return time.Time{}, errCursorMalformed
	}
	// Strict: a second spelling of the same bytes (unused trailing
	// bits set) is not a cursor the server minted.
	buf, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(buf) != cursorLen || buf[0] != cursorVersion {
		return time.Time{}, errCursorMalformed
	}
	if !hmac.Equal(buf[9:], cursorMAC(key, b, buf[:9])) {
		return time.Time{}, errCursorBinding
	}
	return time.UnixMicro(int64(binary.BigEndian.Uint64(buf[1:9]))).UTC(), nil //nolint:gosec // see mintCursor
}
