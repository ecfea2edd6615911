package clickhouse

import (
	"context"
	"encoding/json"

	"fmt"
	"log/slog"
	"strconv"
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
		{&cfg.Topics.Transfers, def.Transfers}, {&cfg.Topics.Outputs, def.Outputs}, {&cfg.Topics.Spends, def.Spends}} {
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
}

func (l *Loader) decode(msgs []kafka.Message) *batch {
	b := &batch{}
	for _, m := range msgs {
		if err := l.decodeOne(b, m); err != nil {
			// A record cordon did not write (or a bug): counted and
			// logged, never blocking the rest.
			l.metrics.bad.WithLabelValues(m.Topic).Inc()
			l.log.Error("record skipped", "topic", m.Topic, "partition", m.Partition, "offset", m.Offset, "err", err)
		}
	}
	return b
}

func (l *Loader) decodeOne(b *batch, m kafka.Message) error {
	t := l.cfg.Topics
	if m.Topic == t.Blocks {
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
	part, err := kafka.DecodePart(m.Value)
	if err != nil {
		return err
	}
	switch m.Topic {
	case t.Transactions:
		v, err := kafka.Items[chain.Transaction](part)
		b.txs = append(b.txs, v...)
		return err
	case t.Transfers:
		v, err := kafka.Items[chain.Transfer](part)
		b.transfers = append(b.transfers, v...)
		return err
	case t.Outputs:
		v, err := kafka.Items[chain.Output](part)
		b.outputs = append(b.outputs, v...)
		return err
	case t.Spends:
		v, err := kafka.Items[chain.Spend](part)
		b.spends = append(b.spends, v...)
		return err
	}
	return fmt.Errorf("unexpected topic %s", m.Topic)
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
	if err := l.store.insert(ctx, "transactions", `chain, network, block_number, block_hash, block_time, hash, tx_index, from_address, to_address,
		value, fee, nonce, gas, gas_used, gas_price, tx_type, status, contract_address, method_id, input_size, log_count,
		size, vsize, weight, version, locktime, input_count, output_count, coinbase`, len(b.txs), func(i int) []any {
		t := &b.txs[i]
		var fee *string
		if t.Fee != nil {
			s := t.Fee.String()
			fee = &s
		}
		return []any{string(t.Chain), t.Network, t.BlockHeight, t.BlockHash, time.Unix(t.BlockTime, 0), t.Hash, t.Index, t.From, t.To,
			t.Value.String(), fee, t.Nonce, t.Gas, t.GasUsed, t.GasPrice.String(), t.Type, t.Status, t.ContractAddress, t.MethodID,
			uint32(t.InputSize), uint32(t.LogCount), uint32(t.Size), uint32(t.VSize), uint32(t.Weight), t.Version, t.LockTime,
			uint32(t.InputCount), uint32(t.OutputCount), u8(t.Coinbase)}
	}); err != nil {
		return err
	}
	if err := l.store.insert(ctx, "transfers", `chain, network, block_number, block_hash, block_time, tx_hash, tx_index, log_index,
		asset, standard, from_address, to_address, amount, token_id`, len(b.transfers), func(i int) []any {
		t := &b.transfers[i]
		li := int64(-1)
		if t.LogIndex != nil {
			li = int64(*t.LogIndex)
		}
		return []any{string(t.Chain), t.Network, t.BlockHeight, t.BlockHash, time.Unix(t.BlockTime, 0), t.TxHash, t.TxIndex, li,
			t.Asset, t.Standard, t.From, t.To, t.Amount.String(), t.TokenID}
	}); err != nil {
		return err
	}
	if err := l.store.insert(ctx, "outputs", `chain, network, block_number, block_hash, block_time, tx_hash, tx_index, vout, address,
		script_type, script, amount, coinbase`, len(b.outputs), func(i int) []any {
		o := &b.outputs[i]
		amt, _ := strconv.ParseUint(o.Amount.String(), 10, 64) // satoshi: at most 2.1e15
		return []any{string(o.Chain), o.Network, o.BlockHeight, o.BlockHash, time.Unix(o.BlockTime, 0), o.TxHash, o.TxIndex, o.Vout,
			o.Address, o.ScriptType, o.Script, amt, u8(o.Coinbase)}
	}); err != nil {
		return err
	}
	if err := l.store.insert(ctx, "spends", `chain, network, block_number, block_hash, block_time, tx_hash, tx_index, vin,
		prev_tx_hash, prev_vout, sequence`, len(b.spends), func(i int) []any {
		s := &b.spends[i]
		return []any{string(s.Chain), s.Network, s.BlockHeight, s.BlockHash, time.Unix(s.BlockTime, 0), s.TxHash, s.TxIndex, s.Vin,
			s.PrevTxHash, s.PrevVout, s.Sequence}
	}); err != nil {
		return err
	}
	if err := l.store.insert(ctx, "blocks", `chain, network, height, hash, parent_hash, time, seq, removed,
		tx_count, transfer_count, output_count, spend_count`, len(b.blocks), func(i int) []any {
		e := &b.blocks[i]
		return []any{string(e.Chain), e.Network, e.Height, e.Hash, e.ParentHash, time.Unix(e.Time, 0), e.Seq, u8(e.Type == chain.BlockRemoved),
			uint32(e.TxCount), uint32(e.TransferCount), uint32(e.OutputCount), uint32(e.SpendCount)}
	}); err != nil {
		return err
	}
	l.metrics.rows.WithLabelValues("blocks").Add(float64(len(b.blocks)))
	l.metrics.rows.WithLabelValues("transactions").Add(float64(len(b.txs)))
	l.metrics.rows.WithLabelValues("transfers").Add(float64(len(b.transfers)))
	l.metrics.rows.WithLabelValues("outputs").Add(float64(len(b.outputs)))
	l.metrics.rows.WithLabelValues("spends").Add(float64(len(b.spends)))
	l.metrics.total.Add(uint64(len(b.blocks) + len(b.txs) + len(b.transfers) + len(b.outputs) + len(b.spends)))
	l.metrics.insert.Observe(time.Since(start).Seconds())
	return nil
}

// insert appends n rows (row(i) gives row i's values, in cols order) to
// table in one batch.
func (s *Store) insert(ctx context.Context, table, cols string, n int, row func(int) []any) error {
	if n == 0 {
		return nil
	}
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+table+" ("+cols+")")
	if err != nil {
		return fmt.Errorf("insert into %s: %w", table, err)
	}
	for i := range n {
		if err := b.Append(row(i)...); err != nil {
			_ = b.Abort()
			return fmt.Errorf("insert into %s: row %d: %w", table, i, err)
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
