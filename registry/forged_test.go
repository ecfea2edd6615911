package registry_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/ingest/kafka/kafkatest"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/recordauth"
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
	brokers, prod, refusals := refusingProducer(t, ctx)
	const a, b = "0x00000000000000000000000000000000000000a1", "0x00000000000000000000000000000000000000b2"
	require.NoError(t, registry.Publish(ctx, prod, []registry.Entry{{Chain: chain.ETH, Network: "mainnet", Address: a, Account: "alice", Asset: "*", Kind: registry.KindDeposit}}))
	testkit.Kcat(t, brokers, prod.Topics().Addresses, "eth/mainnet/"+a,
		`{"chain":"eth","network":"mainnet","address":"`+a+`","account":"mallory","asset":"*","kind":"deposit"}`, false, "cordon-type=address")
	require.NoError(t, registry.Publish(ctx, prod, []registry.Entry{{Chain: chain.ETH, Network: "mainnet", Address: b, Account: "bob", Asset: "*", Kind: registry.KindDeposit}}))

	st := loadedStore(t, ctx, prod)
	_, ok := st.Index.Lookup(chain.ETH, "mainnet", b)
	require.True(t, ok, "the entry after the forged one was read")
	e, ok := st.Index.Lookup(chain.ETH, "mainnet", a)
	require.True(t, ok)
	require.Equal(t, "alice", e.Account, "a forged record redirected the deposit address")
	refused := refusals()
	require.Len(t, refused, 1)
	require.Equal(t, "eth/mainnet/"+a, string(refused[0].Key))
}

// TestReplayedEntryChangesNothing: an address moved from alice to bob (by
// an operator, through the API); someone who can write to the topic but
// holds no key copies alice's genuine, signed record back onto it. The
// registry keeps bob and reports the replay.
func TestReplayedEntryChangesNothing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	brokers, prod, refusals := refusingProducer(t, ctx)
	const a, b = "0x00000000000000000000000000000000000000a1", "0x00000000000000000000000000000000000000b2"
	entry := func(account string) registry.Entry {
		return registry.Entry{Chain: chain.ETH, Network: "mainnet", Address: a, Account: account, Asset: "*", Kind: registry.KindDeposit}
	}
	require.NoError(t, registry.Publish(ctx, prod, []registry.Entry{entry("alice")}))
	require.NoError(t, registry.Publish(ctx, prod, []registry.Entry{entry("bob")}))
	var first kafka.Record
	require.NoError(t, prod.ReadRange(ctx, prod.Topics().Addresses, 0, 0, 1, func(r kafka.Record) error { first = r; return nil }))
	var headers []string
	for _, h := range first.Headers {
		headers = append(headers, h.Key+"="+string(h.Value))
	}
	testkit.Kcat(t, brokers, prod.Topics().Addresses, string(first.Key), string(first.Value), false, headers...)
	require.NoError(t, registry.Publish(ctx, prod, []registry.Entry{{Chain: chain.ETH, Network: "mainnet", Address: b, Account: "carol", Asset: "*", Kind: registry.KindDeposit}}))

	st := loadedStore(t, ctx, prod)
	_, ok := st.Index.Lookup(chain.ETH, "mainnet", b)
	require.True(t, ok, "the entry after the replay was read")
	e, ok := st.Index.Lookup(chain.ETH, "mainnet", a)
	require.True(t, ok)
	require.Equal(t, "bob", e.Account, "a replayed record moved the deposit address back")
	refused := refusals()
	require.Len(t, refused, 1)
	require.ErrorIs(t, refused[0].Err, recordauth.ErrReplayed)
}

// refusingProducer starts a broker and a producer holding every role's
// key, whose readers report the records they refuse to refusals.
func refusingProducer(t *testing.T, ctx context.Context) (brokers []string, prod *kafka.Producer, refusals func() []kafka.Refusal) {
	brokers = kafkatest.Brokers(t)
	var mu sync.Mutex
	var refused []kafka.Refusal
	kc := kafka.Config{Auth: kafkatest.Keys(), Brokers: brokers, CreateTopics: true, Partitions: 1, Refused: func(r kafka.Refusal) {
		mu.Lock()
		refused = append(refused, r)
		mu.Unlock()
	}}
	prod, err := kafka.New(kc, nil, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = prod.Close() })
	require.NoError(t, prod.EnsureTopics(ctx))
	return brokers, prod, func() []kafka.Refusal {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(refused)
	}
}

// loadedStore runs a registry store of prod's topic for the test and
// returns it once it has read what the topic holds.
func loadedStore(t *testing.T, ctx context.Context, prod *kafka.Producer) *registry.Store {
	st := registry.NewStore(prod)
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- st.Run(sctx) }()
	t.Cleanup(func() { stop(); require.NoError(t, <-done) })
	require.Eventually(t, st.Ready, time.Minute, 20*time.Millisecond)
	return st
}
