package risk

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/internal/chain"
)

type countingSource struct{ calls map[string]int }

func (c *countingSource) Counterparties(_ context.Context, _ chain.Chain, _, addr string, limit int) ([]string, error) {
	c.calls[addr]++
	return []string{addr + "-peer", addr + "-peer2", addr + "-peer3"}[:min(limit, 3)], nil
}

// TestCacheLRUAndTTL: the least recently used answer leaves first, an
// answer older than the TTL is asked again, and a source answering more
// than the limit is cut to it.
func TestCacheLRUAndTTL(t *testing.T) {
	src := &countingSource{calls: map[string]int{}}
	now := time.Unix(1e9, 0)
	c := newCache(src, CounterpartiesConfig{Limit: 2, Timeout: time.Second, CacheSize: 2, CacheTTL: time.Minute})
	c.now = func() time.Time { return now }
	get := func(a string) []string {
		l, err := c.lookup(context.Background(), chain.ETH, "mainnet", a)
		require.NoError(t, err)
		return l
	}
	require.Equal(t, []string{"a-peer", "a-peer2"}, get("a"))
	get("b")
	get("a") // a is now the most recent
	get("c") // b goes
	require.Equal(t, 2, c.len())
	get("a")
	get("b")
	require.Equal(t, map[string]int{"a": 1, "b": 2, "c": 1}, src.calls)
	now = now.Add(time.Minute)
	get("b")
	require.Equal(t, 3, src.calls["b"], "stale after the TTL")
	for i := range 10 {
		get(fmt.Sprint("x", i))
	}
	require.Equal(t, 2, c.len())
}
