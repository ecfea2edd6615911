package credit

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/internal/apiauth"
)

// View follows cordon.deposits (read committed) and keeps the open
// deposits — pending, held, released — for the operators' API; settled
// ones leave it, so it stays as small as the work in progress.
type View struct {
	kc    kafka.Config
	mu    sync.RWMutex
	open  map[string]DepositEvent
	ready atomic.Bool
	asOf  atomic.Int64 // unix nanoseconds of the last caught-up poll
}

// NewView returns a view of kc's deposits topic; Run it.
func NewView(kc kafka.Config) *View { return &View{kc: kc, open: map[string]DepositEvent{}} }

// isOpen tells whether a deposit in status st still waits for something.
func isOpen(st string) bool {
	return st == StatusPending || st == StatusHeld || st == StatusReleased
}

// Run follows the topic from its start until ctx ends.
func (v *View) Run(ctx context.Context) error {
	v.kc.Topics.Fill()
	err := kafka.ReadLog(ctx, v.kc, v.kc.Topics.Deposits, kafka.LogOptions{Follow: true, Caught: v.caughtUp, ClientID: "deposits-view"},
		func(r *kafka.Record) error {
			var ev DepositEvent
			if json.Unmarshal(r.Value, &ev) != nil || ev.ID != string(r.Key) {
				return nil
			}
			v.mu.Lock()
			defer v.mu.Unlock()
			if isOpen(ev.Status) {
				v.open[ev.ID] = ev
			} else {
				delete(v.open, ev.ID)
			}
			return nil
		})
	if err != nil {
		return fmt.Errorf("deposits view: %w", err)
	}
	return nil
}

func (v *View) caughtUp() {
	v.ready.Store(true)
	v.asOf.Store(time.Now().UnixNano())
}

// Ready tells whether the view has caught up with the topic once.
func (v *View) Ready() bool { return v.ready.Load() }

// Open returns the open deposits of status (all open ones when empty)
// and account (any when empty), oldest block first, at most limit.
func (v *View) Open(status, account string, limit int) []DepositEvent {
	v.mu.RLock()
	out := make([]DepositEvent, 0, min(len(v.open), limit))
	for _, ev := range v.open {
		if (status == "" || ev.Status == status) && (account == "" || ev.Account == account) {
			out = append(out, ev)
		}
	}
	v.mu.RUnlock()
	slices.SortFunc(out, func(a, b DepositEvent) int {
		if a.BlockNumber != b.BlockNumber {
			if a.BlockNumber < b.BlockNumber {
				return -1
			}
			return 1
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out[:min(len(out), limit)]
}

// Get returns an open deposit.
func (v *View) Get(id string) (DepositEvent, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	ev, ok := v.open[id]
	return ev, ok
}

// DepositsResponse is the answer of GET /v1/deposits.
type DepositsResponse struct {
	Deposits []DepositEvent `json:"deposits"`
	// AsOf is when the view last caught up with cordon.deposits.
	AsOf time.Time `json:"as_of"`
}

// DepositsEndpoint is the route of the deposits API.
const DepositsEndpoint = "/v1/deposits"

// NewDepositsHandler serves GET /v1/deposits for tokens with the
// deposits:read scope (and operators): ?status=pending|held|released
// (default held), ?account=, ?limit= (default 100, at most maxBatch), or
// ?id= for one deposit. Settled deposits are not here: they are on
// cordon.deposits.
func NewDepositsHandler(auth *apiauth.Auth, maxBatch int, v *View) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, code := auth.Require(w, r, DepositsEndpoint, apiauth.DepositsRead); code != 0 {
			return
		}
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			apiauth.Fail(w, http.StatusMethodNotAllowed, "use GET")
			return
		}
		if !v.Ready() {
			w.Header().Set("Retry-After", "1")
			apiauth.Fail(w, http.StatusServiceUnavailable, "the deposits view is still reading cordon.deposits")
			return
		}
		q := r.URL.Query()
		resp := DepositsResponse{Deposits: []DepositEvent{}, AsOf: time.Unix(0, v.asOf.Load()).UTC()}
		if id := q.Get("id"); id != "" {
			if err := ValidDepositID(id); err != nil {
				apiauth.Fail(w, http.StatusBadRequest, "%v", err)
				return
			}
			ev, ok := v.Get(id)
			if !ok {
				apiauth.Fail(w, http.StatusNotFound, "deposit %s is not open (settled, or unknown): its events are on cordon.deposits", id)
				return
			}
			resp.Deposits = append(resp.Deposits, ev)
			apiauth.WriteJSON(w, http.StatusOK, resp)
			return
		}
		status := q.Get("status")
		if status == "" {
			status = StatusHeld
		}
		if !isOpen(status) {
			apiauth.Fail(w, http.StatusBadRequest, "status %q: want pending, held or released (settled deposits are on cordon.deposits)", trunc(status))
			return
		}
		limit := 100
		if s := q.Get("limit"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 || n > maxBatch {
				apiauth.Fail(w, http.StatusBadRequest, "limit %q: want 1 to %d", trunc(s), maxBatch)
				return
			}
			limit = n
		}
		resp.Deposits = v.Open(status, q.Get("account"), limit)
		apiauth.WriteJSON(w, http.StatusOK, resp)
	})
}
