package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/retry"
)

// DeadLetters takes the deliveries that failed every attempt
// (kafka.Producer).
type DeadLetters interface {
	PublishKeyed(ctx context.Context, topic, typ string, recs []kafka.KeyValue) error
}

// DeadLetter is a record of cordon.notify-dead-letters, keyed by
// webhook/delivery: what could not be delivered, where, and why.
type DeadLetter struct {
	V        int         `json:"v"`
	Webhook  string      `json:"webhook"`
	URL      string      `json:"url"`
	Delivery string      `json:"delivery"`
	Attempts int         `json:"attempts"`
	Error    string      `json:"error"`
	Failed   time.Time   `json:"failed"`
	Alert    chain.Alert `json:"alert"`
}

// ServiceConfig is what a Service runs with.
type ServiceConfig struct {
	Kafka  kafka.Config
	Notify Config
	Dead   DeadLetters
	// Client sends the requests (default: a client without redirects:
	// a webhook that redirects is misconfigured, and following it would
	// send the alert somewhere not configured).
	Client  *http.Client
	Log     *slog.Logger
	Metrics *Metrics
	// Now is the clock of signatures and silences (default time.Now).
	Now func() time.Time
}

// Service delivers the alerts of cordon.alerts to the webhooks.
type Service struct {
	cfg ServiceConfig
}

// NewService returns a service for a filled and validated config.
func NewService(cfg ServiceConfig) *Service {
	cfg.Kafka.Topics.Fill()
	if cfg.Client == nil {
		cfg.Client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{cfg: cfg}
}

// Group is the consumer group of webhook name.
func Group(name string) string { return kafka.GroupNotifyPrefix + name }

// Run delivers until ctx ends; each webhook's follower restarts on its
// own after a Kafka failure.
func (s *Service) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	for _, w := range s.cfg.Notify.Webhooks {
		log := s.cfg.Log.With("webhook", w.Name)
		g.Go(func() error {
			return retry.Forever(ctx, retry.Policy{Initial: time.Second, Max: 30 * time.Second}, log, "notify: following the alerts stopped",
				func(ctx context.Context) error {
					return kafka.ConsumeGroup(ctx, s.cfg.Kafka, s.cfg.Kafka.Topics.Alerts, Group(w.Name), func(recs []*kafka.Record) error {
						return s.batch(ctx, w, log, recs)
					})
				})
		})
	}
	return g.Wait()
}

// batch delivers one batch of records to w; an error (only when a dead
// letter cannot be written) has the batch read again.
func (s *Service) batch(ctx context.Context, w Webhook, log *slog.Logger, recs []*kafka.Record) error {
	for _, r := range recs {
		var a chain.Alert
		if err := json.Unmarshal(r.Value, &a); err != nil || a.ID == "" {
			log.Warn("notify: skipped a record of the alerts topic that is not an alert", "partition", r.Partition, "offset", r.Offset, "err", err)
			continue
		}
		if !Wants(w, a) {
			continue
		}
		if sl, ok := Silenced(s.cfg.Notify.Silences, a, s.cfg.Now()); ok {
			s.cfg.Metrics.silenced(w.Name)
			log.Info("notify: alert silenced", "alert", a.ID, "rule", ruleOf(a), "until", sl.Until, "reason", sl.Reason)
			continue
		}
		if err := s.deliver(ctx, w, log, a); err != nil {
			return err
		}
	}
	return nil
}

// deliver sends a to w, retrying with backoff; after the last attempt it
// writes the dead letter.
func (s *Service) deliver(ctx context.Context, w Webhook, log *slog.Logger, a chain.Alert) error {
	pol := retry.Policy{Initial: w.Backoff, Max: w.MaxBackoff}
	var last error
	started := time.Now()
	tried := 0
	for attempt := 1; attempt <= w.Attempts; attempt++ {
		tried = attempt
		d, err := Encode(w, a, s.cfg.Now())
		if err != nil {
			last = err
			break // it will not encode on the next attempt either
		}
		if last = s.post(ctx, w, d); last == nil {
			s.cfg.Metrics.delivered(w.Name, time.Since(started))
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.cfg.Metrics.failed(w.Name)
		if attempt == w.Attempts || errors.Is(last, errRefused) {
			break // out of attempts, or refused: the same payload would be refused again
		}
		wait := pol.Backoff(attempt)
		log.Warn("notify: delivery failed; retrying", "alert", a.ID, "attempt", attempt, "retry_in", wait, "err", last)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
	key := DeliveryKey(a)
	dl := DeadLetter{V: 1, Webhook: w.Name, URL: redactURL(w.URL), Delivery: key, Attempts: tried, Error: last.Error(), Failed: s.cfg.Now().UTC(), Alert: a}
	b, err := json.Marshal(dl)
	if err != nil {
		return err
	}
	if s.cfg.Dead == nil {
		return fmt.Errorf("notify: webhook %s: alert %s undeliverable and no dead-letter writer: %w", w.Name, a.ID, last)
	}
	if err := s.cfg.Dead.PublishKeyed(ctx, s.cfg.Kafka.Topics.NotifyDead, "notify_dead_letter", []kafka.KeyValue{{Key: w.Name + "/" + key, Value: b}}); err != nil {
		return fmt.Errorf("notify: write the dead letter of %s: %w", a.ID, err)
	}
	s.cfg.Metrics.dead(w.Name)
	log.Error("notify: alert undeliverable; dead letter written", "alert", a.ID, "attempts", tried, "err", last, "topic", s.cfg.Kafka.Topics.NotifyDead)
	return nil
}

func (s *Service) post(ctx context.Context, w Webhook, d Delivery) error {
	ctx, cancel := context.WithTimeout(ctx, w.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(d.Body))
	if err != nil {
		return err
	}
	for k, v := range d.Headers {
		req.Header.Set(k, v)
	}
	resp, err := s.cfg.Client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its message names the whole URL, token and all
		}
		return fmt.Errorf("POST %s: %w", redactURL(w.URL), err)
	}
	defer func() { _ = resp.Body.Close() }()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		err := fmt.Errorf("%s answered %s: %s", redactURL(w.URL), resp.Status, strings.TrimSpace(string(msg)))
		if c := resp.StatusCode; c/100 == 4 && c != http.StatusRequestTimeout && c != http.StatusTooManyRequests {
			err = fmt.Errorf("%w: %w", errRefused, err)
		}
		return err
	}
	return nil
}

// errRefused is a receiver refusing the delivery itself (a 4xx other than
// 408 and 429): the payload goes to the dead letters at once.
var errRefused = errors.New("refused")

// redactURL keeps only the URL's scheme and host for logs and dead
// letters: chat webhooks carry their token in the path or the query.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return "(webhook url)"
	}
	return u.Scheme + "://" + u.Host
}

func ruleOf(a chain.Alert) string {
	if a.Rule != "" {
		return a.Rule
	}
	return a.Type
}

// Wants reports whether w delivers a: its severity is at least the
// webhook's minimum and, when the webhook names rules, its rule is one.
func Wants(w Webhook, a chain.Alert) bool {
	if Rank(a.Severity) < Rank(w.MinSeverity) {
		return false
	}
	return len(w.Rules) == 0 || slices.Contains(w.Rules, ruleOf(a))
}

// Silenced returns the first silence holding a back at now.
func Silenced(ss []Silence, a chain.Alert, now time.Time) (Silence, bool) {
	for _, s := range ss {
		if !now.Before(s.Until) || Rank(a.Severity) > Rank(s.MaxSeverity) {
			continue
		}
		if s.Rule != "" && s.Rule != ruleOf(a) || s.Chain != "" && s.Chain != string(a.Chain) {
			continue
		}
		if s.Address != "" && !slices.ContainsFunc(a.Addresses, func(x string) bool { return strings.EqualFold(x, s.Address) }) {
			continue
		}
		return s, true
	}
	return Silence{}, false
}
