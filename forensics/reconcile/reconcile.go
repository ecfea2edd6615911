// Package reconcile checks the ClickHouse store against a node, the way
// Rosetta's check:data does: balances of the accounts that recent blocks
// touched, recomputed from the loaded rows, must equal the node's balances
// at the same block.
//
// Ethereum: for each sampled (account, asset) the change over the window
// (base, height] — transfers in and out, fees paid as a sender, priority
// fees earned as the blocks' fee recipient — added to the node's balance
// at base must give the node's balance at height (eth_getBalance, or the
// token's balanceOf through eth_call). Balances before the loaded range
// never matter, so the check works on any start height.
//
// Bitcoin works the same way on the node's blocks, as nodes keep no
// address balances: every output and spend row of the window's blocks
// must match the node's blocks at those heights, and for each sampled
// address the change over the window — outputs paid to it, minus the
// outputs of its that the window spends — must be the same in ClickHouse
// and on the node. The value of a spent output created before the window
// comes from the block that created it, fetched by the hash ClickHouse
// has for it once it is checked to be on the node's main chain. A check
// costs the window's blocks plus the distinct blocks of those outputs,
// never an address's whole history, and the node may add blocks meanwhile.
// A spent output ClickHouse has no row for is a mismatch when ClickHouse
// holds the chain from its genesis; otherwise it may predate the loaded
// range, and such spends are listed as skipped.
//
// Both are ErrNotComparable when ClickHouse and the node hold different
// blocks at a height they read, or when the node reorganizes the window
// while the check runs.
package reconcile

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/cordonhq/cordon/ingest/clickhouse"
	"github.com/cordonhq/cordon/internal/chain"
)

// Querier runs read queries (a *clickhouse.Store).
type Querier interface {
	Query(ctx context.Context, query string, args ...any) (clickhouse.Rows, error)
}

// Options says what to check.
type Options struct {
	Chain   chain.Chain
	Network string
	// Height is the block to compare at (0: the newest canonical block in
	// ClickHouse).
	Height uint64
	// Blocks is the window of recent blocks whose accounts are checked
	// (default 64: within the state a full Ethereum node keeps).
	Blocks uint64
	// Sample caps the accounts checked (0: all), drawn with Seed.
	Sample int
	Seed   uint64
}

// Mismatch is an account whose balance differs.
type Mismatch struct {
	Address string `json:"address"`
	Asset   string `json:"asset"`
	// Ethereum: Store is the node's balance at the window's base plus the
	// change recorded in ClickHouse, Node the node's balance at Height.
	// Bitcoin: Store and Node are the change over the window in ClickHouse
	// and on the node (empty when no address is known).
	Store  string `json:"store"`
	Node   string `json:"node"`
	Detail string `json:"detail,omitempty"`
}

// Report is the outcome of a check.
type Report struct {
	Chain   chain.Chain `json:"chain"`
	Network string      `json:"network"`
	Height  uint64      `json:"height"`
	Base    uint64      `json:"base"`
	// Touched is how many accounts the window touched; Checked how many
	// were compared.
	Touched    int        `json:"touched"`
	Checked    int        `json:"checked"`
	Mismatches []Mismatch `json:"mismatches"`
	// Skipped lists accounts that could not be checked, with the reason
	// (for example a token without balanceOf).
	Skipped []Mismatch `json:"skipped,omitempty"`
}

// OK tells whether no mismatch was found.
func (r *Report) OK() bool { return len(r.Mismatches) == 0 }

// ErrNotComparable is wrapped when ClickHouse and the node do not hold the
// same chain at the height (the loader is behind, or a reorg is under way).
var ErrNotComparable = errors.New("reconcile: ClickHouse and the node disagree on the chain")

func (o *Options) fill() error {
	if o.Network == "" {
		return errors.New("reconcile: no network")
	}
	if o.Blocks == 0 {
		o.Blocks = 64
	}
	if o.Sample < 0 {
		return errors.New("reconcile: negative sample")
	}
	return nil
}

// block is a canonical block of the window, as ClickHouse has it.
type block struct {
	height, time         uint64
	hash, miner, baseFee string
	outputs, spends, txs uint32
	transfers            uint32
}

// canonicalBlocks reads the canonical blocks in (base, height] (height 0:
// the tip) and returns them by height, with the resolved height.
func canonicalBlocks(ctx context.Context, q Querier, o Options) (map[uint64]block, uint64, error) {
	h := o.Height
	if h == 0 {
		rows, err := q.Query(ctx, `SELECT max(height) FROM (SELECT height, argMax(removed, seq) AS r FROM blocks
			WHERE chain = ? AND network = ? GROUP BY hash, height) WHERE r = 0`, string(o.Chain), o.Network)
		if err != nil {
			return nil, 0, fmt.Errorf("reconcile: read blocks: %w", err)
		}
		for rows.Next() {
			if err := rows.Scan(&h); err != nil {
				_ = rows.Close()
				return nil, 0, err
			}
		}
		_ = rows.Close()
		if h == 0 {
			return nil, 0, fmt.Errorf("reconcile: ClickHouse holds no %s/%s block", o.Chain, o.Network)
		}
	}
	base := h - min(h, o.Blocks)
	rows, err := q.Query(ctx, `SELECT height, hash, argMax(miner, seq), argMax(base_fee, seq), argMax(output_count, seq),
			argMax(spend_count, seq), argMax(tx_count, seq), argMax(transfer_count, seq), toUInt64(argMax(time, seq)), argMax(removed, seq) AS r
		FROM blocks WHERE chain = ? AND network = ? AND height > ? AND height <= ?
		GROUP BY hash, height`, string(o.Chain), o.Network, base, h)
	if err != nil {
		return nil, 0, fmt.Errorf("reconcile: read blocks: %w", err)
	}
	defer func() { _ = rows.Close() }()
	out := map[uint64]block{}
	for rows.Next() {
		var b block
		var removed uint8
		if err := rows.Scan(&b.height, &b.hash, &b.miner, &b.baseFee, &b.outputs, &b.spends, &b.txs, &b.transfers, &b.time, &removed); err != nil {
			return nil, 0, fmt.Errorf("reconcile: read blocks: %w", err)
		}
		if removed != 0 {
			continue
		}
		if prev, dup := out[b.height]; dup {
			return nil, 0, fmt.Errorf("%w: two canonical blocks at height %d (%s, %s): the loader is mid-reorg; retry", ErrNotComparable, b.height, prev.hash, b.hash)
		}
		out[b.height] = b
	}
	if err := rows.Err(); err != nil {
		return nil, 0, err
	}
	for x := base + 1; x <= h; x++ {
		if _, ok := out[x]; !ok {
			return nil, 0, fmt.Errorf("%w: ClickHouse has no canonical block at height %d (loaded range starts later, or the loader is behind)", ErrNotComparable, x)
		}
	}
	// A block's event and its rows come from different topics and may land
	// in different loader batches: compare only blocks whose rows are all in.
	tables := []struct {
		table string
		want  func(block) uint32
	}{{"transactions", func(b block) uint32 { return b.txs }}, {"transfers", func(b block) uint32 { return b.transfers }}}
	if o.Chain == chain.BTC {
		tables = append(tables[:1], struct {
			table string
			want  func(block) uint32
		}{"outputs", func(b block) uint32 { return b.outputs }}, struct {
			table string
			want  func(block) uint32
		}{"spends", func(b block) uint32 { return b.spends }})
	}
	for _, t := range tables {
		got, err := rowCounts(ctx, q, o, t.table, out)
		if err != nil {
			return nil, 0, err
		}
		for x, b := range out {
			if uint32(got[b.hash]) < t.want(b) {
				return nil, 0, fmt.Errorf("%w: block %d has %d of its %d %s in ClickHouse yet (the loader is behind)",
					ErrNotComparable, x, got[b.hash], t.want(b), t.table)
			}
		}
	}
	return out, h, nil
}

// rowCounts counts the distinct rows of table by block of the window.
func rowCounts(ctx context.Context, q Querier, o Options, table string, bs map[uint64]block) (map[string]int, error) {
	rows, err := q.Query(ctx, `SELECT block_hash, count() FROM `+table+` FINAL WHERE chain = ? AND network = ? AND `+window(bs)+
		` GROUP BY block_hash`, string(o.Chain), o.Network)
	if err != nil {
		return nil, fmt.Errorf("reconcile: count %s: %w", table, err)
	}
	defer func() { _ = rows.Close() }()
	out := map[string]int{}
	for rows.Next() {
		var h string
		var n uint64
		if err := rows.Scan(&h, &n); err != nil {
			return nil, err
		}
		out[h] = int(n)
	}
	return out, rows.Err()
}

// hashList is the blocks' hashes as a quoted SQL list.
func hashList(bs map[uint64]block) string {
	hs := make([]string, 0, len(bs))
	for _, b := range bs {
		hs = append(hs, b.hash)
	}
	slices.Sort(hs)
	return clickhouse.QuoteList(hs)
}

func keysOf[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// sample picks at most n of the sorted keys (all when n is 0), with seed.
func sample[T any](all []T, n int, seed uint64) []T {
	if n == 0 || len(all) <= n {
		return all
	}
	r := rand.New(rand.NewPCG(seed, 0x636f72646f6e)) //nolint:gosec // which accounts a check samples, reproducible by seed
	r.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	return all[:n]
}

// window is the SQL condition selecting the rows of the blocks: their
// hashes, and their time range so ClickHouse reads only those partitions.
func window(bs map[uint64]block) string {
	lo, hi := ^uint64(0), uint64(0)
	for _, b := range bs {
		lo, hi = min(lo, b.time), max(hi, b.time)
	}
	return fmt.Sprintf("block_hash IN (%s) AND block_time >= toDateTime(%d) AND block_time <= toDateTime(%d)", hashList(bs), lo, hi)
}
