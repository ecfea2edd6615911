package credit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/internal/apiauth"
	"github.com/cordonhq/cordon/internal/chain"
)

// DecisionRequest is the body of POST /v1/decisions.
type DecisionRequest struct {
	// ID names the decision: a retry with the same id is the same
	// decision (optional; generated when empty).
	ID      string `json:"id"`
	Deposit string `json:"deposit"`
	Action  string `json:"action"`
	Reason  string `json:"reason"`
	// Content, when given, is the content digest of the deposit as the
	// operator saw it (GET /v1/deposits): the decision is refused (409)
	// if the deposit has changed since.
	Content string `json:"content,omitempty"`
}

// DecisionResponse acknowledges a decision written to the decisions
// topic. The crediting service applies it: its outcome is a deposit event
// (released, then credited once deep enough; or rejected) or, when the
// deposit is not held, a deposit_decision_refused alert.
type DecisionResponse struct {
	Decision Decision `json:"decision"`
}

var (
	decisionIDRe = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)
	ethTxRe      = regexp.MustCompile(`^0x[0-9a-f]{64}$`)
	btcTxRe      = regexp.MustCompile(`^[0-9a-f]{64}$`)
	networkRe    = regexp.MustCompile(`^[a-z0-9_-]{1,32}$`)
	indexRe      = regexp.MustCompile(`^(native|0|[1-9][0-9]{0,9})$`)
)

// ValidDepositID checks a deposit id's form: chain/network/tx/index.
func ValidDepositID(id string) error {
	parts := strings.Split(id, "/")
	if len(parts) != 4 {
		return fmt.Errorf("deposit %q: want chain/network/tx_hash/index", trunc(id))
	}
	c, network, tx, index := parts[0], parts[1], parts[2], parts[3]
	switch {
	case c != string(chain.ETH) && c != string(chain.BTC):
		return fmt.Errorf("deposit %q: chain %q, want eth or btc", trunc(id), trunc(c))
	case !networkRe.MatchString(network):
		return fmt.Errorf("deposit %q: bad network %q", trunc(id), trunc(network))
	case c == string(chain.ETH) && !ethTxRe.MatchString(tx), c == string(chain.BTC) && !btcTxRe.MatchString(tx):
		return fmt.Errorf("deposit %q: bad transaction hash for %s", trunc(id), c)
	case !indexRe.MatchString(index), c == string(chain.BTC) && index == "native":
		return fmt.Errorf("deposit %q: bad index %q (a log index or \"native\" on eth, an output index on btc)", trunc(id), trunc(index))
	}
	return nil
}

func trunc(s string) string {
	if len(s) > 100 {
		return s[:100] + "…"
	}
	return s
}

// Validate checks a decision as read from the decisions topic.
func (d *Decision) Validate() error {
	switch {
	case !decisionIDRe.MatchString(d.ID):
		return fmt.Errorf("decision id %q: want 1 to 128 of A-Z a-z 0-9 . _ : -", trunc(d.ID))
	case d.Action != ActionRelease && d.Action != ActionReject:
		return fmt.Errorf("action %q: want release or reject", trunc(d.Action))
	case strings.TrimSpace(d.Reason) == "":
		return fmt.Errorf("reason: empty; say why (it is kept with the deposit)")
	case len(d.Reason) > 2000 || !utf8.ValidString(d.Reason):
		return fmt.Errorf("reason: want valid UTF-8 of at most 2000 bytes")
	case d.Operator == "":
		return fmt.Errorf("operator: empty")
	}
	return ValidDepositID(d.Deposit)
}

// PublishDecision writes a decision to the decisions topic, keyed by the
// deposit (one deposit's decisions stay in order).
func PublishDecision(ctx context.Context, p *kafka.Producer, d Decision) error {
	v, err := json.Marshal(&d)
	if err != nil {
		return err
	}
	return p.PublishKeyed(ctx, p.Topics().Decisions, "decision", []kafka.KeyValue{{Key: d.Deposit, Value: v}})
}

// DecisionsEndpoint is the route of the decisions API.
const DecisionsEndpoint = "/v1/decisions"

// NewDecisionsHandler serves POST /v1/decisions: an operator (the decide
// scope is operators' only) releases or rejects a held deposit.
// The decision names the operator and is acknowledged (202) once it is in
// the decisions topic. Other tokens get 403 (counted, logged, alerted).
// The decision is bound to the deposit's content as view holds it (a
// held deposit): crediting applies it to that content only.
func NewDecisionsHandler(auth *apiauth.Auth, maxBody int64, view *View, publish func(context.Context, Decision) error,
	now func() time.Time) http.Handler {
	if now == nil {
		now = time.Now
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op, code := auth.Require(w, r, DecisionsEndpoint, apiauth.Decide)
		if code != 0 {
			return
		}
		who := op.Name
		var req DecisionRequest
		if apiauth.ReadJSON(w, r, maxBody, &req) != 0 {
			return
		}
		d := Decision{V: chain.SchemaVersion, ID: req.ID, Deposit: req.Deposit, Action: req.Action, Operator: who, Reason: req.Reason,
			Time: now().UTC().Format(time.RFC3339Nano)}
		if d.ID == "" {
			var b [16]byte
			_, _ = rand.Read(b[:])
			d.ID = hex.EncodeToString(b[:])
		}
		if err := d.Validate(); err != nil {
			apiauth.Fail(w, http.StatusBadRequest, "%v", err)
			return
		}
		if !view.Ready() {
			apiauth.Fail(w, http.StatusServiceUnavailable, "the deposits view is still reading cordon.deposits: retry")
			return
		}
		ev, ok := view.Get(d.Deposit)
		switch {
		case !ok:
			apiauth.Fail(w, http.StatusConflict, "deposit %s is not open (settled or unknown): nothing to decide", d.Deposit)
			return
		case ev.Status != StatusHeld:
			apiauth.Fail(w, http.StatusConflict, "deposit %s is %s, not held: nothing to decide", d.Deposit, ev.Status)
			return
		case req.Content != "" && req.Content != ev.Content:
			apiauth.Fail(w, http.StatusConflict, "deposit %s changed since you saw it (content %s, now %s): look again, then decide", d.Deposit,
				trunc(req.Content), ev.Content)
			return
		}
		d.Content = ev.Content
		if err := publish(r.Context(), d); err != nil {
			apiauth.Fail(w, http.StatusServiceUnavailable, "writing the decision failed; it was not recorded, retry with the same id: %v", err)
			return
		}
		apiauth.WriteJSON(w, http.StatusAccepted, DecisionResponse{Decision: d})
	})
}
