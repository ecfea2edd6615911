package credit_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/credit"
	"github.com/cordonhq/cordon/integration/pipetest"
	"github.com/cordonhq/cordon/internal/chain"
)

// slowNodes are endpoints that take a while to answer each question.
type slowNodes struct {
	*memNodes
	calls int
	mu    sync.Mutex
}

func (s *slowNodes) wait() {
	s.mu.Lock()
	s.calls++
	s.mu.Unlock()
	time.Sleep(20 * time.Millisecond)
}

func (s *slowNodes) HashesAt(ctx context.Context, c chain.Chain, n string, h uint64) ([]credit.NodeReport, int, error) {
	s.wait()
	return s.memNodes.HashesAt(ctx, c, n, h)
}

func (s *slowNodes) BlockAt(ctx context.Context, c chain.Chain, n string, h uint64) (*chain.Block, error) {
	s.wait()
	return s.memNodes.BlockAt(ctx, c, n, h)
}

func (s *slowNodes) Tip(ctx context.Context, c chain.Chain, n string) (uint64, uint64, error) {
	s.wait()
	return s.memNodes.Tip(ctx, c, n)
}

// TestAskBudget: a round stops asking the nodes once its budget is spent
// (here one question's time), so a backlog of deposits at depth never
// holds the round's other work back; the deposits it left are asked
// about in the next rounds, without waiting for their chain's next block
// (none comes here): every one is credited in the end.
func TestAskBudget(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	kc, prod, reg := oneDepositAddress(t, ctx)
	nodes := &slowNodes{memNodes: &memNodes{blocks: map[uint64]*chain.Block{}}}
	var updates []chain.Update
	const deposits = 8
	for h := range 20 {
		b := &chain.Block{Header: chain.Header{Chain: chain.ETH, Network: "t", Height: uint64(h), Hash: fmt.Sprintf("0xb%d", h), Time: int64(h)}}
		if h >= 1 && h <= deposits {
			b.Transfers = []chain.Transfer{{V: 1, Chain: chain.ETH, Network: "t", Asset: chain.AssetNative, Standard: chain.StandardNative,
				TxHash: fmt.Sprintf("0x%064x", h), From: "0x01", To: dep, Amount: chain.AmountFromUint64(500), BlockHash: b.Hash, BlockHeight: uint64(h)}}
		}
		nodes.add(b)
		updates = append(updates, pipetest.Added(uint64(h+1), b))
	}
	reg2 := prometheus.NewRegistry()
	m := credit.NewMetrics(reg2)
	var mu sync.Mutex
	credited := map[string]bool{}
	svc, err := credit.NewService(credit.ServiceConfig{Kafka: kc, Policy: policy, Registry: reg, Tokens: credit.Tokens{}, Nodes: nodes,
		Metrics: m, AskBudget: time.Millisecond, Committed: func(evs []credit.DepositEvent) {
			mu.Lock()
			for _, ev := range evs {
				if ev.Status == credit.StatusCredited {
					credited[ev.ID] = true
				}
			}
			mu.Unlock()
		}})
	require.NoError(t, err)
	// The whole chain at once, as in a backfill: the first round reaches
	// the tip with every deposit at depth.
	require.NoError(t, prod.Publish(ctx, updates))
	stop := runService(ctx, svc)
	defer func() { require.NoError(t, stop()) }()
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(credited) == deposits
	}, time.Minute, 50*time.Millisecond, "every deposit is credited though no block follows the backlog")
	var deferred float64
	mfs, err := reg2.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			for _, l := range mt.GetLabel() {
				if mf.GetName() == "cordon_credit_confirmations_total" && l.GetValue() == "deferred" {
					deferred = mt.GetCounter().GetValue()
				}
			}
		}
	}
	require.Positive(t, deferred, "rounds deferred deposits once their budget was spent")
	// One question a round over the budget at most: Tip, then each
	// height's hashes and block, each once.
	nodes.mu.Lock()
	defer nodes.mu.Unlock()
	require.LessOrEqual(t, nodes.calls, 3*deposits+deposits+2)
}
