package registry

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/cordonhq/cordon/internal/apiauth"
	"github.com/cordonhq/cordon/internal/chain"
)

// Endpoint is the route of the addresses API.
const Endpoint = "/v1/addresses"

// AddressesRequest is the body of POST /v1/addresses.
type AddressesRequest struct {
	Addresses []Entry `json:"addresses"`
}

// AddressesResponse says which entries were registered: every valid one
// (normalized), and an error for each invalid one by its index.
type AddressesResponse struct {
	Accepted []Entry    `json:"accepted"`
	Errors   []RowError `json:"errors"`
}

// ConflictResponse is the 409 answer to a request that would change or
// remove registered addresses without an operator: nothing of it was
// registered.
type ConflictResponse struct {
	Error     string     `json:"error"`
	Conflicts []Conflict `json:"conflicts"`
	// Errors are the invalid entries, as in AddressesResponse.
	Errors []RowError `json:"errors"`
}

// Conflict is one entry that needs an operator: the fields it would change
// (account, kind, asset; removed), never the values registered.
type Conflict struct {
	Row    int      `json:"row"`
	Fields []string `json:"fields"`
	Error  string   `json:"error"`
}

// Publisher writes accepted entries (Publish to a producer).
type Publisher func(ctx context.Context, entries []Entry) error

// Alerter writes an alert to the alerts topic (the Kafka producer).
type Alerter interface {
	Alert(ctx context.Context, a chain.Alert) error
}

// AddressesAPI is what POST /v1/addresses needs.
type AddressesAPI struct {
	Auth *apiauth.Auth
	// Registry is this instance's registry: what is registered now.
	Registry *Store
	Publish  Publisher
	// Alert gets an alert for every address an operator reassigns or
	// removes; without an Alerter such changes are refused.
	Alert Alerter
	// MaxBody and MaxBatch bound one request.
	MaxBody  int64
	MaxBatch int
	Log      *slog.Logger
	// Now is the clock of the alerts (nil: time.Now).
	Now func() time.Time
}

// writtenTTL is how long the handler keeps what it wrote beside the
// registry, until the registry shows it: the registry follows its topic a
// poll (500ms) behind.
const writtenTTL = 2 * time.Minute

type addressesHandler struct {
	AddressesAPI
	// mu serializes the check and the write of registrations (on this
	// instance), so two requests cannot both see an address as new.
	mu sync.Mutex
	// written are the entries this handler wrote that the registry may not
	// show yet, by key; order is their keys, oldest first, for expiry.
	written map[string]written
	order   []string
}

type written struct {
	e  Entry
	at time.Time
}

// NewAddressesHandler serves POST /v1/addresses for tokens with the
// register scope. Entries are validated one by one; the valid ones are
// written to the address topic (and only then acknowledged), the invalid
// ones reported by index. New addresses and identical re-sends are
// accepted. A change of the account, kind or asset of a registered
// address, or a removal, is refused with 409 (nothing of the request is
// written, the attempt counted, logged and alerted) unless the token is an
// operator's; each one an operator makes raises an address_reassigned
// (or address_removed) alert naming the operator before it is written.
func NewAddressesHandler(cfg AddressesAPI) http.Handler {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &addressesHandler{AddressesAPI: cfg, written: map[string]written{}}
}

func (h *addressesHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	who, code := h.Auth.Require(w, r, Endpoint, apiauth.Register)
	if code != 0 {
		return
	}
	var req AddressesRequest
	if apiauth.ReadJSON(w, r, h.MaxBody, &req) != 0 {
		return
	}
	switch n := len(req.Addresses); {
	case n == 0:
		apiauth.Fail(w, http.StatusBadRequest, "addresses: empty")
		return
	case n > h.MaxBatch:
		apiauth.Fail(w, http.StatusRequestEntityTooLarge, "addresses: %d, at most %d per request", n, h.MaxBatch)
		return
	}
	if !h.Registry.Ready() {
		// Until the registry is read, a change cannot be told from a new address.
		w.Header().Set("Retry-After", "1")
		apiauth.Fail(w, http.StatusServiceUnavailable, "the address registry is still loading; nothing was registered, retry")
		return
	}
	resp := AddressesResponse{Accepted: []Entry{}, Errors: []RowError{}}
	rows := make([]int, 0, len(req.Addresses))
	for i := range req.Addresses {
		e := req.Addresses[i]
		if err := e.Validate(); err != nil {
			resp.Errors = append(resp.Errors, RowError{Row: i, Error: err.Error()})
			continue
		}
		resp.Accepted = append(resp.Accepted, e)
		rows = append(rows, i)
	}
	if len(resp.Accepted) == 0 {
		apiauth.WriteJSON(w, http.StatusOK, resp)
		return
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.Now()
	h.expire(now)
	changes, conflicts := h.compare(resp.Accepted, rows)
	if len(conflicts) > 0 && !who.Has(apiauth.RegisterReassign) {
		h.refuse(r, who, conflicts)
		apiauth.WriteJSON(w, http.StatusConflict, ConflictResponse{Conflicts: conflicts, Errors: resp.Errors,
			Error: fmt.Sprintf("%d of the entries would change or remove a registered address, which only an operator may do; nothing was registered",
				len(conflicts))})
		return
	}
	if len(changes) > 0 {
		if h.Alert == nil {
			apiauth.Fail(w, http.StatusServiceUnavailable, "no alerts topic to report the change on; nothing was registered")
			return
		}
		// Alerted before written: a change nobody is told of never happens.
		for _, c := range changes {
			if err := h.Alert.Alert(r.Context(), c.alert(who, now)); err != nil {
				apiauth.Fail(w, http.StatusServiceUnavailable, "writing the alert of a change failed; nothing was registered, retry: %v", err)
				return
			}
		}
	}
	if err := h.Publish(r.Context(), resp.Accepted); err != nil {
		if len(changes) > 0 {
			h.Log.Error("registry: an operator's change was alerted but not written", "operator", who.Name, "changes", len(changes), "err", err)
		}
		apiauth.Fail(w, http.StatusServiceUnavailable, "writing the registry failed; nothing was registered, retry: %v", err)
		return
	}
	for _, c := range changes {
		h.Log.Warn("registry: registered address changed by an operator", "operator", who.Name, "chain", c.new.Chain,
			"network", c.new.Network, "address", c.new.Address, "fields", strings.Join(c.fields, ","), "removed", c.new.Removed)
	}
	for _, e := range resp.Accepted {
		k := e.Key()
		if _, dup := h.written[k]; !dup {
			h.order = append(h.order, k)
		}
		h.written[k] = written{e: e, at: now}
	}
	apiauth.WriteJSON(w, http.StatusOK, resp)
}

// change is an accepted entry that changes or removes a registered one.
type change struct {
	old, new Entry
	fields   []string
}

// compare sorts the valid entries (rows: their indexes in the request)
// into changes of registered addresses and, for the conflicts, what
// changes. An entry is compared with the registry and with what this
// handler wrote that the registry may not show yet: identical to both is
// a re-send, unknown to both is new, anything else a change. Entries
// earlier in the request count as registered for the later ones.
func (h *addressesHandler) compare(entries []Entry, rows []int) ([]change, []Conflict) {
	var changes []change
	var conflicts []Conflict
	batch := map[string]Entry{}
	for i, e := range entries {
		k := e.Key()
		var known []Entry
		if b, ok := batch[k]; ok {
			known = append(known, b)
		} else {
			if cur, ok := h.Registry.Index.Lookup(e.Chain, e.Network, e.Address); ok {
				known = append(known, cur)
			}
			if wr, ok := h.written[k]; ok {
				known = append(known, wr.e)
			}
		}
		batch[k] = e
		var fields []string
		var old Entry
		for _, cur := range known {
			if cur.Removed {
				continue // not registered: adding it again is new
			}
			if f := differs(cur, e); len(f) > 0 {
				if len(fields) == 0 {
					old = cur
				}
				fields = union(fields, f)
			} else if old.Address == "" {
				old = cur
			}
		}
		if e.Removed {
			// A removal needs an operator whether or not the address is
			// registered: the answer does not tell which.
			fields = append(fields, "removed")
		}
		if len(fields) == 0 {
			continue
		}
		changes = append(changes, change{old: old, new: e, fields: fields})
		msg := "the address is registered with another " + strings.Join(fields, " and ") + "; changing it needs an operator"
		if e.Removed {
			msg = "removing an address needs an operator"
		}
		conflicts = append(conflicts, Conflict{Row: rows[i], Fields: fields, Error: msg})
	}
	return changes, conflicts
}

// differs names the fields of e that change the registered cur: account,
// kind, asset.
func differs(cur, e Entry) []string {
	var f []string
	if cur.Account != e.Account {
		f = append(f, "account")
	}
	if cur.Kind != e.Kind {
		f = append(f, "kind")
	}
	if cur.Asset != e.Asset {
		f = append(f, "asset")
	}
	return f
}

func union(a, b []string) []string {
	for _, s := range b {
		if !contains(a, s) {
			a = append(a, s)
		}
	}
	return a
}

func contains(a []string, s string) bool {
	for _, x := range a {
		if x == s {
			return true
		}
	}
	return false
}

// expire forgets what this handler wrote once the registry shows it, or
// after writtenTTL.
func (h *addressesHandler) expire(now time.Time) {
	for k, wr := range h.written {
		cur, ok := h.Registry.Index.Lookup(wr.e.Chain, wr.e.Network, wr.e.Address)
		if ok && !wr.e.Removed && len(differs(cur, wr.e)) == 0 || !ok && wr.e.Removed {
			delete(h.written, k)
		}
	}
	n := 0
	for n < len(h.order) {
		k := h.order[n]
		if wr, ok := h.written[k]; ok && now.Sub(wr.at) < writtenTTL {
			break
		}
		delete(h.written, k)
		n++
	}
	h.order = h.order[n:]
}

// refuse reports a refused change: counted, logged and alerted through
// Auth, naming the token.
func (h *addressesHandler) refuse(r *http.Request, who apiauth.Principal, conflicts []Conflict) {
	var fields []string
	for _, c := range conflicts {
		fields = union(fields, c.Fields)
	}
	h.Auth.Refuse(r.Context(), Endpoint, apiauth.ReasonNeedsOperator, who, r.RemoteAddr,
		fmt.Sprintf("changing %s of %d registered address(es) without an operator", strings.Join(fields, ", "), len(conflicts)),
		map[string]string{"entries": fmt.Sprint(len(conflicts)), "fields": strings.Join(fields, ",")})
}

// alert is the alert of an accepted change, naming the operator.
func (c change) alert(who apiauth.Principal, now time.Time) chain.Alert {
	typ, msg := "address_reassigned", fmt.Sprintf("registered address %s (%s) changed (%s) by operator %s", c.new.Address, c.new.Chain,
		strings.Join(c.fields, ", "), who.Name)
	if c.new.Removed {
		typ, msg = "address_removed", fmt.Sprintf("registered address %s (%s) removed by operator %s", c.new.Address, c.new.Chain, who.Name)
	}
	return chain.Alert{V: chain.SchemaVersion, ID: fmt.Sprintf("%s/%s/%d", typ, c.new.Key(), now.UnixNano()), Type: typ, Severity: "high",
		Chain: c.new.Chain, Network: c.new.Network, Time: now.UTC(), Message: msg,
		Details: map[string]string{"address": c.new.Address, "operator": who.Name, "fields": strings.Join(c.fields, ","),
			"old_account": c.old.Account, "old_kind": c.old.Kind, "old_asset": c.old.Asset,
			"account": c.new.Account, "kind": c.new.Kind, "asset": c.new.Asset}}
}
