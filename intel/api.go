package intel

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cordonhq/cordon/internal/apiauth"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/config"
)

// APIConfig configures the screening endpoint. The config file's api
// section holds its keys; its tokens and bounds are the whole API's.
type APIConfig struct {
	// Tokens are the accepted bearer tokens (secret references).
	Tokens []config.Secret `yaml:"tokens"`
	// MaxBodyBytes and MaxBatch bound one request.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	MaxBatch     int   `yaml:"max_batch"`
}

// ScreenRequest is the body of POST /v1/screen.
type ScreenRequest struct {
	Addresses []ScreenItem `json:"addresses"`
}

// ScreenItem is one address to screen.
type ScreenItem struct {
	Chain chain.Chain `json:"chain"`
	// Network defaults to mainnet.
	Network string `json:"network,omitempty"`
	Address string `json:"address"`
}

// ScreenResponse answers POST /v1/screen, one result per item in order.
type ScreenResponse struct {
	Results []Verdict `json:"results"`
}

type apiError struct {
	Error string `json:"error"`
}

// screenHandler serves POST /v1/screen.
type screenHandler struct {
	cfg     APIConfig
	tokens  *apiauth.Tokens
	store   *Store
	now     func() time.Time
	latency *prometheus.HistogramVec
	items   prometheus.Counter
}

// NewScreenHandler returns the handler of POST /v1/screen over store.
// Metrics are registered with reg (nil: none).
func NewScreenHandler(cfg APIConfig, store *Store, reg prometheus.Registerer) http.Handler {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 1000
	}
	h := &screenHandler{cfg: cfg, store: store, now: time.Now,
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "cordon_api_request_seconds",
			Help: "API request latency, by path and status.", Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}, []string{"path", "code"}),
		items: prometheus.NewCounter(prometheus.CounterOpts{Name: "cordon_screen_addresses_total", Help: "Addresses screened."})}
	h.tokens = apiauth.New(cfg.Tokens)
	if reg != nil {
		reg.MustRegister(h.latency, h.items)
	}
	return h
}

func (h *screenHandler) fail(w http.ResponseWriter, code int, format string, args ...any) int {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(apiError{Error: fmt.Sprintf(format, args...)})
	return code
}

func (h *screenHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	code := h.serve(w, r)
	h.latency.WithLabelValues("/v1/screen", fmt.Sprint(code)).Observe(time.Since(start).Seconds())
}

func (h *screenHandler) serve(w http.ResponseWriter, r *http.Request) int {
	if !h.tokens.OK(r) {
		apiauth.Deny(w)
		return http.StatusUnauthorized
	}
	if !h.store.Ready() {
		w.Header().Set("Retry-After", "1")
		return h.fail(w, http.StatusServiceUnavailable, "the indicator store is still loading")
	}
	var req ScreenRequest
	if code := apiauth.ReadJSON(w, r, h.cfg.MaxBodyBytes, &req); code != 0 {
		return code
	}
	switch n := len(req.Addresses); {
	case n == 0:
		return h.fail(w, http.StatusBadRequest, "addresses: empty")
	case n > h.cfg.MaxBatch:
		return h.fail(w, http.StatusRequestEntityTooLarge, "addresses: %d, at most %d per request", n, h.cfg.MaxBatch)
	}
	now := h.now()
	resp := ScreenResponse{Results: make([]Verdict, len(req.Addresses))}
	for i, it := range req.Addresses {
		network := it.Network
		if network == "" {
			network = "mainnet"
		}
		resp.Results[i] = Screen(h.store.Index, it.Chain, network, it.Address, now)
	}
	h.items.Add(float64(len(req.Addresses)))
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(resp)
	return http.StatusOK
}
