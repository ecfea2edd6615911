package registry

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/internal/apiauth"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/internal/testkit"
)

// TestAddressesAPI checks the request's form and bounds; attack_test.go
// has the scopes and the changes of registered addresses, on kfake.
func TestAddressesAPI(t *testing.T) {
	const token = "0123456789abcdef-token"
	auth, err := apiauth.New([]apiauth.Token{{Name: "exchange", Token: config.SecretValue(token), Scopes: []string{"register"}}}, nil, apiauth.Options{})
	require.NoError(t, err)
	var published []Entry
	fail := false
	st := &Store{Index: NewIndex()}
	h := NewAddressesHandler(AddressesAPI{Auth: auth, Registry: st, MaxBody: 4096, MaxBatch: 3, Publish: func(_ context.Context, e []Entry) error {
		if fail {
			return errors.New("broker down")
		}
		published = append(published, e...)
		return nil
	}})
	do := func(auth, body string) (int, string) { return testkit.PostJSON(h, "/v1/addresses", auth, body) }
	ok := `{"addresses":[{"chain":"eth","address":"0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed","account":"u1"}]}`
	code, body := do(token, ok)
	require.Equal(t, http.StatusServiceUnavailable, code, "the registry is not read yet: a change cannot be told from a new address")
	require.Contains(t, body, "nothing was registered")
	require.Empty(t, published)
	st.ready.Store(true)

	code, body = do(token, `{"addresses":[
		{"chain":"eth","address":"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed","account":"u1"},
		{"chain":"eth","address":"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD","account":"u2"},
		{"chain":"btc","address":"bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4","kind":"cold"}]}`)
	require.Equal(t, http.StatusOK, code, body)
	require.Len(t, published, 2, "the bad row does not block the good ones")
	require.Equal(t, "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", published[0].Address)
	require.Contains(t, body, `"row":1,"error":"invalid address`)

	for _, tc := range []struct {
		auth, body string
		code       int
		msg        string
	}{
		{"", `{"addresses":[]}`, 401, "bearer token"},
		{token, `{"addresses":[]}`, 400, "empty"},
		{token, `{"addresses":[{},{},{},{}]}`, 413, "at most 3"},
		{token, `{"addresses":[{"chain":"eth","addr":"x"}]}`, 400, "unknown field"},
		{token, `{"addresses":[{"account":"` + strings.Repeat("a", 5000) + `"}]}`, 413, "4096"},
	} {
		code, body := do(tc.auth, tc.body)
		require.Equal(t, tc.code, code, body)
		require.Contains(t, body, tc.msg)
	}
	fail = true
	code, body = do(token, `{"addresses":[{"chain":"eth","address":"0xfb6916095ca1df60bb79ce92ce3ea74c37c5d359","account":"u9"}]}`)
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, body, "nothing was registered")
	fail = false
	code, body = do(token, `{"addresses":[{"chain":"eth","address":"0xfb6916095ca1df60bb79ce92ce3ea74c37c5d359","account":"u10"}]}`)
	require.Equal(t, http.StatusOK, code, "a write that failed is not remembered as registered: %s", body)
}

type failingAlerter struct{}

func (failingAlerter) Alert(context.Context, chain.Alert) error {
	return errors.New("alerts topic down")
}

// TestOperatorChangeNeedsItsAlert: an operator's change that cannot be
// alerted is not written (fail closed).
func TestOperatorChangeNeedsItsAlert(t *testing.T) {
	const ann = "ann-operator-token-0123"
	auth, err := apiauth.New(nil, []apiauth.Operator{{Name: "ann", Token: config.SecretValue(ann)}}, apiauth.Options{})
	require.NoError(t, err)
	st := &Store{Index: NewIndex()}
	st.ready.Store(true)
	reg := Entry{Chain: chain.ETH, Address: "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", Account: "victim"}
	require.NoError(t, reg.Validate())
	st.Index.Put(&reg)
	var published []Entry
	publish := func(_ context.Context, e []Entry) error { published = append(published, e...); return nil }
	body := `{"addresses":[{"chain":"eth","address":"0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed","account":"user-7"}]}`
	for _, alert := range []Alerter{nil, failingAlerter{}} {
		h := NewAddressesHandler(AddressesAPI{Auth: auth, Registry: st, Alert: alert, MaxBody: 4096, MaxBatch: 3, Publish: publish})
		code, resp := testkit.PostJSON(h, Endpoint, ann, body)
		require.Equal(t, http.StatusServiceUnavailable, code, resp)
		require.Contains(t, resp, "nothing was registered")
	}
	require.Empty(t, published)
}

// TestAddressesCompare: what counts as new, a re-send or a change, against
// the registry and what the handler wrote that the registry does not show
// yet; conflicts name fields, never the registered values.
func TestAddressesCompare(t *testing.T) {
	st := &Store{Index: NewIndex()}
	st.ready.Store(true)
	a := func(addr, account, asset, kind string, removed bool) Entry {
		e := Entry{Chain: chain.ETH, Address: addr, Account: account, Asset: asset, Kind: kind, Removed: removed}
		require.NoError(t, e.Validate())
		return e
	}
	const x, y = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", "0xfb6916095ca1df60bb79ce92ce3ea74c37c5d359"
	reg := a(x, "victim", "native", "deposit", false)
	st.Index.Put(&reg)
	h := NewAddressesHandler(AddressesAPI{Registry: st}).(*addressesHandler)
	wy := a(y, "u1", "", "", false)
	h.written[wy.Key()] = written{e: wy, at: h.Now()}
	for _, tc := range []struct {
		name    string
		entries []Entry
		fields  [][]string
	}{
		{"re-send", []Entry{reg}, nil},
		{"new", []Entry{a("0xdbf03b407c01e7cd3cbea99509d93f8dddc8c6fb", "u3", "", "", false)}, nil},
		{"account", []Entry{a(x, "attacker", "native", "deposit", false)}, [][]string{{"account"}}},
		{"asset and kind", []Entry{a(x, "victim", "*", "hot", false)}, [][]string{{"kind", "asset"}}},
		{"removal", []Entry{a(x, "victim", "native", "deposit", true)}, [][]string{{"removed"}}},
		{"removal of an unknown address", []Entry{a("0xdbf03b407c01e7cd3cbea99509d93f8dddc8c6fb", "u3", "", "", true)}, [][]string{{"removed"}}},
		{"written, not yet read", []Entry{a(y, "attacker", "", "", false)}, [][]string{{"account"}}},
		{"written re-send", []Entry{a(y, "u1", "", "", false)}, nil},
		{"twice in one request", []Entry{a("0xdbf03b407c01e7cd3cbea99509d93f8dddc8c6fb", "u3", "", "", false),
			a("0xdbf03b407c01e7cd3cbea99509d93f8dddc8c6fb", "attacker", "", "", false)}, [][]string{{"account"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rows := make([]int, len(tc.entries))
			for i := range rows {
				rows[i] = i
			}
			changes, conflicts := h.compare(tc.entries, rows)
			require.Len(t, changes, len(tc.fields))
			require.Len(t, conflicts, len(tc.fields))
			for i, f := range tc.fields {
				require.Equal(t, f, conflicts[i].Fields)
				require.NotContains(t, conflicts[i].Error, "victim")
				require.NotContains(t, conflicts[i].Error, "u1")
			}
		})
	}
	// Once the registry shows what was written, or it is older than the
	// TTL, the handler forgets it.
	st.Index.Put(&wy)
	h.expire(h.Now())
	require.NotContains(t, h.written, wy.Key())
}
