package credit_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/credit"
	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/ingest/kafka/kafkatest"
	"github.com/cordonhq/cordon/integration/pipetest"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/registry"
)

// TestServiceReorgBackToSameBlock: blocks 2 and 3 are replaced by another
// branch, and then that branch by the first again, under the same hashes
// (a reorg away and back). They are credited like on a chain without the
// detour, and the stream goes on after them. The service used to drop the
// blocks' parts the second time (it had applied them once), so the
// re-added blocks never completed and the stream stalled for good.
func TestServiceReorgBackToSameBlock(t *testing.T) {
	detour := creditedBlocks(t, true)
	straight := creditedBlocks(t, false)
	require.Equal(t, straight, detour)
	require.True(t, detour["0xb2"] && detour["0xb3"], "the re-added blocks' deposits are credited")
	require.True(t, detour["0xb7"], "the stream goes on after it")
}

func creditedBlocks(t *testing.T, detour bool) map[string]bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	brokers, prod := pipetest.Producer(t)
	reg := registry.NewIndex()
	dep := "0x0000000000000000000000000000000000000d00"
	reg.Put(&registry.Entry{Chain: chain.ETH, Network: "t", Address: dep, Account: "u0", Asset: "*", Kind: registry.KindDeposit})
	var ups []chain.Update
	seq := uint64(0)
	block := func(h int, branch string, parent string) *chain.Block {
		b := &chain.Block{Header: chain.Header{Chain: chain.ETH, Network: "t", Height: uint64(h), Hash: fmt.Sprintf("0x%s%d", branch, h), ParentHash: parent, Time: int64(h)}}
		b.Transfers = []chain.Transfer{{V: 1, Chain: chain.ETH, Network: "t", Asset: chain.AssetNative, Standard: chain.StandardNative,
			TxHash: fmt.Sprintf("0x%062x%s", h+1, branch+branch), From: "0x00000000000000000000000000000000000000ff", To: dep,
			Amount: chain.AmountFromUint64(500), BlockHash: b.Hash, BlockHeight: uint64(h)}}
		return b
	}
	add := func(b *chain.Block) {
		seq++
		ups = append(ups, pipetest.Added(seq, b))
	}
	remove := func(b *chain.Block) {
		seq++
		ups = append(ups, chain.Update{Event: chain.BlockEvent{V: 1, Type: chain.BlockRemoved, Seq: seq, Header: b.Header}})
	}
	var main []*chain.Block
	for h := range 10 {
		parent := ""
		if h > 0 {
			parent = main[h-1].Hash
		}
		main = append(main, block(h, "b", parent))
	}
	side2 := block(2, "c", main[1].Hash)
	side3 := block(3, "c", side2.Hash)
	var rounds [][]chain.Update
	flush := func() { rounds = append(rounds, ups); ups = nil }
	for h := range 4 {
		add(main[h])
	}
	flush()
	if detour {
		remove(main[3])
		remove(main[2])
		add(side2)
		add(side3)
		flush()
		remove(side3)
		remove(side2)
		add(main[2])
		add(main[3])
		flush()
	}
	for h := 4; h < 10; h++ {
		add(main[h])
	}
	flush()
	svc, err := credit.NewService(credit.ServiceConfig{Kafka: kafka.Config{Auth: kafkatest.Keys(), Brokers: brokers, Topics: kafka.DefaultTopics(), CreateTopics: true},
		Policy: policy, Registry: reg, Tokens: credit.Tokens{}, Screen: flagged})
	require.NoError(t, err)
	stop := runService(ctx, svc)
	// One publish per round, each applied before the next comes.
	for _, r := range rounds {
		require.NoError(t, prod.Publish(ctx, r))
		time.Sleep(1500 * time.Millisecond)
	}
	credited := map[string]bool{}
	require.Eventually(t, func() bool {
		for _, ev := range committed(t, ctx, brokers) {
			if ev.Status == credit.StatusCredited {
				credited[ev.BlockHash] = true
			}
		}
		return credited["0xb7"]
	}, 30*time.Second, 500*time.Millisecond, "credited: %v", credited)
	require.NoError(t, stop())
	return credited
}
