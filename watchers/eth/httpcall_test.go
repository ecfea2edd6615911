package eth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/rpc"
	"github.com/stretchr/testify/require"
)

// TestHTTPCallerBadReplies covers what a broken or hostile endpoint can
// send back on the direct HTTP path.
func TestHTTPCallerBadReplies(t *testing.T) {
	cases := []struct {
		name    string
		handler http.HandlerFunc
		want    string
	}{
		{"http status", func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "rate limited", http.StatusTooManyRequests)
		}, "HTTP 429: rate limited"},
		{"malformed", func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":1,"result":{"number":`))
		}, "decode eth_getBlockByNumber reply"},
		{"wrong type", func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":1,"result":{"number":7}}`))
		}, "decode eth_getBlockByNumber reply"},
		{"bad input hex", func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":1,"result":{"transactions":[{"input":"0xzz"}]}}`))
		}, "input: invalid hex character"},
		{"rpc error", func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"the method does not exist"}}`))
		}, "the method does not exist"},
		{"oversized", func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":1,"result":"`))
			chunk := []byte(strings.Repeat("a", 1<<20))
			for range 3 {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		}, "reply larger than"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			var blk *rpcBlock
			c := newHTTPCaller(srv.URL, nil)
			c.maxBytes = 2 << 20
			err := c.call(context.Background(), &blk, "eth_getBlockByNumber", "0x1", true)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestHTTPCallerMethodNotFoundIsRecognized(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "secret", r.Header.Get("X-Api-Key"))
		_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"nope"}}`))
	}))
	defer srv.Close()
	var out *[]rpcReceipt
	err := newHTTPCaller(srv.URL, map[string]string{"X-Api-Key": "secret"}).call(context.Background(), &out, "eth_getBlockReceipts", "0x1")
	var re rpc.Error
	require.True(t, errors.As(err, &re))
	require.Equal(t, -32601, re.ErrorCode())
	require.True(t, isMethodNotFound(err))
	require.Nil(t, out)
}

func TestIsLoopback(t *testing.T) {
	require.True(t, isLoopback("http://127.0.0.1:8545"))
	require.True(t, isLoopback("http://localhost:8545"))
	require.True(t, isLoopback("http://[::1]:8545"))
	require.False(t, isLoopback("https://eth.example.com/v3/key"))
	require.False(t, isLoopback("http://10.0.0.5:8545"))
}
