package follow

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cordonhq/cordon/internal/chain"
)

// Metrics are the Follower's Prometheus metrics, labelled by chain and
// network. A nil *Metrics records nothing.
type Metrics struct {
	head         *prometheus.GaugeVec
	height       *prometheus.GaugeVec
	blocks       *prometheus.CounterVec
	removed      *prometheus.CounterVec
	txs          *prometheus.CounterVec
	transfers    *prometheus.CounterVec
	reorgs       *prometheus.CounterVec
	reorgDepth   *prometheus.HistogramVec
	tooDeep      *prometheus.CounterVec
	fetchErrors  *prometheus.CounterVec
	publishTime  *prometheus.HistogramVec
	lastBlockAge *prometheus.GaugeVec
}

// NewMetrics registers the Follower metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	l := []string{"chain", "network"}
	m := &Metrics{
		head: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cordon_watcher_node_head_height",
			Help: "Best block height reported by the node."}, l),
		height: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cordon_watcher_published_height",
			Help: "Height of the newest block published."}, l),
		blocks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cordon_watcher_blocks_added_total",
			Help: "block_added events published."}, l),
		removed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cordon_watcher_blocks_removed_total",
			Help: "block_removed events published."}, l),
		txs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cordon_watcher_transactions_total",
			Help: "Transactions of published blocks."}, l),
		transfers: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cordon_watcher_transfers_total",
			Help: "Transfers (Ethereum) or outputs (Bitcoin) of published blocks."}, l),
		reorgs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cordon_watcher_reorgs_total",
			Help: "Reorganizations followed."}, l),
		reorgDepth: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "cordon_watcher_reorg_depth_blocks",
			Help: "Blocks removed per reorganization.", Buckets: []float64{1, 2, 3, 5, 8, 13, 21, 34, 64}}, l),
		tooDeep: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cordon_watcher_reorg_too_deep_total",
			Help: "Reorganizations refused as deeper than max_reorg_depth (the watcher stops)."}, l),
		fetchErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cordon_watcher_fetch_errors_total",
			Help: "Failed block fetches (retried)."}, l),
		publishTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "cordon_watcher_publish_seconds",
			Help: "Time for the sink to acknowledge one batch.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}, l),
		lastBlockAge: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cordon_watcher_published_block_time_seconds",
			Help: "Timestamp (Unix seconds) of the newest published block."}, l),
	}
	if reg != nil {
		reg.MustRegister(m.head, m.height, m.blocks, m.removed, m.txs, m.transfers, m.reorgs, m.reorgDepth,
			m.tooDeep, m.fetchErrors, m.publishTime, m.lastBlockAge)
	}
	return m
}

func (m *Metrics) observeHead(c Config, head uint64) {
	if m == nil {
		return
	}
	m.head.WithLabelValues(string(c.Chain), c.Network).Set(float64(head))
}

func (m *Metrics) observePublish(c Config, batch []chain.Update, d time.Duration) {
	if m == nil || len(batch) == 0 {
		return
	}
	l := []string{string(c.Chain), c.Network}
	var txs, transfers int
	for _, u := range batch {
		if u.Block != nil {
			txs += len(u.Block.Transactions)
			transfers += len(u.Block.Transfers) + len(u.Block.Outputs)
		}
	}
	last := batch[len(batch)-1].Event
	m.blocks.WithLabelValues(l...).Add(float64(len(batch)))
	m.txs.WithLabelValues(l...).Add(float64(txs))
	m.transfers.WithLabelValues(l...).Add(float64(transfers))
	m.height.WithLabelValues(l...).Set(float64(last.Height))
	m.lastBlockAge.WithLabelValues(l...).Set(float64(last.Time))
	m.publishTime.WithLabelValues(l...).Observe(d.Seconds())
}

func (m *Metrics) observeReorg(c Config, depth int, fork uint64) {
	if m == nil {
		return
	}
	l := []string{string(c.Chain), c.Network}
	m.height.WithLabelValues(l...).Set(float64(fork))
	m.reorgs.WithLabelValues(l...).Inc()
	m.removed.WithLabelValues(l...).Add(float64(depth))
	m.reorgDepth.WithLabelValues(l...).Observe(float64(depth))
}

func (m *Metrics) reorgTooDeep(c Config) {
	if m == nil {
		return
	}
	m.tooDeep.WithLabelValues(string(c.Chain), c.Network).Inc()
}

func (m *Metrics) fetchError(c Config) {
	if m == nil {
		return
	}
	m.fetchErrors.WithLabelValues(string(c.Chain), c.Network).Inc()
}
