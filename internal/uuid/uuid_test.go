package uuid

import (
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
)

// The RFC 4122 appendix's example, as Python's uuid.uuid5 gives it:
// uuid5(NAMESPACE_DNS, "python.org").
func TestV5(t *testing.T) {
	dns := [16]byte{0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8}
	require.Equal(t, "886313e1-3b8a-5372-9b90-0c9aee199e5d", V5(dns, "python.org"))
}

func TestV4(t *testing.T) {
	a, err := V4()
	require.NoError(t, err)
	b, err := V4()
	require.NoError(t, err)
	require.NotEqual(t, a, b)
	require.Regexp(t, regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`), a)
}
