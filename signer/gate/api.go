package gate

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cordonhq/cordon/internal/apiauth"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/signer/intent"
	"github.com/cordonhq/cordon/signer/risk"
)

// The gate's endpoints.
const (
	WithdrawalsEndpoint = "/v1/withdrawals"
	DryRunEndpoint      = "/v1/withdrawals:dry-run"
	BreakerEndpoint     = "/v1/breaker"
	BookEndpoint        = "/v1/addressbook"
	LeaderEndpoint      = "/v1/gate/leader"
)

// API is the gate's HTTP API.
type API struct {
	Auth    *apiauth.Auth
	Service *Service
	Assets  Assets
	// MaxList bounds a list (default 1000).
	MaxList int
}

// Handle mounts the gate's endpoints on mux.
func (a *API) Handle(mux *http.ServeMux) {
	if a.MaxList <= 0 {
		a.MaxList = 1000
	}
	mux.HandleFunc("POST "+WithdrawalsEndpoint, a.request)
	mux.HandleFunc("POST "+DryRunEndpoint, a.dryRun)
	mux.HandleFunc("GET "+WithdrawalsEndpoint, a.list)
	mux.HandleFunc("GET "+WithdrawalsEndpoint+"/{id}", a.get)
	mux.HandleFunc("POST "+WithdrawalsEndpoint+"/{id}/approvals", a.signed(WithdrawalsEndpoint+"/{id}/approvals",
		func(c *Core, id string, ap intent.Approval, now time.Time) (any, error) {
			return c.Approve(id, ap, now)
		}))
	mux.HandleFunc("POST "+BreakerEndpoint, a.trip)
	mux.HandleFunc("GET "+BreakerEndpoint, a.trips)
	mux.HandleFunc("POST "+BreakerEndpoint+"/{id}/resets", a.signed(BreakerEndpoint+"/{id}/resets",
		func(c *Core, id string, ap intent.Approval, now time.Time) (any, error) {
			t, done, err := c.Reset(id, ap, now)
			return ResetAnswer{Trip: t, Reset: done}, err
		}))
	mux.HandleFunc("POST "+BookEndpoint, a.propose)
	mux.HandleFunc("GET "+BookEndpoint, a.book)
	mux.HandleFunc("POST "+BookEndpoint+"/{id}/approvals", a.signed(BookEndpoint+"/{id}/approvals",
		func(c *Core, id string, ap intent.Approval, now time.Time) (any, error) {
			return c.ApproveEntry(id, ap, now)
		}))
	mux.HandleFunc("POST "+BookEndpoint+"/{id}/removal", a.removeEntry)
	mux.HandleFunc("GET "+LeaderEndpoint, a.leader)
}

// LeaderAnswer is GET /v1/gate/leader's body.
type LeaderAnswer struct {
	Leader bool `json:"leader"`
}

// leader answers 200 on the instance that leads the gate and 503 on a
// standby, without a token (it tells only that), so a load balancer's
// health check routes the gate's requests to the leader.
func (a *API) leader(w http.ResponseWriter, _ *http.Request) {
	if a.Service.Leader() {
		apiauth.WriteJSON(w, http.StatusOK, LeaderAnswer{Leader: true})
		return
	}
	apiauth.WriteJSON(w, http.StatusServiceUnavailable, LeaderAnswer{})
}

// propose adds an address-book entry (scope withdraw: the exchange adds
// its customers' destinations; operators too): it counts only after a
// quorum of approvers and the time lock.
func (a *API) propose(w http.ResponseWriter, r *http.Request) {
	if !a.readScope(w, r, BookEndpoint) {
		return
	}
	who, _ := a.Auth.Authenticate(r)
	var q EntryRequest
	if apiauth.ReadJSON(w, r, 4096, &q) != 0 {
		return
	}
	v, err := a.Service.do(r.Context(), func(c *Core, now time.Time) (any, error) { return c.Propose(q, who.Name, now) })
	if err != nil {
		a.fail(w, err)
		return
	}
	apiauth.WriteJSON(w, http.StatusCreated, v)
}

func (a *API) removeEntry(w http.ResponseWriter, r *http.Request) {
	if !a.readScope(w, r, BookEndpoint+"/{id}/removal") {
		return
	}
	who, _ := a.Auth.Authenticate(r)
	var q RemoveRequest
	if apiauth.ReadJSON(w, r, 4096, &q) != 0 {
		return
	}
	id := r.PathValue("id")
	v, err := a.Service.do(r.Context(), func(c *Core, now time.Time) (any, error) { return c.RemoveEntry(id, q, who.Name, now) })
	if err != nil {
		a.fail(w, err)
		return
	}
	apiauth.WriteJSON(w, http.StatusOK, v)
}

func (a *API) book(w http.ResponseWriter, r *http.Request) {
	if !a.readScope(w, r, BookEndpoint) {
		return
	}
	account := r.URL.Query().Get("account")
	v, err := a.Service.do(r.Context(), func(c *Core, _ time.Time) (any, error) { return map[string]any{"entries": c.Entries(account)}, nil })
	if err != nil {
		a.fail(w, err)
		return
	}
	apiauth.WriteJSON(w, http.StatusOK, v)
}

// signed is an endpoint taking one approver's signed approval (scope
// approve: the token carries it, the signature counts) of the thing
// named by the path's id, applied in the leader's loop.
func (a *API) signed(endpoint string, apply func(c *Core, id string, ap intent.Approval, now time.Time) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if _, code := a.Auth.Require(w, r, endpoint, apiauth.Approve); code != 0 {
			return
		}
		ap, err := intent.DecodeApproval(http.MaxBytesReader(w, r.Body, intent.MaxApprovalBytes+1))
		if err != nil {
			a.fail(w, refuse(http.StatusBadRequest, "bad_approval", "%v", err))
			return
		}
		id := r.PathValue("id")
		v, err := a.Service.do(r.Context(), func(c *Core, now time.Time) (any, error) { return apply(c, id, ap, now) })
		if err != nil {
			a.fail(w, err)
			return
		}
		apiauth.WriteJSON(w, http.StatusOK, v)
	}
}

// fail answers err: a Refusal with its status and code, anything else 500.
func (a *API) fail(w http.ResponseWriter, err error) {
	var rf *Refusal
	if errors.As(err, &rf) {
		a.Service.cfg.Metrics.Refused(rf.Code)
		apiauth.WriteJSON(w, rf.Status, map[string]string{"error": rf.Reason, "code": rf.Code})
		return
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		apiauth.WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "the request ended before the gate answered", "code": "timeout"})
		return
	}
	a.Service.cfg.Log.Error("gate: request failed", "err", err)
	apiauth.WriteJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error(), "code": "internal"})
}

func (a *API) body(w http.ResponseWriter, r *http.Request) (Request, string, bool) {
	if mt := strings.TrimSpace(strings.Split(r.Header.Get("Content-Type"), ";")[0]); mt != "application/json" {
		apiauth.WriteJSON(w, http.StatusUnsupportedMediaType, map[string]string{"error": "send Content-Type: application/json", "code": "bad_request"})
		return Request{}, "", false
	}
	q, h, err := DecodeRequest(http.MaxBytesReader(w, r.Body, MaxRequestBytes+1), a.Assets)
	if err != nil {
		a.Service.cfg.Metrics.Refused("bad_request")
		apiauth.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error(), "code": "bad_request"})
		return Request{}, "", false
	}
	return q, h, true
}

// Accepted is the answer to POST /v1/withdrawals.
type Accepted struct {
	ID         string `json:"id"`
	Request    string `json:"request"`
	Status     string `json:"status"`
	Reason     string `json:"reason"`
	Rule       string `json:"rule"`
	IntentHash string `json:"intent_hash"`
	Needs      string `json:"needs,omitempty"`
	// Repeated is set when the same request was already taken.
	Repeated bool `json:"repeated,omitempty"`
}

func (a *API) request(w http.ResponseWriter, r *http.Request) {
	who, code := a.Auth.Require(w, r, WithdrawalsEndpoint, apiauth.Withdraw)
	if code != 0 {
		return
	}
	q, h, ok := a.body(w, r)
	if !ok {
		return
	}
	// Warm the risk layer's lookups (counterparties from ClickHouse)
	// here, outside the gate's one loop, so the loop's assessment is a
	// cache hit.
	if c := a.Service.core.Load(); c != nil {
		c.Risk.Warm(r.Context(), chain.Chain(q.Chain), q.Network, q.Destination)
	}
	v, err := a.Service.do(r.Context(), func(c *Core, now time.Time) (any, error) {
		// The loop does no I/O: the counterparties are what the warm-up
		// above found (a miss is counterparties_unknown, at once).
		wd, created, err := c.Request(risk.CacheOnly(r.Context()), &q, h, who.Name, now)
		if err != nil {
			return nil, err
		}
		return Accepted{ID: wd.Intent.ID, Request: wd.Intent.Request, Status: wd.Status, Reason: wd.Reason, Rule: wd.Decision.Rule,
			IntentHash: wd.Hash, Needs: wd.Needs, Repeated: !created}, nil
	})
	if err != nil {
		a.fail(w, err)
		return
	}
	apiauth.WriteJSON(w, http.StatusAccepted, v)
}

func (a *API) dryRun(w http.ResponseWriter, r *http.Request) {
	who, code := a.Auth.Require(w, r, DryRunEndpoint, apiauth.Withdraw)
	if code != 0 {
		return
	}
	q, _, ok := a.body(w, r)
	if !ok {
		return
	}
	c := a.Service.core.Load()
	if c == nil || !a.Service.Leader() {
		a.fail(w, &Refusal{Status: http.StatusServiceUnavailable, Code: "not_leader", Reason: ErrNotLeader.Error()})
		return
	}
	// The risk layer and the policy are safe for concurrent reads, and a
	// dry run changes nothing: it runs here, not in the loop.
	as, err := c.Assess(r.Context(), &q, who.Name, a.Service.cfg.Clock.Now())
	if err != nil {
		a.fail(w, err)
		return
	}
	apiauth.WriteJSON(w, http.StatusOK, as)
}

func (a *API) readScope(w http.ResponseWriter, r *http.Request, endpoint string) bool {
	who, ok := a.Auth.Authenticate(r)
	if ok && (who.Has(apiauth.Withdraw) || who.Has(apiauth.Approve)) {
		return true
	}
	_, code := a.Auth.Require(w, r, endpoint, apiauth.Withdraw)
	return code == 0
}

func (a *API) get(w http.ResponseWriter, r *http.Request) {
	if !a.readScope(w, r, WithdrawalsEndpoint) {
		return
	}
	id := r.PathValue("id")
	v, err := a.Service.do(r.Context(), func(c *Core, _ time.Time) (any, error) {
		wd, ok := c.Get(id)
		if !ok {
			return nil, refuse(http.StatusNotFound, "not_found", "no withdrawal %s", trunc(id))
		}
		return wd, nil
	})
	if err != nil {
		a.fail(w, err)
		return
	}
	apiauth.WriteJSON(w, http.StatusOK, v)
}

func (a *API) list(w http.ResponseWriter, r *http.Request) {
	if !a.readScope(w, r, WithdrawalsEndpoint) {
		return
	}
	f := r.URL.Query()
	status, account, ch, request := f.Get("status"), f.Get("account"), f.Get("chain"), f.Get("request")
	limit := a.MaxList
	if s := f.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			apiauth.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "limit: want a positive integer", "code": "bad_request"})
			return
		}
		limit = min(n, a.MaxList)
	}
	v, err := a.Service.do(r.Context(), func(c *Core, _ time.Time) (any, error) {
		return c.List(func(wd *Withdrawal) bool {
			return (status == "" || wd.Status == status) && (account == "" || wd.Intent.Account == account) &&
				(ch == "" || wd.Intent.Chain == ch) && (request == "" || wd.Intent.Request == request)
		}, limit), nil
	})
	if err != nil {
		a.fail(w, err)
		return
	}
	apiauth.WriteJSON(w, http.StatusOK, map[string]any{"withdrawals": v})
}

// TripRequest is the body of POST /v1/breaker.
type TripRequest struct {
	Scope   string `json:"scope"`
	Chain   string `json:"chain,omitempty"`
	Network string `json:"network,omitempty"`
	Asset   string `json:"asset,omitempty"`
	Reason  string `json:"reason"`
}

func (a *API) trip(w http.ResponseWriter, r *http.Request) {
	who, code := a.Auth.Require(w, r, BreakerEndpoint, apiauth.Breaker)
	if code != 0 {
		return
	}
	var q TripRequest
	if apiauth.ReadJSON(w, r, 4096, &q) != 0 {
		return
	}
	t := Trip{Scope: q.Scope, Chain: strings.ToLower(q.Chain), Network: strings.ToLower(q.Network), Asset: q.Asset, Reason: q.Reason, By: who.Name}
	if t.Asset != "" && !strings.EqualFold(t.Asset, intent.Native) {
		t.Asset = strings.ToLower(t.Asset)
	} else if t.Asset != "" {
		t.Asset = intent.Native
	}
	v, err := a.Service.do(r.Context(), func(c *Core, now time.Time) (any, error) { return c.Trip(t, now) })
	if err != nil {
		a.fail(w, err)
		return
	}
	apiauth.WriteJSON(w, http.StatusCreated, v)
}

func (a *API) trips(w http.ResponseWriter, r *http.Request) {
	who, ok := a.Auth.Authenticate(r)
	if !ok || (!who.Has(apiauth.Breaker) && !who.Has(apiauth.Withdraw) && !who.Has(apiauth.Approve)) {
		if _, code := a.Auth.Require(w, r, BreakerEndpoint, apiauth.Breaker); code != 0 {
			return
		}
	}
	v, err := a.Service.do(r.Context(), func(c *Core, _ time.Time) (any, error) { return map[string]any{"trips": c.Trips()}, nil })
	if err != nil {
		a.fail(w, err)
		return
	}
	apiauth.WriteJSON(w, http.StatusOK, v)
}

// ResetAnswer is the answer to a reset approval.
type ResetAnswer struct {
	Trip  Trip `json:"trip"`
	Reset bool `json:"reset"`
}
