package credit_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/credit"
	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/ingest/kafka/kafkatest"
	"github.com/cordonhq/cordon/integration/pipetest"
	"github.com/cordonhq/cordon/internal/apiauth"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/registry"
)

// TestDepositsView: the view follows what the crediting service commits
// (on kfake) and the API lists the open deposits — held by default —
// for API and operator tokens; settled deposits leave it.
func TestDepositsView(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	brokers, prod := pipetest.Producer(t)
	reg := registry.NewIndex()
	for i := range 4 {
		reg.Put(&registry.Entry{Chain: chain.ETH, Network: "mainnet", Address: fmt.Sprintf("0x%040x", i), Account: fmt.Sprint("u", i), Asset: "*",
			Kind: registry.KindDeposit})
	}
	screen := func(_ chain.Chain, _, addr string) []credit.Hit {
		if addr == "0x00000000000000000000000000000000000000ee" {
			return []credit.Hit{{Address: addr, Indicator: "indicator--x", Category: "hack", Source: "p"}}
		}
		return nil
	}
	kc := kafka.Config{Auth: kafkatest.Keys(), Brokers: brokers, Topics: kafka.DefaultTopics(), CreateTopics: true}
	svc, err := credit.NewService(credit.ServiceConfig{Kafka: kc, Policy: benchPolicy, Registry: reg, Screen: screen})
	require.NoError(t, err)
	stop := runService(ctx, svc)
	defer func() { require.NoError(t, stop()) }()
	view := credit.NewView(kc)
	vctx, vstop := context.WithCancel(ctx)
	defer vstop()
	go func() { _ = view.Run(vctx) }()

	auth, err := apiauth.New([]apiauth.Token{{Name: "ledger", Token: config.SecretValue("client-token-0123456789"), Scopes: []string{"deposits:read"}},
		{Name: "screening", Token: config.SecretValue("screening-token-0123456789"), Scopes: []string{"screen"}}},
		[]apiauth.Operator{{Name: "ann", Token: config.SecretValue("ann-token-0123456789")}}, apiauth.Options{})
	require.NoError(t, err)
	h := credit.NewDepositsHandler(auth, 500, view)
	get := func(token, query string) (int, credit.DepositsResponse, string) {
		req := httptest.NewRequest(http.MethodGet, "/v1/deposits"+query, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var resp credit.DepositsResponse
		_ = json.Unmarshal(rec.Body.Bytes(), &resp)
		return rec.Code, resp, rec.Body.String()
	}

	// Block 1: four deposits, one from the flagged sender.
	u := benchBlock(1, 1, 4, func(i int) string { return fmt.Sprintf("0x%040x", i) })
	u.Block.Transfers[2].From = "0x00000000000000000000000000000000000000ee"
	require.NoError(t, prod.Publish(ctx, []chain.Update{u}))
	heldID := credit.DepositID(chain.ETH, "mainnet", u.Block.Transfers[2].TxHash, "native")
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, resp, body := get("client-token-0123456789", "")
		if code == http.StatusOK && len(resp.Deposits) == 1 {
			require.Equal(t, heldID, resp.Deposits[0].ID)
			require.Equal(t, "hack", resp.Deposits[0].Indicators[0].Category)
			break
		}
		require.True(t, time.Now().Before(deadline), "%d %s", code, body)
		time.Sleep(100 * time.Millisecond)
	}
	code, resp, _ := get("ann-token-0123456789", "?status=pending&account=u1")
	require.Equal(t, http.StatusOK, code)
	require.Len(t, resp.Deposits, 1)
	require.Equal(t, "u1", resp.Deposits[0].Account)
	code, resp, _ = get("ann-token-0123456789", "?id="+heldID)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, credit.StatusHeld, resp.Deposits[0].Status)

	// Two more blocks credit the others: they leave the view.
	require.NoError(t, prod.Publish(ctx, []chain.Update{benchBlock(2, 2, 0, nil), benchBlock(3, 3, 0, nil)}))
	for {
		code, resp, _ := get("client-token-0123456789", "?status=pending")
		if code == http.StatusOK && len(resp.Deposits) == 0 {
			break
		}
		require.True(t, time.Now().Before(deadline), "pending deposits still listed: %d", len(resp.Deposits))
		time.Sleep(100 * time.Millisecond)
	}
	code, _, body := get("client-token-0123456789", "?id="+credit.DepositID(chain.ETH, "mainnet", u.Block.Transfers[0].TxHash, "native"))
	require.Equal(t, http.StatusNotFound, code, body)
	require.Contains(t, body, "not open")

	for _, tc := range []struct {
		token, query string
		code         int
		msg          string
	}{
		{"nope-nope-nope-nope", "", 401, "bearer token"},
		{"screening-token-0123456789", "", 403, `"missing_scope":"deposits:read"`},
		{"client-token-0123456789", "?status=credited", 400, "want pending, held or released"},
		{"client-token-0123456789", "?limit=0", 400, "want 1 to 500"},
		{"client-token-0123456789", "?id=eth/x", 400, "want chain/network/tx_hash/index"},
	} {
		code, _, body := get(tc.token, tc.query)
		require.Equal(t, tc.code, code, body)
		require.True(t, strings.Contains(body, tc.msg), body)
	}
}
