package credit

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the crediting service's Prometheus metrics. A nil *Metrics
// records nothing.
type Metrics struct {
	events    *prometheus.CounterVec
	deposits  *prometheus.GaugeVec
	decisions *prometheus.CounterVec
	commit    prometheus.Histogram
	rounds    prometheus.Counter
	restore   prometheus.Gauge
	confirms  *prometheus.CounterVec
	ask       prometheus.Histogram
}

// NewMetrics registers the crediting metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cordon_credit_events_total",
			Help: "Deposit events committed to the deposits topic, by status."}, []string{"status"}),
		deposits: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cordon_credit_deposits",
			Help: "Deposits known to the crediting engine, by current status."}, []string{"status"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cordon_credit_decisions_total",
			Help: "Operator decisions read, by result (release, reject, refused, unreadable)."}, []string{"result"}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "cordon_credit_commit_seconds",
			Help: "Time to write and commit one round's Kafka transaction.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		rounds: prometheus.NewCounter(prometheus.CounterOpts{Name: "cordon_credit_rounds_total",
			Help: "Rounds committed (each one Kafka transaction: deposit events, alerts and the checkpoint)."}),
		restore: prometheus.NewGauge(prometheus.GaugeOpts{Name: "cordon_credit_restore_seconds",
			Help: "Time the last start took to rebuild the engine from the deposits topic."}),
		confirms: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cordon_credit_confirmations_total",
			Help: "Deposits at confirmation depth checked with the chain's endpoints, by outcome (confirmed, unconfirmed: waits, disputed: held, deferred: the round's time for asking ran out, asked at the stream's next block)."},
			[]string{"outcome"}),
		ask: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "cordon_credit_quorum_seconds",
			Help: "Time to ask every endpoint of a chain which block is at a deposit's height.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
	}
	if reg != nil {
		reg.MustRegister(m.events, m.deposits, m.decisions, m.commit, m.rounds, m.restore, m.confirms, m.ask)
	}
	return m
}

func (m *Metrics) decision(result string) {
	if m != nil {
		m.decisions.WithLabelValues(result).Inc()
	}
}

func (m *Metrics) committed(events []DepositEvent, took time.Duration) {
	if m == nil {
		return
	}
	m.rounds.Inc()
	m.commit.Observe(took.Seconds())
	for i := range events {
		m.events.WithLabelValues(events[i].Status).Inc()
	}
}

func (m *Metrics) restored(took time.Duration) {
	if m != nil {
		m.restore.Set(took.Seconds())
	}
}

func (m *Metrics) setCounts(c map[string]int) {
	if m == nil {
		return
	}
	for _, st := range []string{StatusPending, StatusCredited, StatusHeld, StatusReleased, StatusRejected, StatusDropped, StatusReverted,
		StatusDust, StatusUnknown} {
		m.deposits.WithLabelValues(st).Set(float64(c[st]))
	}
}

func (m *Metrics) confirmation(outcome int) {
	if m != nil {
		m.confirms.WithLabelValues([]string{"confirmed", "unconfirmed", "disputed"}[outcome]).Inc()
	}
}

func (m *Metrics) deferredConfirmation() {
	if m != nil {
		m.confirms.WithLabelValues("deferred").Inc()
	}
}

func (m *Metrics) asked(took time.Duration) {
	if m != nil {
		m.ask.Observe(took.Seconds())
	}
}
