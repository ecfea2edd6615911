package kafka_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/ingest/kafka/kafkatest"
	"github.com/cordonhq/cordon/internal/recordauth"
)

// TestReadLogSlowFirstFetch: the first fetch answer of the indicator
// topic takes 1.5s (a slow broker, a large first fetch over a slow link).
// ReadLog used to call a quiet second "caught up" — with none of the 100
// indicators read, so screening would have started on an empty index. It
// must report caught up only once it has read all of them.
func TestReadLogSlowFirstFetch(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	require.NoError(t, err)
	defer cluster.Close()
	cfg := kafka.Config{Auth: kafkatest.Keys(), Brokers: cluster.ListenAddrs(), CreateTopics: true}
	ctx := context.Background()
	topic := kafka.DefaultTopics().Intel
	require.NoError(t, kafka.Ensure(ctx, cfg, topic))
	w, err := kafka.NewTxWriter(cfg, "test-intel", topic, 0)
	require.NoError(t, err)
	var recs []kafka.Record
	for i := range 100 {
		recs = append(recs, kafka.Record{Key: []byte(fmt.Sprintf("ind-%d", i)), Value: []byte("{}")})
	}
	require.NoError(t, w.Commit(ctx, recs))
	w.Close()

	var slowed atomic.Bool
	cluster.ControlKey(int16(kmsg.Fetch), func(req kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		if slowed.CompareAndSwap(false, true) {
			cluster.SleepControl(func() { time.Sleep(1500 * time.Millisecond) })
		}
		return nil, nil, false
	})
	n := 0
	caughtAt := -1
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err = kafka.ReadLog(rctx, cfg, topic, kafka.LogOptions{ClientID: "test", Caught: func() {
		if caughtAt < 0 {
			caughtAt = n
		}
	}}, func(r *kafka.Record) error { n++; return nil })
	require.NoError(t, err)
	require.True(t, slowed.Load(), "the slow fetch never happened")
	require.Equal(t, 100, caughtAt, "caught up after %d of 100 records", caughtAt)
	require.Equal(t, 100, n)

	// An aborted transaction at the end of the topic: caught up as soon
	// as the committed records are read (the abort marker arrives), and
	// the aborted records are never handed over.
	w, err = kafka.NewTxWriter(cfg, "test-intel", topic, 0)
	require.NoError(t, err)
	err = w.Commit(ctx, []kafka.Record{{Key: []byte("ok"), Value: []byte("{}")}, {Key: []byte("huge"), Value: make([]byte, 2<<20)}})
	require.Error(t, err, "too large: the transaction is aborted")
	w.Close()
	n, caughtAt = 0, -1
	start := time.Now()
	require.NoError(t, kafka.ReadLog(rctx, cfg, topic, kafka.LogOptions{ClientID: "test2", Caught: func() {
		if caughtAt < 0 {
			caughtAt = n
		}
	}}, func(r *kafka.Record) error { n++; return nil }))
	require.Equal(t, 100, n, "the aborted records are not read")
	require.Equal(t, 100, caughtAt)
	require.Less(t, time.Since(start), 5*time.Second)
}

// TestReadLogUnverified: on a signed topic a forged record (unsigned,
// written with topic access alone) never reaches a verifying reader; an
// Unverified reader, which proves records another way, gets every
// record, the forged one included, and needs no keys.
func TestReadLogUnverified(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	brokers := kafkatest.Brokers(t)
	cfg := kafka.Config{Auth: kafkatest.Keys(), Brokers: brokers, CreateTopics: true}
	topic := kafka.DefaultTopics().Intel
	require.NoError(t, kafka.Ensure(ctx, cfg, topic))
	w, err := kafka.NewTxWriter(cfg, "test-unverified", topic, 0)
	require.NoError(t, err)
	require.NoError(t, w.Commit(ctx, []kafka.Record{{Key: []byte("genuine"), Value: []byte("{}")}}))
	w.Close()
	forger, err := kafka.New(kafka.Config{Brokers: brokers}, nil, nil)
	require.NoError(t, err)
	require.ErrorContains(t, forger.PublishKeyed(ctx, topic, "", []kafka.KeyValue{{Key: "forged", Value: []byte("{}")}}),
		"record_auth.keys.intel", "the wrapper never writes a signed topic unsigned")
	require.NoError(t, forger.Close())

	// The attacker writes with another client: the wrapper's producer
	// on a config whose topic names make the intel topic an unsigned one.
	raw, err := kafka.New(kafka.Config{Brokers: brokers, Topics: kafka.Topics{Intel: "elsewhere"}}, nil, nil)
	require.NoError(t, err)
	require.NoError(t, raw.PublishKeyed(ctx, topic, "", []kafka.KeyValue{{Key: "forged", Value: []byte("{}")}}))
	require.NoError(t, raw.Close())

	read := func(c kafka.Config, o kafka.LogOptions) (keys []string, refused []string) {
		c.Refused = func(r kafka.Refusal) { refused = append(refused, string(r.Key)) }
		require.NoError(t, kafka.ReadLog(ctx, c, topic, o, func(r *kafka.Record) error {
			keys = append(keys, string(r.Key))
			return nil
		}))
		return keys, refused
	}
	keys, refused := read(cfg, kafka.LogOptions{ClientID: "verifying"})
	require.Equal(t, []string{"genuine"}, keys)
	require.Equal(t, []string{"forged"}, refused)
	keys, refused = read(kafka.Config{Brokers: brokers}, kafka.LogOptions{ClientID: "unverified", Unverified: true})
	require.Equal(t, []string{"genuine", "forged"}, keys, "every record, without any key")
	require.Empty(t, refused)
}

// TestReadLogSettle: a transaction open on the topic (detection's round)
// holds its committed end back, so a record written just after it (an
// operator's incident note) is not in a plain read; with Settle the read
// waits for the transaction to end and holds it.
func TestReadLogSettle(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	require.NoError(t, err)
	defer cluster.Close()
	cfg := kafka.Config{Brokers: cluster.ListenAddrs(), CreateTopics: true}
	topic := kafka.DefaultTopics().Incidents // written raw here: read Unverified
	require.NoError(t, kafka.Ensure(ctx, cfg, topic))
	txn, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.TransactionalID("test-round"), kgo.DefaultProduceTopic(topic))
	require.NoError(t, err)
	defer txn.Close()
	plain, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.DefaultProduceTopic(topic))
	require.NoError(t, err)
	defer plain.Close()
	require.NoError(t, txn.BeginTransaction())
	require.NoError(t, txn.ProduceSync(ctx, &kgo.Record{Key: []byte("round"), Value: []byte("1")}).FirstErr())
	require.NoError(t, plain.ProduceSync(ctx, &kgo.Record{Key: []byte("note"), Value: []byte("2")}).FirstErr())
	read := func(o kafka.LogOptions) []string {
		o.Unverified = true
		var keys []string
		require.NoError(t, kafka.ReadLog(ctx, cfg, topic, o, func(r *kafka.Record) error {
			keys = append(keys, string(r.Key))
			return nil
		}))
		return keys
	}
	require.Empty(t, read(kafka.LogOptions{ClientID: "plain"}), "the open transaction holds the committed end before the note")
	// Settle waits for the round's commit, 300ms on
	go func() {
		time.Sleep(300 * time.Millisecond)
		_ = txn.EndTransaction(ctx, kgo.TryCommit)
	}()
	require.Equal(t, []string{"round", "note"}, read(kafka.LogOptions{ClientID: "settled", Settle: 10 * time.Second}))
	// a transaction left open: Settle gives up after its wait, with what
	// is committed
	require.NoError(t, txn.BeginTransaction())
	require.NoError(t, txn.ProduceSync(ctx, &kgo.Record{Key: []byte("stuck"), Value: []byte("3")}).FirstErr())
	require.NoError(t, plain.ProduceSync(ctx, &kgo.Record{Key: []byte("note2"), Value: []byte("4")}).FirstErr())
	start := time.Now()
	require.Equal(t, []string{"round", "note"}, read(kafka.LogOptions{ClientID: "stuck", Settle: 500 * time.Millisecond}))
	require.GreaterOrEqual(t, time.Since(start), 500*time.Millisecond)
}

// TestReadLogEventLogWriters: two writers sign events of one incident
// with detection's key (detection's rounds, an operator's command). The
// operator's seal is stamped first but lands after a record detection
// stamped later — writers race, nothing orders their clocks. On the
// incidents topic, an append-only log of events, ReadLog must hand over
// both (a replayed event is known there by its id); on a state topic of
// the same role the earlier-stamped record is a replay and is refused.
func TestReadLogEventLogWriters(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	require.NoError(t, err)
	defer cluster.Close()
	var refused []kafka.Refusal
	cfg := kafka.Config{Auth: kafkatest.Keys(), Brokers: cluster.ListenAddrs(), CreateTopics: true,
		Refused: func(r kafka.Refusal) { refused = append(refused, r) }}
	operator, _ := kafkatest.Keys().Signer(recordauth.Detect)
	detection, _ := kafkatest.Keys().Signer(recordauth.Detect)
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...))
	require.NoError(t, err)
	defer cl.Close()
	for _, topic := range []string{kafka.DefaultTopics().Incidents, kafka.DefaultTopics().DetectState} {
		require.NoError(t, kafka.Ensure(ctx, cfg, topic))
		sealAt := operator.Stamp()
		time.Sleep(time.Millisecond)
		write := func(s *recordauth.Signer, at int64, value string) {
			k, v := []byte("incident/1"), []byte(value)
			require.NoError(t, cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: k, Value: v, Headers: []kgo.RecordHeader{
				{Key: kafka.HeaderType, Value: []byte("incident")}, {Key: recordauth.Header, Value: s.SignAt(at, "incident", k, v)}}}).FirstErr())
		}
		write(detection, detection.Stamp(), "joined")
		write(operator, sealAt, "sealed")
		var got []string
		require.NoError(t, kafka.ReadLog(ctx, cfg, topic, kafka.LogOptions{ClientID: "t"}, func(r *kafka.Record) error {
			got = append(got, string(r.Value))
			return nil
		}))
		if topic == kafka.DefaultTopics().Incidents {
			require.Equal(t, []string{"joined", "sealed"}, got, "an event of the log refused for its writer's clock")
			require.Empty(t, refused)
		} else {
			require.Equal(t, []string{"joined"}, got, "a state record signed before the one read is a replay")
			require.Len(t, refused, 1)
			require.ErrorIs(t, refused[0].Err, recordauth.ErrReplayed)
		}
	}
}
