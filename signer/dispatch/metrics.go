package dispatch

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the dispatcher's Prometheus metrics. A nil *Metrics
// records nothing.
type Metrics struct {
	requested   *prometheus.CounterVec
	withdrawals *prometheus.CounterVec
	moves       *prometheus.CounterVec
	builds      *prometheus.CounterVec
	broadcasts  *prometheus.CounterVec
	mismatches  prometheus.Counter
}

// NewMetrics registers the dispatcher's metrics with reg (nil:
// unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requested: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cordon_dispatch_requests_total",
			Help: "Signing requests written (one transaction each), by chain."}, []string{"chain"}),
		withdrawals: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cordon_dispatch_withdrawals_total",
			Help: "Withdrawals handed to signing, by chain."}, []string{"chain"}),
		moves: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cordon_dispatch_transitions_total",
			Help: "Withdrawals moved on in the signing stage, by chain and new status (signed, broadcast, mined, confirmed, failed)."}, []string{"chain", "status"}),
		builds: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cordon_dispatch_build_failures_total",
			Help: "Transactions that could not be built yet (no spendable outputs, a fee above the cap, a node not answering), by chain."}, []string{"chain"}),
		broadcasts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cordon_dispatch_broadcast_failures_total",
			Help: "Broadcasts no node took, by chain (tried again)."}, []string{"chain"}),
		mismatches: prometheus.NewCounter(prometheus.CounterOpts{Name: "cordon_dispatch_mismatches_total",
			Help: "Signed transactions the signer returned that are not the ones requested (never broadcast)."}),
	}
	if reg != nil {
		reg.MustRegister(m.requested, m.withdrawals, m.moves, m.builds, m.broadcasts, m.mismatches)
	}
	return m
}

func (m *Metrics) requestedTx(chain string, n int) {
	if m != nil {
		m.requested.WithLabelValues(chain).Inc()
		m.withdrawals.WithLabelValues(chain).Add(float64(n))
	}
}

func (m *Metrics) moved(chain, status string, n int) {
	if m != nil {
		m.moves.WithLabelValues(chain, status).Add(float64(n))
	}
}

func (m *Metrics) buildFailed(chain string) {
	if m != nil {
		m.builds.WithLabelValues(chain).Inc()
	}
}

func (m *Metrics) broadcastFailed(chain string) {
	if m != nil {
		m.broadcasts.WithLabelValues(chain).Inc()
	}
}

func (m *Metrics) mismatch() {
	if m != nil {
		m.mismatches.Inc()
	}
}
