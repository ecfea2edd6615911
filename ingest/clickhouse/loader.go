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

// LoaderConfig tunes a Loader.
type LoaderConfig struct {
	Topics kafka.Topics
	// BatchRecords caps the Kafka records of one batch (parts count as
	// one); Linger is how long a batch waits to fill.
	BatchRecords int
	Linger       time.Duration
	// RetryMax caps the wait between retries of a failed insert.
	RetryMax time.Duration
}

// Loader copies the block stream and its records from Kafka into
// ClickHouse. It commits a batch's offsets only after every row of the
// batch is inserted; a crash in between replays the batch, which the
// tables' row identity absorbs.
type Loader struct {
	cfg     LoaderConfig
	store   *Store
	src     Source
	log     *slog.Logger
	metrics *LoaderMetrics
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
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if metrics == nil {
		metrics = NewLoaderMetrics(nil)
	}
	return &Loader{cfg: cfg, store: store, src: src, log: log, metrics: metrics}
}

// Run loads until ctx ends.
func (l *Loader) Run(ctx context.Context) error {
	for {
		msgs, err := l.src.Fetch(ctx, l.cfg.BatchRecords, l.cfg.Linger)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("clickhouse loader: fetch: %w", err)
		}
		b := l.decode(msgs)
		for attempt := 0; ; attempt++ {
			err := l.insert(ctx, b)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			l.metrics.errors.Inc()
			wait := min(time.Duration(1<<min(attempt, 5))*time.Second, l.cfg.RetryMax)
			l.log.Warn("insert into clickhouse failed; retrying the batch", "err", err, "records", len(msgs), "retry_in", wait)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(wait):
			}
		}
		if err := l.src.Commit(ctx, msgs); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			// The rows are in; a replay after this is absorbed.
			l.log.Warn("commit kafka offsets failed; the batch may be replayed", "err", err)
		}
		l.metrics.batches.Inc()
	}
}

// batch is the rows of one Kafka batch, per table.
type batch struct {
	blocks    []chain.BlockEvent
	txs       []chain.Transaction
	transfers []chain.Transfer
	outputs   []chain.Output
	spends    []chain.Spend
	// addresses are address-registry records.
	addresses []addressRow
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
		case m.Topic == t.Transfers:
			b.transfers, err = kafka.AppendItems(b.transfers, parts[i])
		case m.Topic == t.Outputs:
			b.outputs, err = kafka.AppendItems(b.outputs, parts[i])
		case m.Topic == t.Spends:
			b.spends, err = kafka.AppendItems(b.spends, parts[i])
		default:
			err = fmt.Errorf("unexpected topic %s", m.Topic)
		}
		if err != nil {
			l.skip(m, err)
		}
	}
	return b
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
	b.blocks = append(b.blocks, ev)
	return nil
}

func u8(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// insert writes the batch's rows: records first, block events last, so a
// block becomes canonical in the views only once its rows are in.
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
		{"blocks", len(b.blocks), func() columns { return blockColumns(b.blocks) }},
		{"registered_addresses", len(b.addresses), func() columns { return addressColumns(b.addresses) }},
	} {
		if t.n == 0 {
			continue
		}
		if err := l.store.insertColumns(ctx, t.table, t.n, t.cols()); err != nil {
			return err
		}
	}
	l.metrics.rows.WithLabelValues("blocks").Add(float64(len(b.blocks)))
	l.metrics.rows.WithLabelValues("transactions").Add(float64(len(b.txs)))
	l.metrics.rows.WithLabelValues("transfers").Add(float64(len(b.transfers)))
	l.metrics.rows.WithLabelValues("outputs").Add(float64(len(b.outputs)))
	l.metrics.rows.WithLabelValues("spends").Add(float64(len(b.spends)))
	l.metrics.rows.WithLabelValues("registered_addresses").Add(float64(len(b.addresses)))
	l.metrics.total.Add(uint64(len(b.blocks) + len(b.txs) + len(b.transfers) + len(b.outputs) + len(b.spends) + len(b.addresses)))
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
}

// Rows is the number of rows inserted so far (replays included).
func (m *LoaderMetrics) Rows() uint64 { return m.total.Load() }

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
	}
	if reg != nil {
		reg.MustRegister(m.rows, m.bad, m.errors, m.batches, m.insert)
	}
	return m
}
