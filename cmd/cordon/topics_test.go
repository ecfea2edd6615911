package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/ingest/kafka/kafkatest"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/recordauth"
	"github.com/cordonhq/cordon/watchers/eth/devnet"
)

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// TestRunWithoutCreatingTopics: on a cluster where a platform team made
// the topics (deploy/kafka/topics.sh) and cordon may not create any
// (kafka.create_topics: false), every component starts: the watcher
// publishes, the intel store and the registry catch up, the API answers
// and the crediting service leads and runs its rounds.
func TestRunWithoutCreatingTopics(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	brokers := kafkatest.Brokers(t)
	require.NoError(t, kafka.Ensure(ctx, kafka.Config{Auth: kafkatest.Keys(), Brokers: brokers, CreateTopics: true, Partitions: 2}), "the platform team's topics")

	dev, err := devnet.Start(devnet.Config{})
	require.NoError(t, err)
	defer dev.Close()
	tr, err := devnet.NewTraffic(ctx, dev, devnet.TrafficConfig{}, nil)
	require.NoError(t, err)
	require.NoError(t, tr.Step(ctx, 3))

	httpAddr, apiAddr := freeAddr(t), freeAddr(t)
	cfgPath := filepath.Join(t.TempDir(), "cordon.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(testKeys(t)+fmt.Sprintf(`
log: {level: warn}
http: {listen: "%s"}
api:
  listen: "%s"
  tokens: [{name: screening, token: "0123456789abcdef-test-token", scopes: [screen]}]
kafka:
  brokers: [%s]
  create_topics: false
  replication_factor: 1
chains:
  eth:
    - network: devnet
      chain_id: %d
      start_height: "0"
      endpoints:
        - {name: dev, url: "%s"}
`, httpAddr, apiAddr, brokers[0], devnet.ChainID, dev.HTTPURL())), 0o600))
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- cmdRun(rctx, []string{"--config", cfgPath}) }()

	deadline := time.Now().Add(90 * time.Second)
	for {
		select {
		case err := <-done:
			t.Fatalf("cordon run stopped: %v", err)
		default:
		}
		code, body := 0, ""
		if c, err := net.DialTimeout("tcp", httpAddr, time.Second); err == nil {
			_ = c.Close()
			code, body = httpGet(t, "http://"+httpAddr+"/readyz")
		}
		_, metrics := 0, ""
		if code == 200 {
			_, metrics = httpGet(t, "http://"+httpAddr+"/metrics")
		}
		if code == 200 && strings.Contains(metrics, "cordon_credit_rounds_total") && !strings.Contains(metrics, "cordon_credit_rounds_total 0\n") {
			break
		}
		require.True(t, time.Now().Before(deadline), "not ready: %d %s", code, body)
		time.Sleep(200 * time.Millisecond)
	}
	reader, err := kafka.New(kafka.Config{Auth: kafkatest.Keys(), Brokers: brokers}, nil, nil)
	require.NoError(t, err)
	defer reader.Close()
	cp, err := reader.Checkpoint(ctx, chain.ETH, "devnet", 10)
	require.NoError(t, err)
	_, ok := cp.Tip()
	require.True(t, ok, "the watcher published")
	stop()
	require.ErrorIs(t, <-done, context.Canceled)
}

// testKeys is a record_auth section with new keys for every role.
func testKeys(t testing.TB) string {
	y, err := keysYAML(recordauth.Roles)
	require.NoError(t, err)
	return y
}
