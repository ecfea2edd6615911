package live

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cordonhq/cordon/detect/incident"
	"github.com/cordonhq/cordon/internal/chain"
)

// Metrics are detection's Prometheus metrics. A nil *Metrics records
// nothing.
type Metrics struct {
	alerts    *prometheus.CounterVec
	retracted prometheus.Counter
	blocks    *prometheus.CounterVec
	commit    prometheus.Histogram
	restore   prometheus.Gauge
	celErrors prometheus.Gauge
	incEvents *prometheus.CounterVec
}

// NewMetrics registers detection's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cordon_detect_alerts_total",
			Help: "Alerts raised by detection's rules, by rule and severity."}, []string{"rule", "severity"}),
		retracted: prometheus.NewCounter(prometheus.CounterOpts{Name: "cordon_detect_alerts_retracted_total",
			Help: "Alerts retracted because their block left the canonical chain."}),
		blocks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cordon_detect_blocks_total",
			Help: "Blocks the rules were evaluated on, by chain."}, []string{"chain"}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "cordon_detect_commit_seconds",
			Help: "Time to write and commit one round's Kafka transaction (alerts, state, positions).", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		restore: prometheus.NewGauge(prometheus.GaugeOpts{Name: "cordon_detect_restore_seconds",
			Help: "Time the last start took to restore detection's state."}),
		celErrors: prometheus.NewGauge(prometheus.GaugeOpts{Name: "cordon_detect_custom_rule_errors",
			Help: "Evaluations of operators' custom rules that failed since the start (a failing evaluation raises nothing)."}),
		incEvents: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cordon_detect_incident_events_total",
			Help: "Incident events detection wrote, by type (opened: an incident opened on a severe alert; alert: an alert joined one; retracted)."}, []string{"type"}),
	}
	if reg != nil {
		reg.MustRegister(m.alerts, m.retracted, m.blocks, m.commit, m.restore, m.celErrors, m.incEvents)
	}
	return m
}

func (m *Metrics) block(c chain.Chain) {
	if m != nil {
		m.blocks.WithLabelValues(string(c)).Inc()
	}
}

func (m *Metrics) restored(took time.Duration) {
	if m != nil {
		m.restore.Set(took.Seconds())
	}
}

func (m *Metrics) committed(alerts []chain.Alert, took time.Duration, celErrors int) {
	if m == nil {
		return
	}
	m.commit.Observe(took.Seconds())
	m.celErrors.Set(float64(celErrors))
	for _, a := range alerts {
		if a.Type == "containment" {
			continue
		}
		if a.Retracted {
			m.retracted.Inc()
		} else {
			m.alerts.WithLabelValues(a.Rule, a.Severity).Inc()
		}
	}
}

func (m *Metrics) incidents(events []incident.Event) {
	if m == nil {
		return
	}
	for _, e := range events {
		m.incEvents.WithLabelValues(e.Type).Inc()
	}
}
