package risk

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/cordonhq/cordon/ingest/clickhouse"
	"github.com/cordonhq/cordon/internal/chain"
)

// ClickHouse finds a destination's earlier counterparties in cordon's
// ClickHouse tables, reading only rows of canonical blocks (whose newest
// event is block_added). Ethereum: the other side of its transfers
// (native and token) both ways, from transfers (by sender) and
// transfers_by_to (by recipient). Bitcoin: the addresses of the outputs
// spent by the transactions that paid it, and the outputs of the
// transactions that spent its coins. The most recent come first. The
// queries work on ClickHouse 18.16.
type ClickHouse struct {
	store *clickhouse.Store
}

// NewClickHouse reads counterparties from store.
func NewClickHouse(store *clickhouse.Store) *ClickHouse { return &ClickHouse{store: store} }

// chunk bounds an IN list (the server's max_query_size is 256 KiB).
const chunk = 2000

// Counterparties returns up to limit counterparties of addr.
func (c *ClickHouse) Counterparties(ctx context.Context, ch chain.Chain, network, addr string, limit int) ([]string, error) {
	if limit <= 0 {
		return nil, nil
	}
	q := &chQuery{store: c.store, chain: string(ch), network: network, canon: map[string]bool{}}
	switch ch {
	case chain.ETH:
		return q.transfers(ctx, addr, limit)
	case chain.BTC:
		return q.utxo(ctx, addr, limit)
	}
	return nil, fmt.Errorf("counterparties: chain %q has no counterparty query", ch)
}

type chQuery struct {
	store          *clickhouse.Store
	chain, network string
	canon          map[string]bool // block hash → canonical
}

// counterparty is one address seen with the destination, in block
// number at height.
type counterparty struct {
	addr, block string
	height      uint64
}

// most keeps the canonical rows, most recent first, one per address,
// up to limit, leaving out self.
func (q *chQuery) most(ctx context.Context, rows []counterparty, self string, limit int) ([]string, error) {
	if err := q.canonical(ctx, rows); err != nil {
		return nil, err
	}
	slices.SortStableFunc(rows, func(a, b counterparty) int {
		if a.height != b.height {
			if a.height > b.height {
				return -1
			}
			return 1
		}
		if a.addr < b.addr {
			return -1
		}
		if a.addr > b.addr {
			return 1
		}
		return 0
	})
	seen := map[string]bool{self: true, "": true}
	var out []string
	for _, r := range rows {
		if q.canon[r.block] && !seen[r.addr] && len(out) < limit {
			seen[r.addr] = true
			out = append(out, r.addr)
		}
	}
	return out, nil
}

func (q *chQuery) transfers(ctx context.Context, addr string, limit int) ([]string, error) {
	// Rows of blocks later removed are dropped after the query, so it
	// reads more than limit.
	rows, err := q.store.Query(ctx, `SELECT other, block_hash, max(block_number) AS last FROM (
			SELECT from_address AS other, block_hash, block_number FROM transfers_by_to WHERE chain = ? AND network = ? AND to_address = ?
			UNION ALL
			SELECT to_address AS other, block_hash, block_number FROM transfers WHERE chain = ? AND network = ? AND from_address = ?
		) GROUP BY other, block_hash ORDER BY last DESC, other LIMIT `+strconv.Itoa(2*limit+16),
		q.chain, q.network, addr, q.chain, q.network, addr)
	if err != nil {
		return nil, fmt.Errorf("read transfers: %w", err)
	}
	var out []counterparty
	err = scan(rows, func() error {
		var r counterparty
		if err := rows.Scan(&r.addr, &r.block, &r.height); err != nil {
			return err
		}
		out = append(out, r)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read transfers: %w", err)
	}
	return q.most(ctx, out, addr, limit)
}

type outpoint struct {
	tx   string
	vout uint32
}

func (q *chQuery) utxo(ctx context.Context, addr string, limit int) ([]string, error) {
	// The transactions that paid addr, most recent first.
	rows, err := q.store.Query(ctx, `SELECT tx_hash, vout, block_hash, block_number FROM outputs_by_address
		WHERE chain = ? AND network = ? AND address = ? ORDER BY block_number DESC, tx_hash, vout LIMIT `+strconv.Itoa(4*limit+16),
		q.chain, q.network, addr)
	if err != nil {
		return nil, fmt.Errorf("read outputs_by_address: %w", err)
	}
	type paid struct {
		op     outpoint
		block  string
		height uint64
	}
	var got []paid
	err = scan(rows, func() error {
		var p paid
		if err := rows.Scan(&p.op.tx, &p.op.vout, &p.block, &p.height); err != nil {
			return err
		}
		got = append(got, p)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read outputs_by_address: %w", err)
	}
	refs := make([]counterparty, len(got))
	for i, p := range got {
		refs[i] = counterparty{block: p.block}
	}
	if err := q.canonical(ctx, refs); err != nil {
		return nil, err
	}
	payers := map[string]uint64{} // paying tx → height
	mine := map[outpoint]bool{}
	for _, p := range got {
		if q.canon[p.block] {
			payers[p.op.tx] = max(payers[p.op.tx], p.height)
			mine[p.op] = true
		}
	}
	var cands []counterparty

	// Who paid: the addresses of the outputs the paying transactions spent.
	type spend struct {
		tx, block, prevTx string
		prevVout          uint32
		height            uint64
	}
	readSpends := func(table, col string, keys []string) ([]spend, error) {
		var out []spend
		err := in(keys, func(list string) error {
			rows, err := q.store.Query(ctx, `SELECT tx_hash, block_hash, block_number, prev_tx_hash, prev_vout FROM `+table+`
				WHERE chain = ? AND network = ? AND `+col+` IN (`+list+`)`, q.chain, q.network)
			if err != nil {
				return err
			}
			return scan(rows, func() error {
				var s spend
				if err := rows.Scan(&s.tx, &s.block, &s.height, &s.prevTx, &s.prevVout); err != nil {
					return err
				}
				out = append(out, s)
				return nil
			})
		})
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", table, err)
		}
		refs := make([]counterparty, len(out))
		for i, s := range out {
			refs[i] = counterparty{block: s.block}
		}
		if err := q.canonical(ctx, refs); err != nil {
			return nil, err
		}
		return slices.DeleteFunc(out, func(s spend) bool { return !q.canon[s.block] }), nil
	}
	ins, err := readSpends("spends_by_tx", "tx_hash", keys(payers))
	if err != nil {
		return nil, err
	}
	prevHeight := map[outpoint]uint64{}
	for _, s := range ins {
		op := outpoint{s.prevTx, s.prevVout}
		prevHeight[op] = max(prevHeight[op], payers[s.tx])
	}
	prevTxs := map[string]uint64{}
	for op := range prevHeight {
		prevTxs[op.tx] = 0
	}
	// The spent outputs are canonical when their spends are: their rows on
	// any branch name the same address.
	err = q.outputs(ctx, keys(prevTxs), func(op outpoint, address, _ string) {
		if h, ok := prevHeight[op]; ok {
			cands = append(cands, counterparty{addr: address, height: h, block: "spent"})
		}
	})
	if err != nil {
		return nil, err
	}

	// Whom it paid: the outputs of the transactions that spent its coins.
	minedTxs := map[string]uint64{}
	for op := range mine {
		minedTxs[op.tx] = 0
	}
	outs, err := readSpends("spends", "prev_tx_hash", keys(minedTxs))
	if err != nil {
		return nil, err
	}
	spenders := map[string]uint64{}
	for _, s := range outs {
		if mine[outpoint{s.prevTx, s.prevVout}] {
			spenders[s.tx] = max(spenders[s.tx], s.height)
		}
	}
	err = q.outputs(ctx, keys(spenders), func(op outpoint, address, block string) {
		cands = append(cands, counterparty{addr: address, height: spenders[op.tx], block: block})
	})
	if err != nil {
		return nil, err
	}
	q.canon["spent"] = true
	return q.most(ctx, cands, addr, limit)
}

// outputs reads the outputs with an address of transactions txs.
func (q *chQuery) outputs(ctx context.Context, txs []string, fn func(op outpoint, address, block string)) error {
	err := in(txs, func(list string) error {
		rows, err := q.store.Query(ctx, `SELECT tx_hash, vout, address, block_hash FROM outputs
			WHERE chain = ? AND network = ? AND tx_hash IN (`+list+`) AND address IS NOT NULL`, q.chain, q.network)
		if err != nil {
			return err
		}
		return scan(rows, func() error {
			var op outpoint
			var a *string
			var block string
			if err := rows.Scan(&op.tx, &op.vout, &a, &block); err != nil {
				return err
			}
			if a != nil {
				fn(op, *a, block)
			}
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("read outputs: %w", err)
	}
	return nil
}

// canonical fills q.canon for the rows' blocks not yet known: a block is
// canonical when its newest event is block_added; one without an event
// is not.
func (q *chQuery) canonical(ctx context.Context, rows []counterparty) error {
	var ask []string
	for _, r := range rows {
		if _, ok := q.canon[r.block]; !ok && r.block != "spent" {
			q.canon[r.block] = false
			ask = append(ask, r.block)
		}
	}
	slices.Sort(ask)
	err := in(ask, func(list string) error {
		rows, err := q.store.Query(ctx, `SELECT hash, argMax(removed, seq) FROM blocks
			WHERE chain = ? AND network = ? AND hash IN (`+list+`) GROUP BY hash`, q.chain, q.network)
		if err != nil {
			return err
		}
		return scan(rows, func() error {
			var h string
			var removed uint8
			if err := rows.Scan(&h, &removed); err != nil {
				return err
			}
			q.canon[h] = removed == 0
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("read blocks: %w", err)
	}
	return nil
}

func scan(rows clickhouse.Rows, fn func() error) error {
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		if err := fn(); err != nil {
			return err
		}
	}
	return rows.Err()
}

func in(vals []string, fn func(list string) error) error {
	for len(vals) > 0 {
		n := min(len(vals), chunk)
		if err := fn(clickhouse.QuoteList(vals[:n])); err != nil {
			return err
		}
		vals = vals[n:]
	}
	return nil
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
