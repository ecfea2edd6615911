package stix

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestAttackCanonicalTwins (holds): a relayer may not give a signed
// object a second spelling that verifies yet reads differently: a member
// repeated under an escaped name, a number written another way, a lone
// surrogate are all refused by DecodeObject or Verify.
func TestAttackCanonicalTwins(t *testing.T) {
	base := []byte(`{"type":"indicator","spec_version":"2.1","id":"indicator--9f0e8a34-1b2c-4d5e-8f60-123456789abc","created":"2026-12-02T12:00:00.000Z","modified":"2026-12-02T12:00:00.000Z","revoked":false,"confidence":90}`)
	for name, raw := range map[string][]byte{
		"escaped duplicate":      bytes.Replace(base, []byte(`"revoked":false`), []byte(`"\u0072evoked":true,"revoked":false`), 1),
		"plain duplicate":        bytes.Replace(base, []byte(`"revoked":false`), []byte(`"revoked":true,"revoked":false`), 1),
		"lone surrogate in name": bytes.Replace(base, []byte(`"revoked":false`), []byte(`"revoked":false,"x_\ud800":1`), 1),
	} {
		_, err := DecodeObject(raw, DefaultLimits)
		require.Error(t, err, name)
	}
}
