package eth_test

import (
	"context"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/ingest/kafka/kafkatest"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/watchers/eth"
	"github.com/cordonhq/cordon/watchers/eth/devnet"
	"github.com/cordonhq/cordon/watchers/follow"
)

const network = "devnet"

type harness struct {
	dev     *devnet.Devnet
	traffic *devnet.Traffic
	prod    *kafka.Producer
	src     *eth.Source
}

func newHarness(t testing.TB, seed uint64) *harness {
	t.Helper()
	ctx := context.Background()
	dev, err := devnet.Start(devnet.Config{Seed: fmt.Sprint(seed)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = dev.Close() })
	tr, err := devnet.NewTraffic(ctx, dev, devnet.TrafficConfig{TxPerBlock: 12, Seed: seed}, nil)
	require.NoError(t, err)

	brokers := kafkatest.Brokers(t)
	prod, err := kafka.New(kafka.Config{Brokers: brokers, CreateTopics: true, Partitions: 3}, nil, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = prod.Close() })
	require.NoError(t, prod.EnsureTopics(ctx))

	src, err := eth.NewSource(ctx, eth.Config{Network: network, ChainID: devnet.ChainID,
		Endpoints: []eth.EndpointConfig{{Name: "devnet-ws", URL: config.SecretValue(dev.WSURL())}, {Name: "devnet-http", URL: config.SecretValue(dev.HTTPURL())}}}, nil, nil)
	require.NoError(t, err)
	t.Cleanup(src.Close)
	return &harness{dev: dev, traffic: tr, prod: prod, src: src}
}

func (h *harness) follower(cfg follow.Config, wake <-chan struct{}) *follow.Follower {
	cfg.Chain, cfg.Network = chain.ETH, network
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 50 * time.Millisecond
	}
	return follow.New(cfg, h.src, h.prod, wake, h.prod, nil, nil)
}

// consumed is what a consumer holds after applying the topics in order.
type consumed struct {
	chain     []chain.Header
	transfers map[string]chain.Transfer // by key, deduplicated
	txs       map[string]chain.Transaction
	events    int
	removed   int
}

func consume(t testing.TB, p *kafka.Producer) consumed {
	t.Helper()
	ctx := context.Background()
	c := consumed{transfers: map[string]chain.Transfer{}, txs: map[string]chain.Transaction{}}
	st, stats, err := p.ReadStream(ctx, chain.ETH, network)
	require.NoError(t, err)
	c.events, c.removed = stats.Events, stats.Removed
	c.chain = st.Chain
	require.NoError(t, p.ReadParts(ctx, p.Topics().Transfers, func(part kafka.Part) error {
		trs, err := kafka.Items[chain.Transfer](part)
		require.NoError(t, err)
		for _, tr := range trs {
			c.transfers[tr.Key()] = tr
		}
		return nil
	}))
	require.NoError(t, p.ReadParts(ctx, p.Topics().Transactions, func(part kafka.Part) error {
		txs, err := kafka.Items[chain.Transaction](part)
		require.NoError(t, err)
		for _, tx := range txs {
			c.txs[tx.Key()] = tx
		}
		return nil
	}))
	return c
}

// expectedTransfers computes the transfers of a canonical block with
// go-ethereum's own types, independently of the watcher's decoder.
func expectedTransfers(t testing.TB, h *harness, num uint64) (common.Hash, map[string]string) {
	t.Helper()
	ctx := context.Background()
	blk, err := h.dev.Client().BlockByNumber(ctx, new(big.Int).SetUint64(num))
	require.NoError(t, err)
	out := map[string]string{}
	hash := strings.ToLower(blk.Hash().Hex())
	signer := types.LatestSignerForChainID(big.NewInt(devnet.ChainID))
	for _, tx := range blk.Transactions() {
		rc, err := h.dev.Client().TransactionReceipt(ctx, tx.Hash())
		require.NoError(t, err)
		if rc.Status != types.ReceiptStatusSuccessful {
			continue
		}
		txh := strings.ToLower(tx.Hash().Hex())
		if tx.Value().Sign() > 0 {
			from, err := types.Sender(signer, tx)
			require.NoError(t, err)
			to := rc.ContractAddress
			if tx.To() != nil {
				to = *tx.To()
			}
			out[fmt.Sprintf("eth/%s/%s/%s/native", network, hash, txh)] = fmt.Sprintf("%s>%s:%s", strings.ToLower(from.Hex()), strings.ToLower(to.Hex()), tx.Value())
		}
		for _, lg := range rc.Logs {
			if len(lg.Topics) == 0 || lg.Topics[0].Hex() != eth.TransferTopic {
				continue
			}
			from := strings.ToLower(common.BytesToAddress(lg.Topics[1].Bytes()).Hex())
			to := strings.ToLower(common.BytesToAddress(lg.Topics[2].Bytes()).Hex())
			var amount string
			switch {
			case len(lg.Topics) == 3 && len(lg.Data) == 32:
				amount = new(big.Int).SetBytes(lg.Data).String()
			case len(lg.Topics) == 4 && len(lg.Data) == 0:
				amount = "1#" + lg.Topics[3].Big().String()
			default:
				continue
			}
			out[fmt.Sprintf("eth/%s/%s/%s/%d", network, hash, txh, lg.Index)] = fmt.Sprintf("%s>%s:%s", from, to, amount)
		}
	}
	return blk.Hash(), out
}

func describe(tr chain.Transfer) string {
	amount := tr.Amount.String()
	if tr.Standard == chain.StandardERC721 {
		amount = "1#" + tr.TokenID
	}
	return fmt.Sprintf("%s>%s:%s", tr.From, tr.To, amount)
}

// checkCanonical asserts that the consumed stream is exactly the node's
// canonical chain, with every transfer of it present once and nothing from
// abandoned blocks in the canonical view.
func checkCanonical(t testing.TB, h *harness, c consumed) {
	t.Helper()
	head := h.dev.Head().Number.Uint64()
	require.Len(t, c.chain, int(head)+1, "consumer chain length")
	canonical := map[string]bool{}
	want := map[string]string{}
	wantTxs := 0
	for n := uint64(0); n <= head; n++ {
		hash, exp := expectedTransfers(t, h, n)
		require.Equal(t, strings.ToLower(hash.Hex()), c.chain[n].Hash, "hash at height %d", n)
		canonical[c.chain[n].Hash] = true
		for k, v := range exp {
			want[k] = v
		}
		blk, err := h.dev.Client().BlockByNumber(context.Background(), new(big.Int).SetUint64(n))
		require.NoError(t, err)
		wantTxs += len(blk.Transactions())
	}
	got := map[string]string{}
	for k, tr := range c.transfers {
		if canonical[tr.BlockHash] {
			got[k] = describe(tr)
		}
	}
	require.Equal(t, want, got, "canonical transfers")
	gotTxs := 0
	for _, tx := range c.txs {
		if canonical[tx.BlockHash] {
			gotTxs++
		}
	}
	require.Equal(t, wantTxs, gotTxs, "canonical transactions")
}

func waitPublished(t testing.TB, h *harness, timeout time.Duration) {
	t.Helper()
	want := strings.ToLower(h.dev.Head().Hash().Hex())
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		cp, err := h.prod.Checkpoint(context.Background(), chain.ETH, network, 4)
		require.NoError(t, err)
		if tip, ok := cp.Tip(); ok && tip.Hash == want {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("watcher did not publish head %s within %s", want, timeout)
}

// TestFollowWithReorgs runs the watcher against the devnet's real JSON-RPC
// while traffic flows and reorganizations of depth 1 to 10 happen, then
// applies the published stream like a consumer would.
func TestFollowWithReorgs(t *testing.T) {
	h := newHarness(t, 7)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := h.follower(follow.Config{Parallel: 4, MaxReorgDepth: 32}, h.src.Wake(ctx))
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()

	for depth := 1; depth <= 10; depth++ {
		for range 3 {
			require.NoError(t, h.traffic.Step(ctx, 10))
		}
		if depth%2 == 0 {
			waitPublished(t, h, 20*time.Second) // let the watcher see the branch before it goes
		}
		require.NoError(t, h.traffic.Reorg(ctx, depth))
	}
	require.NoError(t, h.traffic.Step(ctx, 5))
	waitPublished(t, h, 30*time.Second)
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)

	c := consume(t, h.prod)
	require.Positive(t, c.removed, "no reorganization reached the stream")
	checkCanonical(t, h, c)
}
