package trace

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"

	"github.com/cordonhq/cordon/ingest/clickhouse"
	"github.com/cordonhq/cordon/internal/chain"
)

// Querier runs read queries (a *clickhouse.Store).
type Querier interface {
	Query(ctx context.Context, query string, args ...any) (clickhouse.Rows, error)
}

// Sink is a known address where a trace stops.
type Sink struct {
	Address string `json:"address"`
	Label   string `json:"label"`
	// Kind is free text; the usual ones are own (our wallets), exchange,
	// flagged, service.
	Kind string `json:"kind"`
}

// Options says what to trace.
type Options struct {
	Chain   chain.Chain
	Network string
	// From are the start addresses, normalized (internal/address).
	From     []string
	Hops     int
	Backward bool
	// Since and Until bound the block time of followed transfers (zero:
	// open).
	Since, Until time.Time
	// MinAmount drops transfers below it (nil: none), in base units.
	MinAmount *big.Int
	// Asset restricts Ethereum transfers: "native", a token contract
	// address, or "" for every asset.
	Asset string
	Sinks map[string]Sink
	// MaxFanout: an address with more transfers than this in one hop is a
	// hub; it is shown and not followed (default 200).
	MaxFanout int
	// MaxEdges caps the result (default 10,000); a capped result is
	// marked truncated.
	MaxEdges int
}

// Node is an address in the trace.
type Node struct {
	Address string `json:"address"`
	// Hop is the first hop that reached the address (0: a start address).
	Hop  int   `json:"hop"`
	Sink *Sink `json:"sink,omitempty"`
	// Hub: too many transfers to follow (see Options.MaxFanout).
	Hub bool `json:"hub,omitempty"`
}

// Edge is one movement of funds between two addresses.
type Edge struct {
	Hop    int    `json:"hop"`
	From   string `json:"from"`
	To     string `json:"to"`
	Asset  string `json:"asset"`
	Amount string `json:"amount"`
	TxHash string `json:"tx_hash"`
	// Index is the log index of an Ethereum token transfer (-1 for the
	// transaction's own value) or the vout of a Bitcoin output.
	Index       int64     `json:"index"`
	BlockNumber uint64    `json:"block_number"`
	BlockHash   string    `json:"block_hash"`
	Time        time.Time `json:"time"`
}

// Result is a finished trace.
type Result struct {
	Chain     chain.Chain `json:"chain"`
	Network   string      `json:"network"`
	Direction string      `json:"direction"`
	From      []string    `json:"from"`
	Hops      int         `json:"hops"`
	Since     *time.Time  `json:"since,omitempty"`
	Until     *time.Time  `json:"until,omitempty"`
	MinAmount string      `json:"min_amount,omitempty"`
	Asset     string      `json:"asset,omitempty"`
	Nodes     []Node      `json:"nodes"`
	Edges     []Edge      `json:"edges"`
	// Truncated: MaxEdges was reached; the trace is incomplete.
	Truncated bool `json:"truncated,omitempty"`
	// Unresolved counts Bitcoin inputs whose spent output is not loaded
	// (older than the stream's start), so their sender is unknown.
	Unresolved int `json:"unresolved_inputs,omitempty"`
}

// Run traces opts in the store.
func Run(ctx context.Context, q Querier, opts Options) (*Result, error) {
	if err := opts.fill(); err != nil {
		return nil, err
	}
	t := &tracer{q: q, o: opts, canon: map[string]bool{}, nodes: map[string]*Node{},
		res: &Result{Chain: opts.Chain, Network: opts.Network, Direction: "forward", From: opts.From, Hops: opts.Hops, Asset: opts.Asset}}
	if opts.Backward {
		t.res.Direction = "backward"
	}
	if !opts.Since.IsZero() {
		s := opts.Since.UTC()
		t.res.Since = &s
	}
	if !opts.Until.IsZero() {
		u := opts.Until.UTC()
		t.res.Until = &u
	}
	if opts.MinAmount != nil {
		t.res.MinAmount = opts.MinAmount.String()
	}
	for _, a := range opts.From {
		t.node(a, 0)
	}
	var err error
	switch {
	case opts.Chain == chain.ETH:
		err = t.transfers(ctx)
	case opts.Backward:
		err = t.btcBackward(ctx)
	default:
		err = t.btcForward(ctx)
	}
	if err != nil && !errors.Is(err, errFull) {
		return nil, err
	}
	for _, a := range t.order {
		t.res.Nodes = append(t.res.Nodes, *t.nodes[a])
	}
	if t.res.Edges == nil {
		t.res.Edges = []Edge{}
	}
	return t.res, nil
}

func (o *Options) fill() error {
	if o.Chain != chain.ETH && o.Chain != chain.BTC {
		return fmt.Errorf("trace: chain %q: want eth or btc", o.Chain)
	}
	if o.Network == "" {
		return errors.New("trace: no network")
	}
	if len(o.From) == 0 {
		return errors.New("trace: no start address")
	}
	if o.Hops <= 0 {
		o.Hops = 3
	}
	if o.Hops > 20 {
		return fmt.Errorf("trace: %d hops: at most 20", o.Hops)
	}
	if !o.Since.IsZero() && !o.Until.IsZero() && o.Until.Before(o.Since) {
		return fmt.Errorf("trace: until %s is before since %s", o.Until.UTC().Format(time.RFC3339), o.Since.UTC().Format(time.RFC3339))
	}
	if o.MinAmount != nil && o.MinAmount.Sign() < 0 {
		return errors.New("trace: negative minimum amount")
	}
	if o.Chain == chain.BTC && o.Asset != "" && o.Asset != chain.AssetNative {
		return fmt.Errorf("trace: asset %q: Bitcoin has only the native asset", o.Asset)
	}
	if o.MaxFanout <= 0 {
		o.MaxFanout = 200
	}
	if o.MaxEdges <= 0 {
		o.MaxEdges = 10000
	}
	return nil
}

var errFull = errors.New("trace: edge limit reached")

type tracer struct {
	q     Querier
	o     Options
	res   *Result
	canon map[string]bool // block hash → canonical
	nodes map[string]*Node
	order []string
}

func (t *tracer) node(addr string, hop int) *Node {
	n, ok := t.nodes[addr]
	if !ok {
		n = &Node{Address: addr, Hop: hop}
		if s, ok := t.o.Sinks[addr]; ok {
			n.Sink = &s
		}
		t.nodes[addr] = n
		t.order = append(t.order, addr)
	}
	return n
}

// follows reports whether the trace continues from addr: not a sink (a
// start address is always followed) and not a hub.
func (t *tracer) follows(addr string) bool {
	n := t.nodes[addr]
	return n != nil && !n.Hub && (n.Sink == nil || n.Hop == 0)
}

func (t *tracer) edge(e Edge) error {
	if len(t.res.Edges) >= t.o.MaxEdges {
		t.res.Truncated = true
		return errFull
	}
	t.res.Edges = append(t.res.Edges, e)
	return nil
}

func (t *tracer) bigEnough(amount *big.Int) bool {
	return t.o.MinAmount == nil || amount.Cmp(t.o.MinAmount) >= 0
}

// window is the SQL condition on block_time.
func (t *tracer) window() string {
	var w string
	if !t.o.Since.IsZero() {
		w += fmt.Sprintf(" AND block_time >= toDateTime(%d)", t.o.Since.Unix())
	}
	if !t.o.Until.IsZero() {
		w += fmt.Sprintf(" AND block_time <= toDateTime(%d)", t.o.Until.Unix())
	}
	return w
}

// chunk is how many values go into one IN list (ClickHouse's default
// max_query_size is 256 KiB).
const chunk = 2000

// in runs fn once per chunk of vals, with the chunk as a quoted SQL list.
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

// canonical fills t.canon for hashes not yet known: a block is canonical
// when its newest event (highest seq) is block_added.
func (t *tracer) canonical(ctx context.Context, hashes map[string]bool) error {
	var ask []string
	for h := range hashes {
		if _, ok := t.canon[h]; !ok {
			ask = append(ask, h)
			t.canon[h] = false // unknown blocks (no event yet) are not canonical
		}
	}
	slices.Sort(ask)
	return in(ask, func(list string) error {
		rows, err := t.q.Query(ctx, `SELECT hash, argMax(removed, seq) FROM blocks
			WHERE chain = ? AND network = ? AND hash IN (`+list+`) GROUP BY hash`, string(t.o.Chain), t.o.Network)
		if err != nil {
			return fmt.Errorf("trace: read blocks: %w", err)
		}
		defer func() { _ = rows.Close() }()
		for rows.Next() {
			var h string
			var removed uint8
			if err := rows.Scan(&h, &removed); err != nil {
				return fmt.Errorf("trace: read blocks: %w", err)
			}
			t.canon[h] = removed == 0
		}
		return rows.Err()
	})
}

// pos orders transfers in the chain.
type pos struct {
	block uint64
	tx    uint32
}

func (p pos) less(o pos) bool { return p.block < o.block || (p.block == o.block && p.tx < o.tx) }

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
