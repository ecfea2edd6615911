package intel

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cordonhq/cordon/internal/chain"
)

// BenchmarkScreenPrivacyKey: the cost the privacy mode adds to screening
// one address (one HMAC-SHA256 and a second normalization).
func BenchmarkScreenPrivacyKey(b *testing.B) {
	now := time.Unix(1_700_000_000, 0)
	for _, key := range []bool{false, true} {
		b.Run(fmt.Sprintf("key=%v", key), func(b *testing.B) {
			x := NewIndex()
			for i := range 1000 {
				in := benchIndicator(i)
				x.Put(&in)
			}
			if key {
				x.SetPrivacyKey([]byte(strings.Repeat("k", 32)))
			}
			addr := "0x098b716b8aaf21512996dc57eb0615e2383e2f96"
			b.ReportAllocs()
			for b.Loop() {
				_ = Screen(x, chain.ETH, "mainnet", addr, now)
			}
		})
	}
}
