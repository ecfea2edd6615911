package clickhouse

import (
	"context"
	"encoding/json"

	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/internal/chain"
)

// Source is the consumer the loader reads from (kafka.Consumer).
type Source interface {
	Fetch(ctx context.Context, max int, linger time.Duration) ([]kafka.Message, error)
	Commit(ctx context.Context, msgs []kafka.Message) error
}

// LoaderConfig tunes a Loader. The config file's clickhouse section
// holds its batch_records and linger keys.
type LoaderConfig struct {
	// Topics are the Kafka topics read (the kafka section's).
	Topics kafka.Topics `yaml:"-"`
	// BatchRecords caps the Kafka records of one batch (parts count as
	// one); Linger is how long a batch waits to fill.
	BatchRecords int           `yaml:"batch_records"`
	Linger       time.Duration `yaml:"linger"`
	// RetryMax caps the wait between retries of a failed insert.
	RetryMax time.Duration `yaml:"-"`
	// HoldMax is how long a block event waits for its rows before it is
	// inserted anyway (logged as an error and counted in
	// cordon_clickhouse_incomplete_blocks_total); default 10 minutes.
	HoldMax time.Duration `yaml:"-"`
	// CheckAfter is how long a held event waits for its rows to show up
	// in this loader's own inserts before ClickHouse is asked for them
	// (another instance, or this one before a restart, may have loaded
	// them); default 1s.
	CheckAfter time.Duration `yaml:"-"`
}

// Loader copies the block stream and its records from Kafka into
// ClickHouse. It commits a batch's offsets only after every row of the
// batch is inserted; a crash in between replays the batch, which the
// tables' row identity absorbs.
//
// A block event is inserted only once all of its block's rows are in
// (the counts it carries), so the canonical views never show a block
// whose rows are not all loaded. Rows counted from this loader's own
// inserts release an event at once; otherwise ClickHouse is asked, since
// with several loaders in one consumer group a block's parts and its
// event may be loaded by different instances. A stream's events are
// inserted in their order, so its newest loaded seq means every block
// before it is in. A held event's offset is not committed until it is
// inserted, so a crash never loses it.
type Loader struct {
	cfg     LoaderConfig
	store   *Store
	src     Source
	log     *slog.Logger
	metrics *LoaderMetrics
	// held are block events waiting for their rows, in arrival order.
	held []heldEvent
	// loaded are the parts this loader inserted, by block hash: items
	// per kind and part number (a replayed part counts once).
	loaded map[string]*loadedParts
	// blockMsgs are the block records fetched and not yet committed, per
	// partition in offset order; done once their event is inserted.
	blockMsgs map[int][]*blockMsg
}

type heldEvent struct {
	ev    chain.BlockEvent
	msg   *blockMsg // its record, marked done once the event is in
	since time.Time
}

type blockMsg struct {
	msg  kafka.Message
	done bool
}

type loadedParts struct {
	first time.Time
	items map[string]int // "kind/part" → items
}

func (p *loadedParts) count(kind string) int {
	n := 0
	for k, v := range p.items {
		if strings.HasPrefix(k, kind+"/") {
			n += v
		}
	}
	return n
}

// NewLoader returns a loader from src into store.
func NewLoader(cfg LoaderConfig, store *Store, src Source, metrics *LoaderMetrics, log *slog.Logger) *Loader {
	def := kafka.DefaultTopics()
	for _, t := range []struct {
		p *string
		v string
	}{{&cfg.Topics.Blocks, def.Blocks}, {&cfg.Topics.Transactions, def.Transactions},
		{&cfg.Topics.Transfers, def.Transfers}, {&cfg.Topics.Outputs, def.Outputs}, {&cfg.Topics.Spends, def.Spends},
		{&cfg.Topics.Addresses, def.Addresses}} {
		if *t.p == "" {
			*t.p = t.v
		}
	}
	if cfg.BatchRecords <= 0 {
		cfg.BatchRecords = 5000
	}
	if cfg.Linger <= 0 {
		cfg.Linger = 200 * time.Millisecond
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = 30 * time.Second
	}
	if cfg.HoldMax <= 0 {
		cfg.HoldMax = 10 * time.Minute
	}
	if cfg.CheckAfter <= 0 {
		cfg.CheckAfter = time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if metrics == nil {
		metrics = NewLoaderMetrics(nil)
	}
	return &Loader{cfg: cfg, store: store, src: src, log: log, metrics: metrics, loaded: map[string]*loadedParts{}, blockMsgs: map[int][]*blockMsg{}}
}

// Run loads until ctx ends.
func (l *Loader) Run(ctx context.Context) error {
	for {
		fctx, cancel := ctx, context.CancelFunc(func() {})
		if len(l.held) > 0 {
			// Held events are looked at again even when nothing arrives.
			fctx, cancel = context.WithTimeout(ctx, l.cfg.CheckAfter)
		}
		msgs, err := l.src.Fetch(fctx, l.cfg.BatchRecords, l.cfg.Linger)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil && fctx.Err() == nil {
			return fmt.Errorf("clickhouse loader: fetch: %w", err)
		}
		b := l.decode(msgs)
		if err := l.retry(ctx, len(msgs), func() error { return l.insert(ctx, b) }); err != nil {
			return err
		}
		l.noteLoaded(b)
		if err := l.retry(ctx, len(l.held), func() error { return l.release(ctx) }); err != nil {
			return err
		}
		if commit := l.committable(msgs); len(commit) > 0 {
			if err := l.src.Commit(ctx, commit); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				// The rows are in; a replay after this is absorbed.
				l.log.Warn("commit kafka offsets failed; the batch may be replayed", "err", err)
			}
		}
		l.metrics.held.Set(float64(len(l.held)))
		if len(msgs) > 0 {
			l.metrics.batches.Inc()
		}
	}
}

// retry runs fn until it succeeds or ctx ends, backing off up to RetryMax.
func (l *Loader) retry(ctx context.Context, records int, fn func() error) error {
	for attempt := 0; ; attempt++ {
		err := fn()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		l.metrics.errors.Inc()
		wait := min(time.Duration(1<<min(attempt, 5))*time.Second, l.cfg.RetryMax)
		l.log.Warn("insert into clickhouse failed; retrying", "err", err, "records", records, "retry_in", wait)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

// noteLoaded records the parts of an inserted batch, and forgets parts no
// event asked for within HoldMax (a watcher that crashed between a
// block's parts and its event publishes them again with the event).
func (l *Loader) noteLoaded(b *batch) {
	now := time.Now()
	for _, p := range b.parts {
		lp := l.loaded[p.hash]
		if lp == nil {
			lp = &loadedParts{first: now, items: map[string]int{}}
			l.loaded[p.hash] = lp
		}
		lp.items[p.kind+"/"+strconv.Itoa(p.part)] = p.items
	}
	for h, lp := range l.loaded {
		if now.Sub(lp.first) > l.cfg.HoldMax {
			delete(l.loaded, h)
		}
	}
	for _, e := range b.events {
		l.held = append(l.held, heldEvent{ev: e.ev, msg: e.msg, since: now})
	}
}

// complete tells whether n, the rows of each kind known to be loaded,
// covers what ev says its block holds.
func complete(ev *chain.BlockEvent, n map[string]int) bool {
	return n[kafka.KindTransaction] >= ev.TxCount && n[kafka.KindTransfer] >= ev.TransferCount &&
		n[kafka.KindOutput] >= ev.OutputCount && n[kafka.KindSpend] >= ev.SpendCount
}

var partKinds = []string{kafka.KindTransaction, kafka.KindTransfer, kafka.KindOutput, kafka.KindSpend}

// release inserts the held events whose rows are all in, in each
// stream's order: a removed block's event at once, an added block's once
// its rows are counted in this loader's inserts or, after CheckAfter, in
// ClickHouse; after HoldMax, anyway (an error).
func (l *Loader) release(ctx context.Context) error {
	if len(l.held) == 0 {
		return nil
	}
	now := time.Now()
	ready := make([]bool, len(l.held))
	var ask []chain.BlockEvent
	// ClickHouse is asked only about each stream's first event still
	// waiting (the later ones go in after it anyway), and only once it has
	// waited CheckAfter: a backlog of held events costs one small query
	// per stream and round, not one per event.
	asked := map[string]bool{}
	for i := range l.held {
		h := &l.held[i]
		if h.ev.Type == chain.BlockRemoved {
			ready[i] = true
			continue
		}
		n := map[string]int{}
		if lp := l.loaded[h.ev.Hash]; lp != nil {
			for _, k := range partKinds {
				n[k] = lp.count(k)
			}
		}
		switch st := h.ev.Stream(); {
		case complete(&h.ev, n):
			ready[i] = true
		case now.Sub(h.since) > l.cfg.HoldMax:
			ask = append(ask, h.ev) // inserted below, whatever the answer
		case !asked[st] && now.Sub(h.since) >= l.cfg.CheckAfter:
			asked[st] = true
			ask = append(ask, h.ev)
		default:
			asked[st] = true
		}
	}
	if len(ask) > 0 {
		counts, err := l.store.rowCounts(ctx, ask)
		if err != nil {
			return err
		}
		for i := range l.held {
			h := &l.held[i]
			if ready[i] || counts[h.ev.Hash] == nil {
				continue
			}
			if complete(&h.ev, counts[h.ev.Hash]) {
				ready[i] = true
			} else if now.Sub(h.since) > l.cfg.HoldMax {
				l.metrics.incomplete.Inc()
				l.log.Error("block event inserted although its rows are not all in ClickHouse", "chain", h.ev.Chain, "network", h.ev.Network,
					"height", h.ev.Height, "block_hash", h.ev.Hash, "held_for", now.Sub(h.since).Round(time.Second),
					"want_txs", h.ev.TxCount, "have_txs", counts[h.ev.Hash][kafka.KindTransaction],
					"want_transfers", h.ev.TransferCount, "have_transfers", counts[h.ev.Hash][kafka.KindTransfer],
					"want_outputs", h.ev.OutputCount, "have_outputs", counts[h.ev.Hash][kafka.KindOutput],
					"want_spends", h.ev.SpendCount, "have_spends", counts[h.ev.Hash][kafka.KindSpend])
				ready[i] = true
			}
		}
	}
	// A stream's events go in in their order: an event waits while an
	// earlier one of its stream does, so a stream's newest loaded seq
	// (what crediting asks ClickHouse) means every block before it is in.
	blocked := map[string]bool{}
	var evs []chain.BlockEvent
	var keep []heldEvent
	for i, h := range l.held {
		st := h.ev.Stream()
		if ready[i] && !blocked[st] {
			evs = append(evs, h.ev)
		} else {
			ready[i], blocked[st] = false, true
			keep = append(keep, h)
		}
	}
	if len(evs) == 0 {
		return nil
	}
	if err := l.store.insertColumns(ctx, "blocks", len(evs), blockColumns(evs)); err != nil {
		return err
	}
	l.metrics.rows.WithLabelValues("blocks").Add(float64(len(evs)))
	l.metrics.total.Add(uint64(len(evs)))
	for i, h := range l.held {
		if !ready[i] {
			continue
		}
		if h.ev.Type == chain.BlockAdded {
			delete(l.loaded, h.ev.Hash)
		}
		h.msg.done = true
	}
	l.held = keep
	return nil
}

// committable are the records of msgs whose offsets may be committed:
// every part and registry record (their rows are in), and on each block
// partition the newest record before the first event still held (a
// commit covers everything before it in the partition).
func (l *Loader) committable(msgs []kafka.Message) []kafka.Message {
	var out []kafka.Message
	for _, m := range msgs {
		if m.Topic != l.cfg.Topics.Blocks {
			out = append(out, m)
		}
	}
	for p, list := range l.blockMsgs {
		n := 0
		for n < len(list) && list[n].done {
			n++
		}
		if n > 0 {
			out = append(out, list[n-1].msg)
			l.blockMsgs[p] = list[n:]
		}
	}
	return out
}

// batch is the rows of one Kafka batch, per table.
type batch struct {
	// events are the batch's block events (inserted once their rows are
	// in); parts the parts whose rows the batch holds.
	events    []batchEvent
	parts     []partRef
	txs       []chain.Transaction
	transfers []chain.Transfer
	outputs   []chain.Output
	spends    []chain.Spend
	// addresses are address-registry records.
	addresses []addressRow
}

type batchEvent struct {
	ev  chain.BlockEvent
	msg *blockMsg
}

type partRef struct {
	hash, kind  string
	part, items int
}

func (l *Loader) decode(msgs []kafka.Message) *batch {
	b := &batch{}
	// Frames first, to size each table's rows once.
	parts := make([]kafka.Part, len(msgs))
	ok := make([]bool, len(msgs))
	counts := map[string]int{}
	t := l.cfg.Topics
	for i, m := range msgs {
		if m.Topic == t.Blocks || m.Topic == t.Addresses {
			continue
		}
		p, err := kafka.DecodePart(m.Value)
		if err != nil {
			l.skip(m, err)
			continue
		}
		parts[i], ok[i] = p, true
		counts[m.Topic] += len(p.Items)
	}
	b.txs = make([]chain.Transaction, 0, counts[t.Transactions])
	b.transfers = make([]chain.Transfer, 0, counts[t.Transfers])
	b.outputs = make([]chain.Output, 0, counts[t.Outputs])
	b.spends = make([]chain.Spend, 0, counts[t.Spends])
	for i, m := range msgs {
		var err error
		switch {
		case m.Topic == t.Blocks:
			err = l.decodeBlock(b, m)
		case m.Topic == t.Addresses:
			err = decodeAddress(b, m)
		case !ok[i]:
			continue
		case m.Topic == t.Transactions:
			b.txs, err = kafka.AppendItems(b.txs, parts[i])
			l.notePart(b, parts[i], err)
		case m.Topic == t.Transfers:
			b.transfers, err = kafka.AppendItems(b.transfers, parts[i])
			l.notePart(b, parts[i], err)
		case m.Topic == t.Outputs:
			b.outputs, err = kafka.AppendItems(b.outputs, parts[i])
			l.notePart(b, parts[i], err)
		case m.Topic == t.Spends:
			b.spends, err = kafka.AppendItems(b.spends, parts[i])
			l.notePart(b, parts[i], err)
		default:
			err = fmt.Errorf("unexpected topic %s", m.Topic)
		}
		if err != nil {
			l.skip(m, err)
		}
	}
	return b
}

// notePart records that b holds the rows of p (when they decoded).
func (l *Loader) notePart(b *batch, p kafka.Part, err error) {
	if err == nil {
		b.parts = append(b.parts, partRef{hash: p.BlockHash, kind: p.Kind, part: p.Part, items: len(p.Items)})
	}
}

// skip counts and logs a record cordon did not write (or a bug), never
// blocking the rest.
func (l *Loader) skip(m kafka.Message, err error) {
	l.metrics.bad.WithLabelValues(m.Topic).Inc()
	l.log.Error("record skipped", "topic", m.Topic, "partition", m.Partition, "offset", m.Offset, "err", err)
}

func (l *Loader) decodeBlock(b *batch, m kafka.Message) error {
	var ev chain.BlockEvent
	if err := json.Unmarshal(m.Value, &ev); err != nil {
		return err
	}
	if ev.Type != chain.BlockAdded && ev.Type != chain.BlockRemoved {
		return fmt.Errorf("unknown event type %q", ev.Type)
	}
	bm := &blockMsg{msg: m}
	b.events = append(b.events, batchEvent{ev: ev, msg: bm})
	l.blockMsgs[m.Partition] = append(l.blockMsgs[m.Partition], bm)
	return nil
}

func u8(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// insert writes the batch's rows (its block events wait in release for
// the rows of their blocks).
func (l *Loader) insert(ctx context.Context, b *batch) error {
	start := time.Now()
	for _, t := range []struct {
		table string
		n     int
		cols  func() columns
	}{
		{"transactions", len(b.txs), func() columns { return txColumns(b.txs) }},
		{"transfers", len(b.transfers), func() columns { return transferColumns(b.transfers) }},
		{"outputs", len(b.outputs), func() columns { return outputColumns(b.outputs) }},
		{"spends", len(b.spends), func() columns { return spendColumns(b.spends) }},
		{"registered_addresses", len(b.addresses), func() columns { return addressColumns(b.addresses) }},
	} {
		if t.n == 0 {
			continue
		}
		if err := l.store.insertColumns(ctx, t.table, t.n, t.cols()); err != nil {
			return err
		}
	}
	l.metrics.rows.WithLabelValues("transactions").Add(float64(len(b.txs)))
	l.metrics.rows.WithLabelValues("transfers").Add(float64(len(b.transfers)))
	l.metrics.rows.WithLabelValues("outputs").Add(float64(len(b.outputs)))
	l.metrics.rows.WithLabelValues("spends").Add(float64(len(b.spends)))
	l.metrics.rows.WithLabelValues("registered_addresses").Add(float64(len(b.addresses)))
	l.metrics.total.Add(uint64(len(b.txs) + len(b.transfers) + len(b.outputs) + len(b.spends) + len(b.addresses)))
	l.metrics.insert.Observe(time.Since(start).Seconds())
	return nil
}

// columns are the values of a batch's rows, one typed slice per column
// (the driver appends a slice per column without reflecting on each value).
type columns struct {
	names []string
	// rows returns rows [i, j) of each column, as the typed slice the
	// driver appends.
	rows []func(i, j int) any
}

func addCol[V any](c *columns, name string, data []V) {
	c.names = append(c.names, name)
	c.rows = append(c.rows, func(i, j int) any { return data[i:j] })
}

// mapCol is column f of rows.
func mapCol[R, V any](rows []R, f func(*R) V) []V {
	out := make([]V, len(rows))
	for i := range rows {
		out[i] = f(&rows[i])
	}
	return out
}

// blockFields adds the columns every record table shares.
func blockFields[R any](c *columns, rows []R, ch func(*R) (chain.Chain, string, uint64, string, int64)) {
	chains, networks := make([]string, len(rows)), make([]string, len(rows))
	heights, hashes, times := make([]uint64, len(rows)), make([]string, len(rows)), make([]time.Time, len(rows))
	for i := range rows {
		cn, nw, h, hash, t := ch(&rows[i])
		chains[i], networks[i], heights[i], hashes[i], times[i] = string(cn), nw, h, hash, time.Unix(t, 0)
	}
	addCol(c, "chain", chains)
	addCol(c, "network", networks)
	addCol(c, "block_number", heights)
	addCol(c, "block_hash", hashes)
	addCol(c, "block_time", times)
}

func txColumns(rows []chain.Transaction) columns {
	var c columns
	blockFields(&c, rows, func(t *chain.Transaction) (chain.Chain, string, uint64, string, int64) {
		return t.Chain, t.Network, t.BlockHeight, t.BlockHash, t.BlockTime
	})
	addCol(&c, "hash", mapCol(rows, func(t *chain.Transaction) string { return t.Hash }))
	addCol(&c, "tx_index", mapCol(rows, func(t *chain.Transaction) uint32 { return t.Index }))
	addCol(&c, "from_address", mapCol(rows, func(t *chain.Transaction) string { return t.From }))
	addCol(&c, "to_address", mapCol(rows, func(t *chain.Transaction) string { return t.To }))
	addCol(&c, "value", mapCol(rows, func(t *chain.Transaction) string { return t.Value.String() }))
	addCol(&c, "fee", mapCol(rows, func(t *chain.Transaction) *string {
		if t.Fee == nil {
			return nil
		}
		s := t.Fee.String()
		return &s
	}))
	addCol(&c, "nonce", mapCol(rows, func(t *chain.Transaction) uint64 { return t.Nonce }))
	addCol(&c, "gas", mapCol(rows, func(t *chain.Transaction) uint64 { return t.Gas }))
	addCol(&c, "gas_used", mapCol(rows, func(t *chain.Transaction) uint64 { return t.GasUsed }))
	addCol(&c, "gas_price", mapCol(rows, func(t *chain.Transaction) string { return t.GasPrice.String() }))
	addCol(&c, "tx_type", mapCol(rows, func(t *chain.Transaction) uint8 { return t.Type }))
	addCol(&c, "status", mapCol(rows, func(t *chain.Transaction) *uint8 { return t.Status }))
	addCol(&c, "contract_address", mapCol(rows, func(t *chain.Transaction) string { return t.ContractAddress }))
	addCol(&c, "method_id", mapCol(rows, func(t *chain.Transaction) string { return t.MethodID }))
	addCol(&c, "input_size", mapCol(rows, func(t *chain.Transaction) uint32 { return uint32(t.InputSize) }))
	addCol(&c, "log_count", mapCol(rows, func(t *chain.Transaction) uint32 { return uint32(t.LogCount) }))
	addCol(&c, "size", mapCol(rows, func(t *chain.Transaction) uint32 { return uint32(t.Size) }))
	addCol(&c, "vsize", mapCol(rows, func(t *chain.Transaction) uint32 { return uint32(t.VSize) }))
	addCol(&c, "weight", mapCol(rows, func(t *chain.Transaction) uint32 { return uint32(t.Weight) }))
	addCol(&c, "version", mapCol(rows, func(t *chain.Transaction) int32 { return t.Version }))
	addCol(&c, "locktime", mapCol(rows, func(t *chain.Transaction) uint32 { return t.LockTime }))
	addCol(&c, "input_count", mapCol(rows, func(t *chain.Transaction) uint32 { return uint32(t.InputCount) }))
	addCol(&c, "output_count", mapCol(rows, func(t *chain.Transaction) uint32 { return uint32(t.OutputCount) }))
	addCol(&c, "coinbase", mapCol(rows, func(t *chain.Transaction) uint8 { return u8(t.Coinbase) }))
	return c
}

func transferColumns(rows []chain.Transfer) columns {
	var c columns
	blockFields(&c, rows, func(t *chain.Transfer) (chain.Chain, string, uint64, string, int64) {
		return t.Chain, t.Network, t.BlockHeight, t.BlockHash, t.BlockTime
	})
	addCol(&c, "tx_hash", mapCol(rows, func(t *chain.Transfer) string { return t.TxHash }))
	addCol(&c, "tx_index", mapCol(rows, func(t *chain.Transfer) uint32 { return t.TxIndex }))
	addCol(&c, "log_index", mapCol(rows, func(t *chain.Transfer) int64 {
		if t.LogIndex == nil {
			return -1
		}
		return int64(*t.LogIndex)
	}))
	addCol(&c, "asset", mapCol(rows, func(t *chain.Transfer) string { return t.Asset }))
	addCol(&c, "standard", mapCol(rows, func(t *chain.Transfer) string { return t.Standard }))
	addCol(&c, "from_address", mapCol(rows, func(t *chain.Transfer) string { return t.From }))
	addCol(&c, "to_address", mapCol(rows, func(t *chain.Transfer) string { return t.To }))
	addCol(&c, "amount", mapCol(rows, func(t *chain.Transfer) string { return t.Amount.String() }))
	addCol(&c, "token_id", mapCol(rows, func(t *chain.Transfer) string { return t.TokenID }))
	return c
}

func outputColumns(rows []chain.Output) columns {
	var c columns
	blockFields(&c, rows, func(o *chain.Output) (chain.Chain, string, uint64, string, int64) {
		return o.Chain, o.Network, o.BlockHeight, o.BlockHash, o.BlockTime
	})
	addCol(&c, "tx_hash", mapCol(rows, func(o *chain.Output) string { return o.TxHash }))
	addCol(&c, "tx_index", mapCol(rows, func(o *chain.Output) uint32 { return o.TxIndex }))
	addCol(&c, "vout", mapCol(rows, func(o *chain.Output) uint32 { return o.Vout }))
	addCol(&c, "address", mapCol(rows, func(o *chain.Output) *string { return o.Address }))
	addCol(&c, "script_type", mapCol(rows, func(o *chain.Output) string { return o.ScriptType }))
	addCol(&c, "script", mapCol(rows, func(o *chain.Output) string { return o.Script }))
	addCol(&c, "amount", mapCol(rows, func(o *chain.Output) uint64 {
		v, _ := strconv.ParseUint(o.Amount.String(), 10, 64) // satoshi: at most 2.1e15
		return v
	}))
	addCol(&c, "coinbase", mapCol(rows, func(o *chain.Output) uint8 { return u8(o.Coinbase) }))
	return c
}

func spendColumns(rows []chain.Spend) columns {
	var c columns
	blockFields(&c, rows, func(s *chain.Spend) (chain.Chain, string, uint64, string, int64) {
		return s.Chain, s.Network, s.BlockHeight, s.BlockHash, s.BlockTime
	})
	addCol(&c, "tx_hash", mapCol(rows, func(s *chain.Spend) string { return s.TxHash }))
	addCol(&c, "tx_index", mapCol(rows, func(s *chain.Spend) uint32 { return s.TxIndex }))
	addCol(&c, "vin", mapCol(rows, func(s *chain.Spend) uint32 { return s.Vin }))
	addCol(&c, "prev_tx_hash", mapCol(rows, func(s *chain.Spend) string { return s.PrevTxHash }))
	addCol(&c, "prev_vout", mapCol(rows, func(s *chain.Spend) uint32 { return s.PrevVout }))
	addCol(&c, "sequence", mapCol(rows, func(s *chain.Spend) uint32 { return s.Sequence }))
	return c
}

func blockColumns(rows []chain.BlockEvent) columns {
	var c columns
	addCol(&c, "chain", mapCol(rows, func(e *chain.BlockEvent) string { return string(e.Chain) }))
	addCol(&c, "network", mapCol(rows, func(e *chain.BlockEvent) string { return e.Network }))
	addCol(&c, "height", mapCol(rows, func(e *chain.BlockEvent) uint64 { return e.Height }))
	addCol(&c, "hash", mapCol(rows, func(e *chain.BlockEvent) string { return e.Hash }))
	addCol(&c, "parent_hash", mapCol(rows, func(e *chain.BlockEvent) string { return e.ParentHash }))
	addCol(&c, "time", mapCol(rows, func(e *chain.BlockEvent) time.Time { return time.Unix(e.Time, 0) }))
	addCol(&c, "seq", mapCol(rows, func(e *chain.BlockEvent) uint64 { return e.Seq }))
	addCol(&c, "removed", mapCol(rows, func(e *chain.BlockEvent) uint8 { return u8(e.Type == chain.BlockRemoved) }))
	addCol(&c, "tx_count", mapCol(rows, func(e *chain.BlockEvent) uint32 { return uint32(e.TxCount) }))
	addCol(&c, "transfer_count", mapCol(rows, func(e *chain.BlockEvent) uint32 { return uint32(e.TransferCount) }))
	addCol(&c, "output_count", mapCol(rows, func(e *chain.BlockEvent) uint32 { return uint32(e.OutputCount) }))
	addCol(&c, "spend_count", mapCol(rows, func(e *chain.BlockEvent) uint32 { return uint32(e.SpendCount) }))
	addCol(&c, "miner", mapCol(rows, func(e *chain.BlockEvent) string { return e.Miner }))
	addCol(&c, "base_fee", mapCol(rows, func(e *chain.BlockEvent) string {
		if e.BaseFee.IsZero() {
			return ""
		}
		return e.BaseFee.String()
	}))
	return c
}

// flushRows is how many rows go to the server per block of an insert:
// the driver's column buffers are reused between blocks instead of
// growing to the whole batch, and the server works on one block while the
// next is built.
const flushRows = 65536

// insertColumns inserts n rows given as columns into table in one INSERT.
func (s *Store) insertColumns(ctx context.Context, table string, n int, c columns) error {
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+table+" ("+strings.Join(c.names, ", ")+")")
	if err != nil {
		return fmt.Errorf("insert into %s: %w", table, err)
	}
	for i := 0; i < n; i += flushRows {
		j := min(i+flushRows, n)
		for k, rows := range c.rows {
			if err := b.Column(k).Append(rows(i, j)); err != nil {
				_ = b.Abort()
				return fmt.Errorf("insert into %s: column %s: %w", table, c.names[k], err)
			}
		}
		if j < n {
			if err := b.Flush(); err != nil {
				_ = b.Abort()
				return fmt.Errorf("insert %d rows into %s: %w", n, table, err)
			}
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert %d rows into %s: %w", n, table, err)
	}
	return nil
}

// LoaderMetrics are the loader's Prometheus metrics.
type LoaderMetrics struct {
	total   atomic.Uint64
	rows    *prometheus.CounterVec
	bad     *prometheus.CounterVec
	errors  prometheus.Counter
	batches prometheus.Counter
	insert  prometheus.Histogram
	// held is the block events waiting for their rows; incomplete counts
	// those inserted after HoldMax without them.
	held       prometheus.Gauge
	incomplete prometheus.Counter
}

// Rows is the number of rows inserted so far (replays included).
func (m *LoaderMetrics) Rows() uint64 { return m.total.Load() }

// Held is the gauge of block events waiting for their rows.
func (m *LoaderMetrics) Held() prometheus.Gauge { return m.held }

// InsertErrors counts failed batch inserts.
func (m *LoaderMetrics) InsertErrors() prometheus.Counter { return m.errors }

// NewLoaderMetrics registers the loader metrics with reg (nil: unregistered).
func NewLoaderMetrics(reg prometheus.Registerer) *LoaderMetrics {
	m := &LoaderMetrics{
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cordon_clickhouse_rows_total",
			Help: "Rows inserted, by table (replays count again)."}, []string{"table"}),
		bad: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cordon_clickhouse_bad_records_total",
			Help: "Kafka records skipped because they do not decode, by topic."}, []string{"topic"}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{Name: "cordon_clickhouse_insert_errors_total",
			Help: "Failed batch inserts (the batch is retried until it succeeds)."}),
		batches: prometheus.NewCounter(prometheus.CounterOpts{Name: "cordon_clickhouse_batches_total",
			Help: "Batches inserted and committed."}),
		insert: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "cordon_clickhouse_insert_seconds",
			Help: "Time to insert one batch.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}),
		held: prometheus.NewGauge(prometheus.GaugeOpts{Name: "cordon_clickhouse_held_blocks",
			Help: "Block events waiting for all of their block's rows before they are inserted."}),
		incomplete: prometheus.NewCounter(prometheus.CounterOpts{Name: "cordon_clickhouse_incomplete_blocks_total",
			Help: "Block events inserted after waiting the longest hold (10 minutes) although their rows were not all in ClickHouse."}),
	}
	if reg != nil {
		reg.MustRegister(m.rows, m.bad, m.errors, m.batches, m.insert, m.held, m.incomplete)
	}
	return m
}

// rowIdentity is what identifies a row of each record table within its
// block (replayed copies count once).
var rowIdentity = []struct{ kind, table, id string }{
	{kafka.KindTransaction, "transactions", "hash"},
	{kafka.KindTransfer, "transfers", "tx_hash, log_index"},
	{kafka.KindOutput, "outputs", "tx_hash, vout"},
	{kafka.KindSpend, "spends", "tx_hash, vin"},
}

// rowCounts returns, for each of the blocks of evs (by hash), how many
// distinct rows of each kind ClickHouse holds. The queries name the
// blocks' chain, network and time, so ClickHouse reads only the months
// (partitions) they are in.
func (s *Store) rowCounts(ctx context.Context, evs []chain.BlockEvent) (map[string]map[string]int, error) {
	out := map[string]map[string]int{}
	type group struct {
		hashes   []string
		min, max int64
	}
	groups := map[[2]string]*group{}
	for _, ev := range evs {
		out[ev.Hash] = map[string]int{}
		k := [2]string{string(ev.Chain), ev.Network}
		g := groups[k]
		if g == nil {
			g = &group{min: ev.Time, max: ev.Time}
			groups[k] = g
		}
		g.hashes = append(g.hashes, ev.Hash)
		g.min, g.max = min(g.min, ev.Time), max(g.max, ev.Time)
	}
	for k, g := range groups {
		for hashes := g.hashes; len(hashes) > 0; {
			n := min(len(hashes), 1000)
			list := QuoteList(hashes[:n])
			hashes = hashes[n:]
			for _, t := range rowIdentity {
				rows, err := s.Query(ctx, "SELECT block_hash, uniqExact("+t.id+") FROM "+t.table+
					" WHERE chain = ? AND network = ? AND block_time >= ? AND block_time <= ? AND block_hash IN ("+list+") GROUP BY block_hash",
					k[0], k[1], time.Unix(g.min, 0), time.Unix(g.max, 0))
				if err != nil {
					return nil, fmt.Errorf("count rows of held blocks in %s: %w", t.table, err)
				}
				for rows.Next() {
					var h string
					var c uint64
					if err := rows.Scan(&h, &c); err != nil {
						_ = rows.Close()
						return nil, fmt.Errorf("count rows of held blocks in %s: %w", t.table, err)
					}
					if out[h] != nil {
						out[h][t.kind] = int(c)
					}
				}
				err = rows.Err()
				_ = rows.Close()
				if err != nil {
					return nil, fmt.Errorf("count rows of held blocks in %s: %w", t.table, err)
				}
			}
		}
	}
	return out, nil
}
