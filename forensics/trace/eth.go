package trace

import (
	"context"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"time"
)

// xfer is a transfer row.
type xfer struct {
	from, to, asset, amount, tx, blockHash string
	txIndex                                uint32
	logIndex                               int64
	block                                  uint64
	time                                   time.Time
}

func (x *xfer) pos() pos { return pos{x.block, x.txIndex} }

// transfers traces Ethereum transfers (any chain whose facts are
// transfers). Forward, funds leave an address at or after the first
// transfer that brought them; backward, they arrived at or before the
// last transfer that took them on.
func (t *tracer) transfers(ctx context.Context) error {
	table, self := "transfers", "from_address"
	if t.o.Backward {
		table, self = "transfers_by_to", "to_address"
	}
	frontier := map[string]*pos{} // address → time bound (nil: none)
	for _, a := range t.o.From {
		frontier[a] = nil
	}
	expanded := map[string]bool{}
	for hop := 1; hop <= t.o.Hops && len(frontier) > 0; hop++ {
		for a := range frontier {
			expanded[a] = true
		}
		rows, err := t.fetchTransfers(ctx, table, self, keys(frontier), hop == 1)
		if err != nil {
			return err
		}
		next := map[string]*pos{}
		for _, x := range rows {
			me, other := x.from, x.to
			if t.o.Backward {
				me, other = x.to, x.from
			}
			if b := frontier[me]; b != nil {
				if !t.o.Backward && x.pos().less(*b) || t.o.Backward && b.less(x.pos()) {
					continue // before the funds arrived / after they left
				}
			}
			amt, ok := new(big.Int).SetString(x.amount, 10)
			if !ok {
				return fmt.Errorf("trace: transfer %s/%d: amount %q is not an integer", x.tx, x.logIndex, x.amount)
			}
			if !t.bigEnough(amt) {
				continue
			}
			t.node(other, hop)
			if err := t.edge(Edge{Hop: hop, From: x.from, To: x.to, Asset: x.asset, Amount: x.amount, TxHash: x.tx,
				Index: x.logIndex, BlockNumber: x.block, BlockHash: x.blockHash, Time: x.time.UTC()}); err != nil {
				return err
			}
			if expanded[other] || !t.follows(other) {
				continue
			}
			p := x.pos()
			if b, seen := next[other]; !seen || (!t.o.Backward && p.less(*b)) || (t.o.Backward && b.less(p)) {
				next[other] = &p
			}
		}
		frontier = next
	}
	return nil
}

// fetchTransfers reads the canonical transfers whose self column is one
// of addrs, in chain order, marking addresses with too many as hubs
// (their rows are dropped). The start addresses (start) may have up to
// the edge limit.
func (t *tracer) fetchTransfers(ctx context.Context, table, self string, addrs []string, start bool) ([]xfer, error) {
	cond := t.window()
	args := []any{string(t.o.Chain), t.o.Network}
	if t.o.Asset != "" {
		cond += " AND asset = ?"
		args = append(args, t.o.Asset)
	}
	limit := t.o.MaxFanout + 1
	if start {
		limit = max(limit, t.o.MaxEdges+1) // the start addresses are followed up to the edge limit
	}
	seen := map[string]bool{}
	var out []xfer
	err := in(addrs, func(list string) error {
		rows, err := t.q.Query(ctx, `SELECT DISTINCT from_address, to_address, asset, amount, tx_hash, tx_index, log_index,
				block_number, block_hash, block_time
			FROM `+table+` WHERE chain = ? AND network = ? AND `+self+` IN (`+list+`)`+cond+`
			ORDER BY `+self+`, block_number, tx_index, log_index LIMIT `+strconv.Itoa(limit)+` BY `+self, args...)
		if err != nil {
			return fmt.Errorf("trace: read %s: %w", table, err)
		}
		defer func() { _ = rows.Close() }()
		for rows.Next() {
			var x xfer
			if err := rows.Scan(&x.from, &x.to, &x.asset, &x.amount, &x.tx, &x.txIndex, &x.logIndex, &x.block, &x.blockHash, &x.time); err != nil {
				return fmt.Errorf("trace: read %s: %w", table, err)
			}
			k := x.tx + "/" + strconv.FormatInt(x.logIndex, 10) + "/" + x.blockHash
			if !seen[k] {
				seen[k] = true
				out = append(out, x)
			}
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	hashes := map[string]bool{}
	for i := range out {
		hashes[out[i].blockHash] = true
	}
	if err := t.canonical(ctx, hashes); err != nil {
		return nil, err
	}
	count := map[string]int{}
	out = slices.DeleteFunc(out, func(x xfer) bool { return !t.canon[x.blockHash] })
	for _, x := range out {
		if t.o.Backward {
			count[x.to]++
		} else {
			count[x.from]++
		}
	}
	for a, n := range count {
		if n >= limit && !start {
			t.nodes[a].Hub = true
		}
	}
	if start {
		// A start address is followed even when it is busy: its first
		// transfers up to the edge limit, the result marked truncated.
		seen := map[string]int{}
		out = slices.DeleteFunc(out, func(x xfer) bool {
			me := x.from
			if t.o.Backward {
				me = x.to
			}
			seen[me]++
			if seen[me] > t.o.MaxEdges {
				t.res.Truncated = true
				return true
			}
			return false
		})
	}
	out = slices.DeleteFunc(out, func(x xfer) bool {
		if t.o.Backward {
			return t.nodes[x.to].Hub
		}
		return t.nodes[x.from].Hub
	})
	slices.SortStableFunc(out, func(a, b xfer) int {
		switch {
		case a.block != b.block:
			return cmpU(a.block, b.block)
		case a.txIndex != b.txIndex:
			return cmpU(uint64(a.txIndex), uint64(b.txIndex))
		}
		return int(a.logIndex - b.logIndex)
	})
	return out, nil
}

func cmpU(a, b uint64) int {
	if a < b {
		return -1
	}
	if a > b {
		return 1
	}
	return 0
}
