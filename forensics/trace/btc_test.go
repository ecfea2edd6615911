package trace_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"
	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/forensics/trace"
	"github.com/cordonhq/cordon/integration/pipetest"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/watchers/btc/btcnode"
)

// utxoGraph is the node's canonical chain from height 100, as an oracle.
type utxoGraph struct {
	outs   map[string]nodeOut   // "txid:vout" → output
	byTx   map[string][]nodeOut // txid → outputs in vout order
	spent  map[string]string    // "txid:vout" → spending txid
	inputs map[string][]string  // txid → "txid:vout" it spends (loaded ones)
	height map[string]int64     // txid → height
}

type nodeOut struct {
	tx     string
	vout   int
	addr   string
	amount int64
}

func readGraph(t testing.TB, node *btcnode.Node) *utxoGraph {
	t.Helper()
	g := &utxoGraph{outs: map[string]nodeOut{}, byTx: map[string][]nodeOut{}, spent: map[string]string{},
		inputs: map[string][]string{}, height: map[string]int64{}}
	tip, err := node.Client().GetBlockCount()
	require.NoError(t, err)
	for h := int64(100); h <= tip; h++ {
		hash, err := node.Client().GetBlockHash(h)
		require.NoError(t, err)
		blk, err := node.Client().GetBlock(hash)
		require.NoError(t, err)
		for i, tx := range blk.Transactions {
			id := tx.TxHash().String()
			g.height[id] = h
			for vout, o := range tx.TxOut {
				_, addrs, _, _ := txscript.ExtractPkScriptAddrs(o.PkScript, &chaincfg.RegressionNetParams)
				no := nodeOut{tx: id, vout: vout, amount: o.Value}
				if len(addrs) == 1 {
					no.addr = addrs[0].EncodeAddress()
				}
				g.outs[fmt.Sprintf("%s:%d", id, vout)] = no
				g.byTx[id] = append(g.byTx[id], no)
			}
			if i == 0 {
				continue // coinbase
			}
			for _, in := range tx.TxIn {
				op := in.PreviousOutPoint.String()
				g.spent[op] = id
				g.inputs[id] = append(g.inputs[id], op)
			}
		}
	}
	return g
}

// forward is the trace the watcher's data must give, computed from the
// node: the address's outputs, the transactions spending followed
// outputs, their outputs next.
func (g *utxoGraph) forward(start string, hops int) []edge {
	tainted := map[string]string{}
	for k, o := range g.outs {
		if o.addr == start {
			tainted[k] = o.addr
		}
	}
	done := map[string]bool{}
	var out []edge
	for hop := 1; hop <= hops && len(tainted) > 0; hop++ {
		owners := map[string][]string{}
		for k, a := range tainted {
			done[k] = true
			if tx, ok := g.spent[k]; ok && !slices.Contains(owners[tx], a) {
				owners[tx] = append(owners[tx], a)
			}
		}
		next := map[string]string{}
		for tx, from := range owners {
			for _, o := range g.byTx[tx] {
				if o.addr == "" {
					continue
				}
				for _, f := range from {
					out = append(out, edge{hop, f, o.addr, strconv.FormatInt(o.amount, 10)})
				}
				if k := fmt.Sprintf("%s:%d", o.tx, o.vout); !done[k] {
					next[k] = o.addr
				}
			}
		}
		tainted = next
	}
	return sortEdges(out)
}

// backward: the transactions paying the address, the outputs their inputs
// spent (the senders), then the transactions that created those.
func (g *utxoGraph) backward(start string, hops int) []edge {
	frontier := map[string][]nodeOut{}
	for _, o := range g.outs {
		if o.addr == start {
			frontier[o.tx] = append(frontier[o.tx], o)
		}
	}
	done := map[string]bool{}
	var out []edge
	for hop := 1; hop <= hops && len(frontier) > 0; hop++ {
		for tx := range frontier {
			done[tx] = true
		}
		next := map[string][]nodeOut{}
		for tx, recv := range frontier {
			for _, op := range g.inputs[tx] {
				src, ok := g.outs[op]
				if !ok || src.addr == "" {
					continue
				}
				for _, r := range recv {
					out = append(out, edge{hop, src.addr, r.addr, strconv.FormatInt(src.amount, 10)})
				}
				if !done[src.tx] && !slices.ContainsFunc(next[src.tx], func(o nodeOut) bool { return o.vout == src.vout }) {
					next[src.tx] = append(next[src.tx], src)
				}
			}
		}
		frontier = next
	}
	return sortEdges(out)
}

func sortEdges(es []edge) []edge {
	slices.SortFunc(es, func(a, b edge) int {
		return cmpStr(fmt.Sprint(a.hop, a.from, a.to, a.amount), fmt.Sprint(b.hop, b.from, b.to, b.amount))
	})
	return es
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// TestTraceBitcoinMatchesNode traces Bitcoin payments made by a wallet
// (with reorgs) through the watcher, Kafka and ClickHouse, and compares
// each trace with the one computed from the node's own blocks.
func TestTraceBitcoinMatchesNode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	node, wallet, pipe := pipetest.BTC(t, ctx, 9)
	for round := 1; round <= 12; round++ {
		require.NoError(t, wallet.Step(4))
		if round%4 == 0 {
			tip, err := node.Client().GetBestBlockHash()
			require.NoError(t, err)
			pipe.WaitLoaded(t, ctx, tip.String())
			require.NoError(t, wallet.Reorg(2))
		}
	}
	tip, err := node.Client().GetBestBlockHash()
	require.NoError(t, err)
	pipe.WaitLoaded(t, ctx, tip.String())
	g := readGraph(t, node)

	// Start from the addresses with the most spent outputs.
	spentBy := map[string]int{}
	for k, o := range g.outs {
		if _, ok := g.spent[k]; ok && o.addr != "" {
			spentBy[o.addr]++
		}
	}
	var starts []string
	for a := range spentBy {
		starts = append(starts, a)
	}
	slices.SortFunc(starts, func(a, b string) int {
		if spentBy[a] != spentBy[b] {
			return spentBy[b] - spentBy[a]
		}
		return cmpStr(a, b)
	})
	require.NotEmpty(t, starts)
	checked := 0
	for _, start := range starts[:min(3, len(starts))] {
		for _, backward := range []bool{false, true} {
			res, err := trace.Run(ctx, pipe.Store, trace.Options{Chain: chain.BTC, Network: "regtest", From: []string{start},
				Hops: 3, Backward: backward, MaxFanout: 1 << 20, MaxEdges: 1 << 20})
			require.NoError(t, err)
			want := g.forward(start, 3)
			if backward {
				want = g.backward(start, 3)
			}
			require.NotEmpty(t, want)
			require.Equal(t, want, sortEdges(edgesOf(res)), "start %s backward=%v", start, backward)
			for _, e := range res.Edges {
				h, err := node.Client().GetBlockHash(int64(e.BlockNumber))
				require.NoError(t, err)
				require.Equal(t, h.String(), e.BlockHash, "edge in tx %s", e.TxHash)
				require.Equal(t, g.height[e.TxHash], int64(e.BlockNumber), "edge in tx %s", e.TxHash)
			}
			checked++
		}
	}
	require.Equal(t, 6, checked)
}
