package alliance

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/cordonhq/cordon/intel"
	"github.com/cordonhq/cordon/internal/apiauth"
	"github.com/cordonhq/cordon/internal/chain"
)

// The operators' endpoints, on cordon's API (scope share).
const (
	ListingsEndpoint    = "/v1/share/listings"
	RevocationsEndpoint = "/v1/share/revocations"
	PartnersEndpoint    = "/v1/share/partners"
)

// API is partner sharing's part of cordon's API.
type API struct {
	Auth *apiauth.Auth
	// Service is the running service (nil until it has restored its
	// state: answered 503).
	Service func() *Service
	// Peers are the partners posted to (urgent objects and revocations).
	Peers []Peer
	// Partners are the names of every configured partner.
	Partners []string
	// MaxBody bounds a request (1 MiB).
	MaxBody int64
	// PushTimeout bounds the urgent posts after a publication (10s).
	PushTimeout time.Duration
	// Log records who published and revoked what (nil: not logged).
	Log *slog.Logger
}

// Handle mounts the endpoints on mux.
func (a *API) Handle(mux *http.ServeMux) {
	if a.MaxBody <= 0 {
		a.MaxBody = 1 << 20
	}
	if a.PushTimeout <= 0 {
		a.PushTimeout = 10 * time.Second
	}
	mux.HandleFunc("POST "+ListingsEndpoint, a.publish)
	mux.HandleFunc("POST "+RevocationsEndpoint, a.revoke)
	mux.HandleFunc("GET "+PartnersEndpoint, a.partners)
}

// ListingAnswer is the answer to a publication or revocation.
type ListingAnswer struct {
	Published []Published `json:"published"`
}

func (a *API) publish(w http.ResponseWriter, r *http.Request) {
	who, code := a.Auth.Require(w, r, ListingsEndpoint, apiauth.Share)
	if code != 0 {
		return
	}
	var l Listing
	if apiauth.ReadJSON(w, r, a.MaxBody, &l) != 0 {
		return
	}
	svc := a.service(w)
	if svc == nil {
		return
	}
	pub, err := svc.Publish(r.Context(), l)
	if err != nil {
		apiauth.Fail(w, status(err), "%v", err)
		return
	}
	a.logged("sharing: listing published", who, pub)
	if l.Urgent {
		a.push(svc, pub)
	}
	apiauth.WriteJSON(w, http.StatusOK, ListingAnswer{Published: nonNil(pub)})
}

// Revocation names our indicators to revoke: by id, or by chain,
// network and values.
type Revocation struct {
	IDs     []string    `json:"ids,omitempty"`
	Chain   chain.Chain `json:"chain,omitempty"`
	Network string      `json:"network,omitempty"`
	Kind    intel.Kind  `json:"kind,omitempty"`
	Values  []string    `json:"values,omitempty"`
	// Private: the values' hashed listings (the privacy mode).
	Private bool `json:"private,omitempty"`
}

func (a *API) revoke(w http.ResponseWriter, r *http.Request) {
	who, code := a.Auth.Require(w, r, RevocationsEndpoint, apiauth.Share)
	if code != 0 {
		return
	}
	var rv Revocation
	if apiauth.ReadJSON(w, r, a.MaxBody, &rv) != 0 {
		return
	}
	if (len(rv.IDs) == 0) == (len(rv.Values) == 0) || len(rv.IDs)+len(rv.Values) > MaxListing {
		apiauth.Fail(w, http.StatusBadRequest, "name the indicators by ids or by chain, network and values (one of the two, at most %d)", MaxListing)
		return
	}
	svc := a.service(w)
	if svc == nil {
		return
	}
	var pub []Published
	var err error
	if len(rv.IDs) > 0 {
		pub, err = svc.Revoke(r.Context(), rv.IDs)
	} else {
		pub, err = svc.RevokeValues(r.Context(), rv.Chain, rv.Network, rv.Kind, rv.Values, rv.Private)
	}
	if err != nil {
		apiauth.Fail(w, status(err), "%v", err)
		return
	}
	a.logged("sharing: listing revoked", who, pub)
	a.push(svc, pub)
	apiauth.WriteJSON(w, http.StatusOK, ListingAnswer{Published: nonNil(pub)})
}

// logged records who published or revoked which objects.
func (a *API) logged(what string, who apiauth.Principal, pub []Published) {
	if a.Log == nil || len(pub) == 0 {
		return
	}
	ids := make([]string, len(pub))
	for i, p := range pub {
		ids[i] = p.ID
	}
	a.Log.Info(what, "by", who.Name, "operator", who.Operator, "objects", len(pub), "tlp", pub[0].TLP, "urgent", pub[0].Urgent, "ids", ids)
}

func (a *API) service(w http.ResponseWriter) *Service {
	svc := a.Service()
	if svc == nil {
		apiauth.Fail(w, http.StatusServiceUnavailable, "partner sharing is starting: its state is not read back yet")
	}
	return svc
}

// push posts to the partners in the background: the publication is
// committed and answered; the posts only make it arrive sooner.
func (a *API) push(svc *Service, pub []Published) {
	if len(pub) == 0 {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), a.PushTimeout)
		defer cancel()
		svc.Push(ctx, a.Peers, pub)
	}()
}

// PartnersAnswer is GET /v1/share/partners' body.
type PartnersAnswer struct {
	Self     string         `json:"self"`
	Partners []PartnerStats `json:"partners"`
}

func (a *API) partners(w http.ResponseWriter, r *http.Request) {
	if _, code := a.Auth.Require(w, r, PartnersEndpoint, apiauth.Share); code != 0 {
		return
	}
	svc := a.service(w)
	if svc == nil {
		return
	}
	apiauth.WriteJSON(w, http.StatusOK, PartnersAnswer{Self: svc.cfg.Self.Name, Partners: svc.Stats(a.Partners)})
}

func status(err error) int {
	switch {
	case errors.Is(err, ErrNotOurs):
		return http.StatusNotFound
	case errors.Is(err, intel.ErrInvalid), errors.Is(err, errListing):
		return http.StatusBadRequest
	}
	return http.StatusServiceUnavailable
}

func nonNil(p []Published) []Published {
	if p == nil {
		return []Published{}
	}
	return p
}
