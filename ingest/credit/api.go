package credit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/cordonhq/cordon/internal/apiauth"
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
func NewAddressesHandler(tokens []string, maxBody int64, maxBatch int, publish Publisher) http.Handler {
	auth := apiauth.New(tokens)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fail := func(code int, format string, args ...any) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": fmt.Sprintf(format, args...)})
		}
		if !auth.OK(r) {
			apiauth.Deny(w)
			return
		}
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			fail(http.StatusMethodNotAllowed, "use POST")
			return
		}
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
			fail(http.StatusUnsupportedMediaType, "send Content-Type: application/json")
			return
		}
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
		dec.DisallowUnknownFields()
		var req AddressesRequest
		if err := dec.Decode(&req); err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				fail(http.StatusRequestEntityTooLarge, "body over %d bytes", maxBody)
				return
			}
			fail(http.StatusBadRequest, "body: %v", err)
			return
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			fail(http.StatusBadRequest, "body: one JSON object expected")
			return
		}
		switch n := len(req.Addresses); {
		case n == 0:
			fail(http.StatusBadRequest, "addresses: empty")
			return
		case n > maxBatch:
			fail(http.StatusRequestEntityTooLarge, "addresses: %d, at most %d per request", n, maxBatch)
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
				fail(http.StatusServiceUnavailable, "writing the registry failed; nothing was registered, retry: %v", err)
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(resp)
	})
}
