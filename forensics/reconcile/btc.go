package reconcile

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"

	"github.com/cordonhq/cordon/ingest/clickhouse"
	"github.com/cordonhq/cordon/internal/address"
	"github.com/cordonhq/cordon/internal/chain"
)

// BTCNode is what the Bitcoin check asks the node (an *rpcclient.Client).
// Only blocks at heights up to the compared one are read, so the node may
// keep adding blocks meanwhile.
type BTCNode interface {
	GetBlockCount() (int64, error)
	GetBlockHash(height int64) (*chainhash.Hash, error)
	GetBlock(hash *chainhash.Hash) (*wire.MsgBlock, error)
}

// outpoint names an output (tx, vout); a spendKey an input (tx, vin).
type outpoint struct {
	tx   string
	vout uint32
}

type spendKey = outpoint

func (o outpoint) String() string { return o.tx + ":" + strconv.FormatUint(uint64(o.vout), 10) }

func (o outpoint) compare(p outpoint) int {
	return cmp.Or(strings.Compare(o.tx, p.tx), cmp.Compare(o.vout, p.vout))
}

// txOut is an output's amount and address ("" when its script has none).
type txOut struct {
	amount uint64
	addr   string
}

func (t txOut) String() string {
	if t.addr == "" {
		return strconv.FormatUint(t.amount, 10) + " (no address)"
	}
	return strconv.FormatUint(t.amount, 10) + " to " + t.addr
}

// ledger is one side's view of the window: the outputs its blocks create
// and the outputs its inputs spend.
type ledger struct {
	outs   map[outpoint]txOut
	spends map[spendKey]outpoint
}

// prevRow is ClickHouse's canonical row of an output created before the
// window, with the block that holds it.
type prevRow struct {
	txOut
	blockHash string
	height    uint64
}

// BTC checks the window's outputs and spends, and the balance change of
// each sampled address over the window, against the node.
//
// The node is asked for the window's blocks and, for the sampled
// addresses' outputs that the window spends and that were created before
// it, the blocks that created them (found by ClickHouse's row, checked to
// be on the node's main chain): the cost follows the window, never an
// address's history. Blocks the node adds past the height do not matter;
// a block of the window, or a block holding a spent output, that the node
// does not have where ClickHouse has it makes the check ErrNotComparable.
func BTC(ctx context.Context, q Querier, node BTCNode, o Options) (*Report, error) {
	o.Chain = chain.BTC
	if err := o.fill(); err != nil {
		return nil, err
	}
	net, err := address.LookupBTC(o.Network)
	if err != nil {
		return nil, fmt.Errorf("reconcile: %w", err)
	}
	bs, h, err := canonicalBlocks(ctx, q, o)
	if err != nil {
		return nil, err
	}
	base := h - min(h, o.Blocks)
	rep := &Report{Chain: chain.BTC, Network: o.Network, Height: h, Base: base, Mismatches: []Mismatch{}}
	n := &nodeBlocks{ctx: ctx, node: node, net: &net, blocks: map[chainhash.Hash]map[string]*wire.MsgTx{}}
	tip, err := call(ctx, node.GetBlockCount)
	if err != nil {
		return nil, fmt.Errorf("reconcile: node block count: %w", err)
	}
	if tip < int64(h) {
		return nil, fmt.Errorf("%w: the node's tip %d is below ClickHouse's %d (the node is syncing or behind a reorg)", ErrNotComparable, tip, h)
	}

	// The node's window: its blocks at the heights of ClickHouse's.
	nodeWin := ledger{outs: map[outpoint]txOut{}, spends: map[spendKey]outpoint{}}
	for x := base + 1; x <= h; x++ {
		blk, err := n.blockAt(x, bs[x].hash, "")
		if err != nil {
			return nil, err
		}
		for i, tx := range blk.Transactions {
			id := tx.TxHash().String()
			for v, out := range tx.TxOut {
				_, a := address.ClassifyScript(out.PkScript, &net)
				nodeWin.outs[outpoint{id, uint32(v)}] = txOut{uint64(out.Value), a}
			}
			if i == 0 {
				continue // the coinbase spends nothing
			}
			for v, in := range tx.TxIn {
				nodeWin.spends[spendKey{id, uint32(v)}] = outpoint{in.PreviousOutPoint.Hash.String(), in.PreviousOutPoint.Index}
			}
		}
	}
	storeWin, err := compareWindow(ctx, q, o, bs, nodeWin, rep)
	if err != nil {
		return nil, err
	}

	// ClickHouse's rows of the outputs the window spends that it did not
	// create (on either side).
	var wanted []outpoint
	for _, side := range []ledger{storeWin, nodeWin} {
		for _, prev := range side.spends {
			if _, ok := storeWin.outs[prev]; ok {
				continue
			}
			if _, ok := nodeWin.outs[prev]; ok {
				continue
			}
			wanted = append(wanted, prev)
		}
	}
	prevs, err := prevRows(ctx, q, o, base, wanted)
	if err != nil {
		return nil, err
	}

	touched := map[string]bool{}
	for _, out := range storeWin.outs {
		touched[out.addr] = true
	}
	for _, out := range nodeWin.outs {
		touched[out.addr] = true
	}
	for _, prev := range storeWin.spends {
		if r, ok := prevs[prev]; ok {
			touched[r.addr] = true
		}
	}
	delete(touched, "")
	addrs := slices.Sorted(keysOf(touched))
	rep.Touched = len(addrs)
	sampled := map[string]bool{}
	for _, a := range sample(addrs, o.Sample, o.Seed+h) {
		sampled[a] = true
	}
	rep.Checked = len(sampled)

	// Each side's balance change over the window, by sampled address, and
	// what differs on the way there.
	type change struct {
		store, node int64
		diffs       []string
	}
	changes := map[string]*change{}
	at := func(a string) *change {
		if !sampled[a] {
			return nil
		}
		c, ok := changes[a]
		if !ok {
			c = &change{}
			changes[a] = c
		}
		return c
	}
	note := func(a, a2, diff string) {
		if c := at(a); c != nil {
			c.diffs = append(c.diffs, diff)
		}
		if c := at(a2); c != nil && a2 != a {
			c.diffs = append(c.diffs, diff)
		}
	}
	// noteOrReport notes a difference for the sampled addresses it
	// touches, or reports it on its own when it touches none (an output
	// whose address ClickHouse lost).
	noteOrReport := func(a, a2 string, store, node txOut, diff string) {
		if sampled[a] || sampled[a2] {
			note(a, a2, diff)
			return
		}
		rep.Mismatches = append(rep.Mismatches, Mismatch{Address: cmp.Or(a2, a, "(no address)"), Asset: chain.AssetNative,
			Store: strconv.FormatUint(store.amount, 10), Node: strconv.FormatUint(node.amount, 10), Detail: diff})
	}
	for _, op := range sortedOutpoints(storeWin.outs, nodeWin.outs) {
		s, inStore := storeWin.outs[op]
		nd, inNode := nodeWin.outs[op]
		if c := at(s.addr); inStore && c != nil {
			c.store += int64(s.amount)
		}
		if c := at(nd.addr); inNode && c != nil {
			c.node += int64(nd.amount)
		}
		switch {
		case !inNode:
			note(s.addr, "", fmt.Sprintf("output %s pays %s in ClickHouse and is not in the node's blocks", op, s))
		case !inStore:
			note(nd.addr, "", fmt.Sprintf("output %s pays %s on the node and is missing from ClickHouse", op, nd))
		case s != nd:
			note(s.addr, nd.addr, fmt.Sprintf("output %s pays %s in ClickHouse, %s on the node", op, s, nd))
		}
	}

	var unknown []string // spends of outputs ClickHouse has no row for
	for _, k := range slices.SortedFunc(keysOf(storeWin.spends), spendKey.compare) {
		prev := storeWin.spends[k]
		s, ok := storeWin.outs[prev]
		if !ok {
			r, found := prevs[prev]
			if !found {
				continue // reported below for the node's input, or by compareWindow for an input the node lacks
			}
			s = r.txOut
		}
		if c := at(s.addr); c != nil {
			c.store -= int64(s.amount)
		}
	}
	for _, k := range slices.SortedFunc(keysOf(nodeWin.spends), spendKey.compare) {
		prev := nodeWin.spends[k]
		nd, ok := nodeWin.outs[prev]
		if !ok {
			r, found := prevs[prev]
			if !found {
				if s, inWin := storeWin.outs[prev]; inWin {
					note(s.addr, "", fmt.Sprintf("input %s spends %s on the node, which ClickHouse holds in the window as paying %s and the node does not", k, prev, s))
				} else {
					unknown = append(unknown, fmt.Sprintf("input %s spends %s on the node, which ClickHouse has no row for", k, prev))
				}
				continue
			}
			if !sampled[r.addr] && r.addr != "" {
				continue // whose it is on the node is only asked for the sample
			}
			// An earlier output ClickHouse gives no address is always
			// asked: an address erased in ClickHouse belongs to no sampled
			// account, so no balance would show it.
			var onNode bool
			if nd, onNode, err = n.output(prev, r); err != nil {
				return nil, err
			}
			if !onNode {
				noteOrReport(r.addr, "", r.txOut, txOut{}, fmt.Sprintf("input %s spends %s, which pays %s in ClickHouse (block %d, %s); the node's block has no such output",
					k, prev, r.txOut, r.height, r.blockHash))
				continue
			}
			if nd != r.txOut {
				noteOrReport(r.addr, nd.addr, r.txOut, nd, fmt.Sprintf("input %s spends %s, which pays %s in ClickHouse (block %d), %s on the node", k, prev, r.txOut, r.height, nd))
			}
		}
		if c := at(nd.addr); c != nil {
			c.node -= int64(nd.amount)
		}
	}

	for _, a := range slices.Sorted(keysOf(changes)) {
		c := changes[a]
		if c.store == c.node && len(c.diffs) == 0 {
			continue
		}
		diffs := c.diffs
		if c.store != c.node {
			diffs = append(diffs, fmt.Sprintf("change over blocks %d-%d: %+d in ClickHouse, %+d on the node", base+1, h, c.store, c.node))
		}
		rep.Mismatches = append(rep.Mismatches, Mismatch{Address: a, Asset: chain.AssetNative,
			Store: strconv.FormatInt(c.store, 10), Node: strconv.FormatInt(c.node, 10), Detail: summarize(diffs)})
	}
	if len(unknown) > 0 {
		if err := reportUnknown(ctx, q, o, unknown, rep); err != nil {
			return nil, err
		}
	}

	// Everything read must still be the node's chain: a block at h that
	// changed means a reorg while checking (h commits to every block read).
	hash, err := call(ctx, func() (*chainhash.Hash, error) { return node.GetBlockHash(int64(h)) })
	if err != nil {
		return nil, fmt.Errorf("reconcile: node block %d: %w", h, err)
	}
	if hash.String() != bs[h].hash {
		return nil, fmt.Errorf("%w: block %d changed on the node while checking, from %s (ClickHouse's) to %s: a reorg", ErrNotComparable, h, bs[h].hash, hash)
	}
	return rep, nil
}

// summarize joins the first three diffs and counts the rest.
func summarize(diffs []string) string {
	s := strings.Join(diffs[:min(len(diffs), 3)], "; ")
	if len(diffs) > 3 {
		s += fmt.Sprintf("; and %d more", len(diffs)-3)
	}
	return s
}

// reportUnknown reports spends of outputs ClickHouse has no row for. When
// ClickHouse holds the chain from its genesis, each is a mismatch (whose
// output it is cannot be known); otherwise the output may be older than
// the loaded range, and they are listed once as skipped.
func reportUnknown(ctx context.Context, q Querier, o Options, unknown []string, rep *Report) error {
	rows, err := q.Query(ctx, `SELECT min(height) FROM blocks WHERE chain = ? AND network = ?`, string(o.Chain), o.Network)
	if err != nil {
		return fmt.Errorf("reconcile: read blocks: %w", err)
	}
	var from uint64
	for rows.Next() {
		if err := rows.Scan(&from); err != nil {
			_ = rows.Close()
			return fmt.Errorf("reconcile: read blocks: %w", err)
		}
	}
	_ = rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reconcile: read blocks: %w", err)
	}
	if from == 0 {
		for _, u := range unknown {
			rep.Mismatches = append(rep.Mismatches, Mismatch{Address: "(unknown)", Asset: chain.AssetNative, Detail: u})
		}
		return nil
	}
	rep.Skipped = append(rep.Skipped, Mismatch{Address: "(unknown)", Asset: chain.AssetNative,
		Detail: fmt.Sprintf("%d inputs of the window spend outputs ClickHouse has no row for (older than its first block, %d, or lost); their owners' changes leave them out: %s",
			len(unknown), from, summarize(unknown))})
	return nil
}

func sortedOutpoints(ms ...map[outpoint]txOut) []outpoint {
	set := map[outpoint]bool{}
	for _, m := range ms {
		for op := range m {
			set[op] = true
		}
	}
	return slices.SortedFunc(keysOf(set), outpoint.compare)
}

// compareWindow compares every output and spend row of the window's
// blocks with the node's blocks, and returns ClickHouse's.
func compareWindow(ctx context.Context, q Querier, o Options, bs map[uint64]block, node ledger, rep *Report) (ledger, error) {
	store := ledger{outs: map[outpoint]txOut{}, spends: map[spendKey]outpoint{}}
	bad := func(addr, store, node, detail string) {
		if addr == "" {
			addr = "(no address)"
		}
		rep.Mismatches = append(rep.Mismatches, Mismatch{Address: addr, Asset: chain.AssetNative, Store: store, Node: node, Detail: detail})
	}
	rows, err := q.Query(ctx, `SELECT tx_hash, vout, amount, ifNull(address, '') FROM outputs FINAL WHERE chain = ? AND network = ? AND `+
		window(bs)+` ORDER BY tx_hash, vout`, string(o.Chain), o.Network)
	if err != nil {
		return store, fmt.Errorf("reconcile: read outputs: %w", err)
	}
	for rows.Next() {
		var op outpoint
		var got txOut
		if err := rows.Scan(&op.tx, &op.vout, &got.amount, &got.addr); err != nil {
			_ = rows.Close()
			return store, fmt.Errorf("reconcile: read outputs: %w", err)
		}
		store.outs[op] = got
		want, ok := node.outs[op]
		switch {
		case !ok:
			bad(got.addr, strconv.FormatUint(got.amount, 10), "", "output "+op.String()+" is in ClickHouse, not in the node's blocks")
		case want != got:
			bad(got.addr, strconv.FormatUint(got.amount, 10), strconv.FormatUint(want.amount, 10),
				fmt.Sprintf("output %s pays %s in ClickHouse, %s on the node", op, got, want))
		}
	}
	_ = rows.Close()
	if err := rows.Err(); err != nil {
		return store, fmt.Errorf("reconcile: read outputs: %w", err)
	}
	for _, op := range sortedOutpoints(node.outs) {
		if _, ok := store.outs[op]; !ok {
			bad(node.outs[op].addr, "", strconv.FormatUint(node.outs[op].amount, 10), "output "+op.String()+" is missing from ClickHouse")
		}
	}

	rows, err = q.Query(ctx, `SELECT tx_hash, vin, prev_tx_hash, prev_vout FROM spends FINAL WHERE chain = ? AND network = ? AND `+
		window(bs)+` ORDER BY tx_hash, vin`, string(o.Chain), o.Network)
	if err != nil {
		return store, fmt.Errorf("reconcile: read spends: %w", err)
	}
	for rows.Next() {
		var k spendKey
		var prev outpoint
		if err := rows.Scan(&k.tx, &k.vout, &prev.tx, &prev.vout); err != nil {
			_ = rows.Close()
			return store, fmt.Errorf("reconcile: read spends: %w", err)
		}
		store.spends[k] = prev
		if want, ok := node.spends[k]; !ok {
			bad("", prev.String(), "", fmt.Sprintf("input %s spends %s in ClickHouse and is not in the node's blocks", k, prev))
		} else if want != prev {
			bad("", prev.String(), want.String(), fmt.Sprintf("input %s spends %s in ClickHouse, %s on the node", k, prev, want))
		}
	}
	_ = rows.Close()
	if err := rows.Err(); err != nil {
		return store, fmt.Errorf("reconcile: read spends: %w", err)
	}
	for _, k := range slices.SortedFunc(keysOf(node.spends), spendKey.compare) {
		if _, ok := store.spends[k]; !ok {
			bad("", "", node.spends[k].String(), fmt.Sprintf("input %s (spending %s) is missing from ClickHouse", k, node.spends[k]))
		}
	}
	return store, nil
}

// prevRows reads ClickHouse's canonical rows of the outputs ops, created
// at or below base; outputs it has no such row for are left out.
func prevRows(ctx context.Context, q Querier, o Options, base uint64, ops []outpoint) (map[outpoint]prevRow, error) {
	want := map[outpoint]bool{}
	txs := map[string]bool{}
	for _, op := range ops {
		want[op] = true
		txs[op.tx] = true
	}
	var all []struct {
		op outpoint
		r  prevRow
	}
	hashes := map[string]bool{}
	for _, list := range chunks(slices.Sorted(keysOf(txs))) {
		rows, err := q.Query(ctx, `SELECT tx_hash, vout, amount, ifNull(address, ''), block_hash, block_number FROM outputs FINAL
			WHERE chain = ? AND network = ? AND tx_hash IN (`+list+`) AND block_number <= ?`, string(o.Chain), o.Network, base)
		if err != nil {
			return nil, fmt.Errorf("reconcile: read spent outputs: %w", err)
		}
		for rows.Next() {
			var op outpoint
			var r prevRow
			if err := rows.Scan(&op.tx, &op.vout, &r.amount, &r.addr, &r.blockHash, &r.height); err != nil {
				_ = rows.Close()
				return nil, fmt.Errorf("reconcile: read spent outputs: %w", err)
			}
			if want[op] {
				all = append(all, struct {
					op outpoint
					r  prevRow
				}{op, r})
				hashes[r.blockHash] = true
			}
		}
		_ = rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("reconcile: read spent outputs: %w", err)
		}
	}
	canon, err := canonicalSet(ctx, q, o, hashes)
	if err != nil {
		return nil, err
	}
	out := map[outpoint]prevRow{}
	for _, x := range all {
		if !canon[x.r.blockHash] {
			continue // loaded from a branch that lost
		}
		// Two canonical rows (the same transaction in two blocks): the
		// lower, as the node would have it.
		if prev, dup := out[x.op]; !dup || x.r.height < prev.height || (x.r.height == prev.height && x.r.blockHash < prev.blockHash) {
			out[x.op] = x.r
		}
	}
	return out, nil
}

// canonicalSet tells which of hashes are canonical blocks.
func canonicalSet(ctx context.Context, q Querier, o Options, hashes map[string]bool) (map[string]bool, error) {
	out := map[string]bool{}
	if len(hashes) == 0 {
		return out, nil
	}
	for _, list := range chunks(slices.Sorted(keysOf(hashes))) {
		rows, err := q.Query(ctx, `SELECT hash, argMax(removed, seq) FROM blocks WHERE chain = ? AND network = ? AND hash IN (`+
			list+`) GROUP BY hash`, string(o.Chain), o.Network)
		if err != nil {
			return nil, fmt.Errorf("reconcile: read blocks: %w", err)
		}
		for rows.Next() {
			var h string
			var removed uint8
			if err := rows.Scan(&h, &removed); err != nil {
				_ = rows.Close()
				return nil, fmt.Errorf("reconcile: read blocks: %w", err)
			}
			out[h] = removed == 0
		}
		_ = rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("reconcile: read blocks: %w", err)
		}
	}
	return out, nil
}

// chunks splits vals into quoted SQL lists of at most 2,000 values
// (ClickHouse's default max_query_size is 256 KiB).
func chunks(vals []string) []string {
	var out []string
	for len(vals) > 0 {
		n := min(len(vals), 2000)
		out = append(out, clickhouse.QuoteList(vals[:n]))
		vals = vals[n:]
	}
	return out
}

// nodeBlocks reads blocks from the node, each once, and only on the
// node's main chain at the height ClickHouse gives.
type nodeBlocks struct {
	ctx    context.Context
	node   BTCNode
	net    *address.BTCNetwork
	blocks map[chainhash.Hash]map[string]*wire.MsgTx // by tx hash
}

// blockAt returns the node's block at height x, which must be want (what
// names the block in errors).
func (n *nodeBlocks) blockAt(x uint64, want, what string) (*wire.MsgBlock, error) {
	hash, err := call(n.ctx, func() (*chainhash.Hash, error) { return n.node.GetBlockHash(int64(x)) })
	if err != nil {
		return nil, fmt.Errorf("reconcile: node block %d: %w", x, err)
	}
	if hash.String() != want {
		return nil, fmt.Errorf("%w: block %d%s is %s in ClickHouse and %s on the node", ErrNotComparable, x, what, want, hash)
	}
	blk, err := call(n.ctx, func() (*wire.MsgBlock, error) { return n.node.GetBlock(hash) })
	if err != nil {
		return nil, fmt.Errorf("reconcile: node block %d (%s): %w", x, hash, err)
	}
	if got := blk.BlockHash(); got != *hash {
		return nil, fmt.Errorf("reconcile: node block %d: asked for %s, got %s", x, hash, got)
	}
	txs := make(map[string]*wire.MsgTx, len(blk.Transactions))
	for _, tx := range blk.Transactions {
		txs[tx.TxHash().String()] = tx
	}
	n.blocks[*hash] = txs
	return blk, nil
}

// output returns the node's output op from the block ClickHouse's row r
// places it in (before the window); false when that block has no such
// output.
func (n *nodeBlocks) output(op outpoint, r prevRow) (txOut, bool, error) {
	hash, err := chainhash.NewHashFromStr(r.blockHash)
	if err != nil {
		return txOut{}, false, fmt.Errorf("reconcile: ClickHouse holds block hash %q: %w", r.blockHash, err)
	}
	txs, ok := n.blocks[*hash]
	if !ok {
		if _, err := n.blockAt(r.height, r.blockHash, " (holding output "+op.String()+")"); err != nil {
			return txOut{}, false, err
		}
		txs = n.blocks[*hash]
	}
	tx, ok := txs[op.tx]
	if !ok || int(op.vout) >= len(tx.TxOut) {
		return txOut{}, false, nil
	}
	out := tx.TxOut[op.vout]
	_, a := address.ClassifyScript(out.PkScript, n.net)
	return txOut{uint64(out.Value), a}, true, nil
}

// call runs f, a node call that takes no context, and returns when it does
// or when ctx ends (the call is then abandoned).
func call[T any](ctx context.Context, f func() (T, error)) (T, error) {
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := f()
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}
