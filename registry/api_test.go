package registry

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/internal/testkit"
)

func TestAddressesAPI(t *testing.T) {
	const token = "0123456789abcdef-token"
	var published []Entry
	fail := false
	h := NewAddressesHandler([]config.Secret{config.SecretValue(token)}, 4096, 3, func(_ context.Context, e []Entry) error {
		if fail {
			return errors.New("broker down")
		}
		published = append(published, e...)
		return nil
	})
	do := func(auth, body string) (int, string) { return testkit.PostJSON(h, "/v1/addresses", auth, body) }
	code, body := do(token, `{"addresses":[
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
	code, body = do(token, `{"addresses":[{"chain":"eth","address":"0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed","account":"u1"}]}`)
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, body, "nothing was registered")
}
