package taxii

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The client's defaults.
const (
	DefaultMaxResponseBytes = 32 << 20
	DefaultTimeout          = 30 * time.Second
	DefaultUserAgent        = "cordon-taxii/2.1"
)

// ErrMalformed is wrapped by every refusal of a response body: not the
// TAXII media type, not one JSON object, trailing data, over the size
// limit, or a field of the wrong kind.
var ErrMalformed = errors.New("taxii: malformed response")

// ClientConfig configures a Client.
type ClientConfig struct {
	// APIRoot is the absolute URL of the partner's API root, e.g.
	// https://b.example:8443/alliance/. It must be https unless
	// AllowHTTP is set (tests).
	APIRoot   string
	AllowHTTP bool
	// HTTP is the client requests go through; the caller builds it with
	// its mutual-TLS transport. Nil: a client with dial, TLS-handshake and
	// idle timeouts. Redirects are never followed (the client uses a copy
	// of HTTP with its own CheckRedirect). A Timeout set on it is
	// lengthened by a request's Wait.
	HTTP *http.Client
	// Timeout bounds each request, on top of its Wait (0: DefaultTimeout).
	Timeout time.Duration
	// MaxResponseBytes bounds a response body (0: DefaultMaxResponseBytes);
	// a larger one is an error and is not read past the limit.
	MaxResponseBytes int64
	// UserAgent is sent with every request (empty: DefaultUserAgent).
	UserAgent string
}

// Client talks to one partner's TAXII 2.1 API root.
type Client struct {
	root      *url.URL
	allowHTTP bool
	http      *http.Client
	timeout   time.Duration
	max       int64
	userAgent string
}

// NewClient checks cfg and returns a client of its API root.
func NewClient(cfg ClientConfig) (*Client, error) {
	var errs []error
	root, err := checkURL(cfg.APIRoot, cfg.AllowHTTP)
	if err != nil {
		errs = append(errs, fmt.Errorf("api_root: %w", err))
	}
	if cfg.MaxResponseBytes < 0 {
		errs = append(errs, fmt.Errorf("max_response_bytes: %d is negative", cfg.MaxResponseBytes))
	}
	if cfg.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout: %s is negative", cfg.Timeout))
	}
	if strings.ContainsAny(cfg.UserAgent, "\r\n") {
		errs = append(errs, errors.New("user_agent: holds a line break"))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("taxii client: %w", errors.Join(errs...))
	}
	if !strings.HasSuffix(root.Path, "/") {
		root.Path += "/"
		root.RawPath = ""
	}
	c := &Client{
		root:      root,
		allowHTTP: cfg.AllowHTTP,
		http:      cfg.HTTP,
		timeout:   cfg.Timeout,
		max:       cfg.MaxResponseBytes,
		userAgent: cfg.UserAgent,
	}
	if c.http == nil {
		c.http = defaultHTTPClient()
	} else {
		// A copy, so that the caller's client is left as it is.
		hc := *c.http
		hc.CheckRedirect = noRedirect
		c.http = &hc
	}
	if c.timeout == 0 {
		c.timeout = DefaultTimeout
	}
	if c.max == 0 {
		c.max = DefaultMaxResponseBytes
	}
	if c.userAgent == "" {
		c.userAgent = DefaultUserAgent
	}
	return c, nil
}

func checkURL(s string, allowHTTP bool) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("parse %q: %w", s, err)
	}
	switch {
	case !u.IsAbs() || u.Host == "":
		return nil, fmt.Errorf("%q is not an absolute URL", s)
	case u.Scheme == "https":
	case u.Scheme == "http" && allowHTTP:
	case u.Scheme == "http":
		return nil, fmt.Errorf("%q is plain http (https required)", s)
	default:
		return nil, fmt.Errorf("%q: scheme %q (https required)", s, u.Scheme)
	}
	if u.User != nil {
		return nil, fmt.Errorf("%q: credentials in the URL", u.Redacted())
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%q: has a query or fragment", s)
	}
	return u, nil
}

func defaultHTTPClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout: 10 * time.Second,
			IdleConnTimeout:     90 * time.Second,
			MaxIdleConnsPerHost: 4,
			ForceAttemptHTTP2:   true,
		},
		// No ResponseHeaderTimeout nor Timeout: a long-poll holds the
		// response; each request's context carries its deadline.
		CheckRedirect: noRedirect,
	}
}

// noRedirect makes a redirect the response: an API root does not move,
// and following one could leave https or the partner.
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// Query selects objects or manifest records (TAXII 2.1 section 3.4).
// Empty fields are left out of the request.
type Query struct {
	AddedAfter time.Time
	Next       string
	Limit      int
	IDs        []string
	Types      []string
	// Versions holds "first", "last", "all" or timestamps.
	Versions     []string
	SpecVersions []string
	// Wait asks the server to hold the request until objects arrive or
	// Wait passes (Prefer: wait=N, RFC 7240, in whole seconds rounded
	// up). The request's deadline is lengthened by Wait.
	Wait time.Duration
}

func (q *Query) values() url.Values {
	v := url.Values{}
	if !q.AddedAfter.IsZero() {
		v.Set("added_after", FormatTime(q.AddedAfter))
	}
	if q.Next != "" {
		v.Set("next", q.Next)
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	for k, l := range map[string][]string{
		"match[id]": q.IDs, "match[type]": q.Types,
		"match[version]": q.Versions, "match[spec_version]": q.SpecVersions,
	} {
		if len(l) > 0 {
			v.Set(k, strings.Join(l, ","))
		}
	}
	return v
}

// ObjectsPage is one page of objects: the envelope, and the date-added
// headers of the page (zero when the server sent none).
type ObjectsPage struct {
	Envelope
	DateAddedFirst time.Time
	DateAddedLast  time.Time
}

// ManifestPage is one page of manifest records and its date-added
// headers.
type ManifestPage struct {
	Manifest
	DateAddedFirst time.Time
	DateAddedLast  time.Time
}

// StatusError is a response with an unexpected HTTP status. TAXII is the
// error body when the server sent one; otherwise Body is the start of
// what it sent, control characters replaced.
type StatusError struct {
	Method     string
	URL        string
	StatusCode int
	TAXII      *Error
	Body       string
}

func (e *StatusError) Error() string {
	if e.TAXII != nil {
		return fmt.Sprintf("%s %s: HTTP %d: %v", e.Method, e.URL, e.StatusCode, e.TAXII)
	}
	return fmt.Sprintf("%s %s: HTTP %d: %q", e.Method, e.URL, e.StatusCode, e.Body)
}

// Unwrap returns the TAXII error body, if any.
func (e *StatusError) Unwrap() error {
	if e.TAXII == nil {
		return nil
	}
	return e.TAXII
}

// RateLimited is a 429 answer: the server asks to wait RetryAfter (0 when
// it did not say) before asking again.
type RateLimited struct {
	RetryAfter time.Duration
	Err        *StatusError
}

func (e *RateLimited) Error() string {
	return fmt.Sprintf("rate limited (retry after %s): %v", e.RetryAfter, e.Err)
}

// Unwrap returns the status error.
func (e *RateLimited) Unwrap() error { return e.Err }

// errorBodyPrefix is how much of a non-TAXII error body an error quotes.
const errorBodyPrefix = 200

// request is one call's particulars.
type clientRequest struct {
	method string
	u      *url.URL
	body   []byte
	want   int
	wait   time.Duration
}

// resolve appends segments, each escaped, to the API root.
func (c *Client) resolve(segments ...string) (*url.URL, error) {
	u := *c.root
	var p, raw strings.Builder
	p.WriteString(u.Path)
	raw.WriteString(u.EscapedPath())
	for _, s := range segments {
		if s == "" || s == "." || s == ".." {
			return nil, fmt.Errorf("path segment %q", s)
		}
		p.WriteString(s + "/")
		raw.WriteString(url.PathEscape(s) + "/")
	}
	u.Path, u.RawPath = p.String(), raw.String()
	return &u, nil
}

// do sends r and returns the body of a response with the wanted status
// and the TAXII media type, read within the size limit.
func (c *Client) do(ctx context.Context, r clientRequest) (http.Header, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout+r.wait)
	defer cancel()
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, r.u.String(), body)
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", r.method, r.u, err)
	}
	req.Header.Set("Accept", MediaType)
	req.Header.Set("User-Agent", c.userAgent)
	if r.body != nil {
		req.Header.Set("Content-Type", MediaType)
	}
	if r.wait > 0 {
		req.Header.Set("Prefer", "wait="+strconv.FormatInt(int64(math.Ceil(r.wait.Seconds())), 10))
	}
	hc := c.http
	if hc.Timeout > 0 && r.wait > 0 {
		cp := *hc
		cp.Timeout += r.wait
		hc = &cp
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", r.method, r.u, err)
	}
	defer func() { _ = resp.Body.Close() }()

	b, readErr := c.read(resp)
	if resp.StatusCode != r.want {
		return nil, nil, c.statusError(r, resp, b)
	}
	if readErr != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", r.method, r.u, readErr)
	}
	if err := checkMediaType(resp.Header.Get("Content-Type")); err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", r.method, r.u, err)
	}
	return resp.Header, b, nil
}

// read reads the body, never more than the limit and one byte.
func (c *Client) read(resp *http.Response) ([]byte, error) {
	if resp.ContentLength > c.max {
		return nil, fmt.Errorf("%w: body of %d bytes, limit %d", ErrMalformed, resp.ContentLength, c.max)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, c.max+1))
	if err != nil {
		return b, fmt.Errorf("read body: %w", err)
	}
	if int64(len(b)) > c.max {
		return b[:c.max], fmt.Errorf("%w: body over the limit of %d bytes", ErrMalformed, c.max)
	}
	return b, nil
}

func (c *Client) statusError(r clientRequest, resp *http.Response, b []byte) error {
	se := &StatusError{Method: r.method, URL: r.u.String(), StatusCode: resp.StatusCode}
	var te Error
	if checkMediaType(resp.Header.Get("Content-Type")) == nil && decodeObject(b, &te) == nil && te.Title != "" {
		se.TAXII = &te
	} else {
		se.Body = sanitize(b, errorBodyPrefix)
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		return &RateLimited{RetryAfter: retryAfter(resp.Header.Get("Retry-After"), time.Now()), Err: se}
	}
	return se
}

// retryAfter reads a Retry-After header: delay-seconds or an HTTP-date
// (RFC 9110 section 10.2.3); anything else, or a date past, is 0.
func retryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	if n, err := strconv.ParseInt(h, 10, 64); err == nil {
		if n < 0 || n > int64(math.MaxInt64/time.Second) {
			return 0
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// sanitize returns up to n bytes of b as text, control characters and
// invalid UTF-8 replaced.
func sanitize(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == 0xfffd {
			return '.'
		}
		return r
	}, strings.ToValidUTF8(string(b), "\ufffd"))
}

// checkMediaType accepts the TAXII media type, version 2.1 or none.
func checkMediaType(ct string) error {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return fmt.Errorf("%w: Content-Type %q: %w", ErrMalformed, ct, err)
	}
	if mt != "application/taxii+json" {
		return fmt.Errorf("%w: Content-Type %q, not %s", ErrMalformed, ct, MediaType)
	}
	if v, ok := params["version"]; ok && v != "2.1" {
		return fmt.Errorf("%w: Content-Type %q: version %q, not 2.1", ErrMalformed, ct, v)
	}
	return nil
}

// decodeObject decodes b, which must be exactly one JSON object with no
// member named twice at its top level and nothing after it, into v.
// Unknown members are allowed (TAXII extensions).
func decodeObject(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("%w: not a JSON object", ErrMalformed)
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		k, _ := tok.(string)
		if seen[k] {
			return fmt.Errorf("%w: member %q twice", ErrMalformed, k)
		}
		seen[k] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return fmt.Errorf("%w: member %q: %w", ErrMalformed, k, err)
		}
	}
	if _, err := dec.Token(); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: data after the object", ErrMalformed)
	}
	// Unmarshal checks the whole text again, and fills v.
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return nil
}

// decodeEnvelope decodes an envelope; each object is kept byte for byte
// as received and must be a JSON object.
func decodeEnvelope(b []byte) (Envelope, error) {
	var e Envelope
	if err := decodeObject(b, &e); err != nil {
		return Envelope{}, err
	}
	for i, o := range e.Objects {
		if len(o) == 0 || o[0] != '{' {
			return Envelope{}, fmt.Errorf("%w: objects[%d] is not a JSON object", ErrMalformed, i)
		}
	}
	return e, nil
}

// encodeEnvelope writes e with each object verbatim (no re-encoding, so
// signed bytes stay as they are). Every object must be a JSON object.
func encodeEnvelope(e Envelope) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`{`)
	if e.More {
		b.WriteString(`"more":true,`)
	}
	if e.Next != "" {
		n, err := json.Marshal(e.Next)
		if err != nil {
			return nil, fmt.Errorf("next: %w", err)
		}
		b.WriteString(`"next":`)
		b.Write(n)
		b.WriteString(`,`)
	}
	b.WriteString(`"objects":[`)
	for i, o := range e.Objects {
		o = bytes.TrimSpace(o)
		if !json.Valid(o) || len(o) == 0 || o[0] != '{' {
			return nil, fmt.Errorf("objects[%d]: not a JSON object", i)
		}
		if i > 0 {
			b.WriteString(`,`)
		}
		b.Write(o)
	}
	b.WriteString(`]}`)
	return b.Bytes(), nil
}

// dateHeader parses a date-added header (absent: zero time).
func dateHeader(h http.Header, name string) (time.Time, error) {
	s := h.Get(name)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %s: %w", ErrMalformed, name, err)
	}
	return t, nil
}

func readDateHeaders(h http.Header) (first, last time.Time, err error) {
	if first, err = dateHeader(h, HeaderDateAddedFirst); err != nil {
		return
	}
	last, err = dateHeader(h, HeaderDateAddedLast)
	return
}

// get fetches u and decodes the response into v.
func (c *Client) get(ctx context.Context, u *url.URL, wait time.Duration, v any) (http.Header, error) {
	h, b, err := c.do(ctx, clientRequest{method: http.MethodGet, u: u, want: http.StatusOK, wait: wait})
	if err != nil {
		return nil, err
	}
	if err := decodeObject(b, v); err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	return h, nil
}

// Discovery fetches the discovery resource at serverURL (e.g.
// https://b.example:8443/taxii2/), which need not be under the API root.
func (c *Client) Discovery(ctx context.Context, serverURL string) (Discovery, error) {
	u, err := checkURL(serverURL, c.allowHTTP)
	if err != nil {
		return Discovery{}, fmt.Errorf("discovery: %w", err)
	}
	var d Discovery
	if _, err := c.get(ctx, u, 0, &d); err != nil {
		return Discovery{}, err
	}
	return d, nil
}

// APIRoot fetches the API root resource.
func (c *Client) APIRoot(ctx context.Context) (APIRoot, error) {
	var a APIRoot
	if _, err := c.get(ctx, c.root, 0, &a); err != nil {
		return APIRoot{}, err
	}
	return a, nil
}

// Collections lists the collections the server shows this client.
func (c *Client) Collections(ctx context.Context) ([]Collection, error) {
	u, err := c.resolve("collections")
	if err != nil {
		return nil, err
	}
	var cs Collections
	if _, err := c.get(ctx, u, 0, &cs); err != nil {
		return nil, err
	}
	return cs.Collections, nil
}

// getEnvelope fetches a page of objects.
func (c *Client) getEnvelope(ctx context.Context, u *url.URL, wait time.Duration) (ObjectsPage, error) {
	h, b, err := c.do(ctx, clientRequest{method: http.MethodGet, u: u, want: http.StatusOK, wait: wait})
	if err != nil {
		return ObjectsPage{}, err
	}
	e, err := decodeEnvelope(b)
	if err != nil {
		return ObjectsPage{}, fmt.Errorf("GET %s: %w", u, err)
	}
	p := ObjectsPage{Envelope: e}
	if p.DateAddedFirst, p.DateAddedLast, err = readDateHeaders(h); err != nil {
		return ObjectsPage{}, fmt.Errorf("GET %s: %w", u, err)
	}
	return p, nil
}

// Objects fetches one page of the collection's objects matching q.
func (c *Client) Objects(ctx context.Context, collectionID string, q Query) (ObjectsPage, error) {
	u, err := c.resolve("collections", collectionID, "objects")
	if err != nil {
		return ObjectsPage{}, err
	}
	u.RawQuery = q.values().Encode()
	return c.getEnvelope(ctx, u, q.Wait)
}

// Object fetches an object of the collection: the versions named (first,
// last, all or timestamps), or the last one when none is.
func (c *Client) Object(ctx context.Context, collectionID, objectID string, versions ...string) (ObjectsPage, error) {
	u, err := c.resolve("collections", collectionID, "objects", objectID)
	if err != nil {
		return ObjectsPage{}, err
	}
	q := Query{Versions: versions}
	u.RawQuery = q.values().Encode()
	return c.getEnvelope(ctx, u, 0)
}

// Versions lists the versions of an object of the collection.
func (c *Client) Versions(ctx context.Context, collectionID, objectID string) (Versions, error) {
	u, err := c.resolve("collections", collectionID, "objects", objectID, "versions")
	if err != nil {
		return Versions{}, err
	}
	var v Versions
	if _, err := c.get(ctx, u, 0, &v); err != nil {
		return Versions{}, err
	}
	return v, nil
}

// Manifest fetches one page of the collection's manifest matching q.
func (c *Client) Manifest(ctx context.Context, collectionID string, q Query) (ManifestPage, error) {
	u, err := c.resolve("collections", collectionID, "manifest")
	if err != nil {
		return ManifestPage{}, err
	}
	u.RawQuery = q.values().Encode()
	var p ManifestPage
	h, err := c.get(ctx, u, q.Wait, &p.Manifest)
	if err != nil {
		return ManifestPage{}, err
	}
	if p.DateAddedFirst, p.DateAddedLast, err = readDateHeaders(h); err != nil {
		return ManifestPage{}, fmt.Errorf("GET %s: %w", u, err)
	}
	return p, nil
}

// Add posts objects, each sent byte for byte as given (less whitespace
// around it) and each required to be a JSON object, to the collection, and returns the status resource the server answers 202
// with.
func (c *Client) Add(ctx context.Context, collectionID string, objects []json.RawMessage) (Status, error) {
	u, err := c.resolve("collections", collectionID, "objects")
	if err != nil {
		return Status{}, err
	}
	body, err := encodeEnvelope(Envelope{Objects: objects})
	if err != nil {
		return Status{}, fmt.Errorf("POST %s: %w", u, err)
	}
	_, b, err := c.do(ctx, clientRequest{method: http.MethodPost, u: u, body: body, want: http.StatusAccepted})
	if err != nil {
		return Status{}, err
	}
	var s Status
	if err := decodeObject(b, &s); err != nil {
		return Status{}, fmt.Errorf("POST %s: %w", u, err)
	}
	if s.ID == "" {
		return Status{}, fmt.Errorf("POST %s: %w: status without an id", u, ErrMalformed)
	}
	return s, nil
}

// StatusOf fetches the status resource of an earlier Add.
func (c *Client) StatusOf(ctx context.Context, statusID string) (Status, error) {
	u, err := c.resolve("status", statusID)
	if err != nil {
		return Status{}, err
	}
	var s Status
	if _, err := c.get(ctx, u, 0, &s); err != nil {
		return Status{}, err
	}
	return s, nil
}

// maxEmptyPages is how many pages in a row All takes that say more but
// hold no object.
const maxEmptyPages = 8

// ErrNoProgress is returned by All when the server says there is more
// but gives no way to ask for it.
var ErrNoProgress = errors.New("taxii: server says more but gives no way on")

// All fetches q's pages one after another and hands each to fn, while
// the server says there are more: with the page's next when it gives
// one, else with added_after the page's X-TAXII-Date-Added-Last. A page
// saying more with neither, or with no objects and no next, a next given
// before, an added_after that would not advance, or more than
// maxEmptyPages empty pages in a row, is ErrNoProgress: a lying server
// cannot keep it looping. An error of fn stops it and is returned.
func (c *Client) All(ctx context.Context, collectionID string, q Query, fn func(ObjectsPage) error) error {
	seen := map[string]bool{}
	empty := 0
	for {
		p, err := c.Objects(ctx, collectionID, q)
		if err != nil {
			return err
		}
		if err := fn(p); err != nil {
			return err
		}
		if !p.More {
			return nil
		}
		if len(p.Objects) == 0 {
			empty++
		} else {
			empty = 0
		}
		last := p.DateAddedLast.Truncate(time.Microsecond)
		switch {
		case empty > maxEmptyPages:
			return fmt.Errorf("collection %s: %w (%d pages in a row without objects)", collectionID, ErrNoProgress, empty)
		case p.Next != "":
			if seen[p.Next] {
				return fmt.Errorf("collection %s: %w (next %q given twice)", collectionID, ErrNoProgress, p.Next)
			}
			seen[p.Next] = true
			q.Next = p.Next
		case len(p.Objects) == 0:
			return fmt.Errorf("collection %s: %w (more without objects nor next)", collectionID, ErrNoProgress)
		case p.DateAddedLast.IsZero():
			return fmt.Errorf("collection %s: %w (more without next nor %s)", collectionID, ErrNoProgress, HeaderDateAddedLast)
		case !last.After(q.AddedAfter.Truncate(time.Microsecond)):
			return fmt.Errorf("collection %s: %w (%s %s not after added_after %s)", collectionID, ErrNoProgress,
				HeaderDateAddedLast, FormatTime(last), FormatTime(q.AddedAfter))
		default:
			q.Next = ""
			q.AddedAfter = last
		}
	}
}
