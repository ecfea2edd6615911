package kafka

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestTopicsScript: deploy/kafka/topics.sh is what Script generates, and
// each of its create lines carries the settings of the topic's spec.
func TestTopicsScript(t *testing.T) {
	raw, err := os.ReadFile("../../deploy/kafka/topics.sh")
	require.NoError(t, err)
	require.Equal(t, Script(), string(raw), "regenerate with: go run ./cmd/cordon topics --script > deploy/kafka/topics.sh")
	created := map[string][]string{}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == "create" {
			created[f[1]] = f[2:]
		}
	}
	specs := DefaultTopics().Specs()
	require.Len(t, created, len(specs), "one create line per topic")
	for _, s := range specs {
		args, ok := created[s.Name]
		require.True(t, ok, "%s is not created by topics.sh", s.Name)
		require.Equal(t, strconv.Itoa(s.Partitions), args[0], s.Name)
		conf := s.Configs(3)
		require.Equal(t, conf["cleanup.policy"], args[1], s.Name)
		if !s.Compact {
			require.Equal(t, conf["retention.ms"], args[2], s.Name)
		}
	}
}

// TestEnsure: with create_topics every topic is created with its spec's
// settings (the ones topics.sh uses); without, missing topics are named
// and nothing is created, and a cluster that has them is accepted.
func TestEnsure(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	require.NoError(t, err)
	defer c.Close()
	cfg := Config{Brokers: c.ListenAddrs()}

	err = Ensure(ctx, cfg)
	require.ErrorIs(t, err, ErrTopicMissing)
	for _, s := range DefaultTopics().Specs() {
		require.ErrorContains(t, err, s.Name)
	}
	require.ErrorContains(t, err, "kafka.create_topics is false")
	require.Error(t, Ensure(ctx, cfg, "cordon.nope"), "not one of cordon's topics")

	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...), kgo.MetadataMinAge(10*time.Millisecond))
	require.NoError(t, err)
	defer cl.Close()
	admin := kadm.NewClient(cl)
	topics, err := admin.ListTopics(ctx)
	require.NoError(t, err)
	require.Empty(t, topics.Names(), "nothing was created without create_topics")

	created := cfg
	created.CreateTopics = true
	require.NoError(t, Ensure(ctx, created))
	require.NoError(t, Ensure(ctx, created), "idempotent")
	require.NoError(t, Ensure(ctx, cfg), "the topics exist: a component may start without create_topics")

	topics, err = admin.ListTopics(ctx)
	require.NoError(t, err)
	names := DefaultTopics()
	rc, err := admin.DescribeTopicConfigs(ctx, topics.Names()...)
	require.NoError(t, err)
	for _, s := range names.Specs() {
		td, ok := topics[s.Name]
		require.True(t, ok, s.Name)
		require.Len(t, td.Partitions, s.Partitions, "%s: partitions", s.Name)
		got := map[string]string{}
		r, err := rc.On(s.Name, nil)
		require.NoError(t, err)
		for _, kv := range r.Configs {
			if kv.Value != nil {
				got[kv.Key] = *kv.Value
			}
		}
		for k, v := range s.Configs(1) {
			require.Equal(t, v, got[k], "%s: %s", s.Name, k)
		}
	}

	// kafka.partitions overrides the count, except where it is the
	// topic's meaning (the leader topic's one partition).
	c2, err := kfake.NewCluster(kfake.NumBrokers(1))
	require.NoError(t, err)
	defer c2.Close()
	over := Config{Brokers: c2.ListenAddrs(), CreateTopics: true, Partitions: 2}
	require.NoError(t, Ensure(ctx, over))
	got, err := Partitions(ctx, over, names.Blocks, names.CreditLeader())
	require.NoError(t, err)
	require.Len(t, got[names.Blocks], 2)
	require.Len(t, got[names.CreditLeader()], 1)
}
