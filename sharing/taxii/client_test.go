package taxii

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The fake servers below implement, each, only what one test needs of
// TAXII 2.1 (OASIS, sections 3 to 5).

// testClient is a client of srv's API root /root/ over plain http.
func testClient(tb testing.TB, srv *httptest.Server, mod ...func(*ClientConfig)) *Client {
	tb.Helper()
	cfg := ClientConfig{APIRoot: srv.URL + "/root/", AllowHTTP: true, HTTP: srv.Client(), Timeout: 5 * time.Second}
	for _, m := range mod {
		m(&cfg)
	}
	c, err := NewClient(cfg)
	require.NoError(tb, err)
	return c
}

// reply writes a TAXII response.
func reply(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", MediaType)
	w.WriteHeader(code)
	_, _ = w.Write([]byte(body))
}

func obj(i int) string { return fmt.Sprintf(`{"type":"indicator","id":"indicator--%d"}`, i) }

func envelope(more bool, next string, objs ...string) string {
	b, err := encodeEnvelope(Envelope{More: more, Next: next, Objects: raws(objs...)})
	if err != nil {
		panic(err)
	}
	return string(b)
}

func raws(objs ...string) []json.RawMessage {
	out := make([]json.RawMessage, len(objs))
	for i, o := range objs {
		out[i] = json.RawMessage(o)
	}
	return out
}

func strs(objs []json.RawMessage) []string {
	out := make([]string, len(objs))
	for i, o := range objs {
		out[i] = string(o)
	}
	return out
}

func TestNewClientRefusesPlainHTTP(t *testing.T) {
	for _, tc := range []struct {
		url       string
		allowHTTP bool
		ok        bool
	}{
		{"https://b.example:8443/alliance/", false, true},
		{"https://b.example:8443/alliance", false, true},
		{"http://b.example:8443/alliance/", false, false},
		{"HTTP://b.example/alliance/", false, false},
		{"http://b.example:8443/alliance/", true, true},
		{"ftp://b.example/alliance/", true, false},
		{"/alliance/", false, false},
		{"https:///alliance/", false, false},
		{"https://user:pw@b.example/alliance/", false, false},
		{"https://b.example/alliance/?x=1", false, false},
		{"", false, false},
	} {
		t.Run(tc.url, func(t *testing.T) {
			c, err := NewClient(ClientConfig{APIRoot: tc.url, AllowHTTP: tc.allowHTTP})
			if !tc.ok {
				require.Error(t, err)
				require.Contains(t, err.Error(), "api_root")
				require.Nil(t, c)
				return
			}
			require.NoError(t, err)
			require.True(t, strings.HasSuffix(c.root.Path, "/"))
			require.Equal(t, int64(DefaultMaxResponseBytes), c.max)
		})
	}

	// Discovery at a plain-http address is refused by an https client,
	// before any request.
	var hits int
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits++ }))
	defer srv.Close()
	c, err := NewClient(ClientConfig{APIRoot: "https://b.example/alliance/"})
	require.NoError(t, err)
	_, err = c.Discovery(context.Background(), srv.URL+"/taxii2/")
	require.ErrorContains(t, err, "https required")
	require.Zero(t, hits)

	_, err = NewClient(ClientConfig{APIRoot: "https://b.example/a/", MaxResponseBytes: -1, UserAgent: "x\r\ny: z"})
	require.ErrorContains(t, err, "max_response_bytes")
	require.ErrorContains(t, err, "user_agent")
}

// Every resource: the path asked, the headers sent, the answer decoded.
func TestClientResources(t *testing.T) {
	type seen struct{ method, path, query, accept, ua string }
	var mu sync.Mutex
	var reqs []seen
	col := CollectionID("alliance")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		reqs = append(reqs, seen{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Get("Accept"), r.Header.Get("User-Agent")})
		mu.Unlock()
		switch r.URL.EscapedPath() {
		case "/taxii2/":
			reply(w, 200, `{"title":"B","api_roots":["https://b.example/root/"],"x_ext":{"a":1}}`)
		case "/root/":
			reply(w, 200, `{"title":"Alliance","versions":["application/taxii+json;version=2.1"],"max_content_length":1048576}`)
		case "/root/collections/":
			reply(w, 200, `{"collections":[{"id":"`+col+`","title":"Alliance","alias":"alliance","can_read":true,"can_write":false}]}`)
		case "/root/collections/" + col + "/objects/indicator--1/":
			w.Header().Set(HeaderDateAddedFirst, "2026-12-02T12:00:00.000001Z")
			w.Header().Set(HeaderDateAddedLast, "2026-12-02T12:00:00.000002Z")
			reply(w, 200, envelope(false, "", obj(1), obj(1)))
		case "/root/collections/" + col + "/objects/indicator--1/versions/":
			reply(w, 200, `{"versions":["2026-12-01T00:00:00.000Z","2026-12-02T00:00:00.000Z"]}`)
		case "/root/collections/" + col + "/manifest/":
			w.Header().Set(HeaderDateAddedLast, "2026-12-02T12:00:00.5Z")
			reply(w, 200, `{"more":true,"objects":[{"id":"indicator--1","date_added":"2026-12-02T12:00:00.000001Z","version":"2026-12-01T00:00:00.000Z"}]}`)
		case "/root/status/s%2F1/":
			reply(w, 200, `{"id":"s/1","status":"complete","total_count":1,"success_count":1,"failure_count":0,"pending_count":0}`)
		default:
			reply(w, 404, `{"title":"Not found"}`)
		}
	}))
	defer srv.Close()
	c := testClient(t, srv, func(cfg *ClientConfig) { cfg.UserAgent = "cordon-test" })
	ctx := context.Background()

	d, err := c.Discovery(ctx, srv.URL+"/taxii2/")
	require.NoError(t, err)
	require.Equal(t, Discovery{Title: "B", APIRoots: []string{"https://b.example/root/"}}, d)

	a, err := c.APIRoot(ctx)
	require.NoError(t, err)
	require.Equal(t, 1048576, a.MaxContentLength)
	require.Equal(t, []string{MediaType}, a.Versions)

	cs, err := c.Collections(ctx)
	require.NoError(t, err)
	require.Equal(t, []Collection{{ID: col, Title: "Alliance", Alias: "alliance", CanRead: true}}, cs)

	p, err := c.Object(ctx, col, "indicator--1", "first", "last")
	require.NoError(t, err)
	require.Equal(t, []string{obj(1), obj(1)}, strs(p.Objects))
	require.Equal(t, time.Date(2026, 12, 2, 12, 0, 0, 1000, time.UTC), p.DateAddedFirst)
	require.Equal(t, time.Date(2026, 12, 2, 12, 0, 0, 2000, time.UTC), p.DateAddedLast)

	v, err := c.Versions(ctx, col, "indicator--1")
	require.NoError(t, err)
	require.Equal(t, []string{"2026-12-01T00:00:00.000Z", "2026-12-02T00:00:00.000Z"}, v.Versions)

	m, err := c.Manifest(ctx, col, Query{Types: []string{"indicator"}})
	require.NoError(t, err)
	require.True(t, m.More)
	require.Equal(t, []ManifestRecord{{ID: "indicator--1", DateAdded: "2026-12-02T12:00:00.000001Z", Version: "2026-12-01T00:00:00.000Z"}}, m.Objects)
	require.Equal(t, time.Date(2026, 12, 2, 12, 0, 0, 5e8, time.UTC), m.DateAddedLast)

	s, err := c.StatusOf(ctx, "s/1")
	require.NoError(t, err, "a status id is one escaped path segment")
	require.Equal(t, StatusComplete, s.Status)

	for _, bad := range []string{"", ".", ".."} {
		_, err := c.Objects(ctx, bad, Query{})
		require.Error(t, err, "collection %q", bad)
	}

	want := []seen{
		{"GET", "/taxii2/", "", MediaType, "cordon-test"},
		{"GET", "/root/", "", MediaType, "cordon-test"},
		{"GET", "/root/collections/", "", MediaType, "cordon-test"},
		{"GET", "/root/collections/" + col + "/objects/indicator--1/", "match%5Bversion%5D=first%2Clast", MediaType, "cordon-test"},
		{"GET", "/root/collections/" + col + "/objects/indicator--1/versions/", "", MediaType, "cordon-test"},
		{"GET", "/root/collections/" + col + "/manifest/", "match%5Btype%5D=indicator", MediaType, "cordon-test"},
		{"GET", "/root/status/s%2F1/", "", MediaType, "cordon-test"},
	}
	require.Equal(t, want, reqs, "the bad collection ids were refused before any request")
}

// The query parameters of section 3.4, and added_after at microseconds.
func TestClientQueryParameters(t *testing.T) {
	got := make(chan *http.Request, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r
		reply(w, 200, `{}`)
	}))
	defer srv.Close()
	c := testClient(t, srv)
	at := time.Date(2026, 12, 2, 13, 0, 0, 123456789, time.FixedZone("x", 3600))
	p, err := c.Objects(context.Background(), "c", Query{
		AddedAfter: at, Next: "n 1", Limit: 50,
		IDs: []string{"indicator--1", "indicator--2"}, Types: []string{"indicator", "identity"},
		Versions: []string{"all"}, SpecVersions: []string{"2.1"},
	})
	require.NoError(t, err)
	require.Empty(t, p.Objects)
	r := <-got
	q := r.URL.Query()
	require.Equal(t, "2026-12-02T12:00:00.123456Z", q.Get("added_after"))
	require.Equal(t, "n 1", q.Get("next"))
	require.Equal(t, "50", q.Get("limit"))
	require.Equal(t, "indicator--1,indicator--2", q.Get("match[id]"))
	require.Equal(t, "indicator,identity", q.Get("match[type]"))
	require.Equal(t, "all", q.Get("match[version]"))
	require.Equal(t, "2.1", q.Get("match[spec_version]"))
	require.Len(t, q, 7)
	require.Empty(t, r.Header.Get("Prefer"))
}

// fakePager serves objs two at a time, by next tokens or, when byDate, by
// added_after and the date-added headers only. Object i was added at
// base+i µs.
type fakePager struct {
	objs   []string
	byDate bool
	base   time.Time
	mu     sync.Mutex
	asked  []string
}

func (p *fakePager) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p.mu.Lock()
	p.asked = append(p.asked, r.URL.RawQuery)
	p.mu.Unlock()
	start := 0
	if n := q.Get("next"); n != "" {
		start, _ = strconv.Atoi(strings.TrimPrefix(n, "tok-"))
	}
	if a := q.Get("added_after"); a != "" {
		t, err := time.Parse(time.RFC3339Nano, a)
		if err != nil {
			reply(w, 400, `{"title":"bad added_after"}`)
			return
		}
		start = int(t.Sub(p.base)/time.Microsecond) + 1
	}
	end := min(start+2, len(p.objs))
	more := end < len(p.objs)
	next := ""
	if more && !p.byDate {
		next = fmt.Sprintf("tok-%d", end)
	}
	if end > start {
		w.Header().Set(HeaderDateAddedFirst, FormatTime(p.base.Add(time.Duration(start)*time.Microsecond)))
		w.Header().Set(HeaderDateAddedLast, FormatTime(p.base.Add(time.Duration(end-1)*time.Microsecond)))
	}
	reply(w, 200, envelope(more, next, p.objs[start:end]...))
}

func TestClientAllPages(t *testing.T) {
	base := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	var objs []string
	for i := range 5 {
		objs = append(objs, obj(i))
	}
	for _, tc := range []struct {
		name   string
		byDate bool
		asked  []string
	}{
		{"next", false, []string{"limit=2", "limit=2&next=tok-2", "limit=2&next=tok-4"}},
		{"date-added header", true, []string{
			"limit=2",
			"added_after=2026-12-02T12%3A00%3A00.000001Z&limit=2",
			"added_after=2026-12-02T12%3A00%3A00.000003Z&limit=2",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &fakePager{objs: objs, byDate: tc.byDate, base: base}
			srv := httptest.NewServer(p)
			defer srv.Close()
			c := testClient(t, srv)
			var got []string
			var pages int
			err := c.All(context.Background(), "c", Query{Limit: 2}, func(pg ObjectsPage) error {
				pages++
				got = append(got, strs(pg.Objects)...)
				return nil
			})
			require.NoError(t, err)
			require.Equal(t, objs, got, "every object once, in order")
			require.Equal(t, 3, pages)
			require.Equal(t, tc.asked, p.asked)
		})
	}

	// An error of fn stops the paging and is returned.
	p := &fakePager{objs: objs, base: base}
	srv := httptest.NewServer(p)
	defer srv.Close()
	stop := errors.New("stop")
	err := testClient(t, srv).All(context.Background(), "c", Query{Limit: 2}, func(ObjectsPage) error { return stop })
	require.ErrorIs(t, err, stop)
	require.Len(t, p.asked, 1)
}

// A server that says more forever, whichever way it lies, ends All with
// ErrNoProgress after a few requests; it never hangs.
func TestClientAllLyingServer(t *testing.T) {
	last := "2026-12-02T12:00:00.000001Z"
	for _, tc := range []struct {
		name string
		// page answers request n (from 0).
		page func(w http.ResponseWriter, n int)
	}{
		{"more, no next, no objects", func(w http.ResponseWriter, _ int) {
			w.Header().Set(HeaderDateAddedLast, last)
			reply(w, 200, `{"more":true}`)
		}},
		{"more, no next, no header", func(w http.ResponseWriter, n int) {
			reply(w, 200, envelope(true, "", obj(n)))
		}},
		{"more, same next, same objects", func(w http.ResponseWriter, _ int) {
			reply(w, 200, envelope(true, "again", obj(1)))
		}},
		{"more, new next each time, no objects", func(w http.ResponseWriter, n int) {
			reply(w, 200, envelope(true, fmt.Sprintf("n%d", n)))
		}},
		{"more, date-added header that does not advance", func(w http.ResponseWriter, n int) {
			w.Header().Set(HeaderDateAddedLast, last)
			reply(w, 200, envelope(true, "", obj(n)))
		}},
		{"more, date-added header advancing by less than the precision", func(w http.ResponseWriter, n int) {
			w.Header().Set(HeaderDateAddedLast, fmt.Sprintf("2026-12-02T12:00:00.000001%03dZ", n))
			reply(w, 200, envelope(true, "", obj(n)))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			n := 0
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				mu.Lock()
				i := n
				n++
				mu.Unlock()
				tc.page(w, i)
			}))
			defer srv.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := testClient(t, srv).All(ctx, "c", Query{}, func(ObjectsPage) error { return nil })
			require.ErrorIs(t, err, ErrNoProgress)
			require.NoError(t, ctx.Err(), "refused, not timed out")
			mu.Lock()
			defer mu.Unlock()
			require.LessOrEqual(t, n, maxEmptyPages+2)
		})
	}
}

// Bodies the client refuses.
func TestClientRefusesMalformed(t *testing.T) {
	big := `{"objects":[{"x":"` + strings.Repeat("a", 2000) + `"}]}`
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
	}{
		{"over the limit, with Content-Length", func(w http.ResponseWriter, _ *http.Request) { reply(w, 200, big) }},
		{"over the limit, endless chunks", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", MediaType)
			_, _ = w.Write([]byte(`{"objects":[`))
			chunk := []byte(strings.Repeat(`{"a":1},`, 128))
			for r.Context().Err() == nil {
				if _, err := w.Write(chunk); err != nil {
					return
				}
				w.(http.Flusher).Flush()
			}
		}},
		{"application/json", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{}`))
		}},
		{"STIX media type", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", STIXMediaType)
			_, _ = w.Write([]byte(`{}`))
		}},
		{"TAXII 2.0", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/taxii+json;version=2.0")
			_, _ = w.Write([]byte(`{}`))
		}},
		{"no Content-Type", func(w http.ResponseWriter, _ *http.Request) {
			w.Header()["Content-Type"] = nil
			_, _ = w.Write([]byte(`{}`))
		}},
		{"trailing garbage", func(w http.ResponseWriter, _ *http.Request) { reply(w, 200, envelope(false, "", obj(1))+`x`) }},
		{"a second object", func(w http.ResponseWriter, _ *http.Request) { reply(w, 200, `{} {}`) }},
		{"a stray brace", func(w http.ResponseWriter, _ *http.Request) { reply(w, 200, `{"objects":[]}}`) }},
		{"an array", func(w http.ResponseWriter, _ *http.Request) { reply(w, 200, `[{"objects":[]}]`) }},
		{"null", func(w http.ResponseWriter, _ *http.Request) { reply(w, 200, `null`) }},
		{"empty", func(w http.ResponseWriter, _ *http.Request) { reply(w, 200, ``) }},
		{"truncated", func(w http.ResponseWriter, _ *http.Request) { reply(w, 200, `{"objects":[{"a":1}`) }},
		{"more twice", func(w http.ResponseWriter, _ *http.Request) { reply(w, 200, `{"more":false,"more":true}`) }},
		{"more a string", func(w http.ResponseWriter, _ *http.Request) { reply(w, 200, `{"more":"true"}`) }},
		{"an object that is a number", func(w http.ResponseWriter, _ *http.Request) { reply(w, 200, `{"objects":[1]}`) }},
		{"an object that is null", func(w http.ResponseWriter, _ *http.Request) { reply(w, 200, `{"objects":[{},null]}`) }},
		{"bad date-added header", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set(HeaderDateAddedLast, "yesterday")
			reply(w, 200, `{}`)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			c := testClient(t, srv, func(cfg *ClientConfig) { cfg.MaxResponseBytes = 1024 })
			done := make(chan error, 1)
			go func() {
				_, err := c.Objects(context.Background(), "c", Query{})
				done <- err
			}()
			select {
			case err := <-done:
				require.ErrorIs(t, err, ErrMalformed)
			case <-time.After(5 * time.Second):
				t.Fatal("the client kept reading")
			}
		})
	}

	// The limit itself is accepted.
	body := envelope(false, "", obj(1))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { reply(w, 200, body) }))
	defer srv.Close()
	c := testClient(t, srv, func(cfg *ClientConfig) { cfg.MaxResponseBytes = int64(len(body)) })
	p, err := c.Objects(context.Background(), "c", Query{})
	require.NoError(t, err)
	require.Equal(t, []string{obj(1)}, strs(p.Objects))
	c = testClient(t, srv, func(cfg *ClientConfig) { cfg.MaxResponseBytes = int64(len(body)) - 1 })
	_, err = c.Objects(context.Background(), "c", Query{})
	require.ErrorIs(t, err, ErrMalformed)
}

func TestClientErrors(t *testing.T) {
	long := "oops\x00\x1b[31m\r\nfake: header " + strings.Repeat("x", 300) + "TAIL"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("next") {
		case "taxii":
			reply(w, 404, `{"title":"Collection not found","description":"no such collection","http_status":"404","x_vendor":1}`)
		case "plain":
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(502)
			_, _ = w.Write([]byte(long))
		case "json-not-taxii":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(500)
			_, _ = w.Write([]byte(`{"title":"looks like one"}`))
		case "redirect":
			http.Redirect(w, r, "http://elsewhere.example/", http.StatusFound)
		case "ok-with-201":
			reply(w, 201, `{}`)
		case "429-seconds":
			w.Header().Set("Retry-After", "7")
			reply(w, 429, `{"title":"Too many requests"}`)
		case "429-date":
			w.Header().Set("Retry-After", time.Now().Add(time.Hour).UTC().Format(http.TimeFormat))
			w.WriteHeader(429)
		case "429-none":
			w.WriteHeader(429)
		}
	}))
	defer srv.Close()
	c := testClient(t, srv)
	get := func(next string) error {
		_, err := c.Objects(context.Background(), "c", Query{Next: next})
		require.Error(t, err, next)
		return err
	}

	err := get("taxii")
	var te *Error
	require.ErrorAs(t, err, &te)
	require.Equal(t, "Collection not found", te.Title)
	require.Equal(t, "no such collection", te.Description)
	var se *StatusError
	require.ErrorAs(t, err, &se)
	require.Equal(t, 404, se.StatusCode)
	require.Contains(t, err.Error(), "HTTP 404")

	err = get("plain")
	require.ErrorAs(t, err, &se)
	require.Nil(t, se.TAXII)
	require.Equal(t, 502, se.StatusCode)
	require.Len(t, se.Body, 200)
	require.True(t, strings.HasPrefix(se.Body, "oops..[31m..fake: header xxx"), se.Body)
	require.NotContains(t, se.Body, "TAIL")
	require.False(t, errors.As(err, &te))
	require.NotContains(t, err.Error(), "\n")
	require.NotContains(t, err.Error(), "\x1b")

	err = get("json-not-taxii")
	require.ErrorAs(t, err, &se)
	require.Nil(t, se.TAXII, "an error body counts only in the TAXII media type")
	require.Contains(t, se.Body, "looks like one")

	err = get("redirect")
	require.ErrorAs(t, err, &se)
	require.Equal(t, 302, se.StatusCode, "no redirect is followed")
	def := testClient(t, srv, func(cfg *ClientConfig) { cfg.HTTP = nil })
	_, err = def.Objects(context.Background(), "c", Query{Next: "redirect"})
	require.ErrorAs(t, err, &se, "nor by the default client")
	require.Equal(t, 302, se.StatusCode)

	err = get("ok-with-201")
	require.ErrorAs(t, err, &se)
	require.Equal(t, 201, se.StatusCode)

	for _, tc := range []struct {
		next string
		min  time.Duration
		max  time.Duration
	}{
		{"429-seconds", 7 * time.Second, 7 * time.Second},
		{"429-date", 59 * time.Minute, time.Hour},
		{"429-none", 0, 0},
	} {
		err := get(tc.next)
		var rl *RateLimited
		require.ErrorAs(t, err, &rl, tc.next)
		require.GreaterOrEqual(t, rl.RetryAfter, tc.min, tc.next)
		require.LessOrEqual(t, rl.RetryAfter, tc.max, tc.next)
		require.ErrorAs(t, err, &se)
		require.Equal(t, 429, se.StatusCode)
	}
	require.ErrorAs(t, get("429-seconds"), &te, "a rate limit with a TAXII body carries it")
	require.Equal(t, "Too many requests", te.Title)
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	for h, want := range map[string]time.Duration{
		"":                              0,
		"0":                             0,
		"120":                           2 * time.Minute,
		" 5 ":                           5 * time.Second,
		"-3":                            0,
		"99999999999999999999":          0,
		"9223372036854775807":           0,
		"soon":                          0,
		"Wed, 02 Dec 2026 12:00:30 GMT": 30 * time.Second,
		"Wed, 02 Dec 2026 11:00:00 GMT": 0,
	} {
		require.Equal(t, want, retryAfter(h, now), "%q", h)
	}
}

// Wait is sent as Prefer: wait=N, and lengthens the request's deadline
// so that a server holding the long-poll is waited for.
func TestClientPreferWait(t *testing.T) {
	const hold = 400 * time.Millisecond
	prefer := make(chan string, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		prefer <- r.Header.Get("Prefer")
		if r.Header.Get("Prefer") != "" {
			select {
			case <-time.After(hold):
			case <-r.Context().Done():
				return
			}
		}
		if r.URL.Query().Get("next") == "hold" {
			select {
			case <-time.After(hold):
			case <-r.Context().Done():
				return
			}
		}
		reply(w, 200, envelope(false, "", obj(1)))
	}))
	defer srv.Close()
	ctx := context.Background()

	short := func(cfg *ClientConfig) { cfg.Timeout = 100 * time.Millisecond }
	c := testClient(t, srv, short)
	p, err := c.Objects(ctx, "c", Query{Wait: 1500 * time.Millisecond})
	require.NoError(t, err, "the deadline is Timeout plus Wait")
	require.Equal(t, []string{obj(1)}, strs(p.Objects))
	require.Equal(t, "wait=2", <-prefer, "whole seconds, rounded up")

	m, err := c.Manifest(ctx, "c", Query{Wait: time.Second})
	require.NoError(t, err)
	require.Equal(t, "indicator--1", m.Objects[0].ID)
	require.Equal(t, "wait=1", <-prefer)

	// Without Wait the same hold exceeds the timeout.
	_, err = c.Objects(ctx, "c", Query{Next: "hold"})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Empty(t, <-prefer)

	// A caller's http.Client Timeout is lengthened by Wait too, and
	// left as it was.
	hc := srv.Client()
	hc.Timeout = 100 * time.Millisecond
	c = testClient(t, srv, func(cfg *ClientConfig) { cfg.HTTP = hc })
	_, err = c.Objects(ctx, "c", Query{Wait: time.Second})
	require.NoError(t, err)
	require.Equal(t, "wait=1", <-prefer)
	require.Equal(t, 100*time.Millisecond, hc.Timeout)
	_, err = c.Objects(ctx, "c", Query{Next: "hold"})
	require.Error(t, err)
	<-prefer
}

// Objects reach the caller byte for byte as the server sent them.
func TestClientObjectsByteForByte(t *testing.T) {
	objs := []string{
		`{"type":"indicator","id":"indicator--1","x_amount":"123456789012345678901234567890","x_wei":123456789012345678901234567890}`,
		"{ \"type\" :\t\"identity\",\n  \"id\":\"identity--2\" ,\r\n \"name\":\"caf\\u00e9 <b>&amp;\",\"z\":1.50e+2,\"a\":-0.0 }",
		`{"id":"x--3","type":"x","nested":{"b":[1,2,{"c":null}],"a":true},"text":"\ud83d\ude00 \"quoted\" \\"}`,
	}
	body := "\n{ \"more\" : false ,\n\t\"objects\" : [ " + objs[0] + " ,\n" + objs[1] + "\t,  " + objs[2] + "\n ] , \"x_ext\": [1] }\r\n"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { reply(w, 200, body) }))
	defer srv.Close()
	p, err := testClient(t, srv).Objects(context.Background(), "c", Query{})
	require.NoError(t, err)
	require.Equal(t, objs, strs(p.Objects))
	require.False(t, p.More)
	require.True(t, p.DateAddedFirst.IsZero())
}

// Add posts an envelope of the objects as given and reads the 202 Status.
func TestClientAdd(t *testing.T) {
	objs := raws(
		`{"type":"indicator","id":"indicator--1","x_amount":"123456789012345678901234567890"}`,
		"{\"type\":\"identity\",\n\t\"id\":\"identity--2\"}",
	)
	var mu sync.Mutex
	var posted []byte
	var header http.Header
	code := http.StatusAccepted
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/root/collections/c1/objects/" {
			reply(w, 405, `{"title":"Method not allowed"}`)
			return
		}
		var b bytes.Buffer
		_, _ = b.ReadFrom(r.Body)
		mu.Lock()
		posted, header = b.Bytes(), r.Header.Clone()
		mu.Unlock()
		reply(w, code, `{"id":"status-1","status":"pending","request_timestamp":"2026-12-02T12:00:00.000000Z",`+
			`"total_count":2,"success_count":1,"successes":[{"id":"indicator--1","version":"2026-12-01T00:00:00.000Z"}],`+
			`"failure_count":0,"pending_count":1,"pendings":[{"id":"identity--2","version":"2026-12-01T00:00:00.000Z"}]}`)
	}))
	defer srv.Close()
	c := testClient(t, srv)
	s, err := c.Add(context.Background(), "c1", objs)
	require.NoError(t, err)
	require.Equal(t, Status{
		ID: "status-1", Status: StatusPending, RequestTimestamp: "2026-12-02T12:00:00.000000Z",
		TotalCount: 2, SuccessCount: 1, PendingCount: 1,
		Successes: []StatusDetails{{ID: "indicator--1", Version: "2026-12-01T00:00:00.000Z"}},
		Pendings:  []StatusDetails{{ID: "identity--2", Version: "2026-12-01T00:00:00.000Z"}},
	}, s)

	mu.Lock()
	require.Equal(t, MediaType, header.Get("Content-Type"))
	require.Equal(t, MediaType, header.Get("Accept"))
	env, err := decodeEnvelope(posted)
	mu.Unlock()
	require.NoError(t, err)
	require.Equal(t, objs, env.Objects, "posted byte for byte")
	require.False(t, env.More)

	// Not 202: refused, even with a status body.
	code = http.StatusOK
	_, err = c.Add(context.Background(), "c1", objs)
	var se *StatusError
	require.ErrorAs(t, err, &se)
	require.Equal(t, 200, se.StatusCode)

	// Objects that are not JSON objects are never sent.
	mu.Lock()
	posted = nil
	mu.Unlock()
	for _, bad := range []string{`[1]`, `{"a":1`, `"s"`, ``, `{"a":1} {}`} {
		_, err = c.Add(context.Background(), "c1", raws(obj(1), bad))
		require.ErrorContains(t, err, "objects[1]", "%q", bad)
	}
	mu.Lock()
	require.Nil(t, posted)
	mu.Unlock()
}

func FuzzClientEnvelope(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"more":true,"next":"x","objects":[{"a":1},{}]}`,
		"{\"objects\":[ {\"x\" :\t\"123456789012345678901234567890\"} ]}",
		`{"objects":[1]}`, `{"more":false,"more":true}`, `{} x`, `[]`, `null`,
		`{"objects":[{"s":"\u00e9<>&"}],"x_ext":{"objects":[]}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeEnvelope(b)
		if err != nil {
			require.ErrorIs(t, err, ErrMalformed)
			return
		}
		require.True(t, json.Valid(b))
		for _, o := range e.Objects {
			require.True(t, bytes.Contains(b, o), "an object is the bytes received")
			require.Equal(t, byte('{'), o[0])
		}
		out, err := encodeEnvelope(e)
		require.NoError(t, err)
		again, err := decodeEnvelope(out)
		require.NoError(t, err)
		require.Equal(t, e.More, again.More)
		require.Equal(t, e.Next, again.Next)
		require.Equal(t, strs(e.Objects), strs(again.Objects))
	})
}
