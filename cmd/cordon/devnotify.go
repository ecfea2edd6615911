package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cordonhq/cordon/config"
	"github.com/cordonhq/cordon/detect/contain"
	"github.com/cordonhq/cordon/detect/notify"
	iconfig "github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/signer/gate"
	"github.com/cordonhq/cordon/signer/intent"
)

// devReceiver is cordon dev's webhook receiver: it verifies every
// delivery's signature as a real receiver must, counts what it took, and
// appends the chat messages to chat.log in the data directory.
type devReceiver struct {
	secret []byte
	ln     net.Listener
	chat   string
	log    *slog.Logger

	mu       sync.Mutex
	soc      map[string]int // verified deliveries by event
	chatN    int
	refused  int
	seenSoc  map[string]bool
	repeated int
}

// devNotify configures the dev's two webhooks on a receiver of its own:
// dev-soc (the cordon format, high and critical alerts) and dev-chat
// (the chat format, medium and up), with a silence on the dev's example
// operator rule.
func devNotify(ctx context.Context, cfg *config.Config, dir string, log *slog.Logger) (*devReceiver, error) {
	secret, err := devToken(dir, "webhook-secret")
	if err != nil {
		return nil, err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &devReceiver{secret: []byte(secret), ln: ln, chat: filepath.Join(dir, "chat.log"), log: log,
		soc: map[string]int{}, seenSoc: map[string]bool{}}
	base := "http://" + ln.Addr().String()
	cfg.Detect.Notify = notify.Config{
		Webhooks: []notify.Webhook{
			{Name: "dev-soc", URL: base + "/soc", Secret: iconfig.SecretValue(secret), MinSeverity: "high", Backoff: 200 * time.Millisecond, MaxBackoff: 2 * time.Second},
			{Name: "dev-chat", URL: base + "/chat", Secret: iconfig.SecretValue(secret), Format: notify.FormatChat, MinSeverity: "medium",
				Backoff: 200 * time.Millisecond, MaxBackoff: 2 * time.Second},
		},
		Silences: []notify.Silence{{Rule: "custom:dev-token-whale", Until: time.Now().Add(24 * time.Hour),
			Reason: "dev example: the traffic generator's token whales are expected"}},
	}
	return r, nil
}

func (r *devReceiver) Run(ctx context.Context) error {
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(r.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("dev webhook receiver: %w", err)
	}
	return nil
}

func (r *devReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	err = notify.Verify(r.secret, req.Header, body, time.Now(), 5*time.Minute)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.refused++
		r.log.Warn("dev webhook receiver: refused a delivery", "err", err)
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	switch req.URL.Path {
	case "/soc":
		var env notify.Envelope
		if err := json.Unmarshal(body, &env); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		key := req.Header.Get(notify.HeaderDelivery)
		if r.seenSoc[key] {
			r.repeated++ // at least once: a receiver deduplicates by the delivery key
		}
		r.seenSoc[key] = true
		r.soc[env.Event]++
	case "/chat":
		var m struct{ Text string }
		if err := json.Unmarshal(body, &m); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f, err := os.OpenFile(r.chat, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_, err = fmt.Fprintf(f, "%s\n%s\n\n", time.Now().Format(time.RFC3339), m.Text)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		r.chatN++
	default:
		http.NotFound(w, req)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// status is the receiver's dev status line.
func (r *devReceiver) status() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return fmt.Sprintf("webhook dev-soc: %d alerts %d retractions (%d repeated)  dev-chat: %d messages (%s)  refused %d",
		r.soc[notify.EventAlert], r.soc[notify.EventRetraction], r.repeated, r.chatN, r.chat, r.refused)
}

// devContainActions are the dev's containment: a hot wallet that paid a
// lookalike of its counterparty (the dev's approved lookalike
// withdrawals) pauses that asset's withdrawals and publishes the
// poisoner's address to the partners; a contract-wallet takeover pauses
// them all.
var devContainActions = []contain.Action{{Name: "dev-poisoned", Rules: []string{"paid_lookalike"}, Trip: contain.TripAsset, Publish: true,
	Category: "scam", Confidence: 90, TLP: "green"},
	// A takeover of the treasury stops every withdrawal and publishes the
	// attacker's contracts and account.
	{Name: "dev-takeover", Rules: []string{"contract_takeover"}, Trip: contain.TripAll, Publish: true, Category: "hack", Confidence: 95, TLP: "green"}}

// devContain points detection's containment at the dev API (known once
// it listens), with the dev's detection token (scopes breaker and share).
func devContain(sys *system, token string, sharing bool) {
	if sys.detect == nil {
		return
	}
	c := &sys.detect.cfg.Detect.Contain
	c.Actions = devContainActions
	c.Fill()
	c.Gate = contain.Endpoint{URL: "http://" + sys.api.addr(), Token: iconfig.SecretValue(token)}
	if sharing {
		c.Share = c.Gate
	}
}

// devDrill resets, after a while, the breaker trips detection pulled in
// cordon dev, with the signatures of two security approvers (alice and
// bob), so the dev goes on showing withdrawals: in production a reset
// is the approvers' own decision.
func devDrill(ctx context.Context, c gateClient, dir string, after time.Duration, log *slog.Logger) error {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		var out struct{ Trips []gate.Trip }
		if err := c.call(ctx, http.MethodGet, gate.BreakerEndpoint, nil, &out); err != nil {
			continue
		}
		for _, trip := range out.Trips {
			if !strings.HasPrefix(trip.Reason, "[detect task ") || time.Since(trip.At) < after {
				continue
			}
			for _, who := range []string{"alice", "bob"} {
				kf, priv, err := readKeyFile(devApproverKey(dir, who))
				if err != nil {
					return err
				}
				a := intent.Approval{Withdrawal: trip.Subject(), Intent: trip.Hash(), Approver: kf.Approver, Decision: intent.Approve, Signed: time.Now()}
				a.Sign(priv)
				var r gate.ResetAnswer
				if err := c.call(ctx, http.MethodPost, gate.BreakerEndpoint+"/"+url.PathEscape(trip.ID)+"/resets", a, &r); err != nil {
					log.Debug("dev drill: reset not taken", "trip", trip.ID, "err", err)
					break
				}
				if r.Reset {
					log.Info("dev drill: the approvers reset the breaker detection tripped", "trip", trip.ID, "reason", trip.Reason)
				}
			}
		}
	}
}
