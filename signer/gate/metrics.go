package gate

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the gate's Prometheus metrics.
type Metrics struct {
	withdrawals *prometheus.GaugeVec
	changes     prometheus.Counter
	commit      prometheus.Histogram
	refused     *prometheus.CounterVec
}

// NewMetrics registers the gate's metrics with reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		withdrawals: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cordon_gate_withdrawals",
			Help: "Withdrawals the gate holds, by status."}, []string{"status"}),
		changes: prometheus.NewCounter(prometheus.CounterOpts{Name: "cordon_gate_changes_total",
			Help: "Withdrawal state changes committed."}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "cordon_gate_commit_seconds",
			Help: "Time to commit one batch of the gate's changes to Kafka.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cordon_gate_refused_total",
			Help: "Requests, approvals and breaker operations the gate refused, by code."}, []string{"code"}),
	}
	if reg != nil {
		reg.MustRegister(m.withdrawals, m.changes, m.commit, m.refused)
	}
	return m
}

func (m *Metrics) setCounts(n map[string]int) {
	if m == nil {
		return
	}
	for _, s := range Statuses {
		m.withdrawals.WithLabelValues(s).Set(float64(n[s]))
	}
}

func (m *Metrics) committed(ch Changes, took time.Duration) {
	if m == nil {
		return
	}
	m.changes.Add(float64(len(ch.Withdrawals)))
	m.commit.Observe(took.Seconds())
}

// Refused counts a refusal by its code.
func (m *Metrics) Refused(code string) {
	if m != nil {
		m.refused.WithLabelValues(code).Inc()
	}
}
