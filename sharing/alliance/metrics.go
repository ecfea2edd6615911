package alliance

import (
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are partner sharing's metrics, per partner.
type Metrics struct {
	receivedC   *prometheus.CounterVec
	refusedC    *prometheus.CounterVec
	publishedC  prometheus.Counter
	pushes      *prometheus.CounterVec
	pulls       *prometheus.CounterVec
	lastSync    *prometheus.GaugeVec
	lag         *prometheus.GaugeVec
	sightings   *prometheus.CounterVec
	sightingsIn *prometheus.CounterVec
}

// NewMetrics registers the metrics with reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		receivedC: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cordon_sharing_objects_received_total",
			Help: "Partners' objects taken, by partner (who sent it) and result (accepted, duplicate)."}, []string{"partner", "result"}),
		refusedC: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cordon_sharing_objects_refused_total",
			Help: "Partners' objects refused, by partner and reason (malformed, type, future, signature, relay, own, owner, stale, conflict, value, not_stored)."},
			[]string{"partner", "reason"}),
		publishedC: prometheus.NewCounter(prometheus.CounterOpts{Name: "cordon_sharing_published_total",
			Help: "Objects we published (new versions, revocations included)."}),
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cordon_sharing_pushes_total",
			Help: "Urgent posts to partners, by partner and result (ok, failed)."}, []string{"partner", "result"}),
		pulls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cordon_sharing_pulls_total",
			Help: "Pages requested from partners' collections, by partner and result (ok, failed, rate_limited)."}, []string{"partner", "result"}),
		lastSync: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cordon_sharing_last_sync_timestamp_seconds",
			Help: "When a pull from the partner last succeeded (Unix seconds)."}, []string{"partner"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cordon_sharing_lag_seconds",
			Help: "From the partner adding its newest object we took to our taking it."}, []string{"partner"}),
		sightings: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cordon_sharing_sightings_sent_total",
			Help: "Sightings of partners' indicators posted back to them, by partner, what matched (deposit, withdrawal) and result (sent, failed: posted again later)."},
			[]string{"partner", "of", "result"}),
		sightingsIn: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cordon_sharing_sightings_received_total",
			Help: "Partners' sightings of our indicators, by partner."}, []string{"partner"}),
	}
	if reg != nil {
		reg.MustRegister(m.receivedC, m.refusedC, m.publishedC, m.pushes, m.pulls, m.lastSync, m.lag, m.sightings, m.sightingsIn)
	}
	return m
}

func (m *Metrics) received(partner, result string) {
	m.receivedC.WithLabelValues(partner, result).Inc()
}
func (m *Metrics) refused(partner, reason string) { m.refusedC.WithLabelValues(partner, reason).Inc() }
func (m *Metrics) published(n int)                { m.publishedC.Add(float64(n)) }

// PartnerStats is what `cordon share partners` shows of one partner.
type PartnerStats struct {
	Partner   string    `json:"partner"`
	LastSync  time.Time `json:"last_sync,omitzero"`
	Lag       float64   `json:"lag_seconds"`
	Received  int64     `json:"received"`
	Duplicate int64     `json:"duplicates"`
	Refused   int64     `json:"refused"`
	Pushed    int64     `json:"pushed"`
	PushFail  int64     `json:"push_failures"`
	LastError string    `json:"last_error,omitempty"`
}

type stats struct {
	mu sync.Mutex
	by map[string]*PartnerStats
}

func newStats() *stats { return &stats{by: map[string]*PartnerStats{}} }

func (s *stats) get(p string) *PartnerStats {
	e := s.by[p]
	if e == nil {
		e = &PartnerStats{Partner: p}
		s.by[p] = e
	}
	return e
}

func (s *stats) add(p string, received, dup, refused int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.get(p)
	e.Received += received
	e.Duplicate += dup
	e.Refused += refused
}

func (s *stats) update(p string, f func(*PartnerStats)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s.get(p))
}

// Stats are every partner's figures, by name.
func (s *Service) Stats(partners []string) []PartnerStats {
	s.stats.mu.Lock()
	defer s.stats.mu.Unlock()
	for _, p := range partners {
		s.stats.get(p)
	}
	out := make([]PartnerStats, 0, len(s.stats.by))
	for _, e := range s.stats.by {
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Partner < out[j].Partner })
	return out
}
