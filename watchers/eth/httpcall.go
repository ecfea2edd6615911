package eth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	json "github.com/segmentio/encoding/json"

	"github.com/cordonhq/cordon/watchers/rpcpool"
)

// MaxResponseBytes bounds one JSON-RPC reply read over HTTP; a larger
// reply is an error, never an out-of-memory.
const MaxResponseBytes = 256 << 20

// httpCaller makes the watcher's hot JSON-RPC calls (blocks, receipts) over
// HTTP and decodes each reply with one pass of encoding/json straight into
// its typed result. go-ethereum's rpc.Client, used for everything else and
// for WebSocket endpoints, decodes a reply twice before handing it over.
type httpCaller struct {
	url      string
	headers  map[string]string
	client   *http.Client
	maxBytes int64
}

func newHTTPCaller(rawURL string, headers map[string]string) *httpCaller {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	// A node on this machine: compressing replies only burns CPU on both
	// sides. Remote endpoints keep gzip, which saves bandwidth.
	tr.DisableCompression = isLoopback(rawURL)
	return &httpCaller{url: rawURL, headers: headers, client: &http.Client{Transport: tr, Timeout: 5 * time.Minute},
		maxBytes: MaxResponseBytes}
}

func isLoopback(rawURL string) bool {
	u, err := url.Parse(rawURL)
	if err != nil {
		return false
	}
	if u.Hostname() == "localhost" {
		return true
	}
	ip := net.ParseIP(u.Hostname())
	return ip != nil && ip.IsLoopback()
}

// jsonrpcError is an error object of a JSON-RPC reply. It implements
// go-ethereum's rpc.Error.
type jsonrpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (e *jsonrpcError) Error() string  { return e.Message }
func (e *jsonrpcError) ErrorCode() int { return e.Code }

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// call performs one JSON-RPC call. result must be a pointer; a null result
// leaves it untouched.
func (h *httpCaller) call(ctx context.Context, result any, method string, params ...any) error {
	p, err := json.Marshal(params)
	if err != nil {
		return err
	}
	body := make([]byte, 0, 64+len(method)+len(p))
	body = append(body, `{"jsonrpc":"2.0","id":1,"method":`...)
	body = strconv.AppendQuote(body, method)
	body = append(body, `,"params":`...)
	body = append(body, p...)
	body = append(body, '}')
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(body))
	if err != nil {
		return errors.New(rpcpool.Redact(err, h.url))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	for k, v := range h.headers {
		req.Header.Set(k, v)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return errors.New(rpcpool.Redact(err, h.url))
	}
	defer resp.Body.Close()
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= 16<<20 { // do not pin huge buffers
			bufPool.Put(buf)
		}
	}()
	n, err := buf.ReadFrom(io.LimitReader(resp.Body, h.maxBytes+1))
	if err != nil {
		return fmt.Errorf("read reply: %w", err)
	}
	if n > h.maxBytes {
		return fmt.Errorf("reply larger than %d bytes", h.maxBytes)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, trunc(buf.String()))
	}
	env := struct {
		Result any           `json:"result"`
		Error  *jsonrpcError `json:"error"`
	}{Result: result}
	if err := json.Unmarshal(buf.Bytes(), &env); err != nil {
		return fmt.Errorf("decode %s reply: %w", method, err)
	}
	if env.Error != nil {
		return env.Error
	}
	return nil
}
