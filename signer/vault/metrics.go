package vault

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the signer's Prometheus metrics.
type Metrics struct {
	admitted *prometheus.CounterVec
	signed   *prometheus.CounterVec
	refused  *prometheus.CounterVec
	retried  prometheus.Counter
	trips    prometheus.Gauge
	tripped  prometheus.Counter
	signing  prometheus.Histogram
}

// NewMetrics registers the signer's metrics with reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		admitted: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cordon_signer_admitted_total",
			Help: "Signing requests the signer admitted (recorded as signing), by chain."}, []string{"chain"}),
		signed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cordon_signer_signed_total",
			Help: "Admitted requests that ended, by chain and status (signed, failed)."}, []string{"chain", "status"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cordon_signer_refused_total",
			Help: "Signing requests the signer refused, by code (quorum, destination, amount, limit, ...; request: unreadable)."}, []string{"code"}),
		retried: prometheus.NewCounter(prometheus.CounterOpts{Name: "cordon_signer_retried_total",
			Help: "Signings that did not finish (a plugin did not answer) and wait to be tried again."}),
		trips: prometheus.NewGauge(prometheus.GaugeOpts{Name: "cordon_signer_breaker_trips",
			Help: "Open trips of the signer's breaker (restored at start)."}),
		tripped: prometheus.NewCounter(prometheus.CounterOpts{Name: "cordon_signer_breaker_tripped_total",
			Help: "Times the signer's breaker tripped."}),
		signing: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "cordon_signer_signing_seconds",
			Help: "Time from asking the plugins to the assembled, verified transaction.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
	}
	if reg != nil {
		reg.MustRegister(m.admitted, m.signed, m.refused, m.retried, m.trips, m.tripped, m.signing)
	}
	return m
}

func (m *Metrics) admittedOne(c string) {
	if m != nil {
		m.admitted.WithLabelValues(c).Inc()
	}
}

func (m *Metrics) signedOne(e *Entry, took time.Duration) {
	if m != nil {
		m.signed.WithLabelValues(e.Request.Chain, e.Status).Inc()
		m.signing.Observe(took.Seconds())
	}
}

func (m *Metrics) refusedOne(code string) {
	if m != nil {
		m.refused.WithLabelValues(code).Inc()
	}
}

func (m *Metrics) retriedOne() {
	if m != nil {
		m.retried.Inc()
	}
}

func (m *Metrics) trippedOne() {
	if m != nil {
		m.tripped.Inc()
		m.trips.Inc()
	}
}

func (m *Metrics) setTrips(n int) {
	if m != nil {
		m.trips.Set(float64(n))
	}
}
