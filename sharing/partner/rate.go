package partner

import (
	"sync"
	"time"

	"github.com/cordonhq/cordon/internal/clock"
)

// bucket is a token bucket: it holds up to burst tokens, gains rate
// tokens a second, and each request takes one. Safe for concurrent use.
type bucket struct {
	clock  clock.Clock
	rate   float64
	burst  float64
	mu     sync.Mutex
	tokens float64
	last   time.Time
}

func newBucket(c clock.Clock, rate float64, burst int) *bucket {
	return &bucket{clock: c, rate: rate, burst: float64(burst), tokens: float64(burst), last: c.Now()}
}

// take takes one token, false when there is none.
func (b *bucket) take() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.clock.Now()
	// A clock stepping back refills nothing; the next step forward
	// counts from the new time.
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(b.burst, b.tokens+d.Seconds()*b.rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
