package partner

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/internal/clock"
	"github.com/cordonhq/cordon/sharing/taxii"
)

// allowed counts how many of n requests Allow lets through.
func allowed(reg *Registry, c taxii.Caller, n int) int {
	k := 0
	for range n {
		if reg.Allow(c) {
			k++
		}
	}
	return k
}

func TestAllow(t *testing.T) {
	ca := devCA(t)
	clk := clock.NewManual(time.Unix(1_700_000_000, 0))
	a := pinned(t, 1, "alpha", issue(t, ca, "alpha").file)
	a.Rate, a.Burst = 2, 3
	b := pinned(t, 2, "beta", issue(t, ca, "beta").file) // defaults: 20/s, 100
	reg, err := New([]Partner{a, b}, Options{Clock: clk})
	require.NoError(t, err)
	alpha, beta := taxii.Caller{Name: "alpha"}, taxii.Caller{Name: "beta"}

	require.Equal(t, 3, allowed(reg, alpha, 10), "the burst, then refusals")
	require.False(t, reg.Allow(alpha))
	require.Equal(t, 100, allowed(reg, beta, 150), "beta's budget is its own")

	clk.Advance(400 * time.Millisecond) // 0.8 token
	require.False(t, reg.Allow(alpha))
	clk.Advance(100 * time.Millisecond) // 1.0
	require.True(t, reg.Allow(alpha))
	require.False(t, reg.Allow(alpha))

	clk.Advance(time.Hour)
	require.Equal(t, 3, allowed(reg, alpha, 10), "refilled to the burst, no more")

	// A clock stepping back refills nothing, nor takes anything away.
	clk.Advance(-time.Minute)
	require.False(t, reg.Allow(alpha))
	clk.Advance(time.Second)
	require.Equal(t, 2, allowed(reg, alpha, 10))

	require.Equal(t, 100, allowed(reg, beta, 150), "beta refilled to its burst meanwhile")
	require.False(t, reg.Allow(taxii.Caller{Name: "gamma"}), "an unknown caller has no budget")
}
