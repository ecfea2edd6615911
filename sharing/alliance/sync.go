package alliance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cordonhq/cordon/sharing/stix"
	"github.com/cordonhq/cordon/sharing/taxii"
)

// Peer is a partner we pull from and post to.
type Peer struct {
	Name   string
	Client *taxii.Client
	// Pull are the aliases of its collections we pull (Published by
	// default).
	Pull []string
	// Push: it takes our urgent objects posted to its Inbox.
	Push bool
	// Sightings: we post it our sightings of its indicators.
	Sightings bool
	// Entitled tells whether it may receive one of our records of the
	// collection alias (its read rights and TLP, as for its pulls).
	Entitled func(alias string, rec *taxii.Record) bool
}

// PullOptions tune a pull.
type PullOptions struct {
	// Page is the page size asked for (1000).
	Page int
	// Wait is how long the partner's server is asked to hold a request
	// that finds nothing new (Prefer: wait): a steady pull of an
	// unchanged collection costs one request per Wait.
	Wait time.Duration
}

// Pull follows the peer's collection alias from where the last pull
// ended, until ctx ends or a request fails (the caller retries). Each
// page's objects and the new position commit together; objects the
// partner's page holds that fail their checks are refused, logged and
// counted, and the position passes them (nothing accepted before is
// lost, and a bad object cannot stall the sync).
func (s *Service) Pull(ctx context.Context, p Peer, alias string, o PullOptions) error {
	if o.Page <= 0 {
		o.Page = 1000
	}
	col := taxii.CollectionID(alias)
	after := s.Cursor(p.Name, alias)
	// start is the added_after of the query a next cursor continues: a
	// TAXII server (cordon's) binds its cursor to the query as first
	// asked, so added_after stays as it was while next is followed.
	start := after
	next := ""
	// While a page is taken, the next one (when the server said there is
	// more) is already asked for: the transfer overlaps the checks.
	type fetched struct {
		page taxii.ObjectsPage
		err  error
		at   time.Time
	}
	var ahead chan fetched
	fetch := func(q taxii.Query) chan fetched {
		ch := make(chan fetched, 1)
		go func() {
			at := time.Now()
			pg, err := p.Client.Objects(ctx, col, q)
			ch <- fetched{pg, err, at}
		}()
		return ch
	}
	defer func() {
		if ahead != nil {
			<-ahead
		}
	}()
	for ctx.Err() == nil {
		if next == "" {
			start = after
		}
		q := taxii.Query{AddedAfter: start, Next: next, Limit: o.Page}
		if next == "" {
			q.Wait = o.Wait
		}
		if ahead == nil || next == "" {
			if ahead != nil {
				<-ahead // asked for a page no longer wanted
			}
			ahead = fetch(q)
		}
		f := <-ahead
		ahead = nil
		page, err, asked := f.page, f.err, f.at
		if err == nil && page.More && len(page.Objects) > 0 && page.Next != "" {
			ahead = fetch(taxii.Query{AddedAfter: start, Next: page.Next, Limit: o.Page})
		}
		if d, limited := rateLimited(err); limited {
			// The partner's budget for us is spent: wait as it says,
			// without counting a failure.
			s.cfg.Metrics.pulls.WithLabelValues(p.Name, "rate_limited").Inc()
			if !sleep(ctx, d) {
				return ctx.Err()
			}
			continue
		}
		if err != nil {
			s.cfg.Metrics.pulls.WithLabelValues(p.Name, "failed").Inc()
			s.stats.update(p.Name, func(e *PartnerStats) { e.LastError = err.Error() })
			return fmt.Errorf("sharing: pull %s/%s: %w", p.Name, alias, err)
		}
		s.cfg.Metrics.pulls.WithLabelValues(p.Name, "ok").Inc()
		now := s.cfg.Clock.Now()
		if len(page.Objects) > 0 {
			if page.DateAddedLast.After(now.Add(s.cfg.Skew)) {
				return fmt.Errorf("sharing: pull %s/%s: %s %s is ahead of our clock (%s)", p.Name, alias, taxii.HeaderDateAddedLast,
					taxii.FormatTime(page.DateAddedLast), taxii.FormatTime(now))
			}
			if page.DateAddedLast.IsZero() || !page.DateAddedLast.After(after) {
				return fmt.Errorf("sharing: pull %s/%s: a page of %d objects whose %s (%s) is not after %s", p.Name, alias,
					len(page.Objects), taxii.HeaderDateAddedLast, page.DateAddedLast, taxii.FormatTime(after))
			}
			objs := make([]stix.Object, 0, len(page.Objects))
			var bad []taxii.Outcome
			for _, raw := range page.Objects {
				ob, err := stix.DecodeObject(raw, s.cfg.Limits)
				if err != nil {
					bad = append(bad, taxii.Outcome{ID: peekID(raw), Err: &Refused{ReasonMalformed, err}})
					continue
				}
				objs = append(objs, *ob)
			}
			s.mu.Lock()
			s.count(p.Name, bad)
			s.mu.Unlock()
			if _, err := s.Ingest(ctx, p.Name, alias, objs, page.DateAddedLast); err != nil {
				return err
			}
			if held := s.Cursor(p.Name, alias); held.Before(page.DateAddedLast) {
				// A page held back for an object dated ahead of our
				// clock: ask again from where we were, a little later.
				after, next = held, ""
				if !sleep(ctx, futureRetry) {
					return ctx.Err()
				}
				continue
			}
			after = page.DateAddedLast
			s.cfg.Metrics.lag.WithLabelValues(p.Name).Set(now.Sub(page.DateAddedLast).Seconds())
		}
		s.cfg.Metrics.lastSync.WithLabelValues(p.Name).Set(float64(now.Unix()))
		s.stats.update(p.Name, func(e *PartnerStats) {
			e.LastSync, e.LastError = now, ""
			if len(page.Objects) > 0 {
				e.Lag = now.Sub(page.DateAddedLast).Seconds()
			}
		})
		next = ""
		// An empty page that claims more is followed no further (the
		// next request waits as a fresh one): a partner's server cannot
		// make the pull a busy loop.
		if page.More && len(page.Objects) > 0 {
			next = page.Next
		}
		// A server that answers an empty page at once (one that ignores
		// Prefer: wait, or a hostile one) is asked again no sooner than
		// minEmptyPoll after the last request.
		if len(page.Objects) == 0 {
			if d := minEmptyPoll - time.Since(asked); d > 0 && !sleep(ctx, d) {
				return ctx.Err()
			}
		}
	}
	return ctx.Err()
}

// futureRetry is how long a pull held back for a future-dated object
// waits before asking again.
const futureRetry = 5 * time.Second

// minEmptyPoll is the least time between two requests of a pull that
// found nothing.
const minEmptyPoll = time.Second

// rateLimited tells whether err is a 429, and how long to wait (as the
// partner said, between 50ms and 10s).
func rateLimited(err error) (time.Duration, bool) {
	var rl *taxii.RateLimited
	if !errors.As(err, &rl) {
		return 0, false
	}
	return min(max(rl.RetryAfter, 50*time.Millisecond), 10*time.Second), true
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func peekID(raw []byte) string {
	var h struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(raw, &h) != nil || len(h.ID) > 100 {
		return ""
	}
	return h.ID
}

// Push posts pub to the inbox of every peer that takes posts and may
// receive them, all at once, each retried a few times; it returns once
// every post ended. Failures are counted and logged: the peers' pulls
// get the objects anyway.
func (s *Service) Push(ctx context.Context, peers []Peer, pub []Published) {
	var wg sync.WaitGroup
	for _, p := range peers {
		if !p.Push || p.Client == nil {
			continue
		}
		objs := make([]json.RawMessage, 0, len(pub))
		for _, o := range pub {
			rec := &taxii.Record{ID: o.ID, Type: "indicator", SpecVersion: "2.1", Version: o.Version, Raw: o.Object}
			if p.Entitled != nil && p.Entitled(o.Collection, rec) {
				objs = append(objs, o.Object)
			}
		}
		if len(objs) == 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.post(ctx, p, objs)
			res := "ok"
			if err != nil {
				res = "failed"
				s.cfg.Log.Warn("sharing: urgent post failed; the partner's pull will take the objects", "partner", p.Name, "objects", len(objs), "err", err)
			}
			s.cfg.Metrics.pushes.WithLabelValues(p.Name, res).Inc()
			s.stats.update(p.Name, func(e *PartnerStats) {
				if err != nil {
					e.PushFail++
					e.LastError = err.Error()
				} else {
					e.Pushed += int64(len(objs))
				}
			})
		}()
	}
	wg.Wait()
}

// errPeerRefused wraps a post the partner refused (a 4xx other than 429,
// or objects refused in its status): posting it again changes nothing.
var errPeerRefused = errors.New("refused by the partner")

func (s *Service) post(ctx context.Context, p Peer, objs []json.RawMessage) error {
	var err error
	wait := time.Duration(0)
	for attempt := range 3 {
		if attempt > 0 && !sleep(ctx, wait) {
			return ctx.Err()
		}
		wait = time.Duration(attempt+1) * 200 * time.Millisecond
		var st taxii.Status
		st, err = p.Client.Add(ctx, taxii.CollectionID(Inbox), objs)
		if d, limited := rateLimited(err); limited {
			wait = d
			continue
		}
		if err == nil {
			if st.FailureCount > 0 {
				msg := ""
				if len(st.Failures) > 0 {
					msg = st.Failures[0].ID + ": " + st.Failures[0].Message
				}
				return fmt.Errorf("%w: %d of %d objects refused (%s)", errPeerRefused, st.FailureCount, st.TotalCount, msg)
			}
			return nil
		}
		var te *taxii.Error
		if errors.As(err, &te) && te.HTTPStatus != "" && te.HTTPStatus[0] == '4' && te.HTTPStatus != "429" {
			return fmt.Errorf("%w: %w", errPeerRefused, err) // trying again changes nothing
		}
	}
	return err
}
