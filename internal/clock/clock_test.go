package clock

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestManual(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	m := NewManual(start)
	require.Equal(t, start, m.Now())
	require.Equal(t, start.Add(time.Minute), m.Advance(time.Minute))
	require.Equal(t, start.Add(time.Minute), m.Now(), "reading does not move it")
	m.Advance(-2 * time.Minute)
	require.Equal(t, start.Add(-time.Minute), m.Now(), "a step back")
	m.Set(start)
	require.Equal(t, start, m.Now())

	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				m.Advance(time.Second)
				_ = m.Now()
			}
		})
	}
	wg.Wait()
	require.Equal(t, start.Add(800*time.Second), m.Now(), "no advance is lost under concurrency")
}

func TestReal(t *testing.T) {
	var c Clock = Real{}
	before := time.Now()
	got := c.Now()
	require.False(t, got.Before(before))
	require.WithinDuration(t, time.Now(), got, time.Second)
}
