package registry_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/ingest/kafka/kafkatest"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/testkit"
	"github.com/cordonhq/cordon/registry"
)

// TestForgedEntryChangesNothing: someone who can write to the address
// topic but holds no API key redirects a deposit address to their own
// account with kcat. The registry keeps the real owner and reports the
// record.
func TestForgedEntryChangesNothing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	brokers := kafkatest.Brokers(t)
	var mu sync.Mutex
	var refused []kafka.Refusal
	kc := kafka.Config{Auth: kafkatest.Keys(), Brokers: brokers, CreateTopics: true, Partitions: 1, Refused: func(r kafka.Refusal) {
		mu.Lock()
		refused = append(refused, r)
		mu.Unlock()
	}}
	prod, err := kafka.New(kc, nil, nil)
	require.NoError(t, err)
	defer prod.Close()
	require.NoError(t, prod.EnsureTopics(ctx))
	const a, b = "0x00000000000000000000000000000000000000a1", "0x00000000000000000000000000000000000000b2"
	require.NoError(t, registry.Publish(ctx, prod, []registry.Entry{{Chain: chain.ETH, Network: "mainnet", Address: a, Account: "alice", Asset: "*", Kind: registry.KindDeposit}}))
	testkit.Kcat(t, brokers, prod.Topics().Addresses, "eth/mainnet/"+a,
		`{"chain":"eth","network":"mainnet","address":"`+a+`","account":"mallory","asset":"*","kind":"deposit"}`, false, "cordon-type=address")
	require.NoError(t, registry.Publish(ctx, prod, []registry.Entry{{Chain: chain.ETH, Network: "mainnet", Address: b, Account: "bob", Asset: "*", Kind: registry.KindDeposit}}))

	st := registry.NewStore(prod)
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- st.Run(sctx) }()
	defer func() { stop(); require.NoError(t, <-done) }()
	require.Eventually(t, st.Ready, time.Minute, 20*time.Millisecond)
	_, ok := st.Index.Lookup(chain.ETH, "mainnet", b)
	require.True(t, ok, "the entry after the forged one was read")
	e, ok := st.Index.Lookup(chain.ETH, "mainnet", a)
	require.True(t, ok)
	require.Equal(t, "alice", e.Account, "a forged record redirected the deposit address")
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, refused, 1)
	require.Equal(t, "eth/mainnet/"+a, string(refused[0].Key))
}
