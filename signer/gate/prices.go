package gate

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/cordonhq/cordon/internal/address"
	"github.com/cordonhq/cordon/internal/apiauth"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/signer/intent"
	"github.com/cordonhq/cordon/signer/policy"
)

// PricesEndpoint takes the exchange's prices.
const PricesEndpoint = "/v1/prices"

// MaxPrices bounds one POST /v1/prices.
const MaxPrices = 1000

// PricesRequest is the body of POST /v1/prices.
type PricesRequest struct {
	Prices []policy.PriceUpdate `json:"prices"`
}

// PricesHandler is POST /v1/prices (scope prices): each price is checked
// (a known chain, an asset in normal form, a positive exact decimal, a
// time not ahead of the clock) and published, signed, to cordon.prices,
// which every gate instance follows. A price that moves the tiers is
// authority: an unsigned one on the topic is refused by the gate.
func PricesHandler(auth *apiauth.Auth, publish func(context.Context, []policy.PriceUpdate) error, now func() time.Time) http.Handler {
	if now == nil {
		now = time.Now
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, code := auth.Require(w, r, PricesEndpoint, apiauth.Prices); code != 0 {
			return
		}
		var q PricesRequest
		if apiauth.ReadJSON(w, r, 256<<10, &q) != 0 {
			return
		}
		if len(q.Prices) == 0 || len(q.Prices) > MaxPrices {
			apiauth.Fail(w, http.StatusBadRequest, "prices: want 1 to %d prices", MaxPrices)
			return
		}
		for i := range q.Prices {
			if err := checkPrice(&q.Prices[i], now()); err != nil {
				apiauth.Fail(w, http.StatusBadRequest, "prices[%d]: %v", i, err)
				return
			}
		}
		if err := publish(r.Context(), q.Prices); err != nil {
			apiauth.Fail(w, http.StatusServiceUnavailable, "publishing the prices failed: %v", err)
			return
		}
		apiauth.WriteJSON(w, http.StatusAccepted, map[string]int{"published": len(q.Prices)})
	})
}

// PriceKey is a price's key in cordon.prices.
func PriceKey(u *policy.PriceUpdate) string { return u.Chain + "/" + u.Network + "/" + u.Asset }

func checkPrice(u *policy.PriceUpdate, now time.Time) error {
	u.Chain = strings.ToLower(strings.TrimSpace(u.Chain))
	if u.Chain != string(chain.ETH) && u.Chain != string(chain.BTC) {
		return fmt.Errorf("chain %q: want eth or btc", trunc(u.Chain))
	}
	u.Network = strings.ToLower(strings.TrimSpace(u.Network))
	if u.Network == "" {
		u.Network = "mainnet"
	}
	if u.Asset == "" || strings.EqualFold(u.Asset, intent.Native) {
		u.Asset = intent.Native
	} else {
		a, err := address.Normalize(chain.ETH, u.Network, u.Asset)
		if err != nil || u.Chain != string(chain.ETH) {
			return fmt.Errorf("asset %q: want native or an eth token contract", trunc(u.Asset))
		}
		u.Asset = strings.ToLower(a)
	}
	usd, err := intent.ParseUSD(u.USD)
	if err != nil {
		return err
	}
	if usd.Rat().Sign() <= 0 {
		return fmt.Errorf("usd %s: a price is positive", u.USD)
	}
	switch {
	case u.At.IsZero():
		return fmt.Errorf("at: when the price was observed is required")
	case u.At.After(now.Add(time.Minute)):
		return fmt.Errorf("at %s: ahead of the clock", u.At.UTC().Format(time.RFC3339))
	}
	return nil
}
