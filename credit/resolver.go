package credit

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/cordonhq/cordon/ingest/clickhouse"
	"github.com/cordonhq/cordon/internal/chain"
)

// ClickHouseResolver resolves spent outputs from the ClickHouse outputs
// table (loaded by the loader). A transaction's hash commits to its
// outputs, so every row of one output — on any branch, merged or not —
// must name the same address and amount. Rows that disagree are a
// tampered or corrupted copy: Resolve reports them in a *ConflictError
// and no copy wins.
type ClickHouseResolver struct{ Store *clickhouse.Store }

// Loaded returns the newest block event seq of the stream in ClickHouse
// (0 when none): the loader loads a stream's events in order, so every
// earlier block is in too.
func (r ClickHouseResolver) Loaded(ctx context.Context, c chain.Chain, network string) (uint64, error) {
	var seq uint64
	if err := r.Store.QueryRow(ctx, `SELECT max(seq) FROM blocks WHERE chain = ? AND network = ?`, string(c), network).Scan(&seq); err != nil {
		return 0, fmt.Errorf("resolve spent outputs: loaded height: %w", err)
	}
	return seq, nil
}

// OutputConflict is what the copies of one spent output disagree on:
// every distinct address ("" for none) and amount among its rows.
type OutputConflict struct {
	Addresses []string
	Amounts   []uint64
}

// ConflictError reports spent outputs whose copies in the resolver's
// data disagree. A SenderResolver returns it together with the outputs it
// did resolve; the candidates spending a conflicting output are held with
// Reason, never credited on one of the copies.
type ConflictError struct {
	// Source names the data ("ClickHouse").
	Source  string
	Outputs map[Outpoint]OutputConflict
}

func (e *ConflictError) Error() string {
	ops := make([]Outpoint, 0, len(e.Outputs))
	for op := range e.Outputs {
		ops = append(ops, op)
	}
	slices.SortFunc(ops, func(a, b Outpoint) int {
		if c := strings.Compare(a.Tx, b.Tx); c != 0 {
			return c
		}
		return int(a.Vout) - int(b.Vout)
	})
	reasons := make([]string, 0, len(ops))
	for _, op := range ops {
		reasons = append(reasons, e.Reason(op))
	}
	return strings.Join(reasons, "; ")
}

// has tells whether op is one of the conflicting outputs (false on a nil
// *ConflictError).
func (e *ConflictError) has(op Outpoint) bool {
	if e == nil {
		return false
	}
	_, ok := e.Outputs[op]
	return ok
}

// Reason is the hold reason of a deposit spending op.
func (e *ConflictError) Reason(op Outpoint) string {
	c := e.Outputs[op]
	var parts []string
	if len(c.Addresses) > 1 {
		addrs := make([]string, len(c.Addresses))
		for i, a := range c.Addresses {
			addrs[i] = a
			if a == "" {
				addrs[i] = "(none)"
			}
		}
		parts = append(parts, "addresses "+strings.Join(addrs, ", "))
	}
	if len(c.Amounts) > 1 {
		amts := make([]string, len(c.Amounts))
		for i, a := range c.Amounts {
			amts[i] = strconv.FormatUint(a, 10)
		}
		parts = append(parts, "amounts "+strings.Join(amts, ", "))
	}
	return fmt.Sprintf("conflicting rows for output %s:%d in %s: %s", op.Tx, op.Vout, e.Source, strings.Join(parts, "; "))
}

// Resolve implements SenderResolver. It reads every row of the outputs
// (not only the canonical ones, and without FINAL, so a copy not yet
// merged away is seen too); an output whose rows disagree is left out of
// the result and reported in a *ConflictError returned with it.
func (r ClickHouseResolver) Resolve(ctx context.Context, c chain.Chain, network string, ops []Outpoint) (map[Outpoint]string, error) {
	want := map[Outpoint]bool{}
	txs := map[string]bool{}
	for _, op := range ops {
		want[op] = true
		txs[op.Tx] = true
	}
	out := map[Outpoint]string{}
	conflicts := map[Outpoint]OutputConflict{}
	list := make([]string, 0, len(txs))
	for tx := range txs {
		list = append(list, tx)
	}
	for len(list) > 0 {
		n := min(len(list), 2000)
		// Outputs without an address count as "": a copy that gives an
		// address-less output an address is a conflict too.
		rows, err := r.Store.Query(ctx, `SELECT tx_hash, vout, arraySort(groupUniqArray(ifNull(address, ''))), arraySort(groupUniqArray(amount))
			FROM outputs WHERE chain = ? AND network = ? AND tx_hash IN (`+clickhouse.QuoteList(list[:n])+`)
			GROUP BY tx_hash, vout`, string(c), network)
		if err != nil {
			return nil, fmt.Errorf("resolve spent outputs: %w", err)
		}
		for rows.Next() {
			var op Outpoint
			var addrs []string
			var amounts []uint64
			if err := rows.Scan(&op.Tx, &op.Vout, &addrs, &amounts); err != nil {
				_ = rows.Close()
				return nil, fmt.Errorf("resolve spent outputs: %w", err)
			}
			switch {
			case !want[op]:
			case len(addrs) > 1 || len(amounts) > 1:
				conflicts[op] = OutputConflict{Addresses: addrs, Amounts: amounts}
			case addrs[0] != "":
				out[op] = addrs[0]
			}
		}
		err = rows.Err()
		_ = rows.Close()
		if err != nil {
			return nil, fmt.Errorf("resolve spent outputs: %w", err)
		}
		list = list[n:]
	}
	if len(conflicts) > 0 {
		return out, &ConflictError{Source: "ClickHouse", Outputs: conflicts}
	}
	return out, nil
}
