package retry

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakeClock records the waits asked for and advances time by them
// instantly; cancel, when set, is called at the n-th wait.
type fakeClock struct {
	t      time.Time
	waits  []time.Duration
	cancel func()
	stopAt int
}

func (c *fakeClock) policy(initial, limit time.Duration) Policy {
	return Policy{Initial: initial, Max: limit, now: func() time.Time { return c.t },
		sleep: func(ctx context.Context, d time.Duration) error {
			c.waits = append(c.waits, d)
			c.t = c.t.Add(d)
			if c.cancel != nil && len(c.waits) == c.stopAt {
				c.cancel()
			}
			return ctx.Err()
		}}
}

func TestBackoff(t *testing.T) {
	for _, tc := range []struct {
		name    string
		p       Policy
		attempt int
		want    time.Duration
	}{
		{"first", Policy{Initial: time.Second, Max: 15 * time.Second}, 1, time.Second},
		{"doubles", Policy{Initial: time.Second, Max: 15 * time.Second}, 3, 4 * time.Second},
		{"capped", Policy{Initial: time.Second, Max: 15 * time.Second}, 5, 15 * time.Second},
		{"far past the cap", Policy{Initial: time.Second, Max: 15 * time.Second}, 1 << 20, 15 * time.Second},
		{"zero policy waits 1s", Policy{}, 7, time.Second},
		{"max below initial", Policy{Initial: 2 * time.Second, Max: time.Second}, 3, 2 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, tc.p.Backoff(tc.attempt))
		})
	}
}

func TestDoRetriesWithBackoffUntilSuccess(t *testing.T) {
	clk := &fakeClock{}
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	calls := 0
	err := Do(context.Background(), clk.policy(time.Second, 5*time.Second), log, "thing not ready", func(context.Context) error {
		calls++
		if calls < 6 {
			return errors.New("refused")
		}
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, 6, calls)
	require.Equal(t, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}, clk.waits)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	require.Len(t, lines, 5)
	require.Contains(t, lines[0], `msg="thing not ready; retrying" err=refused retry_in=1s attempt=1`)
	require.Contains(t, lines[4], "retry_in=5s attempt=5")
}

func TestDoStopsWhenContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	clk := &fakeClock{cancel: cancel, stopAt: 3}
	calls := 0
	err := Do(ctx, clk.policy(10*time.Millisecond, time.Second), nil, "x", func(context.Context) error {
		calls++
		return errors.New("no")
	})
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, 3, calls)

	// A failure caused by the context ending is not retried nor logged.
	var buf bytes.Buffer
	ctx, cancel = context.WithCancel(context.Background())
	calls = 0
	err = Do(ctx, Policy{Initial: time.Hour}, slog.New(slog.NewTextHandler(&buf, nil)), "x", func(ctx context.Context) error {
		calls++
		cancel()
		return ctx.Err()
	})
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, 1, calls)
	require.Empty(t, buf.String())
}

func TestDoRealTimer(t *testing.T) {
	calls := 0
	start := time.Now()
	err := Do(context.Background(), Policy{Initial: time.Millisecond, Max: 2 * time.Millisecond}, nil, "x", func(context.Context) error {
		calls++
		if calls < 3 {
			return errors.New("no")
		}
		return nil
	})
	require.NoError(t, err)
	require.GreaterOrEqual(t, time.Since(start), 3*time.Millisecond)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err = Do(ctx, Policy{Initial: time.Hour}, nil, "x", func(context.Context) error { return errors.New("no") })
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestForeverRestartsAndResetsAfterAHealthyRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	clk := &fakeClock{cancel: cancel, stopAt: 6}
	var buf bytes.Buffer
	runs := 0
	err := Forever(ctx, clk.policy(time.Second, 8*time.Second), slog.New(slog.NewTextHandler(&buf, nil)), "component stopped",
		func(context.Context) error {
			runs++
			if runs == 4 {
				clk.t = clk.t.Add(time.Minute) // a long healthy run, then a failure
			}
			if runs == 5 {
				return nil // returning without an error before ctx ends is a stop too
			}
			return errors.New("lost connection")
		})
	require.NoError(t, err, "Forever returns nil when ctx ends")
	require.Equal(t, 6, runs)
	require.Equal(t, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, time.Second, 2 * time.Second, 4 * time.Second}, clk.waits)
	require.Equal(t, 6, strings.Count(buf.String(), `msg="component stopped; retrying"`))
	require.Contains(t, buf.String(), "err=<nil>")
}

func TestForeverReturnsWhenContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Forever(ctx, Policy{Initial: time.Hour}, nil, "x", func(ctx context.Context) error {
			<-ctx.Done()
			return ctx.Err()
		})
	}()
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Forever did not return after cancel")
	}
}
