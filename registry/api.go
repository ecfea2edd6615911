package registry

import (
	"context"
	"net/http"

	"github.com/cordonhq/cordon/internal/apiauth"
	"github.com/cordonhq/cordon/internal/config"
)

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

// Publisher writes accepted entries (Publish to a producer).
type Publisher func(ctx context.Context, entries []Entry) error

// NewAddressesHandler serves POST /v1/addresses: entries are validated
// one by one, the valid ones are written to the address topic (and only
// then acknowledged), the invalid ones reported by index.
func NewAddressesHandler(tokens []config.Secret, maxBody int64, maxBatch int, publish Publisher) http.Handler {
	auth := apiauth.New(tokens)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !auth.OK(r) {
			apiauth.Deny(w)
			return
		}
		var req AddressesRequest
		if apiauth.ReadJSON(w, r, maxBody, &req) != 0 {
			return
		}
		switch n := len(req.Addresses); {
		case n == 0:
			apiauth.Fail(w, http.StatusBadRequest, "addresses: empty")
			return
		case n > maxBatch:
			apiauth.Fail(w, http.StatusRequestEntityTooLarge, "addresses: %d, at most %d per request", n, maxBatch)
			return
		}
		resp := AddressesResponse{Accepted: []Entry{}, Errors: []RowError{}}
		for i := range req.Addresses {
			e := req.Addresses[i]
			if err := e.Validate(); err != nil {
				resp.Errors = append(resp.Errors, RowError{Row: i, Error: err.Error()})
				continue
			}
			resp.Accepted = append(resp.Accepted, e)
		}
		if len(resp.Accepted) > 0 {
			if err := publish(r.Context(), resp.Accepted); err != nil {
				apiauth.Fail(w, http.StatusServiceUnavailable, "writing the registry failed; nothing was registered, retry: %v", err)
				return
			}
		}
		apiauth.WriteJSON(w, http.StatusOK, resp)
	})
}
