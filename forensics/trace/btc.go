package trace

import (
	"context"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"time"

	"github.com/cordonhq/cordon/internal/chain"
)

type outpoint struct {
	tx   string
	vout uint32
}

// out is an output row.
type out struct {
	outpoint
	addr      string
	amount    uint64
	block     uint64
	blockHash string
	txIndex   uint32
	time      time.Time
}

// spend is a spend row: tx spends prev.
type spend struct {
	tx        string
	vin       uint32
	prev      outpoint
	block     uint64
	blockHash string
	time      time.Time
}

// btcForward follows outputs: the start addresses' outputs in the window,
// then at each hop the transactions spending the outputs followed, whose
// outputs are followed next.
func (t *tracer) btcForward(ctx context.Context) error {
	recv, err := t.outputsOf(ctx, t.o.From)
	if err != nil {
		return err
	}
	tainted := map[outpoint]string{} // output followed → its address
	for _, o := range recv {
		tainted[o.outpoint] = o.addr
	}
	done := map[outpoint]bool{}
	for hop := 1; hop <= t.o.Hops && len(tainted) > 0; hop++ {
		for op := range tainted {
			done[op] = true
		}
		sp, err := t.spendsOf(ctx, tainted)
		if err != nil {
			return err
		}
		owners := map[string][]string{} // spending tx → addresses of the followed outputs it spends
		var txs []string
		for _, s := range sp {
			if _, ok := owners[s.tx]; !ok {
				txs = append(txs, s.tx)
			}
			if a := tainted[s.prev]; !slices.Contains(owners[s.tx], a) {
				owners[s.tx] = append(owners[s.tx], a)
			}
		}
		outs, err := t.outputsByTx(ctx, txs)
		if err != nil {
			return err
		}
		next := map[outpoint]string{}
		for _, tx := range txs {
			for _, o := range outs[tx] {
				if o.addr == "" || !t.bigEnough(new(big.Int).SetUint64(o.amount)) {
					continue
				}
				t.node(o.addr, hop)
				for _, from := range owners[tx] {
					if err := t.edge(o.edge(hop, from)); err != nil {
						return err
					}
				}
				if !done[o.outpoint] && t.follows(o.addr) {
					next[o.outpoint] = o.addr
				}
			}
		}
		tainted = next
	}
	return nil
}

func (o *out) edge(hop int, from string) Edge {
	return Edge{Hop: hop, From: from, To: o.addr, Asset: chain.AssetNative, Amount: strconv.FormatUint(o.amount, 10),
		TxHash: o.tx, Index: int64(o.vout), BlockNumber: o.block, BlockHash: o.blockHash, Time: o.time.UTC()}
}

// btcBackward follows inputs: the transactions that paid the start
// addresses in the window, the outputs their inputs spent (whose
// addresses are the senders), then the transactions that created those.
func (t *tracer) btcBackward(ctx context.Context) error {
	recv, err := t.outputsOf(ctx, t.o.From)
	if err != nil {
		return err
	}
	frontier := map[string][]out{} // transaction → its outputs the trace explains
	for _, o := range recv {
		frontier[o.tx] = append(frontier[o.tx], o)
	}
	done := map[string]bool{}
	for hop := 1; hop <= t.o.Hops && len(frontier) > 0; hop++ {
		txs := keys(frontier)
		for _, tx := range txs {
			done[tx] = true
		}
		ins, err := t.inputsOf(ctx, txs)
		if err != nil {
			return err
		}
		wanted := map[outpoint]bool{}
		var prevTxs []string
		for _, s := range ins {
			wanted[s.prev] = true
			prevTxs = append(prevTxs, s.prev.tx)
		}
		prevOuts, err := t.outputsByTx(ctx, prevTxs)
		if err != nil {
			return err
		}
		byOutpoint := map[outpoint]out{}
		for _, os := range prevOuts {
			for _, o := range os {
				if wanted[o.outpoint] {
					byOutpoint[o.outpoint] = o
				}
			}
		}
		next := map[string][]out{}
		for _, s := range ins {
			src, ok := byOutpoint[s.prev]
			if !ok {
				t.res.Unresolved++
				continue
			}
			if src.addr == "" || !t.bigEnough(new(big.Int).SetUint64(src.amount)) {
				continue
			}
			t.node(src.addr, hop)
			for _, dst := range frontier[s.tx] {
				e := Edge{Hop: hop, From: src.addr, To: dst.addr, Asset: chain.AssetNative, Amount: strconv.FormatUint(src.amount, 10),
					TxHash: s.tx, Index: int64(dst.vout), BlockNumber: s.block, BlockHash: s.blockHash, Time: s.time.UTC()}
				if err := t.edge(e); err != nil {
					return err
				}
			}
			if !done[src.tx] && t.follows(src.addr) && !slices.ContainsFunc(next[src.tx], func(o out) bool { return o.vout == src.vout }) {
				next[src.tx] = append(next[src.tx], src)
			}
		}
		frontier = next
	}
	return nil
}

// outputsOf reads the canonical outputs paid to the start addresses in
// the window, in chain order.
func (t *tracer) outputsOf(ctx context.Context, addrs []string) ([]out, error) {
	var rows []out
	limit := t.o.MaxEdges + 1
	err := in(addrs, func(list string) error {
		return t.scanOutputs(ctx, &rows, `SELECT DISTINCT tx_hash, vout, address, amount, block_number, block_hash, tx_index, block_time
			FROM outputs_by_address WHERE chain = ? AND network = ? AND address IN (`+list+`)`+t.window()+`
			ORDER BY address, block_number, tx_index, vout LIMIT `+strconv.Itoa(limit)+` BY address`)
	})
	if err != nil {
		return nil, err
	}
	rows, err = t.canonicalOutputs(ctx, rows)
	if err != nil {
		return nil, err
	}
	// A start address is followed even when it is busy: its first
	// outputs up to the edge limit, the result marked truncated.
	count := map[string]int{}
	return slices.DeleteFunc(rows, func(o out) bool {
		count[o.addr]++
		if count[o.addr] > t.o.MaxEdges {
			t.res.Truncated = true
			return true
		}
		return false
	}), nil
}

// outputsByTx reads the canonical outputs of txs, by transaction.
func (t *tracer) outputsByTx(ctx context.Context, txs []string) (map[string][]out, error) {
	var rows []out
	txs = slices.Compact(slices.Sorted(slices.Values(txs)))
	err := in(txs, func(list string) error {
		return t.scanOutputs(ctx, &rows, `SELECT DISTINCT tx_hash, vout, ifNull(address, ''), amount, block_number, block_hash, tx_index, block_time
			FROM outputs WHERE chain = ? AND network = ? AND tx_hash IN (`+list+`) ORDER BY tx_hash, vout`)
	})
	if err != nil {
		return nil, err
	}
	rows, err = t.canonicalOutputs(ctx, rows)
	if err != nil {
		return nil, err
	}
	by := map[string][]out{}
	for _, o := range rows {
		by[o.tx] = append(by[o.tx], o)
	}
	return by, nil
}

func (t *tracer) scanOutputs(ctx context.Context, dst *[]out, query string) error {
	rows, err := t.q.Query(ctx, query, string(t.o.Chain), t.o.Network)
	if err != nil {
		return fmt.Errorf("trace: read outputs: %w", err)
	}
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		var o out
		if err := rows.Scan(&o.tx, &o.vout, &o.addr, &o.amount, &o.block, &o.blockHash, &o.txIndex, &o.time); err != nil {
			return fmt.Errorf("trace: read outputs: %w", err)
		}
		*dst = append(*dst, o)
	}
	return rows.Err()
}

func (t *tracer) canonicalOutputs(ctx context.Context, rows []out) ([]out, error) {
	hashes := map[string]bool{}
	for _, o := range rows {
		hashes[o.blockHash] = true
	}
	if err := t.canonical(ctx, hashes); err != nil {
		return nil, err
	}
	seen := map[outpoint]bool{}
	return slices.DeleteFunc(rows, func(o out) bool {
		if !t.canon[o.blockHash] || seen[o.outpoint] {
			return true
		}
		seen[o.outpoint] = true
		return false
	}), nil
}

// spendsOf reads the canonical spends of the outputs in ops (until the
// window's end), in chain order.
func (t *tracer) spendsOf(ctx context.Context, ops map[outpoint]string) ([]spend, error) {
	txs := map[string]bool{}
	for op := range ops {
		txs[op.tx] = true
	}
	cond := ""
	if !t.o.Until.IsZero() {
		cond = fmt.Sprintf(" AND block_time <= toDateTime(%d)", t.o.Until.Unix())
	}
	var rows []spend
	err := in(keys(txs), func(list string) error {
		return t.scanSpends(ctx, &rows, `SELECT DISTINCT tx_hash, vin, prev_tx_hash, prev_vout, block_number, block_hash, block_time
			FROM spends WHERE chain = ? AND network = ? AND prev_tx_hash IN (`+list+`)`+cond)
	})
	if err != nil {
		return nil, err
	}
	rows = slices.DeleteFunc(rows, func(s spend) bool { _, ok := ops[s.prev]; return !ok })
	return t.canonicalSpends(ctx, rows)
}

// inputsOf reads the canonical spends of transactions txs (from the
// window's start).
func (t *tracer) inputsOf(ctx context.Context, txs []string) ([]spend, error) {
	cond := ""
	if !t.o.Since.IsZero() {
		cond = fmt.Sprintf(" AND block_time >= toDateTime(%d)", t.o.Since.Unix())
	}
	var rows []spend
	err := in(txs, func(list string) error {
		return t.scanSpends(ctx, &rows, `SELECT DISTINCT tx_hash, vin, prev_tx_hash, prev_vout, block_number, block_hash, block_time
			FROM spends_by_tx WHERE chain = ? AND network = ? AND tx_hash IN (`+list+`)`+cond)
	})
	if err != nil {
		return nil, err
	}
	return t.canonicalSpends(ctx, rows)
}

func (t *tracer) scanSpends(ctx context.Context, dst *[]spend, query string) error {
	rows, err := t.q.Query(ctx, query, string(t.o.Chain), t.o.Network)
	if err != nil {
		return fmt.Errorf("trace: read spends: %w", err)
	}
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		var s spend
		if err := rows.Scan(&s.tx, &s.vin, &s.prev.tx, &s.prev.vout, &s.block, &s.blockHash, &s.time); err != nil {
			return fmt.Errorf("trace: read spends: %w", err)
		}
		*dst = append(*dst, s)
	}
	return rows.Err()
}

func (t *tracer) canonicalSpends(ctx context.Context, rows []spend) ([]spend, error) {
	hashes := map[string]bool{}
	for _, s := range rows {
		hashes[s.blockHash] = true
	}
	if err := t.canonical(ctx, hashes); err != nil {
		return nil, err
	}
	type id struct {
		tx  string
		vin uint32
	}
	seen := map[id]bool{}
	rows = slices.DeleteFunc(rows, func(s spend) bool {
		k := id{s.tx, s.vin}
		if !t.canon[s.blockHash] || seen[k] {
			return true
		}
		seen[k] = true
		return false
	})
	slices.SortFunc(rows, func(a, b spend) int {
		if a.block != b.block {
			return cmpU(a.block, b.block)
		}
		if a.tx != b.tx {
			if a.tx < b.tx {
				return -1
			}
			return 1
		}
		return int(a.vin) - int(b.vin)
	})
	return rows, nil
}
