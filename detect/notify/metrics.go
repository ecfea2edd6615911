package notify

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the notifier's Prometheus metrics. A nil *Metrics records
// nothing.
type Metrics struct {
	deliveredN *prometheus.CounterVec
	failuresN  *prometheus.CounterVec
	deadN      *prometheus.CounterVec
	silencedN  *prometheus.CounterVec
	latency    *prometheus.HistogramVec
}

// NewMetrics registers the notifier's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		deliveredN: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cordon_notify_delivered_total",
			Help: "Alerts delivered, by webhook."}, []string{"webhook"}),
		failuresN: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cordon_notify_attempts_failed_total",
			Help: "Delivery attempts that failed (each is retried until the webhook's attempts run out), by webhook."}, []string{"webhook"}),
		deadN: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cordon_notify_dead_letters_total",
			Help: "Alerts written to the dead-letter topic after their last attempt failed, by webhook."}, []string{"webhook"}),
		silencedN: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cordon_notify_silenced_total",
			Help: "Alerts a silence held back, by webhook."}, []string{"webhook"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "cordon_notify_delivery_seconds",
			Help: "Time from a delivery's first attempt to its acknowledgement, by webhook.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}, []string{"webhook"}),
	}
	if reg != nil {
		reg.MustRegister(m.deliveredN, m.failuresN, m.deadN, m.silencedN, m.latency)
	}
	return m
}

func (m *Metrics) delivered(w string, took time.Duration) {
	if m != nil {
		m.deliveredN.WithLabelValues(w).Inc()
		m.latency.WithLabelValues(w).Observe(took.Seconds())
	}
}

func (m *Metrics) failed(w string) {
	if m != nil {
		m.failuresN.WithLabelValues(w).Inc()
	}
}

func (m *Metrics) dead(w string) {
	if m != nil {
		m.deadN.WithLabelValues(w).Inc()
	}
}

func (m *Metrics) silenced(w string) {
	if m != nil {
		m.silencedN.WithLabelValues(w).Inc()
	}
}
