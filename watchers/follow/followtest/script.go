package followtest

import (
	"context"
	"fmt"
	"sync"

	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/watchers/follow"
)

// scriptChain is a follow.Source over an in-memory chain the test rewrites
// (extend, reorg): the scripted node the Sink suite drives a Follower with.
type scriptChain struct {
	c       chain.Chain
	network string

	mu     sync.Mutex
	blocks []chain.Header // canonical, index = height
	nonce  int
}

func newScriptChain(c chain.Chain, network string, blocks int) *scriptChain {
	s := &scriptChain{c: c, network: network}
	s.blocks = []chain.Header{{Chain: c, Network: network, Hash: network + "-genesis", Time: 1}}
	s.extend(blocks)
	return s
}

// extend appends n blocks to the canonical chain.
func (s *scriptChain) extend(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.nonce++
		tip := s.blocks[len(s.blocks)-1]
		s.blocks = append(s.blocks, chain.Header{Chain: s.c, Network: s.network, Height: tip.Height + 1,
			Hash: fmt.Sprintf("%s-%d-%d", s.network, tip.Height+1, s.nonce), ParentHash: tip.Hash, Time: tip.Time + 1})
	}
}

// reorg replaces the newest depth blocks with depth+extra new ones.
func (s *scriptChain) reorg(depth, extra int) {
	s.mu.Lock()
	s.blocks = s.blocks[:len(s.blocks)-depth]
	s.mu.Unlock()
	s.extend(depth + extra)
}

// restore makes blocks (an earlier canonical()) the canonical chain again.
func (s *scriptChain) restore(blocks []chain.Header) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.blocks = append([]chain.Header(nil), blocks...)
}

func (s *scriptChain) canonical() []chain.Header {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]chain.Header(nil), s.blocks...)
}

func (s *scriptChain) Head(ctx context.Context) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return uint64(len(s.blocks) - 1), nil
}

func (s *scriptChain) HeaderAt(ctx context.Context, h uint64) (chain.Header, error) {
	if err := ctx.Err(); err != nil {
		return chain.Header{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if h >= uint64(len(s.blocks)) {
		return chain.Header{}, fmt.Errorf("height %d: %w", h, follow.ErrNotFound)
	}
	return s.blocks[h], nil
}

func (s *scriptChain) BlockAt(ctx context.Context, h uint64) (*chain.Block, error) {
	hd, err := s.HeaderAt(ctx, h)
	if err != nil {
		return nil, err
	}
	tx := chain.Transaction{V: chain.SchemaVersion, Chain: hd.Chain, Network: hd.Network, Hash: "tx-" + hd.Hash,
		BlockHeight: hd.Height, BlockHash: hd.Hash, BlockTime: hd.Time}
	tr := chain.Transfer{V: chain.SchemaVersion, Chain: hd.Chain, Network: hd.Network, Asset: chain.AssetNative,
		Standard: chain.StandardNative, TxHash: tx.Hash, From: "a", To: "b", Amount: chain.AmountFromUint64(hd.Height + 1),
		BlockHeight: hd.Height, BlockHash: hd.Hash, BlockTime: hd.Time}
	return &chain.Block{Header: hd, Transactions: []chain.Transaction{tx}, Transfers: []chain.Transfer{tr}}, nil
}
