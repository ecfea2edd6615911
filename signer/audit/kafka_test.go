package audit

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/ingest/kafka/kafkatest"
	"github.com/cordonhq/cordon/internal/clock"
)

// writeGate writes a clean log as the gate does: batches of records in
// Kafka transactions, a checkpoint when one is due, one transaction
// aborted on the way (its records are rolled back and their seqs reused).
func writeGate(t *testing.T, cfg kafka.Config, n, every int, key Signer) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, kafka.Ensure(ctx, cfg, cfg.Topics.Audit))
	w, err := kafka.NewTxWriter(cfg, "test-gate", cfg.Topics.Audit, 0)
	require.NoError(t, err)
	defer w.Close()
	clk := clock.NewManual(t0)
	c, err := New(Config{CheckpointEvery: every, CheckpointInterval: time.Hour}, key, clk)
	require.NoError(t, err)
	aborted := false
	for i := 0; i < n; {
		var recs []kafka.Record
		for j := 0; j < 10 && i < n; j, i = j+1, i+1 {
			clk.Advance(time.Second)
			r, err := c.Append(kinds[i%len(kinds)], fmt.Sprintf("wd_%06d", i), "token-exchange", eventBody(i))
			require.NoError(t, err)
			m, err := r.Message(cfg.Topics.Audit)
			require.NoError(t, err)
			recs = append(recs, m)
			if c.Due() {
				cp, err := c.Checkpoint()
				require.NoError(t, err)
				m, err := cp.Message(cfg.Topics.Audit)
				require.NoError(t, err)
				recs = append(recs, m)
			}
		}
		if i == 100 && !aborted {
			aborted = true
			// A transaction that fails: too large, aborted, nothing visible.
			huge := append(recs, kafka.Record{Key: []byte("x"), Value: make([]byte, 2<<20)})
			require.Error(t, w.Commit(ctx, huge))
			c.Rollback()
			i -= len(recs) - countCheckpoints(t, recs)
			continue
		}
		require.NoError(t, w.Commit(ctx, recs))
		c.Commit()
	}
}

func countCheckpoints(t *testing.T, recs []kafka.Record) int {
	n := 0
	for _, m := range recs {
		r, err := DecodeRecord(m.Value)
		require.NoError(t, err)
		if r.Kind == KindCheckpoint {
			n++
		}
	}
	return n
}

// TestVerifyTopic: a log the gate wrote in transactions (one aborted)
// verifies on the topic; each tampering, written to a topic as an
// attacker with write access would (the wrapper's plain producer, no
// transaction, no key), is named.
func TestVerifyTopic(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	brokers := kafkatest.Brokers(t)
	cfg := kafka.Config{Brokers: brokers, CreateTopics: true, Topics: kafka.Topics{Audit: "gate-audit"}, Auth: kafkatest.Keys()}
	keys := trusted(t, testKey("leader"))
	writeGate(t, cfg, 305, 50, testKey("leader"))
	rep, err := VerifyTopic(ctx, cfg, keys)
	require.NoError(t, err)
	require.Equal(t, 311, rep.Records)
	require.Equal(t, uint64(306), rep.LastCheckpoint.Seq)
	require.Greater(t, rep.LastCheckpoint.Offset, int64(305), "offsets are the topic's: transaction markers and the aborted records take some")

	// The same log read back, for the attacker to tamper with.
	var orig []Entry
	require.NoError(t, ReadTopic(ctx, cfg, func(e Entry) error { orig = append(orig, e); return nil }))
	require.Len(t, orig, 311)
	_, err = Verify(orig, keys)
	require.NoError(t, err)

	topicOf := func(i int) (string, kafka.Config) {
		acfg := cfg
		acfg.Topics.Audit = fmt.Sprintf("attacked-%d", i)
		return acfg.Topics.Audit, acfg
	}
	for i := range tampers() {
		topic, acfg := topicOf(i)
		require.NoError(t, kafka.Ensure(ctx, acfg, topic))
	}
	prod, err := kafka.New(kafka.Config{Brokers: brokers}, nil, nil)
	require.NoError(t, err)
	defer func() { _ = prod.Close() }()
	for i, tc := range tampers() {
		t.Run(tc.name, func(t *testing.T) {
			topic, acfg := topicOf(i)
			es := tc.do(t, renumber(clone(orig)))
			kvs := make([]kafka.KeyValue, len(es))
			for j, e := range es {
				kvs[j] = kafka.KeyValue{Key: string(e.Key), Value: e.Value}
			}
			require.NoError(t, prod.PublishKeyed(ctx, topic, "", kvs))
			rep, err := VerifyTopic(ctx, acfg, keys)
			checkNamed(t, tc, renumber(clone(orig)), rep, err)
		})
	}
}

// TestVerifyTopicMissing: a topic that does not exist is a read error,
// not a clean log.
func TestVerifyTopicMissing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := kafka.Config{Brokers: kafkatest.Brokers(t), Topics: kafka.Topics{Audit: "nowhere"}}
	_, err := VerifyTopic(ctx, cfg, trusted(t, testKey("leader")))
	require.Error(t, err)
	require.NotErrorIs(t, err, ErrTampered)
}
