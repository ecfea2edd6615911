package notify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/cordonhq/cordon/internal/chain"
)

// Headers of a delivery.
const (
	// HeaderSignature is "v1=" and the hex HMAC-SHA256, keyed by the
	// webhook's secret, of the timestamp, event and delivery headers'
	// values and the body, joined by ".": a captured delivery cannot be
	// passed off under another key or event.
	HeaderSignature = "X-Cordon-Signature"
	// HeaderTimestamp is the delivery's time in Unix seconds: receivers
	// refuse one too old (replays), see Verify.
	HeaderTimestamp = "X-Cordon-Timestamp"
	// HeaderDelivery is the idempotency key: the alert id ("sha256:" and
	// its hash when it holds anything but printable ASCII), and
	// "#retracted" for a retraction.
	HeaderDelivery = "X-Cordon-Delivery"
	// HeaderEvent is "alert" or "retraction".
	HeaderEvent = "X-Cordon-Event"
)

// Events of a delivery.
const (
	EventAlert      = "alert"
	EventRetraction = "retraction"
)

// Envelope is the body of a delivery in the cordon format.
type Envelope struct {
	V       int         `json:"v"`
	Event   string      `json:"event"`
	Webhook string      `json:"webhook"`
	Alert   chain.Alert `json:"alert"`
}

// Delivery is one request to a webhook.
type Delivery struct {
	Body    []byte
	Headers map[string]string
}

// Encode builds the delivery of alert a to webhook w at time now.
func Encode(w Webhook, a chain.Alert, now time.Time) (Delivery, error) {
	ev, key := EventAlert, DeliveryKey(a)
	if a.Retracted {
		ev = EventRetraction
	}
	var body []byte
	var err error
	switch w.Format {
	case FormatChat:
		body, err = json.Marshal(struct {
			Text string `json:"text"`
		}{ChatText(a)})
	case FormatCordon, "":
		body, err = json.Marshal(Envelope{V: 1, Event: ev, Webhook: w.Name, Alert: a})
	default:
		return Delivery{}, fmt.Errorf("webhook %s: format %q: want cordon or chat", w.Name, w.Format)
	}
	if err != nil {
		return Delivery{}, fmt.Errorf("webhook %s: encode alert %s: %w", w.Name, a.ID, err)
	}
	ts := strconv.FormatInt(now.Unix(), 10)
	return Delivery{Body: body, Headers: map[string]string{
		"Content-Type":  "application/json",
		"User-Agent":    "cordon-notify/1",
		HeaderTimestamp: ts,
		HeaderSignature: "v1=" + Sign([]byte(w.Secret.Value()), ts, ev, key, body),
		HeaderDelivery:  key,
		HeaderEvent:     ev,
	}}, nil
}

// DeliveryKey is a's idempotency key (HeaderDelivery).
func DeliveryKey(a chain.Alert) string {
	key := a.ID
	if key == "" || strings.ContainsFunc(key, func(r rune) bool { return r <= ' ' || r > '~' }) || len(key) > 200 {
		h := sha256.Sum256([]byte(a.ID))
		key = "sha256:" + hex.EncodeToString(h[:])
	}
	if a.Retracted {
		key += "#retracted"
	}
	return key
}

// Sign is the hex HMAC-SHA256 under secret of ts "." event "." delivery
// "." body.
func Sign(secret []byte, ts, event, delivery string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	for _, s := range []string{ts, event, delivery} {
		m.Write([]byte(s))
		m.Write([]byte{'.'})
	}
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Errors of Verify.
var (
	ErrBadSignature = errors.New("signature does not match")
	ErrStale        = errors.New("timestamp outside the tolerance")
)

// Verify checks a delivery as a receiver would: the signature header
// holds a v1 signature of the timestamp, event and delivery headers and
// the body under secret (one of several, when a sender rotates its
// secret), and the timestamp is within tolerance of now.
func Verify(secret []byte, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	ts, signature := h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("timestamp %q: %w", ts, err)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return ErrStale
	}
	want := Sign(secret, ts, h.Get(HeaderEvent), h.Get(HeaderDelivery), body)
	for _, part := range strings.Split(signature, ",") {
		v, ok := strings.CutPrefix(strings.TrimSpace(part), "v1=")
		if ok && hmac.Equal([]byte(v), []byte(want)) {
			return nil
		}
	}
	return ErrBadSignature
}

// ChatText is an alert as one chat message: severity, rule, where, the
// summary, the chain facts and the id. Control and format characters are
// dropped (a crafted summary cannot break the message's lines, nor
// reorder or hide characters of an address with bidirectional or
// zero-width marks) and &, < and > are escaped as Slack's format wants
// (no <!channel> or link can be smuggled in).
func ChatText(a chain.Alert) string {
	var b strings.Builder
	sev := strings.ToUpper(a.Severity)
	if sev == "" {
		sev = "ALERT"
	}
	if a.Retracted {
		b.WriteString("RETRACTED (its block left the chain): ")
	}
	rule := a.Rule
	if rule == "" {
		rule = a.Type
	}
	fmt.Fprintf(&b, "[%s] %s", clean(sev), clean(rule))
	if a.Chain != "" {
		fmt.Fprintf(&b, " on %s/%s", clean(string(a.Chain)), clean(a.Network))
	}
	b.WriteString(": ")
	b.WriteString(clean(a.Message))
	var facts []string
	if a.Height > 0 {
		facts = append(facts, fmt.Sprintf("block %d %s", a.Height, clean(a.BlockHash)))
	}
	if a.TxHash != "" {
		facts = append(facts, "tx "+clean(a.TxHash))
	}
	if len(facts) > 0 {
		b.WriteString("\n" + strings.Join(facts, ", "))
	}
	b.WriteString("\nid " + clean(a.ID))
	return b.String()
}

var chatEscapes = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

func clean(s string) string {
	return chatEscapes.Replace(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == unicode.ReplacementChar {
			return -1
		}
		return r
	}, s))
}
