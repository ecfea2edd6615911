package gate

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/ingest/kafka"
)

func readTopic(t *testing.T, f *fixture, topic string) []*kafka.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []*kafka.Record
	require.NoError(t, kafka.ReadLog(ctx, f.kc, topic, kafka.LogOptions{ClientID: "signing-test"}, func(r *kafka.Record) error {
		out = append(out, r)
		return nil
	}))
	return out
}

func refusalCode(err error) string {
	var r *Refusal
	if errors.As(err, &r) {
		return r.Code
	}
	return ""
}

// The signing stage: an approved withdrawal is handed on once, with its
// request in the same commit; from then on neither the breaker nor its
// expiry nor an approver changes it; it moves only along the stage's
// transitions, and a new leader has its transaction.
func TestSigningStage(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	id := f.request("s1", eth(10), dst(1))["id"].(string)
	other := f.request("s2", eth(10), dst(2))["id"].(string)
	pend := f.request("s3", eth(10), dst(3))["id"].(string)
	f.approved(id, "alice", "bob")
	f.approved(other, "alice", "bob")
	w := f.get(id)
	require.Equal(t, StatusApproved, w.Status)
	require.NotNil(t, w.Expires, "the default policy voids approvals after a while")

	out := Outgoing{Topic: f.kc.Topics.SignRequests, Key: "sr_1", Type: "sign-request", Value: []byte(`{"id":"sr_1"}`)}
	err := f.svc.Dispatch(ctx, []string{pend}, Tx{Request: "sr_0"}, out)
	require.Equal(t, "not_approved", refusalCode(err), "a pending withdrawal is not handed on: %v", err)
	err = f.svc.Dispatch(ctx, []string{id, id}, Tx{Request: "sr_0"}, out)
	require.Equal(t, "bad_dispatch", refusalCode(err), "%v", err)
	require.Empty(t, readTopic(t, f, f.kc.Topics.SignRequests), "nothing written by refused dispatches")

	nonce := uint64(7)
	require.NoError(t, f.svc.Dispatch(ctx, []string{id}, Tx{Request: "sr_1", Wallet: "hot", Unsigned: "ab", Nonce: &nonce}, out))
	recs := readTopic(t, f, f.kc.Topics.SignRequests)
	require.Len(t, recs, 1, "the request was written with the dispatch")
	require.Equal(t, "sr_1", string(recs[0].Key))
	w = f.get(id)
	require.Equal(t, StatusSigning, w.Status)
	require.Equal(t, []string{id}, w.Tx.Batch)
	require.Equal(t, uint64(7), *w.Tx.Nonce)
	err = f.svc.Dispatch(ctx, []string{id}, Tx{Request: "sr_2"}, out)
	require.Equal(t, "not_approved", refusalCode(err), "handed on once: %v", err)
	require.Len(t, readTopic(t, f, f.kc.Topics.SignRequests), 1)

	// An approver cannot reach it; the breaker holds the approved one,
	// not the one in signing; its approvals' expiry no longer applies.
	code, resp := f.approve(id, "carol")
	require.Equal(t, http.StatusConflict, code, resp)
	code, resp = f.call("POST", "/v1/breaker", opToken, map[string]any{"scope": "chain", "chain": "eth", "reason": "drill"})
	require.Equal(t, http.StatusCreated, code, resp)
	f.waitStatus(other, StatusPaused)
	err = f.svc.Dispatch(ctx, []string{other}, Tx{Request: "sr_3"}, out)
	require.Equal(t, "not_approved", refusalCode(err), "%v", err)
	f.clock.Add(30 * 24 * time.Hour)
	time.Sleep(100 * time.Millisecond)
	require.Equal(t, StatusSigning, f.get(id).Status, "neither paused nor expired")

	adv := func(status string, up func(*Tx)) error {
		return f.svc.Advance(ctx, []string{id}, "sr_1", status, "test", up)
	}
	require.Equal(t, "bad_transition", refusalCode(adv(StatusConfirmed, nil)), "signing cannot jump to confirmed")
	require.Equal(t, "other_request", refusalCode(f.svc.Advance(ctx, []string{id}, "sr_9", StatusSigned, "x", nil)))
	require.NoError(t, adv(StatusSigned, func(t *Tx) { t.TxID, t.Raw = "0xabc", []byte{1, 2} }))
	require.NoError(t, adv(StatusBroadcast, func(t *Tx) { t.Broadcasts++ }))
	require.NoError(t, adv(StatusBroadcast, func(t *Tx) { t.Broadcasts++ }))
	require.NoError(t, adv(StatusMined, func(t *Tx) { t.Block, t.Height = "0xb1", 10 }))
	require.NoError(t, adv(StatusBroadcast, func(t *Tx) { t.Block, t.Height = "", 0 }))
	require.NoError(t, adv(StatusMined, func(t *Tx) { t.Block, t.Height = "0xb2", 11 }))

	// A new leader holds the transaction as it was.
	before := f.get(id)
	f.stop()
	f.start()
	require.Equal(t, before, f.get(id))
	require.Equal(t, 2, before.Tx.Broadcasts)
	require.NoError(t, adv(StatusConfirmed, nil))
	require.Equal(t, "bad_transition", refusalCode(adv(StatusBroadcast, nil)), "confirmed is final")

	var ev Event
	var last *kafka.Record
	for _, r := range readTopic(t, f, f.kc.Topics.Withdrawals) {
		if string(r.Key) == id {
			last = r
		}
	}
	require.NotNil(t, last)
	require.NoError(t, json.Unmarshal(last.Value, &ev))
	require.Equal(t, StatusConfirmed, ev.Status)
	require.Equal(t, "0xabc", ev.TxID)
	require.Equal(t, "0xb2", ev.Block)

	alerts := map[string]bool{}
	for _, r := range readTopic(t, f, f.kc.Topics.Alerts) {
		alerts[string(r.Key)] = true
	}
	require.True(t, alerts["withdrawal_rebroadcast/"+id+"/2"], "a re-broadcast alerts: %v", alerts)
	require.True(t, alerts["withdrawal_reorged_out/"+id+"/0xb1"], "a reorganized-out transaction alerts: %v", alerts)
}
