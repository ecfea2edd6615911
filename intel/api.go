package intel

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cordonhq/cordon/internal/apiauth"
	"github.com/cordonhq/cordon/internal/chain"
)

// APIConfig bounds one request of the screening endpoint. The config
// file's api section holds its keys, the whole API's bounds.
type APIConfig struct {
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
	Results []ScreenResult `json:"results"`
}

// ScreenResult is one address's verdict. For a token without the
// screen:details scope, the matches of TLP:AMBER, TLP:AMBER+STRICT and
// TLP:RED indicators are not in Matches but in Withheld, as their category
// and marking only: their id, source and validity are not told. The
// verdict, category and confidence still count every match.
type ScreenResult struct {
	Verdict
	Withheld []Withheld `json:"withheld,omitempty"`
}

// Withheld is a match whose details the token may not see.
type Withheld struct {
	Category string `json:"category"`
	TLP      TLP    `json:"tlp"`
}

// Restricted tells whether a marking limits sharing to the recipient's
// organisation or narrower (amber, amber+strict, red): what an
// integration's token does not get the details of.
func (t TLP) Restricted() bool { return t == TLPAmber || t == TLPAmberStrict || t == TLPRed }

// result is v as who may see it.
func result(v Verdict, who apiauth.Principal) ScreenResult {
	if who.Has(apiauth.ScreenDetails) || !slices.ContainsFunc(v.Matches, func(m Match) bool { return m.TLP.Restricted() }) {
		return ScreenResult{Verdict: v}
	}
	r := ScreenResult{Verdict: v}
	r.Matches = make([]Match, 0, len(v.Matches))
	for _, m := range v.Matches {
		if m.TLP.Restricted() {
			r.Withheld = append(r.Withheld, Withheld{Category: m.Category, TLP: m.TLP})
			continue
		}
		r.Matches = append(r.Matches, m)
	}
	return r
}

// Endpoint is the route of the screening API.
const Endpoint = "/v1/screen"

type apiError struct {
	Error string `json:"error"`
}

// screenHandler serves POST /v1/screen.
type screenHandler struct {
	cfg     APIConfig
	auth    *apiauth.Auth
	store   *Store
	now     func() time.Time
	latency *prometheus.HistogramVec
	items   prometheus.Counter
}

// NewScreenHandler returns the handler of POST /v1/screen over store, for
// tokens with the screen scope (details of restricted indicators with
// screen:details). Metrics are registered with reg (nil: none).
func NewScreenHandler(cfg APIConfig, auth *apiauth.Auth, store *Store, reg prometheus.Registerer) http.Handler {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 1000
	}
	h := &screenHandler{cfg: cfg, auth: auth, store: store, now: time.Now,
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "cordon_api_request_seconds",
			Help: "API request latency, by path and status.", Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}, []string{"path", "code"}),
		items: prometheus.NewCounter(prometheus.CounterOpts{Name: "cordon_screen_addresses_total", Help: "Addresses screened."})}
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
	h.latency.WithLabelValues(Endpoint, fmt.Sprint(code)).Observe(time.Since(start).Seconds())
}

func (h *screenHandler) serve(w http.ResponseWriter, r *http.Request) int {
	who, code := h.auth.Require(w, r, Endpoint, apiauth.Screen)
	if code != 0 {
		return code
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
	resp := ScreenResponse{Results: make([]ScreenResult, len(req.Addresses))}
	for i, it := range req.Addresses {
		network := it.Network
		if network == "" {
			network = "mainnet"
		}
		resp.Results[i] = result(Screen(h.store.Index, it.Chain, network, it.Address, now), who)
	}
	h.items.Add(float64(len(req.Addresses)))
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(resp)
	return http.StatusOK
}
