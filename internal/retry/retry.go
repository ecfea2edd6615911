package retry

import (
	"context"
	"log/slog"
	"time"
)

// Policy is how long to wait between tries: Initial after the first
// failure, doubling after each further one, never more than Max.
type Policy struct {
	Initial time.Duration
	Max     time.Duration

	// sleep waits d or until ctx ends (tests replace it).
	sleep func(ctx context.Context, d time.Duration) error
	// now is the clock Forever measures runs with (tests replace it).
	now func() time.Time
}

// Backoff is the wait after the given failure (attempt counts from 1).
func (p Policy) Backoff(attempt int) time.Duration {
	d, limit := p.bounds()
	for i := 1; i < attempt && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// bounds are Initial and Max made sane: Initial defaults to 1s, and Max
// is at least Initial.
func (p Policy) bounds() (initial, limit time.Duration) {
	initial, limit = p.Initial, p.Max
	if initial <= 0 {
		initial = time.Second
	}
	return initial, max(limit, initial)
}

func (p Policy) wait(ctx context.Context, d time.Duration) error {
	if p.sleep != nil {
		return p.sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (p Policy) clock() time.Time {
	if p.now != nil {
		return p.now()
	}
	return time.Now()
}

// Do calls fn until it returns nil, and returns nil; or until ctx ends,
// and returns ctx's error. Each failure is logged at warn level as
// "<what>; retrying" with err, retry_in and attempt. A nil log logs
// nothing.
func Do(ctx context.Context, p Policy, log *slog.Logger, what string, fn func(context.Context) error) error {
	log = orDiscard(log)
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		wait := p.Backoff(attempt)
		log.Warn(what+"; retrying", "err", err, "retry_in", wait, "attempt", attempt)
		if err := p.wait(ctx, wait); err != nil {
			return err
		}
	}
}

// Forever runs fn, a long-running component, and starts it again each
// time it returns before ctx ends, logging why ("<what>; retrying", with
// err, retry_in and attempt) and backing off as Do does. A run that
// lasted longer than the policy's Max starts the backoff afresh. Forever
// returns nil once ctx ends: the component's error never stops the
// caller, and it never goes unlogged.
func Forever(ctx context.Context, p Policy, log *slog.Logger, what string, fn func(context.Context) error) error {
	log = orDiscard(log)
	attempt := 0
	for {
		start := p.clock()
		err := fn(ctx)
		if ctx.Err() != nil {
			return nil //nolint:nilerr // stopping: the run ended because ctx did
		}
		if _, limit := p.bounds(); p.clock().Sub(start) > limit {
			attempt = 0 // it ran fine for a while: this failure is a fresh one
		}
		attempt++
		wait := p.Backoff(attempt)
		log.Warn(what+"; retrying", "err", err, "retry_in", wait, "attempt", attempt)
		if p.wait(ctx, wait) != nil {
			return nil //nolint:nilerr // stopping while waiting to restart
		}
	}
}

func orDiscard(log *slog.Logger) *slog.Logger {
	if log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return log
}
