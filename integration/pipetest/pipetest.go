package pipetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/ingest/clickhouse"
	"github.com/cordonhq/cordon/ingest/clickhouse/chtest"
	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/ingest/kafka/kafkatest"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/watchers/btc"
	"github.com/cordonhq/cordon/watchers/btc/btcnode"
	"github.com/cordonhq/cordon/watchers/btc/btctest"
	"github.com/cordonhq/cordon/watchers/eth"
	"github.com/cordonhq/cordon/watchers/eth/devnet"
	"github.com/cordonhq/cordon/watchers/follow"
)

// Pipe is a running watcher → Kafka → ClickHouse path.
type Pipe struct {
	Chain    chain.Chain
	Network  string
	Store    *clickhouse.Store
	Producer *kafka.Producer
	Follower *follow.Follower
	// Source is the node the follower reads.
	Source follow.Source
	// Brokers are the Kafka brokers' addresses.
	Brokers []string
	// ClickHouse is the server's native address.
	ClickHouse string
}

// Stream starts a broker and a follower publishing src's chain from
// startHeight into it.
func Stream(t testing.TB, ctx context.Context, c chain.Chain, network string, src follow.Source, startHeight uint64) ([]string, *kafka.Producer, *follow.Follower) {
	t.Helper()
	brokers := kafkatest.Brokers(t)
	prod, err := kafka.New(kafka.Config{Auth: kafkatest.Keys(), Brokers: brokers, CreateTopics: true, Partitions: 3}, nil, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = prod.Close() })
	require.NoError(t, prod.EnsureTopics(ctx))
	f := follow.New(follow.Config{Chain: c, Network: network, StartHeight: follow.StartAt(startHeight), PollInterval: 50 * time.Millisecond},
		src, prod, nil, prod, nil, nil)
	fctx, stopF := context.WithCancel(ctx)
	t.Cleanup(stopF)
	go func() { _ = f.Run(fctx) }()
	return brokers, prod, f
}

// start runs Stream and a loader into a fresh ClickHouse server.
func start(t testing.TB, ctx context.Context, c chain.Chain, network string, src follow.Source, startHeight uint64) *Pipe {
	t.Helper()
	brokers, prod, f := Stream(t, ctx, c, network, src, startHeight)
	srv := chtest.Server(t)
	store, err := clickhouse.Open(ctx, clickhouse.Config{Addrs: []string{srv.Addr()}, Database: "cordon"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	require.NoError(t, store.Migrate(ctx, clickhouse.Schema))
	tp := prod.Topics()
	consumer, err := kafka.NewConsumer(kafka.Config{Auth: kafkatest.Keys(), Brokers: brokers}, "clickhouse-loader",
		[]string{tp.Blocks, tp.Transactions, tp.Transfers, tp.Outputs, tp.Spends})
	require.NoError(t, err)
	t.Cleanup(func() { _ = consumer.Close() })
	loader := clickhouse.NewLoader(clickhouse.LoaderConfig{Linger: 20 * time.Millisecond}, store, consumer, nil, nil)
	lctx, stopL := context.WithCancel(ctx)
	t.Cleanup(stopL)
	go func() { _ = loader.Run(lctx) }()
	return &Pipe{Chain: c, Network: network, Store: store, Producer: prod, Follower: f, Source: src, ClickHouse: srv.Addr(), Brokers: brokers}
}

// WaitLoaded waits until the block with hash tip is canonical in
// ClickHouse.
func (p *Pipe) WaitLoaded(t testing.TB, ctx context.Context, tip string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		// The tip is canonical, and so is every height below it (a block
		// shows once its rows are in, which may be after a later block).
		var n, lo, hi uint64
		require.NoError(t, p.Store.QueryRow(ctx, `SELECT count(), min(height), max(height) FROM canonical_blocks
			WHERE chain = ? AND network = ? AND height <= (SELECT max(height) FROM canonical_blocks WHERE chain = ? AND network = ? AND hash = ?)`,
			string(p.Chain), p.Network, string(p.Chain), p.Network, tip).Scan(&n, &lo, &hi))
		var has uint64
		require.NoError(t, p.Store.QueryRow(ctx, `SELECT count() FROM canonical_blocks WHERE chain = ? AND network = ? AND hash = ?`,
			string(p.Chain), p.Network, tip).Scan(&has))
		if has > 0 && n == hi-lo+1 {
			return
		}
		require.True(t, time.Now().Before(deadline), "block %s did not reach ClickHouse", tip)
		time.Sleep(50 * time.Millisecond)
	}
}

// ETHNetwork is the network label of the devnet in these tests.
const ETHNetwork = "devnet"

// ETH starts an Ethereum devnet (seeded by seed) and the path from its
// genesis into ClickHouse.
func ETH(t testing.TB, ctx context.Context, seed uint64) (*devnet.Devnet, *Pipe) {
	t.Helper()
	chtest.Need(t)
	dev, err := devnet.Start(devnet.Config{Seed: fmt.Sprint(seed)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = dev.Close() })
	src, err := eth.NewSource(ctx, eth.Config{Network: ETHNetwork, ChainID: devnet.ChainID,
		Endpoints: []eth.EndpointConfig{{Name: "devnet", URL: config.SecretValue(dev.HTTPURL())}}}, nil, nil)
	require.NoError(t, err)
	t.Cleanup(src.Close)
	return dev, start(t, ctx, chain.ETH, ETHNetwork, src, 0)
}

// BTCNode starts a btcd regtest node with a funded wallet (seeded by
// seed) and a watcher source on it.
func BTCNode(t testing.TB, seed uint64) (*btcnode.Node, *btcnode.Wallet, *btc.Source) {
	t.Helper()
	name := fmt.Sprint("chtest-", seed)
	addr, err := btcnode.MiningAddress("regtest", name)
	require.NoError(t, err)
	node := btctest.Node(t, "regtest", addr)
	wallet, err := btcnode.NewWallet(node, "regtest", name, seed)
	require.NoError(t, err)
	require.NoError(t, wallet.Bootstrap())
	src, err := btc.NewSource(btc.Config{Network: "regtest",
		Endpoints: []btc.EndpointConfig{{Name: "btcd", URL: config.SecretValue(node.URL), User: node.User(), Password: config.SecretValue(node.Password())}}}, nil, nil)
	require.NoError(t, err)
	t.Cleanup(src.Close)
	return node, wallet, src
}

// BTC starts BTCNode and the path from height 100 into ClickHouse.
func BTC(t testing.TB, ctx context.Context, seed uint64) (*btcnode.Node, *btcnode.Wallet, *Pipe) {
	t.Helper()
	chtest.Need(t)
	node, wallet, src := BTCNode(t, seed)
	return node, wallet, start(t, ctx, chain.BTC, "regtest", src, 100)
}

// Producer starts a broker and a producer on it with every topic created
// (three partitions each, so streams and parts spread as in production),
// both closed with the test; it returns the brokers and the producer.
func Producer(tb testing.TB) ([]string, *kafka.Producer) {
	tb.Helper()
	brokers := kafkatest.Brokers(tb)
	prod, err := kafka.New(kafka.Config{Auth: kafkatest.Keys(), Brokers: brokers, CreateTopics: true, Partitions: 3}, nil, nil)
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = prod.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(tb, prod.EnsureTopics(ctx))
	return brokers, prod
}

// Added is the block_added update of b with sequence number seq, as a
// watcher publishes it: the event counts b's records. Transfers whose
// transaction b lacks get one (sender and recipient of the transfer),
// as every block a watcher reads has them.
func Added(seq uint64, b *chain.Block) chain.Update {
	have := map[string]bool{}
	for _, tx := range b.Transactions {
		have[tx.Hash] = true
	}
	for _, t := range b.Transfers {
		if !have[t.TxHash] {
			have[t.TxHash] = true
			b.Transactions = append(b.Transactions, chain.Transaction{V: chain.SchemaVersion, Chain: t.Chain, Network: t.Network, Hash: t.TxHash,
				From: t.From, To: t.To, Value: t.Amount})
		}
	}
	return chain.Update{Event: chain.BlockEvent{V: chain.SchemaVersion, Type: chain.BlockAdded, Seq: seq, Header: b.Header, TxCount: len(b.Transactions),
		TransferCount: len(b.Transfers), OutputCount: len(b.Outputs), SpendCount: len(b.Spends)}, Block: b}
}
