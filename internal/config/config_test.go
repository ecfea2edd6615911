package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type section struct {
	Brokers  []string      `yaml:"brokers"`
	Linger   time.Duration `yaml:"linger"`
	Password Secret        `yaml:"password"`
}

type root struct {
	Kafka section `yaml:"kafka"`
}

func TestApplyEnvAndResolveSecrets(t *testing.T) {
	t.Setenv("CORDON_TEST_PW", "s3cret")
	var r root
	require.NoError(t, ApplyEnv(&r, []string{"CORDON_KAFKA_BROKERS=a:1, b:2", "CORDON_KAFKA_LINGER=5ms",
		"CORDON_KAFKA_PASSWORD=env:CORDON_TEST_PW", "HOME=/root"}))
	require.Equal(t, []string{"a:1", "b:2"}, r.Kafka.Brokers)
	require.Equal(t, 5*time.Millisecond, r.Kafka.Linger)
	require.NoError(t, ResolveSecrets(&r))
	require.Equal(t, "s3cret", r.Kafka.Password.Value())
	require.Equal(t, "[redacted]", r.Kafka.Password.String())

	require.ErrorContains(t, ApplyEnv(&r, []string{"CORDON_KAFKA_BROKRES=x"}), "CORDON_KAFKA_BROKRES names no configuration key")
	require.ErrorContains(t, ApplyEnv(&r, []string{"CORDON_KAFKA_LINGER=soon"}), "kafka.linger (from CORDON_KAFKA_LINGER)")
	require.ErrorContains(t, ApplyEnv(r, []string{"CORDON_KAFKA_LINGER=1s"}), "needs a pointer to a struct")

	r.Kafka.Password = Secret{ref: "env:CORDON_TEST_UNSET_VAR"}
	require.EqualError(t, ResolveSecrets(&r), "kafka.password: environment variable CORDON_TEST_UNSET_VAR is not set")
}

func TestProblemsCollectsEveryKey(t *testing.T) {
	var p Problems
	require.NoError(t, p.Err())
	p.Add("kafka.brokers", "at least one broker")
	p.Add("kafka.linger", "%s: too long", 2*time.Second)
	require.EqualError(t, p.Err(), "kafka.brokers: at least one broker\nkafka.linger: 2s: too long")
	n := 0
	OrDefault(&n, 3)
	require.Equal(t, 3, n)
	OrDefault(&n, 4)
	require.Equal(t, 3, n)
}
