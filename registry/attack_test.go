package registry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/ingest/kafka/kafkatest"
	"github.com/cordonhq/cordon/internal/apiauth"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/internal/testkit"
	"github.com/cordonhq/cordon/registry"
)

const (
	screening = "screening-token-0123456789"
	registrar = "registrar-token-0123456789"
	annToken  = "ann-operator-token-0123456789"
	victimA   = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"
)

// rig is the addresses API over the real registry on kfake: the handler
// writes to cordon.addresses and cordon.alerts, the store follows the
// address topic as every instance does.
type rig struct {
	prod  *kafka.Producer
	store *registry.Store
	h     http.Handler
	reg   *prometheus.Registry
	logs  *bytes.Buffer
}

func newRig(t *testing.T) *rig {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	prod, err := kafka.New(kafka.Config{Auth: kafkatest.Keys(), Brokers: kafkatest.Brokers(t), CreateTopics: true, Partitions: 3}, nil, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = prod.Close() })
	ectx, ecancel := context.WithTimeout(ctx, time.Minute)
	defer ecancel()
	require.NoError(t, prod.EnsureTopics(ectx))
	r := &rig{prod: prod, store: registry.NewStore(prod), reg: prometheus.NewRegistry(), logs: &bytes.Buffer{}}
	go func() { _ = r.store.Run(ctx) }()
	require.Eventually(t, r.store.Ready, 30*time.Second, 10*time.Millisecond)
	log := slog.New(slog.NewTextHandler(r.logs, nil))
	auth, err := apiauth.New([]apiauth.Token{
		{Name: "screening", Token: config.SecretValue(screening), Scopes: []string{"screen"}},
		{Name: "registrar", Token: config.SecretValue(registrar), Scopes: []string{"register"}},
	}, []apiauth.Operator{{Name: "ann", Token: config.SecretValue(annToken)}}, apiauth.Options{Registerer: r.reg, Log: log, Alerter: prod})
	require.NoError(t, err)
	r.h = registry.NewAddressesHandler(registry.AddressesAPI{Auth: auth, Registry: r.store, Alert: prod, MaxBody: 1 << 16, MaxBatch: 100, Log: log,
		Publish: func(ctx context.Context, e []registry.Entry) error { return registry.Publish(ctx, prod, e) }})
	return r
}

func (r *rig) post(token, entries string) (int, string) {
	return testkit.PostJSON(r.h, registry.Endpoint, token, `{"addresses":[`+entries+`]}`)
}

// records reads a topic to its end.
func (r *rig) records(t *testing.T, topic string) []kafka.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []kafka.Record
	require.NoError(t, r.prod.Follow(ctx, topic, time.Hour, func(rec kafka.Record) error {
		out = append(out, rec)
		return nil
	}, cancel))
	return out
}

func (r *rig) alerts(t *testing.T) []chain.Alert {
	t.Helper()
	var out []chain.Alert
	for _, rec := range r.records(t, r.prod.Topics().Alerts) {
		var a chain.Alert
		require.NoError(t, json.Unmarshal(rec.Value, &a))
		out = append(out, a)
	}
	return out
}

func (r *rig) account(addr string) string {
	e, ok := r.store.Index.Lookup(chain.ETH, "mainnet", addr)
	if !ok {
		return ""
	}
	return e.Account
}

func entry(addr, account string) string {
	return `{"chain":"eth","address":"` + addr + `","account":"` + account + `"}`
}

// TestScreeningTokenCannotRegister: the attack of issue 13 §4 — a system
// that only screens registered addresses. Its token now gets 403 naming
// the scope; nothing is written; the refusal is counted, logged with the
// token's name (never the token) and alerted.
func TestScreeningTokenCannotRegister(t *testing.T) {
	r := newRig(t)
	code, body := r.post(screening, entry(victimA, "attacker"))
	require.Equal(t, http.StatusForbidden, code, body)
	require.Contains(t, body, `"missing_scope":"register"`)
	require.Empty(t, r.records(t, r.prod.Topics().Addresses), "nothing registered")
	require.InDelta(t, 1, denied(t, r.reg, registry.Endpoint, apiauth.ReasonMissingScope), 0)
	require.Contains(t, r.logs.String(), "token=screening")
	require.NotContains(t, r.logs.String(), screening)
	al := r.alerts(t)
	require.Len(t, al, 1)
	require.Equal(t, "api_refused", al[0].Type)
	require.Equal(t, "screening", al[0].Details["token"])
	require.Equal(t, "register", al[0].Details["scope"])

	code, _ = r.post("not-a-token-0123456789", entry(victimA, "attacker"))
	require.Equal(t, http.StatusUnauthorized, code)
	require.InDelta(t, 1, denied(t, r.reg, registry.Endpoint, apiauth.ReasonUnknownToken), 0)
	require.Len(t, r.alerts(t), 1, "unknown tokens are counted, not alerted")
}

// TestReassignNeedsOperator: a register token redirecting a registered
// deposit address to another account, changing its asset or kind, or
// removing it, is refused with 409 naming the field (not the registered
// account); nothing is written and the registry is unchanged. An operator
// doing it is accepted, with an alert naming the operator.
func TestReassignNeedsOperator(t *testing.T) {
	r := newRig(t)
	code, body := r.post(registrar, entry(victimA, "victim"))
	require.Equal(t, http.StatusOK, code, body)
	// Before the registry shows it: the handler remembers what it wrote.
	code, body = r.post(registrar, entry(victimA, "attacker"))
	require.Equal(t, http.StatusConflict, code, body)
	require.Eventually(t, func() bool { return r.account(victimA) == "victim" }, 30*time.Second, 10*time.Millisecond)

	code, body = r.post(registrar, entry(victimA, "victim"))
	require.Equal(t, http.StatusOK, code, "an identical re-send is fine: %s", body)
	written := len(r.records(t, r.prod.Topics().Addresses))
	require.Equal(t, 2, written)

	for _, tc := range []struct{ name, entries, field string }{
		{"account", entry(victimA, "attacker"), `"fields":["account"]`},
		{"asset", `{"chain":"eth","address":"` + victimA + `","account":"victim","asset":"native"}`, `"fields":["asset"]`},
		{"kind", `{"chain":"eth","address":"` + victimA + `","account":"victim","kind":"hot"}`, `"fields":["kind"]`},
		{"removal", `{"chain":"eth","address":"` + victimA + `","account":"victim","removed":true}`, `"fields":["removed"]`},
		{"hidden in a batch", entry("0xfb6916095ca1df60bb79ce92ce3ea74c37c5d359", "new-user") + "," + entry(victimA, "attacker"), `"row":1`},
		{"added then changed in one request", entry("0xdbf03b407c01e7cd3cbea99509d93f8dddc8c6fb", "u3") + "," +
			entry("0xdbf03b407c01e7cd3cbea99509d93f8dddc8c6fb", "attacker"), `"row":1,"fields":["account"]`},
	} {
		code, body := r.post(registrar, tc.entries)
		require.Equal(t, http.StatusConflict, code, "%s: %s", tc.name, body)
		require.Contains(t, body, tc.field, tc.name)
		require.Contains(t, body, "nothing was registered", tc.name)
		require.NotContains(t, body, "victim", "%s: the registered account is not told", tc.name)
	}
	require.Len(t, r.records(t, r.prod.Topics().Addresses), written, "nothing written")
	require.Equal(t, "victim", r.account(victimA), "registry unchanged")
	require.Equal(t, 1, r.store.Index.Len())
	require.InDelta(t, 7, denied(t, r.reg, registry.Endpoint, apiauth.ReasonNeedsOperator), 0)
	require.Contains(t, r.logs.String(), "token=registrar")
	refused := r.alerts(t)
	require.Len(t, refused, 1, "refusals alert once a minute per token")
	require.Equal(t, "api_refused", refused[0].Type)
	require.Equal(t, "registrar", refused[0].Details["token"])
	require.Equal(t, apiauth.ReasonNeedsOperator, refused[0].Details["reason"])

	// An operator may: accepted, alerted before written, naming her.
	code, body = r.post(annToken, entry(victimA, "user-7"))
	require.Equal(t, http.StatusOK, code, body)
	require.Eventually(t, func() bool { return r.account(victimA) == "user-7" }, 30*time.Second, 10*time.Millisecond)
	al := r.alerts(t)
	require.Len(t, al, 2)
	re := ofType(t, al, "address_reassigned")
	require.Equal(t, "address_reassigned", re.Type)
	require.Equal(t, "high", re.Severity)
	require.Equal(t, map[string]string{"address": victimA, "operator": "ann", "fields": "account", "old_account": "victim", "old_kind": "deposit",
		"old_asset": "*", "account": "user-7", "kind": "deposit", "asset": "*"}, re.Details)
	require.Contains(t, re.Message, "by operator ann")
	require.Contains(t, r.logs.String(), "operator=ann")

	code, body = r.post(annToken, `{"chain":"eth","address":"`+victimA+`","account":"user-7","removed":true}`)
	require.Equal(t, http.StatusOK, code, body)
	require.Eventually(t, func() bool { return r.store.Index.Len() == 0 }, 30*time.Second, 10*time.Millisecond)
	al = r.alerts(t)
	require.Len(t, al, 3)
	require.Equal(t, "ann", ofType(t, al, "address_removed").Details["operator"])

	// A register token may add it again once it is gone (a new address).
	code, body = r.post(registrar, entry(victimA, "user-8"))
	require.Equal(t, http.StatusOK, code, body)
}

// ofType is the one alert of type typ (the alerts topic's partitions
// keep no order between them).
func ofType(t *testing.T, al []chain.Alert, typ string) chain.Alert {
	t.Helper()
	var out []chain.Alert
	for _, a := range al {
		if a.Type == typ {
			out = append(out, a)
		}
	}
	require.Len(t, out, 1, "alerts of type %s in %+v", typ, al)
	return out[0]
}

// denied is the value of cordon_api_denied_total{endpoint, reason}.
func denied(t *testing.T, reg *prometheus.Registry, endpoint, reason string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if mf.GetName() == "cordon_api_denied_total" && labels["endpoint"] == endpoint && labels["reason"] == reason {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
