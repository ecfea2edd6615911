package intel

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/ingest/kafka/kafkatest"
	"github.com/cordonhq/cordon/internal/testkit"
)

// TestForgedIndicatorRecordsChangeNothing: someone who can write to the
// indicator topic but holds no importer key tries to delist a sanctioned
// address with kcat, by a tombstone and by a revoked version of it.
// Every OFAC indicator stays listed, and both records are reported.
func TestForgedIndicatorRecordsChangeNothing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	brokers := kafkatest.Brokers(t)
	var refused atomic.Int64
	kc := kafka.Config{Auth: kafkatest.Keys(), Brokers: brokers, CreateTopics: true, Partitions: 1,
		Refused: func(kafka.Refusal) { refused.Add(1) }}
	tp, err := OpenTopic(kc)
	require.NoError(t, err)
	require.NoError(t, tp.Ensure(ctx))
	_, err = Import(ctx, tp, ofacFeed(t, "XBT", 0), ImportOptions{})
	require.NoError(t, err)
	before, err := Current(ctx, tp)
	require.NoError(t, err)
	require.Len(t, before, 434)

	// Two of the sanctioned indicators, as they are on the topic.
	var keys []string
	var values [][]byte
	require.NoError(t, kafka.ReadLog(ctx, kc, tp.Name(), kafka.LogOptions{ClientID: "test"}, func(r *kafka.Record) error {
		if len(keys) < 2 {
			keys, values = append(keys, string(r.Key)), append(values, r.Value)
		}
		return nil
	}))
	testkit.Kcat(t, brokers, tp.Name(), keys[0], "", true)
	var in map[string]any
	require.NoError(t, json.Unmarshal(values[1], &in))
	in["revoked"] = true
	v, _ := json.Marshal(in)
	testkit.Kcat(t, brokers, tp.Name(), keys[1], string(v), false)

	after, err := Current(ctx, tp)
	require.NoError(t, err)
	require.Len(t, after, 434, "a forged tombstone delisted an indicator")
	for id, ind := range after {
		require.False(t, ind.Revoked, "a forged version revoked %s", id)
	}
	require.Equal(t, int64(2), refused.Load())
}
