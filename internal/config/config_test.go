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

type pool struct {
	Timeout time.Duration `yaml:"timeout"`
	Label   string        `yaml:"-"`
}

type network struct {
	Name string `yaml:"name"`
	Pool pool   `yaml:",inline"`
	URL  Secret `yaml:"url"`
	Set  Secret `yaml:"-"`
}

func TestNamedInlineAndSkippedFields(t *testing.T) {
	var n struct {
		Nets []network `yaml:"nets"`
	}
	require.NoError(t, ApplyEnv(&n, []string{"CORDON_NETS_0_TIMEOUT=2s", "CORDON_NETS_0_URL=env:CORDON_TEST_NOT_SET"}))
	require.Equal(t, 2*time.Second, n.Nets[0].Pool.Timeout)
	require.ErrorContains(t, ApplyEnv(&n, []string{"CORDON_NETS_0_LABEL=x"}), "names no configuration key")
	require.ErrorContains(t, ApplyEnv(&n, []string{"CORDON_NETS_0_POOL_TIMEOUT=1s"}), "names no configuration key")
	n.Nets[0].Set = Secret{ref: "env:CORDON_TEST_NOT_SET"}
	require.EqualError(t, ResolveSecrets(&n), "nets[0].url: environment variable CORDON_TEST_NOT_SET is not set")
	n.Nets[0].URL = SecretValue("http://x")
	require.NoError(t, ResolveSecrets(&n), "a yaml:\"-\" secret is not resolved from a reference")
}
