package reconcile

import (
	"context"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/btcsuite/btcd/btcjson"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"

	"github.com/cordonhq/cordon/ingest/clickhouse"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/watchers/btc"
)

// BTCNode is what the Bitcoin check asks the node (an *rpcclient.Client).
type BTCNode interface {
	GetBlockCount() (int64, error)
	GetBlockHash(height int64) (*chainhash.Hash, error)
	GetBlock(hash *chainhash.Hash) (*wire.MsgBlock, error)
	GetTxOut(txHash *chainhash.Hash, index uint32, mempool bool) (*btcjson.GetTxOutResult, error)
}

type outpoint struct {
	tx   string
	vout uint32
}

func (o outpoint) String() string { return o.tx + ":" + strconv.FormatUint(uint64(o.vout), 10) }

// BTC checks Bitcoin balances and the window's outputs and spends.
func BTC(ctx context.Context, q Querier, node BTCNode, o Options) (*Report, error) {
	o.Chain = chain.BTC
	if err := o.fill(); err != nil {
		return nil, err
	}
	net, err := btc.LookupNetwork(o.Network)
	if err != nil {
		return nil, fmt.Errorf("reconcile: %w", err)
	}
	bs, h, err := canonicalBlocks(ctx, q, o)
	if err != nil {
		return nil, err
	}
	base := h - min(h, o.Blocks)
	rep := &Report{Chain: chain.BTC, Network: o.Network, Height: h, Base: base, Mismatches: []Mismatch{}}
	tip, err := node.GetBlockCount()
	if err != nil {
		return nil, fmt.Errorf("reconcile: node: %w", err)
	}
	tipHash, err := node.GetBlockHash(tip)
	if err != nil {
		return nil, fmt.Errorf("reconcile: node block %d: %w", tip, err)
	}
	if tip < int64(h) {
		return nil, fmt.Errorf("%w: the node's tip %d is below ClickHouse's %d", ErrNotComparable, tip, h)
	}

	// The node's outputs and spends of the window, and the outputs spent
	// past it (to take the node's UTXO set back to height h).
	nodeOuts := map[outpoint]nodeOut{}
	nodeSpends := map[spendKey]outpoint{}
	spentAfter := map[outpoint]bool{}
	for x := base + 1; x <= uint64(tip); x++ {
		hash, err := node.GetBlockHash(int64(x))
		if err != nil {
			return nil, fmt.Errorf("reconcile: node block %d: %w", x, err)
		}
		if x <= h && hash.String() != bs[x].hash {
			return nil, fmt.Errorf("%w: block %d is %s in ClickHouse and %s on the node", ErrNotComparable, x, bs[x].hash, hash)
		}
		blk, err := node.GetBlock(hash)
		if err != nil {
			return nil, fmt.Errorf("reconcile: node block %d: %w", x, err)
		}
		for i, tx := range blk.Transactions {
			id := tx.TxHash().String()
			if x <= h {
				for v, out := range tx.TxOut {
					_, a := btc.ClassifyScript(out.PkScript, &net)
					nodeOuts[outpoint{id, uint32(v)}] = nodeOut{uint64(out.Value), a}
				}
			}
			if i == 0 {
				continue
			}
			for v, in := range tx.TxIn {
				prev := outpoint{in.PreviousOutPoint.Hash.String(), in.PreviousOutPoint.Index}
				if x <= h {
					nodeSpends[spendKey{id, uint32(v)}] = prev
				} else {
					spentAfter[prev] = true
				}
			}
		}
	}
	if err := compareWindow(ctx, q, o, bs, nodeOuts, nodeSpends, rep); err != nil {
		return nil, err
	}

	addrs, err := touchedAddresses(ctx, q, o, bs)
	if err != nil {
		return nil, err
	}
	rep.Touched = len(addrs)
	var suspects []string
	for _, a := range sample(addrs, o.Sample, o.Seed+h) {
		m, err := checkAddress(ctx, q, node, o, &net, a, h, spentAfter)
		if err != nil {
			return nil, err
		}
		rep.Checked++
		if m != nil {
			suspects = append(suspects, a)
		}
	}
	// gettxout answers at the node's current tip: a block that arrived
	// while checking may have spent outputs. Take its spends into account
	// and check the differing addresses again; a reorg of what was read
	// makes the run incomparable.
	for round := 0; ; round++ {
		now, err := node.GetBlockCount()
		if err != nil {
			return nil, fmt.Errorf("reconcile: node: %w", err)
		}
		if hash, err := node.GetBlockHash(tip); err != nil || *hash != *tipHash {
			return nil, fmt.Errorf("%w: the node's block %d changed while checking", ErrNotComparable, tip)
		}
		if now == tip || len(suspects) == 0 {
			break
		}
		if round == 5 {
			return nil, fmt.Errorf("%w: the node keeps adding blocks faster than the check runs", ErrNotComparable)
		}
		for x := tip + 1; x <= now; x++ {
			hash, err := node.GetBlockHash(x)
			if err != nil {
				return nil, fmt.Errorf("reconcile: node block %d: %w", x, err)
			}
			blk, err := node.GetBlock(hash)
			if err != nil {
				return nil, fmt.Errorf("reconcile: node block %d: %w", x, err)
			}
			if len(blk.Transactions) == 0 {
				return nil, fmt.Errorf("reconcile: node block %d has no transactions", x)
			}
			for _, tx := range blk.Transactions[1:] {
				for _, in := range tx.TxIn {
					spentAfter[outpoint{in.PreviousOutPoint.Hash.String(), in.PreviousOutPoint.Index}] = true
				}
			}
			tipHash = hash
		}
		tip = now
		var still []string
		for _, a := range suspects {
			m, err := checkAddress(ctx, q, node, o, &net, a, h, spentAfter)
			if err != nil {
				return nil, err
			}
			if m != nil {
				still = append(still, a)
			}
		}
		suspects = still
	}
	for _, a := range suspects {
		m, err := checkAddress(ctx, q, node, o, &net, a, h, spentAfter)
		if err != nil {
			return nil, err
		}
		if m != nil {
			rep.Mismatches = append(rep.Mismatches, *m)
		}
	}
	return rep, nil
}

type nodeOut struct {
	amount uint64
	addr   string
}

type spendKey struct {
	tx  string
	vin uint32
}

// compareWindow compares every output and spend row of the window's
// blocks with the node's blocks.
func compareWindow(ctx context.Context, q Querier, o Options, bs map[uint64]block, outs map[outpoint]nodeOut,
	spends map[spendKey]outpoint, rep *Report) error {
	bad := func(addr, store, node, detail string) {
		if addr == "" {
			addr = "(no address)"
		}
		rep.Mismatches = append(rep.Mismatches, Mismatch{Address: addr, Asset: chain.AssetNative, Store: store, Node: node, Detail: detail})
	}
	rows, err := q.Query(ctx, `SELECT tx_hash, vout, amount, ifNull(address, '') FROM outputs FINAL WHERE chain = ? AND network = ? AND `+
		window(bs)+` ORDER BY tx_hash, vout`, string(o.Chain), o.Network)
	if err != nil {
		return fmt.Errorf("reconcile: read outputs: %w", err)
	}
	seen := map[outpoint]bool{}
	for rows.Next() {
		var op outpoint
		var got nodeOut
		if err := rows.Scan(&op.tx, &op.vout, &got.amount, &got.addr); err != nil {
			_ = rows.Close()
			return err
		}
		seen[op] = true
		want, ok := outs[op]
		switch {
		case !ok:
			bad(got.addr, strconv.FormatUint(got.amount, 10), "", "output "+op.String()+" is in ClickHouse, not in the node's blocks")
		case want != got:
			bad(got.addr, strconv.FormatUint(got.amount, 10), strconv.FormatUint(want.amount, 10),
				fmt.Sprintf("output %s pays %d to %q in ClickHouse, %d to %q on the node", op, got.amount, got.addr, want.amount, want.addr))
		}
	}
	_ = rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, op := range slices.SortedFunc(keysOf(outs), func(a, b outpoint) int { return strings.Compare(a.String(), b.String()) }) {
		if !seen[op] {
			bad(outs[op].addr, "", strconv.FormatUint(outs[op].amount, 10), "output "+op.String()+" is missing from ClickHouse")
		}
	}

	rows, err = q.Query(ctx, `SELECT tx_hash, vin, prev_tx_hash, prev_vout FROM spends FINAL WHERE chain = ? AND network = ? AND `+
		window(bs)+` ORDER BY tx_hash, vin`, string(o.Chain), o.Network)
	if err != nil {
		return fmt.Errorf("reconcile: read spends: %w", err)
	}
	seenSpend := map[spendKey]bool{}
	for rows.Next() {
		var k spendKey
		var prev outpoint
		if err := rows.Scan(&k.tx, &k.vin, &prev.tx, &prev.vout); err != nil {
			_ = rows.Close()
			return err
		}
		seenSpend[k] = true
		if want, ok := spends[k]; !ok || want != prev {
			bad("", prev.String(), want.String(), fmt.Sprintf("input %s:%d spends %s in ClickHouse, %s on the node", k.tx, k.vin, prev, want))
		}
	}
	_ = rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for k, prev := range spends {
		if !seenSpend[k] {
			bad("", "", prev.String(), fmt.Sprintf("input %s:%d (spending %s) is missing from ClickHouse", k.tx, k.vin, prev))
		}
	}
	return nil
}

// touchedAddresses are the addresses paid in the window and those whose
// outputs the window spent, sorted.
func touchedAddresses(ctx context.Context, q Querier, o Options, bs map[uint64]block) ([]string, error) {
	set := map[string]bool{}
	rows, err := q.Query(ctx, `SELECT DISTINCT assumeNotNull(address) FROM outputs WHERE chain = ? AND network = ? AND address IS NOT NULL AND `+
		window(bs), string(o.Chain), o.Network)
	if err != nil {
		return nil, fmt.Errorf("reconcile: read outputs: %w", err)
	}
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			_ = rows.Close()
			return nil, err
		}
		set[a] = true
	}
	_ = rows.Close()
	rows, err = q.Query(ctx, `SELECT DISTINCT assumeNotNull(address) FROM outputs WHERE chain = ? AND network = ? AND address IS NOT NULL
		AND tx_hash IN (SELECT prev_tx_hash FROM spends WHERE chain = ? AND network = ? AND `+window(bs)+`)`,
		string(o.Chain), o.Network, string(o.Chain), o.Network)
	if err != nil {
		return nil, fmt.Errorf("reconcile: read spent outputs: %w", err)
	}
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			_ = rows.Close()
			return nil, err
		}
		set[a] = true
	}
	_ = rows.Close()
	return slices.Sorted(keysOf(set)), rows.Err()
}

// checkAddress compares one address's outputs with the node's UTXO set
// at height h; nil when they agree.
func checkAddress(ctx context.Context, q Querier, node BTCNode, o Options, net *btc.Network, addr string, h uint64,
	spentAfter map[outpoint]bool) (*Mismatch, error) {
	type row struct {
		amount uint64
		hash   string
	}
	outs := map[outpoint]row{}
	rows, err := q.Query(ctx, `SELECT tx_hash, vout, amount, block_hash FROM outputs_by_address FINAL
		WHERE chain = ? AND network = ? AND address = ? AND block_number <= ?`, string(o.Chain), o.Network, addr, h)
	if err != nil {
		return nil, fmt.Errorf("reconcile: outputs of %s: %w", addr, err)
	}
	hashes := map[string]bool{}
	for rows.Next() {
		var op outpoint
		var r row
		if err := rows.Scan(&op.tx, &op.vout, &r.amount, &r.hash); err != nil {
			_ = rows.Close()
			return nil, err
		}
		outs[op] = r
		hashes[r.hash] = true
	}
	_ = rows.Close()
	if len(outs) == 0 {
		return nil, nil
	}
	txs := map[string]bool{}
	for op := range outs {
		txs[op.tx] = true
	}
	spent := map[outpoint]bool{}
	spendBlocks := map[outpoint][]string{} // a spend may be loaded from several branches
	for _, list := range chunks(slices.Sorted(keysOf(txs))) {
		rows, err = q.Query(ctx, `SELECT prev_tx_hash, prev_vout, block_hash FROM spends FINAL WHERE chain = ? AND network = ?
			AND prev_tx_hash IN (`+list+`) AND block_number <= ?`, string(o.Chain), o.Network, h)
		if err != nil {
			return nil, fmt.Errorf("reconcile: spends of %s: %w", addr, err)
		}
		for rows.Next() {
			var op outpoint
			var bh string
			if err := rows.Scan(&op.tx, &op.vout, &bh); err != nil {
				_ = rows.Close()
				return nil, err
			}
			if _, mine := outs[op]; mine {
				spendBlocks[op] = append(spendBlocks[op], bh)
				hashes[bh] = true
			}
		}
		_ = rows.Close()
	}
	canon, err := canonicalSet(ctx, q, o, hashes)
	if err != nil {
		return nil, err
	}
	for op, r := range outs {
		if !canon[r.hash] {
			delete(outs, op)
		}
	}
	for op, bhs := range spendBlocks {
		spent[op] = slices.ContainsFunc(bhs, func(bh string) bool { return canon[bh] })
	}

	var store, nodeBal uint64
	var diffs []string
	for _, op := range slices.SortedFunc(keysOf(outs), func(a, b outpoint) int { return strings.Compare(a.String(), b.String()) }) {
		r := outs[op]
		if !spent[op] {
			store += r.amount
		}
		txh, err := chainhash.NewHashFromStr(op.tx)
		if err != nil {
			return nil, fmt.Errorf("reconcile: ClickHouse holds tx hash %q: %w", op.tx, err)
		}
		res, err := node.GetTxOut(txh, op.vout, false)
		if err != nil {
			return nil, fmt.Errorf("reconcile: gettxout %s: %w", op, err)
		}
		switch {
		case res != nil:
			amt, err := btcutil.NewAmount(res.Value)
			if err != nil {
				return nil, fmt.Errorf("reconcile: gettxout %s: value %v: %w", op, res.Value, err)
			}
			script, _ := hex.DecodeString(res.ScriptPubKey.Hex)
			_, nodeAddr := btc.ClassifyScript(script, net)
			nodeBal += uint64(amt)
			if spent[op] {
				diffs = append(diffs, op.String()+" is spent in ClickHouse, unspent on the node")
			} else if uint64(amt) != r.amount || nodeAddr != addr {
				diffs = append(diffs, fmt.Sprintf("%s pays %d to %s in ClickHouse, %d to %s on the node", op, r.amount, addr, int64(amt), nodeAddr))
			}
		case spentAfter[op]:
			// Unspent at h, spent by a block the node has past h: its
			// amount cannot be asked any more; ClickHouse's is used.
			nodeBal += r.amount
			if spent[op] {
				diffs = append(diffs, op.String()+" is spent in ClickHouse by height "+strconv.FormatUint(h, 10)+", later on the node")
			}
		default:
			if !spent[op] {
				diffs = append(diffs, op.String()+" is unspent in ClickHouse, spent (or unknown) on the node")
			}
		}
	}
	if len(diffs) == 0 && store == nodeBal {
		return nil, nil
	}
	detail := strings.Join(diffs[:min(len(diffs), 3)], "; ")
	if len(diffs) > 3 {
		detail += fmt.Sprintf("; and %d more", len(diffs)-3)
	}
	return &Mismatch{Address: addr, Asset: chain.AssetNative, Store: strconv.FormatUint(store, 10), Node: strconv.FormatUint(nodeBal, 10), Detail: detail}, nil
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
				return nil, err
			}
			out[h] = removed == 0
		}
		_ = rows.Close()
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
