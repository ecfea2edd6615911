package obs_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/internal/obs"
)

func serve(t *testing.T, lim obs.Limits) string {
	t.Helper()
	srv, err := obs.ListenLimits("127.0.0.1:0", lim, obs.NewRegistry(), &obs.Checks{}, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.ErrorIs(t, <-done, context.Canceled)
	})
	return srv.Addr()
}

// TestIdleConnectionClosed: a client that keeps its connection open after
// a request, and sends nothing more, is disconnected once the idle
// timeout passes; without one it would hold the socket forever. The
// read deadline only bounds a failing run.
func TestIdleConnectionClosed(t *testing.T) {
	lim := obs.DefaultLimits
	lim.IdleTimeout = 50 * time.Millisecond
	addr := serve(t, lim)
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	_, err = io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: cordon\r\n\r\n")
	require.NoError(t, err)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, "ok\n", string(body))
	require.False(t, resp.Close, "the server keeps the connection alive after the request")

	require.NoError(t, conn.SetReadDeadline(time.Now().Add(30*time.Second)))
	_, err = br.ReadByte()
	var ne net.Error
	require.False(t, errors.As(err, &ne) && ne.Timeout(), "the idle connection was still open after 30s")
	require.ErrorIs(t, err, io.EOF, "the server closes the idle connection")
}

// TestHeaderLimit: headers beyond MaxHeaderBytes are refused (net/http
// allows 4 KiB of slack beyond the limit).
func TestHeaderLimit(t *testing.T) {
	lim := obs.DefaultLimits
	lim.MaxHeaderBytes = 1024
	addr := serve(t, lim)
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	_, err = io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: cordon\r\nX-Pad: "+strings.Repeat("a", 16<<10)+"\r\n\r\n")
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusRequestHeaderFieldsTooLarge, resp.StatusCode)
}

// TestDefaultLimits: every limit of the metrics server is set.
func TestDefaultLimits(t *testing.T) {
	l := obs.DefaultLimits
	for name, d := range map[string]time.Duration{"ReadHeaderTimeout": l.ReadHeaderTimeout, "ReadTimeout": l.ReadTimeout,
		"WriteTimeout": l.WriteTimeout, "IdleTimeout": l.IdleTimeout} {
		require.Positive(t, d, name)
	}
	require.Positive(t, l.MaxHeaderBytes)
}
