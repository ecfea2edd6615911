package notify_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/detect/notify"
	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/ingest/kafka/kafkatest"
	"github.com/cordonhq/cordon/internal/chain"
	iconfig "github.com/cordonhq/cordon/internal/config"
)

const secret = "0123456789abcdef-webhook-secret"

// receiver is a webhook receiver that verifies every request's signature
// and fails the first failFirst requests of each delivery.
type receiver struct {
	t         testing.TB
	failFirst int
	mu        sync.Mutex
	tries     map[string]int
	got       []received
}

type received struct {
	delivery, event, ts, sig string
	body                     []byte
}

func (rv *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	ts, sig := r.Header.Get(notify.HeaderTimestamp), r.Header.Get(notify.HeaderSignature)
	if err := notify.Verify([]byte(secret), r.Header, body, time.Now(), 5*time.Minute); err != nil {
		rv.t.Errorf("delivery with a bad signature: %v", err)
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	d := r.Header.Get(notify.HeaderDelivery)
	rv.mu.Lock()
	defer rv.mu.Unlock()
	rv.tries[d]++
	if rv.tries[d] <= rv.failFirst {
		http.Error(w, "try again", http.StatusServiceUnavailable)
		return
	}
	rv.got = append(rv.got, received{delivery: d, event: r.Header.Get(notify.HeaderEvent), ts: ts, sig: sig, body: body})
	_ = ts
}

func (rv *receiver) deliveries() []received {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	return append([]received(nil), rv.got...)
}

func alert(id, rule, severity string, addrs ...string) chain.Alert {
	return chain.Alert{V: 1, ID: id, Type: rule, Rule: rule, Severity: severity, Chain: chain.ETH, Network: "devnet",
		Time: time.Date(2026, 12, 4, 2, 0, 0, 0, time.UTC), Message: rule + " on " + id, Height: 12, BlockHash: "0xb12", TxHash: "0xt",
		Addresses: addrs}
}

// TestDeliveries: alerts reach the webhooks that want them, signed; a
// receiver failing twice gets each alert on the third attempt; a receiver
// that never answers costs a dead letter per alert and holds up neither
// the other webhook nor its own later alerts; silences and filters hold
// back what they match; records that are not alerts are skipped.
func TestDeliveries(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	kc := kafka.Config{Auth: kafkatest.Keys(), Brokers: kafkatest.Brokers(t), CreateTopics: true, Partitions: 3, Topics: kafka.DefaultTopics()}
	prod, err := kafka.New(kc, nil, nil)
	require.NoError(t, err)
	defer prod.Close()
	require.NoError(t, prod.EnsureTopics(ctx))

	flaky := &receiver{t: t, failFirst: 2, tries: map[string]int{}}
	flakySrv := httptest.NewServer(flaky)
	defer flakySrv.Close()
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "receiver broken", http.StatusInternalServerError)
	}))
	defer down.Close()

	silenced := "0x5555000000000000000000000000000000000005"
	cfg := notify.Config{
		Webhooks: []notify.Webhook{
			{Name: "soc", URL: flakySrv.URL + "/hook?token=abc", Secret: iconfig.SecretValue(secret), MinSeverity: "medium", Backoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond},
			{Name: "broken", URL: down.URL, Secret: iconfig.SecretValue(secret), Format: notify.FormatChat, Rules: []string{"drain"}, Attempts: 3, Backoff: 5 * time.Millisecond},
		},
		Silences: []notify.Silence{
			{Address: silenced, Until: time.Now().Add(time.Hour), Reason: "our own consolidation"},
			{Rule: "flagged_contact", Until: time.Now().Add(-time.Minute), Reason: "expired"},
		},
	}
	cfg.Fill()
	var p iconfig.Problems
	cfg.Validate(&p, "detect.notify")
	require.NoError(t, p.Err())

	drain := alert("detect/drain/1", "drain", "critical", "0xhot")
	flagged := alert("detect/flagged_contact/2", "flagged_contact", "high", "0xhot", "0xthief")
	low := alert("detect/poisoning_dust/3", "poisoning_dust", "low", "0xhot")
	quiet := alert("detect/outflow_large/4", "outflow_large", "high", "0xhot", silenced)
	drain2 := alert("detect/drain/5", "drain", "critical", "0xcold")
	retracted := flagged
	retracted.Retracted = true
	for _, a := range []chain.Alert{drain, flagged, low, quiet, drain2, retracted} {
		require.NoError(t, prod.Alert(ctx, a))
	}
	require.NoError(t, prod.PublishKeyed(ctx, kc.Topics.Alerts, "alert", []kafka.KeyValue{{Key: "junk", Value: []byte("not json")}}))

	svc := notify.NewService(notify.ServiceConfig{Kafka: kc, Notify: cfg, Dead: prod, Metrics: notify.NewMetrics(nil)})
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- svc.Run(rctx) }()

	dead := map[string]notify.DeadLetter{}
	require.Eventually(t, func() bool {
		_ = kafka.ReadLog(ctx, kc, kc.Topics.NotifyDead, kafka.LogOptions{ClientID: "t"}, func(r *kafka.Record) error {
			var d notify.DeadLetter
			require.NoError(t, json.Unmarshal(r.Value, &d))
			require.Equal(t, d.Webhook+"/"+d.Delivery, string(r.Key))
			dead[d.Delivery] = d
			return nil
		})
		return len(flaky.deliveries()) >= 4 && len(dead) >= 2
	}, time.Minute, 50*time.Millisecond)
	stop()
	require.NoError(t, <-done)

	// soc: medium and up, the silenced one held back, the expired
	// silence holding back nothing; each on its third attempt.
	byKey := map[string]received{}
	for _, r := range flaky.deliveries() {
		byKey[r.delivery] = r
	}
	require.Len(t, byKey, 4)
	for _, k := range []string{drain.ID, flagged.ID, drain2.ID, flagged.ID + "#retracted"} {
		require.Contains(t, byKey, k)
		require.Equal(t, 3, flaky.tries[k], k)
	}
	var env notify.Envelope
	require.NoError(t, json.Unmarshal(byKey[flagged.ID+"#retracted"].body, &env))
	require.Equal(t, notify.EventRetraction, env.Event)
	require.Equal(t, notify.EventRetraction, byKey[flagged.ID+"#retracted"].event)
	require.True(t, env.Alert.Retracted)
	require.Equal(t, flagged.Addresses, env.Alert.Addresses)

	// An independent HMAC (Python's) agrees with the signature.
	if py, err := exec.LookPath("python3"); err == nil {
		r := byKey[drain.ID]
		script := `import hmac,hashlib,sys; ts,sig,ev,dl=sys.argv[1],sys.argv[2],sys.argv[4],sys.argv[5]; body=sys.stdin.buffer.read()
msg=".".join([ts,ev,dl]).encode()+b"."+body
print("ok" if hmac.compare_digest("v1="+hmac.new(sys.argv[3].encode(),msg,hashlib.sha256).hexdigest(),sig) else "bad")`
		cmd := exec.Command(py, "-c", script, r.ts, r.sig, secret, r.event, r.delivery)
		cmd.Stdin = strings.NewReader(string(r.body))
		out, err := cmd.Output()
		require.NoError(t, err)
		require.Equal(t, "ok", strings.TrimSpace(string(out)))
	}

	// broken: only drains, three attempts each, then the dead letter,
	// with the URL's query (its token) left out.
	require.Len(t, dead, 2)
	for _, a := range []chain.Alert{drain, drain2} {
		d := dead[a.ID]
		require.Equal(t, "broken", d.Webhook)
		require.Equal(t, 3, d.Attempts)
		require.Contains(t, d.Error, "receiver broken")
		require.Equal(t, a.ID, d.Alert.ID)
	}
	require.Equal(t, down.URL, dead[drain.ID].URL)
}

// TestRefusedAndUnreachable: a receiver refusing a payload (4xx) costs
// one attempt, not all of them; an unreachable one is retried, and
// neither the logs' error nor the dead letter holds the URL's path or
// query (chat webhooks' tokens).
func TestRefusedAndUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	kc := kafka.Config{Auth: kafkatest.Keys(), Brokers: kafkatest.Brokers(t), CreateTopics: true, Partitions: 3, Topics: kafka.DefaultTopics()}
	prod, err := kafka.New(kc, nil, nil)
	require.NoError(t, err)
	defer prod.Close()
	require.NoError(t, prod.EnsureTopics(ctx))
	var mu sync.Mutex
	calls := 0
	refuse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		calls++
		mu.Unlock()
		http.Error(w, "payload too large", http.StatusRequestEntityTooLarge)
	}))
	defer refuse.Close()
	gone := httptest.NewServer(http.NotFoundHandler())
	goneURL := gone.URL
	gone.Close() // nothing listens there now
	cfg := notify.Config{Webhooks: []notify.Webhook{
		{Name: "refuses", URL: refuse.URL + "/services/T000/B000/SECRETPATH", Secret: iconfig.SecretValue(secret), Backoff: time.Millisecond},
		{Name: "gone", URL: goneURL + "/hooks/SECRETPATH?token=SECRETQUERY", Secret: iconfig.SecretValue(secret), Attempts: 2, Backoff: time.Millisecond},
	}}
	cfg.Fill()
	require.NoError(t, prod.Alert(ctx, alert("detect/drain/9", "drain", "critical")))
	svc := notify.NewService(notify.ServiceConfig{Kafka: kc, Notify: cfg, Dead: prod})
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- svc.Run(rctx) }()
	dead := map[string]notify.DeadLetter{}
	require.Eventually(t, func() bool {
		_ = kafka.ReadLog(ctx, kc, kc.Topics.NotifyDead, kafka.LogOptions{ClientID: "t2"}, func(r *kafka.Record) error {
			var d notify.DeadLetter
			require.NoError(t, json.Unmarshal(r.Value, &d))
			dead[d.Webhook] = d
			return nil
		})
		return len(dead) == 2
	}, 30*time.Second, 50*time.Millisecond)
	stop()
	require.NoError(t, <-done)
	mu.Lock()
	require.Equal(t, 1, calls, "a refusal is not retried")
	mu.Unlock()
	require.Contains(t, dead["refuses"].Error, "413")
	for _, d := range dead {
		require.NotContains(t, d.Error+d.URL, "SECRET", d.Webhook)
	}
	require.Contains(t, dead["gone"].Error, "connection refused")
}
