package taxii

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/internal/clock"
	"github.com/cordonhq/cordon/internal/testkit"
	"github.com/cordonhq/cordon/sharing/stix"
)

// fakeAccess: the caller is named by the X-Test-Caller header; rights
// are per caller and alias; records marked "x_tlp":"red" go to alice
// only; callers in spent are over their budget.
type fakeAccess struct {
	mu    sync.Mutex
	read  map[string]map[string]bool
	write map[string]map[string]bool
	spent map[string]bool
	// received counts MayReceive calls: a busy loop shows.
	received atomic.Int64
}

func (a *fakeAccess) Identify(r *http.Request) (Caller, error) {
	switch n := r.Header.Get("X-Test-Caller"); n {
	case "":
		return Caller{}, fmt.Errorf("identify: %w", ErrUnauthenticated)
	case "mallory":
		return Caller{}, errors.New("certificate not in the partner registry")
	default:
		return Caller{Name: n}, nil
	}
}

func (a *fakeAccess) CanRead(c Caller, alias string) bool  { return a.read[c.Name][alias] }
func (a *fakeAccess) CanWrite(c Caller, alias string) bool { return a.write[c.Name][alias] }
func (a *fakeAccess) MayReceive(c Caller, _ string, rec *Record) bool {
	a.received.Add(1)
	return c.Name == "alice" || !bytes.Contains(rec.Raw, []byte(`"x_tlp":"red"`))
}

func (a *fakeAccess) Allow(c Caller) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return !a.spent[c.Name]
}

// fakeIntake stores what it is given, refusing objects marked
// "x_refuse":true.
type fakeIntake struct{ store *Store }

func (in fakeIntake) Accept(_ context.Context, _ Caller, alias string, objs []stix.Object) []Outcome {
	out := make([]Outcome, len(objs))
	for i, o := range objs {
		out[i] = Outcome{ID: o.ID, Version: o.Modified}
		if bytes.Contains(o.Raw, []byte(`"x_refuse":true`)) {
			out[i].Err = errors.New("refused by the test intake")
			continue
		}
		added, err := in.store.Add(alias, []Record{{ID: o.ID, Type: o.Type, SpecVersion: o.SpecVersion, Version: o.Modified, Raw: o.Raw}})
		if err != nil {
			out[i].Err = err
			continue
		}
		out[i].Duplicate = !added[0]
	}
	return out
}

type env struct {
	t     testing.TB
	srv   *Server
	ts    *httptest.Server
	store *Store
	clk   *clock.Manual
	acc   *fakeAccess
}

var cursorKey = bytes.Repeat([]byte{7}, 32)

func newEnv(t testing.TB, mod func(*ServerConfig)) *env {
	t.Helper()
	clk := clock.NewManual(time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC))
	st := NewStore(clk, "intel", "hidden", "empty")
	acc := &fakeAccess{
		read: map[string]map[string]bool{
			"alice": {"intel": true, "hidden": true, "empty": true},
			"bob":   {"intel": true, "empty": true},
		},
		write: map[string]map[string]bool{
			"alice": {"intel": true, "hidden": true},
			"carol": {"intel": true},
		},
		spent: map[string]bool{"greedy": true},
	}
	cfg := ServerConfig{
		Title: "cordon alliance", Description: "test", Contact: "soc@example.com", APIRoot: "alliance",
		Collections: []CollectionInfo{{Alias: "intel", Title: "Intel"}, {Alias: "hidden", Title: "Hidden"}, {Alias: "empty", Title: "Empty"}},
		Store:       st, Access: acc, Intake: fakeIntake{st}, CursorKey: cursorKey, Clock: clk,
	}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := NewServer(cfg)
	require.NoError(t, err)
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return &env{t: t, srv: srv, ts: ts, store: st, clk: clk, acc: acc}
}

// do sends a request as caller with the TAXII Accept (and Content-Type
// with a body); hdr pairs override ("" removes).
func (e *env) do(caller, method, path string, body io.Reader, hdr ...string) (*http.Response, []byte) {
	e.t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, e.ts.URL+path, body)
	require.NoError(e.t, err)
	req.Header.Set("Accept", MediaType)
	if body != nil {
		req.Header.Set("Content-Type", MediaType)
	}
	if caller != "" {
		req.Header.Set("X-Test-Caller", caller)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	resp, err := e.ts.Client().Do(req)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	require.Equal(e.t, MediaType, resp.Header.Get("Content-Type"), "every answer is TAXII: %s %s", method, path)
	return resp, b
}

func (e *env) get(caller, path string, hdr ...string) (*http.Response, []byte) {
	e.t.Helper()
	return e.do(caller, http.MethodGet, path, nil, hdr...)
}

// requireError checks the status and the spec's error body.
func requireError(t testing.TB, resp *http.Response, body []byte, status int, desc string) {
	t.Helper()
	require.Equal(t, status, resp.StatusCode, "%s", body)
	var m map[string]any
	require.NoError(t, json.Unmarshal(body, &m))
	require.Equal(t, fmt.Sprint(status), m["http_status"], "http_status is a string")
	require.NotEmpty(t, m["title"])
	require.Contains(t, m["description"], desc)
}

var intel = "/alliance/collections/" + CollectionID("intel") + "/"

func sid(i int) string { return fmt.Sprintf("indicator--%08x-0000-4000-8000-000000000000", i) }

// indicator is a STIX indicator, version modified (seconds after a base).
func indicator(i, modified int, extra string) string {
	return fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":%q,"created":"2025-01-01T00:00:00.000Z","modified":%q%s}`,
		sid(i), stixTime(modified), extra)
}

func stixTime(sec int) string {
	return stix.FormatTimestamp(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(sec) * time.Second))
}

func env1(objs ...string) string { return `{"objects":[` + strings.Join(objs, ",") + `]}` }

// post posts objs to intel as alice and requires every one a success.
func (e *env) post(objs ...string) Status {
	e.t.Helper()
	resp, b := e.do("alice", http.MethodPost, intel+"objects/", strings.NewReader(env1(objs...)))
	require.Equal(e.t, http.StatusAccepted, resp.StatusCode, "%s", b)
	var st Status
	require.NoError(e.t, json.Unmarshal(b, &st))
	require.Equal(e.t, len(objs), st.SuccessCount, "%s", b)
	return st
}

type page struct {
	More    bool   `json:"more"`
	Next    string `json:"next"`
	Objects []struct {
		ID       string `json:"id"`
		Modified string `json:"modified"`
	} `json:"objects"`
}

func decodePage(t testing.TB, b []byte) page {
	t.Helper()
	var p page
	require.NoError(t, json.Unmarshal(b, &p), "%s", b)
	return p
}

func TestNewServerNamesTheBadField(t *testing.T) {
	st := NewStore(nil, "intel")
	good := ServerConfig{Title: "t", APIRoot: "alliance", Collections: []CollectionInfo{{Alias: "intel", Title: "I"}},
		Store: st, Access: &fakeAccess{}, Intake: fakeIntake{st}, CursorKey: cursorKey}
	_, err := NewServer(good)
	require.NoError(t, err)
	for _, tc := range []struct {
		name, want string
		mod        func(*ServerConfig)
	}{
		{"title", "Title is required", func(c *ServerConfig) { c.Title = "" }},
		{"root slash", "APIRoot", func(c *ServerConfig) { c.APIRoot = "a/b" }},
		{"root taxii2", "APIRoot", func(c *ServerConfig) { c.APIRoot = "taxii2" }},
		{"root empty", "APIRoot", func(c *ServerConfig) { c.APIRoot = "" }},
		{"no collections", "Collections", func(c *ServerConfig) { c.Collections = nil }},
		{"alias twice", "Collections[1].Alias \"intel\": given twice", func(c *ServerConfig) {
			c.Collections = []CollectionInfo{{Alias: "intel", Title: "a"}, {Alias: "intel", Title: "b"}}
		}},
		{"alias not held", "the Store does not hold it", func(c *ServerConfig) { c.Collections = []CollectionInfo{{Alias: "other", Title: "o"}} }},
		{"collection title", "Collections[0].Title", func(c *ServerConfig) { c.Collections[0].Title = "" }},
		{"store", "Store is required", func(c *ServerConfig) { c.Store = nil }},
		{"access", "Access is required", func(c *ServerConfig) { c.Access = nil }},
		{"intake", "Intake is required", func(c *ServerConfig) { c.Intake = nil }},
		{"key", "CursorKey: 31 bytes", func(c *ServerConfig) { c.CursorKey = cursorKey[:31] }},
		{"content length", "MaxContentLength", func(c *ServerConfig) { c.MaxContentLength = -1 }},
		{"wait", "MaxWait", func(c *ServerConfig) { c.MaxWait = -time.Second }},
		{"pages", "DefaultPage 50 above MaxPage 10", func(c *ServerConfig) { c.DefaultPage, c.MaxPage = 50, 10 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			c.Collections = append([]CollectionInfo(nil), good.Collections...)
			tc.mod(&c)
			_, err := NewServer(c)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestDiscoveryAPIRootAndCollections(t *testing.T) {
	e := newEnv(t, nil)
	resp, b := e.get("bob", "/taxii2/")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var d Discovery
	require.NoError(t, json.Unmarshal(b, &d))
	require.Equal(t, Discovery{Title: "cordon alliance", Description: "test", Contact: "soc@example.com",
		Default: "/alliance/", APIRoots: []string{"/alliance/"}}, d)

	resp, b = e.get("bob", "/alliance/")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var root APIRoot
	require.NoError(t, json.Unmarshal(b, &root))
	require.Equal(t, []string{MediaType}, root.Versions)
	require.Equal(t, DefaultMaxContentLength, root.MaxContentLength)

	// Each caller sees the collections it can read or write, no other.
	for _, tc := range []struct {
		caller string
		want   []Collection
	}{
		{"alice", []Collection{
			{ID: CollectionID("intel"), Title: "Intel", Alias: "intel", CanRead: true, CanWrite: true, MediaTypes: []string{STIXMediaType}},
			{ID: CollectionID("hidden"), Title: "Hidden", Alias: "hidden", CanRead: true, CanWrite: true, MediaTypes: []string{STIXMediaType}},
			{ID: CollectionID("empty"), Title: "Empty", Alias: "empty", CanRead: true, MediaTypes: []string{STIXMediaType}},
		}},
		{"bob", []Collection{
			{ID: CollectionID("intel"), Title: "Intel", Alias: "intel", CanRead: true, MediaTypes: []string{STIXMediaType}},
			{ID: CollectionID("empty"), Title: "Empty", Alias: "empty", CanRead: true, MediaTypes: []string{STIXMediaType}},
		}},
		{"carol", []Collection{
			{ID: CollectionID("intel"), Title: "Intel", Alias: "intel", CanWrite: true, MediaTypes: []string{STIXMediaType}},
		}},
		{"dave", []Collection{}},
	} {
		resp, b := e.get(tc.caller, "/alliance/collections/")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		var cs Collections
		require.NoError(t, json.Unmarshal(b, &cs))
		require.Equal(t, tc.want, cs.Collections, tc.caller)
	}

	resp, b = e.get("carol", intel)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var c Collection
	require.NoError(t, json.Unmarshal(b, &c))
	require.Equal(t, Collection{ID: CollectionID("intel"), Title: "Intel", Alias: "intel", CanWrite: true, MediaTypes: []string{STIXMediaType}}, c)

	// bob cannot see that hidden exists: the same 404 as a made-up id.
	hidden := "/alliance/collections/" + CollectionID("hidden") + "/"
	for _, p := range []string{hidden, hidden + "objects/", hidden + "manifest/", hidden + "objects/" + sid(1) + "/",
		"/alliance/collections/" + CollectionID("nope") + "/objects/"} {
		resp, b := e.get("bob", p)
		requireError(t, resp, b, http.StatusNotFound, "no such resource")
	}
}

func TestRefusals(t *testing.T) {
	e := newEnv(t, nil)
	e.post(indicator(1, 0, ""))
	obj := intel + "objects/" + sid(1) + "/"
	for _, tc := range []struct {
		name, caller, method, path string
		body                       string
		hdr                        []string
		status                     int
		desc                       string
	}{
		{"no certificate", "", "GET", "/taxii2/", "", nil, 401, "no client certificate"},
		{"unknown partner", "mallory", "GET", "/taxii2/", "", nil, 403, "not in the partner registry"},
		{"over budget", "greedy", "GET", "/taxii2/", "", nil, 429, "budget"},
		{"unknown path", "bob", "GET", "/alliance/nothing/", "", nil, 404, "no such resource"},
		{"other root", "bob", "GET", "/other/collections/", "", nil, 404, "no such resource"},
		{"no trailing slash", "bob", "GET", "/alliance/collections", "", nil, 404, "no such resource"},
		{"empty segment", "bob", "GET", "/alliance/collections//objects/", "", nil, 404, "no such resource"},
		{"post discovery", "alice", "POST", "/taxii2/", "{}", nil, 405, "allowed: GET"},
		{"put objects", "alice", "PUT", intel + "objects/", "{}", nil, 405, "allowed: GET, POST"},
		{"post object", "alice", "POST", obj, "{}", nil, 405, "allowed: GET, DELETE"},
		{"delete versions", "alice", "DELETE", obj + "versions/", "", nil, 405, "allowed: GET"},
		{"write-only reads", "carol", "GET", intel + "objects/", "", nil, 403, "no read access"},
		{"write-only manifest", "carol", "GET", intel + "manifest/", "", nil, 403, "no read access"},
		{"write-only object", "carol", "GET", obj, "", nil, 403, "no read access"},
		{"read-only posts", "bob", "POST", intel + "objects/", env1(), nil, 403, "no write access"},
		{"no accept", "bob", "GET", intel + "objects/", "", []string{"Accept", ""}, 406, MediaType},
		{"json accept", "bob", "GET", "/taxii2/", "", []string{"Accept", "application/json"}, 406, MediaType},
		{"taxii 2.0", "bob", "GET", "/taxii2/", "", []string{"Accept", "application/taxii+json;version=2.0"}, 406, MediaType},
		{"q zero", "bob", "GET", "/taxii2/", "", []string{"Accept", "application/taxii+json;version=2.1;q=0"}, 406, MediaType},
		{"wildcard", "bob", "GET", "/taxii2/", "", []string{"Accept", "*/*"}, 406, MediaType},
		{"stix content", "alice", "POST", intel + "objects/", env1(), []string{"Content-Type", "application/stix+json;version=2.1"}, 415, "Content-Type"},
		{"json content", "alice", "POST", intel + "objects/", env1(), []string{"Content-Type", "application/json"}, 415, "Content-Type"},
		{"content 2.0", "alice", "POST", intel + "objects/", env1(), []string{"Content-Type", "application/taxii+json;version=2.0"}, 415, "Content-Type"},
		{"malformed", "alice", "POST", intel + "objects/", `{"objects":[`, nil, 400, "malformed STIX"},
		{"duplicate member", "alice", "POST", intel + "objects/", `{"objects":[],"objects":[]}`, nil, 400, "appears twice"},
		{"bad object", "alice", "POST", intel + "objects/", env1(indicator(2, 0, ""), `{"type":"indicator"}`), nil, 400, "object 1"},
		{"bad bundle", "alice", "POST", intel + "objects/", `{"type":"bundle","id":"bundle--x","objects":[]}`, nil, 400, "bundle--<uuid>"},
		{"limit zero", "bob", "GET", intel + "objects/?limit=0", "", nil, 400, "limit"},
		{"limit text", "bob", "GET", intel + "objects/?limit=ten", "", nil, 400, "limit"},
		{"limit twice", "bob", "GET", intel + "objects/?limit=1&limit=2", "", nil, 400, "given 2 times"},
		{"added_after", "bob", "GET", intel + "objects/?added_after=yesterday", "", nil, 400, "added_after"},
		{"added_after offset", "bob", "GET", intel + "objects/?added_after=2025-01-01T00:00:00%2B01:00", "", nil, 400, "added_after"},
		{"match version", "bob", "GET", intel + "objects/?match[version]=latest", "", nil, 400, "match[version]"},
		{"match id", "bob", "GET", intel + "objects/?match[id]=" + sid(1) + ",nope", "", nil, 400, "match[id]"},
		{"match type empty", "bob", "GET", intel + "objects/?match[type]=indicator,", "", nil, 400, "match[type]"},
		{"garbage next", "bob", "GET", intel + "objects/?next=hello", "", nil, 400, "next: not a cursor"},
		{"unknown object", "bob", "GET", intel + "objects/" + sid(99) + "/", "", nil, 404, "no such resource"},
		{"unknown versions", "bob", "GET", intel + "objects/" + sid(99) + "/versions/", "", nil, 404, "no such resource"},
		{"unknown status", "bob", "GET", "/alliance/status/0b3e0b5c-0000-4000-8000-000000000000/", "", nil, 404, "no such resource"},
		{"delete read-only", "bob", "DELETE", obj, "", nil, 403, "no write access"},
		{"delete unknown", "alice", "DELETE", intel + "objects/" + sid(99) + "/", "", nil, 404, "no such resource"},
		{"delete", "alice", "DELETE", obj, "", nil, 403, "never deletes objects: revoke one by posting a new signed version with revoked: true"},
		{"delete write-only", "carol", "DELETE", intel + "objects/" + sid(99) + "/", "", nil, 403, "never deletes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			resp, b := e.do(tc.caller, tc.method, tc.path, body, tc.hdr...)
			requireError(t, resp, b, tc.status, tc.desc)
			switch tc.status {
			case 405:
				require.Equal(t, strings.TrimPrefix(tc.desc, "allowed: "), resp.Header.Get("Allow"))
			case 429:
				require.Equal(t, "1", resp.Header.Get("Retry-After"))
			}
		})
	}
	// Nothing refused was stored: intel still holds the one object.
	p, err := e.store.Query("intel", Filter{Versions: []string{"all"}}, 100)
	require.NoError(t, err)
	require.Len(t, p.Records, 1)
}

func TestAcceptHeaderParsing(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want bool
	}{
		{[]string{MediaType}, true},
		{[]string{"application/taxii+json"}, true},
		{[]string{"Application/TAXII+JSON ; Version=2.1"}, true},
		{[]string{`application/taxii+json;version="2.1"`}, true},
		{[]string{"text/html, application/taxii+json;version=2.1;q=0.5"}, true},
		{[]string{"text/html", "application/taxii+json"}, true},
		{[]string{`application/taxii+json;version=2.0, application/taxii+json;version=2.1;q=0.1`}, true},
		{[]string{"application/taxii+json;q=1;version=2.0"}, true}, // after q: an extension, not the version
		{[]string{"application/taxii+json;version=2.1;q=0"}, false},
		{[]string{"application/taxii+json;version=2.1;q=0.000"}, false},
		{[]string{"application/taxii+json;version=2.1;q=abc"}, false},
		{[]string{"application/taxii+json;version=2.0"}, false},
		{[]string{`text/plain;x="a, application/taxii+json"`}, false},
		{[]string{"application/taxii+jsonx"}, false},
		{[]string{"*/*"}, false},
		{[]string{"application/*"}, false},
		{nil, false},
		{[]string{""}, false},
	} {
		require.Equal(t, tc.want, acceptsTAXII(tc.in), "%q", tc.in)
	}
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"wait=10", 10 * time.Second, true},
		{"respond-async, WAIT = 3", 3 * time.Second, true},
		{`wait="7"`, 7 * time.Second, true},
		{"return=minimal;x=y, wait=0", 0, true},
		{"wait=-1", 0, false},
		{"wait=1.5", 0, false},
		{"wait=99999999999999", 0, false},
		{"respond-async", 0, false},
	} {
		got, ok := preferWait([]string{tc.in})
		require.Equal(t, tc.ok, ok, tc.in)
		require.Equal(t, tc.want, got, tc.in)
	}
}

// Every object seen exactly once, in date-added order, whatever the page
// size; more is false exactly on the last page; the headers bound each
// page.
func TestPagingConformance(t *testing.T) {
	e := newEnv(t, nil)
	const n = 250
	var want []string
	for i := 0; i < n; i += 50 {
		var batch []string
		for j := i; j < i+50; j++ {
			batch = append(batch, indicator(j, 0, ""))
			want = append(want, sid(j))
		}
		e.post(batch...)
	}
	all, err := e.store.Query("intel", Filter{}, n)
	require.NoError(t, err)

	for _, tc := range []struct {
		path     string
		limit    int
		manifest bool
	}{
		{intel + "objects/?limit=7", 7, false},
		{intel + "objects/?limit=250", 250, false},
		{intel + "objects/?limit=1", 1, false},
		{intel + "objects/", DefaultPageSize, false},
		{intel + "manifest/?limit=7", 7, true},
	} {
		var got []string
		path := tc.path
		for pages := 0; ; pages++ {
			require.Less(t, pages, n+2, "paging ends")
			resp, b := e.get("bob", path)
			require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
			var more bool
			var next string
			var ids []string
			if tc.manifest {
				var m Manifest
				require.NoError(t, json.Unmarshal(b, &m))
				for _, r := range m.Objects {
					ids = append(ids, r.ID)
					require.Equal(t, STIXMediaType, r.MediaType)
					require.Equal(t, "2025-01-01T00:00:00Z", r.Version)
				}
				more, next = m.More, m.Next
			} else {
				p := decodePage(t, b)
				for _, o := range p.Objects {
					ids = append(ids, o.ID)
				}
				more, next = p.More, p.Next
			}
			require.NotEmpty(t, ids)
			require.LessOrEqual(t, len(ids), tc.limit)
			first, last := len(got), len(got)+len(ids)-1
			require.Equal(t, FormatTime(all.Records[first].DateAdded), resp.Header.Get(HeaderDateAddedFirst))
			require.Equal(t, FormatTime(all.Records[last].DateAdded), resp.Header.Get(HeaderDateAddedLast))
			got = append(got, ids...)
			require.Equal(t, len(got) < n, more, "more exactly while objects remain (page %d)", pages)
			if !more {
				require.Empty(t, next)
				break
			}
			require.NotEmpty(t, next)
			sep := "?"
			if strings.Contains(tc.path, "?") {
				sep = "&"
			}
			path = tc.path + sep + "next=" + url.QueryEscape(next)
		}
		require.Equal(t, want, got, tc.path)
	}

	// A limit above MaxPage is clamped, not refused.
	e2 := newEnv(t, func(c *ServerConfig) { c.MaxPage = 5 })
	e2.post(indicator(1, 0, ""), indicator(2, 0, ""), indicator(3, 0, ""), indicator(4, 0, ""), indicator(5, 0, ""), indicator(6, 0, ""))
	_, b := e2.get("bob", intel+"objects/?limit=100000")
	p := decodePage(t, b)
	require.Len(t, p.Objects, 5)
	require.True(t, p.More)

	// An empty page is 200 with an envelope without objects.
	resp, b := e.get("bob", "/alliance/collections/"+CollectionID("empty")+"/objects/")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.JSONEq(t, `{}`, string(b))
	require.Empty(t, resp.Header.Get(HeaderDateAddedFirst))
	resp, b = e.get("bob", intel+"objects/?added_after="+url.QueryEscape(FormatTime(all.Records[n-1].DateAdded)))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.JSONEq(t, `{}`, string(b))
}

func TestFilters(t *testing.T) {
	e := newEnv(t, nil)
	e.post(indicator(1, 0, ""), indicator(2, 0, ""))
	e.post(indicator(1, 10, ""), indicator(1, 20, ""))
	malware := `{"type":"malware","spec_version":"2.1","id":"malware--00000001-0000-4000-8000-000000000000","created":"2025-01-01T00:00:00.000Z","name":"x","is_family":false}`
	e.post(malware)

	ids := func(path string) []string {
		t.Helper()
		resp, b := e.get("bob", path)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
		var out []string
		for _, o := range decodePage(t, b).Objects {
			out = append(out, o.ID+"@"+o.Modified)
		}
		return out
	}
	v0, v10, v20 := stixTime(0), stixTime(10), stixTime(20)
	mal := "malware--00000001-0000-4000-8000-000000000000@"
	o := intel + "objects/"
	require.Equal(t, []string{sid(2) + "@" + v0, sid(1) + "@" + v20, mal}, ids(o), "last version by default, date-added order")
	require.Equal(t, []string{sid(1) + "@" + v0, sid(2) + "@" + v0, mal}, ids(o+"?match[version]=first"))
	require.Equal(t, []string{sid(1) + "@" + v0, sid(2) + "@" + v0, sid(1) + "@" + v10, sid(1) + "@" + v20, mal}, ids(o+"?match[version]=all"))
	require.Equal(t, []string{sid(1) + "@" + v10}, ids(o+"?match[version]="+v10))
	require.Equal(t, []string{sid(1) + "@" + v0, sid(2) + "@" + v0, sid(1) + "@" + v20}, ids(o+"?match[version]=first,last&match[type]=indicator"))
	require.Equal(t, []string{mal}, ids(o+"?match[type]=malware"))
	require.Equal(t, []string{sid(2) + "@" + v0, mal}, ids(o+"?match[type]=malware&match[type]=indicator&match[id]="+sid(2)+",malware--00000001-0000-4000-8000-000000000000"))
	require.Empty(t, ids(o+"?match[spec_version]=2.0"))
	require.Len(t, ids(o+"?match[spec_version]=2.0,2.1"), 3)

	all, err := e.store.Query("intel", Filter{Versions: []string{"all"}}, 10)
	require.NoError(t, err)
	after := url.QueryEscape(FormatTime(all.Records[2].DateAdded))
	require.Equal(t, []string{sid(1) + "@" + v20, mal}, ids(o+"?added_after="+after), "strictly after")

	// One object: its versions, the versions list and the manifest.
	obj := o + sid(1) + "/"
	require.Equal(t, []string{sid(1) + "@" + v20}, ids(obj))
	require.Equal(t, []string{sid(1) + "@" + v0, sid(1) + "@" + v10, sid(1) + "@" + v20}, ids(obj+"?match[version]=all"))
	_, b := e.get("bob", obj+"versions/")
	var vs Versions
	require.NoError(t, json.Unmarshal(b, &vs))
	require.Equal(t, []string{"2025-01-01T00:00:00Z", "2025-01-01T00:00:10Z", "2025-01-01T00:00:20Z"}, vs.Versions)
	// Each listed version names exactly that version in match[version].
	for i, v := range vs.Versions {
		require.Equal(t, []string{sid(1) + "@" + []string{v0, v10, v20}[i]}, ids(obj+"?match[version]="+url.QueryEscape(v)))
	}
	_, b = e.get("bob", obj+"versions/?limit=2")
	vs = Versions{}
	require.NoError(t, json.Unmarshal(b, &vs))
	require.True(t, vs.More)
	require.Len(t, vs.Versions, 2)
	_, b = e.get("bob", obj+"versions/?limit=2&next="+vs.Next)
	vs2 := Versions{}
	require.NoError(t, json.Unmarshal(b, &vs2))
	require.Equal(t, Versions{Versions: []string{"2025-01-01T00:00:20Z"}}, vs2)

	_, b = e.get("bob", intel+"manifest/?match[id]="+sid(1)+"&match[version]=all")
	var m Manifest
	require.NoError(t, json.Unmarshal(b, &m))
	require.Len(t, m.Objects, 3)
	for i, r := range m.Objects {
		require.Equal(t, ManifestRecord{ID: sid(1), DateAdded: FormatTime(all.Records[[]int{0, 2, 3}[i]].DateAdded),
			Version: FormatVersion([]time.Time{
				time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2025, 1, 1, 0, 0, 10, 0, time.UTC), time.Date(2025, 1, 1, 0, 0, 20, 0, time.UTC),
			}[i]), MediaType: STIXMediaType}, r)
	}
}

// Objects come back byte for byte as posted, spaces, escapes and big
// numbers included.
func TestObjectsByteForByte(t *testing.T) {
	e := newEnv(t, nil)
	raw := `{ "type": "indicator", "spec_version": "2.1", "id": "` + sid(5) + `",` + "\n" +
		`  "created": "2025-01-01T00:00:00.000Z", "name": "a<b & \u00e9", "x_amount": 123456789012345678901234567890.0 }`
	e.post(raw)
	_, b := e.get("bob", intel+"objects/")
	require.Equal(t, `{"objects":[`+raw+`]}`, string(b))
	_, b = e.get("bob", intel+"objects/"+sid(5)+"/")
	require.Equal(t, `{"objects":[`+raw+`]}`, string(b))
}

func TestCursorBinding(t *testing.T) {
	e := newEnv(t, nil)
	var objs []string
	for i := 0; i < 10; i++ {
		objs = append(objs, indicator(i, 0, ""))
	}
	e.post(objs...)
	next := func(caller, path string) string {
		t.Helper()
		resp, b := e.get(caller, path)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
		var p struct{ Next string }
		require.NoError(t, json.Unmarshal(b, &p))
		require.NotEmpty(t, p.Next)
		return p.Next
	}
	o := intel + "objects/"
	bobs := next("bob", o+"?limit=3")
	typed := next("bob", o+"?limit=3&match[type]=indicator")
	manifest := next("bob", intel+"manifest/?limit=3")
	versions := next("alice", o+"?limit=3&match[version]=all")

	// The cursor works for its query, whatever the limit.
	resp, b := e.get("bob", o+"?limit=5&next="+bobs)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
	p := decodePage(t, b)
	require.Len(t, p.Objects, 5)
	require.Equal(t, sid(3), p.Objects[0].ID)
	// next overrides added_after (which is still bound).
	aa := next("bob", o+"?limit=3&added_after=2020-01-01T00:00:00Z")
	_, b = e.get("bob", o+"?limit=3&added_after=2020-01-01T00:00:00Z&next="+aa)
	require.Equal(t, sid(3), decodePage(t, b).Objects[0].ID)

	tampered := []byte(bobs)
	tampered[3] ^= 1
	raw, err := base64.RawURLEncoding.DecodeString(bobs)
	require.NoError(t, err)
	raw[5] ^= 1 // one microsecond of the position
	forged := base64.RawURLEncoding.EncodeToString(raw)
	for _, tc := range []struct {
		name, caller, path, want string
	}{
		{"another partner's", "alice", o + "?next=" + bobs, "next: not issued for this query or caller"},
		{"another query's", "bob", o + "?next=" + typed, "not issued for this query or caller"},
		{"added to a filter", "bob", o + "?match[type]=indicator,malware&next=" + typed, "not issued for this query or caller"},
		{"other added_after", "bob", o + "?added_after=2020-01-01T00:00:01Z&next=" + aa, "not issued for this query or caller"},
		{"another endpoint's", "bob", o + "?next=" + manifest, "not issued for this query or caller"},
		{"objects cursor on manifest", "bob", intel + "manifest/?next=" + bobs, "not issued for this query or caller"},
		{"another collection's", "alice", "/alliance/collections/" + CollectionID("hidden") + "/objects/?match[version]=all&next=" + versions, "not issued for this query or caller"},
		{"tampered", "bob", o + "?next=" + string(tampered), "next: "},
		{"forged position", "bob", o + "?next=" + forged, "next: not issued for this query or caller"},
		{"truncated", "bob", o + "?next=" + bobs[:len(bobs)-1], "next: not a cursor of this server"},
		{"extended", "bob", o + "?next=" + bobs + "A", "next: not a cursor of this server"},
		{"padded", "bob", o + "?next=" + bobs + "%3D", "next: not a cursor of this server"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, b := e.get(tc.caller, tc.path)
			requireError(t, resp, b, http.StatusBadRequest, tc.want)
		})
	}
}

func FuzzCursor(f *testing.F) {
	pos := time.Date(2026, 12, 2, 12, 0, 0, 123456000, time.UTC)
	b := binding(nil).str("bob").str("intel").str("objects").str("").list([]string{"indicator"})
	good := mintCursor(cursorKey, b, pos)
	f.Add(good)
	f.Add(good[:10])
	f.Add("")
	f.Add(strings.Repeat("A", len(good)))
	other := binding(nil).str("alice").str("intel").str("objects").str("").list([]string{"indicator"})
	f.Fuzz(func(t *testing.T, s string) {
		got, err := openCursor(cursorKey, b, s)
		if err == nil {
			// Only the cursor minted for this binding verifies, and it
			// gives back its position.
			require.Equal(t, good, s)
			require.True(t, got.Equal(pos))
		}
		_, err = openCursor(cursorKey, other, s)
		require.Error(t, err, "never verifies for another binding")
		_, err = openCursor(bytes.Repeat([]byte{8}, 32), b, s)
		require.Error(t, err, "never verifies under another key")
	})
}

func TestCursorRoundTrip(t *testing.T) {
	b := binding(nil).str("bob").list(nil).list([]string{""})
	for _, pos := range []time.Time{{}, time.Unix(0, 0), time.Date(2026, 12, 2, 12, 0, 0, 999999000, time.UTC)} {
		got, err := openCursor(cursorKey, b, mintCursor(cursorKey, b, pos))
		require.NoError(t, err)
		require.True(t, got.Equal(pos), "%s", pos)
	}
	// A second spelling of the same bytes (the last character's unused
	// bits set) is not the cursor minted.
	minted := mintCursor(cursorKey, b, time.Unix(1, 0))
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, minted[len(minted)-1])
	respelled := minted[:len(minted)-1] + string(alphabet[last^1])
	same, err := base64.RawURLEncoding.DecodeString(respelled)
	require.NoError(t, err)
	orig, err := base64.RawURLEncoding.DecodeString(minted)
	require.NoError(t, err)
	require.Equal(t, orig, same, "the same bytes")
	_, err = openCursor(cursorKey, b, respelled)
	require.ErrorIs(t, err, errCursorMalformed)

	// Lists are length-prefixed: moving a value between lists changes the binding.
	c := mintCursor(cursorKey, binding(nil).list([]string{"a", "b"}).list(nil), time.Unix(1, 0))
	_, err = openCursor(cursorKey, binding(nil).list([]string{"a"}).list([]string{"b"}), c)
	require.ErrorIs(t, err, errCursorBinding)
}

func TestPostAndStatus(t *testing.T) {
	e := newEnv(t, nil)
	// An envelope: a success, a refusal, a duplicate (a success).
	e.post(indicator(1, 0, ""))
	resp, b := e.do("alice", http.MethodPost, intel+"objects/",
		strings.NewReader(env1(indicator(2, 0, ""), indicator(3, 0, `,"x_refuse":true`), indicator(1, 0, ""))))
	require.Equal(t, http.StatusAccepted, resp.StatusCode, "%s", b)
	var st Status
	require.NoError(t, json.Unmarshal(b, &st))
	require.NotEmpty(t, st.ID)
	require.Equal(t, StatusComplete, st.Status)
	require.Equal(t, FormatTime(e.clk.Now()), st.RequestTimestamp)
	require.Equal(t, 3, st.TotalCount)
	require.Equal(t, 2, st.SuccessCount)
	require.Equal(t, 1, st.FailureCount)
	require.Equal(t, 0, st.PendingCount)
	require.Equal(t, []StatusDetails{{ID: sid(2), Version: "2025-01-01T00:00:00Z"}, {ID: sid(1), Version: "2025-01-01T00:00:00Z"}}, st.Successes)
	require.Equal(t, []StatusDetails{{ID: sid(3), Version: "2025-01-01T00:00:00Z", Message: "refused by the test intake"}}, st.Failures)
	var raw map[string]any
	require.NoError(t, json.Unmarshal(b, &raw))
	require.EqualValues(t, 3, raw["total_count"], "spec property names")

	// A bundle is taken too.
	bundle := `{"type":"bundle","id":"bundle--5d0092c5-5f74-4287-9642-33f4c354e56d","objects":[` + indicator(4, 0, "") + `]}`
	resp, b = e.do("carol", http.MethodPost, intel+"objects/", strings.NewReader(bundle), "Content-Type", "application/taxii+json")
	require.Equal(t, http.StatusAccepted, resp.StatusCode, "%s", b)
	require.True(t, e.store.Has("intel", sid(4), time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)))
	var carols Status
	require.NoError(t, json.Unmarshal(b, &carols))

	// The status is the poster's only.
	path := "/alliance/status/" + st.ID + "/"
	resp, b = e.get("alice", path)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var again Status
	require.NoError(t, json.Unmarshal(b, &again))
	require.Equal(t, st, again)
	for _, c := range []string{"bob", "carol"} {
		resp, b = e.get(c, path)
		requireError(t, resp, b, http.StatusNotFound, "no such resource")
	}
	resp, _ = e.get("carol", "/alliance/status/"+carols.ID+"/")
	require.Equal(t, http.StatusOK, resp.StatusCode)

	// Kept 24 hours.
	e.clk.Advance(24*time.Hour - time.Second)
	resp, _ = e.get("alice", path)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	e.clk.Advance(time.Second)
	resp, b = e.get("alice", path)
	requireError(t, resp, b, http.StatusNotFound, "no such resource")
}

func TestStatusStoreBounded(t *testing.T) {
	s := statusStore{max: 3, ttl: time.Hour, m: map[string]*statusEntry{}}
	now := time.Unix(1000, 0)
	for i := 0; i < 5; i++ {
		s.put("alice", now, Status{ID: fmt.Sprint(i)})
	}
	for i := 0; i < 5; i++ {
		_, ok := s.get(fmt.Sprint(i), "alice", now)
		require.Equal(t, i >= 2, ok, "the oldest dropped: %d", i)
	}
	require.Len(t, s.m, 3)
	// Another partner's posts do not push alice's out.
	for i := 0; i < 5; i++ {
		s.put("mallory", now, Status{ID: fmt.Sprint("m", i)})
	}
	for i := 2; i < 5; i++ {
		_, ok := s.get(fmt.Sprint(i), "alice", now)
		require.True(t, ok, "alice's status %d pushed out by mallory's posts", i)
	}
	// Expired ones are dropped as new ones come.
	s.put("alice", now.Add(time.Hour), Status{ID: "new"})
	require.Len(t, s.m, 1)
	require.Len(t, s.order, 1)
}

func TestContentLength(t *testing.T) {
	e := newEnv(t, func(c *ServerConfig) { c.MaxContentLength = 1000 })
	big := env1(indicator(1, 0, `,"x_pad":"`+strings.Repeat("x", 1000)+`"`))
	resp, b := e.do("alice", http.MethodPost, intel+"objects/", strings.NewReader(big))
	requireError(t, resp, b, http.StatusRequestEntityTooLarge, "max_content_length")
	// Without a Content-Length (chunked), MaxBytesReader stops it.
	resp, b = e.do("alice", http.MethodPost, intel+"objects/", io.MultiReader(strings.NewReader(big)))
	requireError(t, resp, b, http.StatusRequestEntityTooLarge, "max_content_length")
	require.False(t, e.store.Has("intel", sid(1), time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)))
	// At the limit it is taken.
	ok := env1(indicator(1, 0, ""))
	ok = strings.Replace(ok, `"spec_version"`, strings.Repeat(" ", 1000-len(ok))+`"spec_version"`, 1)
	require.Len(t, ok, 1000)
	resp, b = e.do("alice", http.MethodPost, intel+"objects/", strings.NewReader(ok))
	require.Equal(t, http.StatusAccepted, resp.StatusCode, "%s", b)
}

// Records the caller may not receive never appear: not in pages, not in
// the manifest, not by id, and their ids are unknown to it.
func TestTLPFiltering(t *testing.T) {
	e := newEnv(t, nil)
	e.post(indicator(1, 0, ""), indicator(2, 0, `,"x_tlp":"red"`), indicator(3, 0, ""))
	e.post(indicator(3, 10, `,"x_tlp":"red"`))
	seen := func(caller, path string) []string {
		t.Helper()
		resp, b := e.get(caller, path)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
		var out []string
		for _, o := range decodePage(t, b).Objects {
			out = append(out, o.ID+"@"+o.Modified)
		}
		return out
	}
	v0, v10 := stixTime(0), stixTime(10)
	require.Equal(t, []string{sid(1) + "@" + v0, sid(2) + "@" + v0, sid(3) + "@" + v10}, seen("alice", intel+"objects/"))
	// For bob, sid(3)'s last version is red: its last version is hidden,
	// and the earlier one is not shown as "last" in its place.
	require.Equal(t, []string{sid(1) + "@" + v0}, seen("bob", intel+"objects/"))
	require.Equal(t, []string{sid(1) + "@" + v0, sid(3) + "@" + v0}, seen("bob", intel+"objects/?match[version]=all"))
	require.Equal(t, []string{sid(3) + "@" + v0}, seen("bob", intel+"objects/"+sid(3)+"/?match[version]=all"))
	for _, p := range []string{intel + "objects/" + sid(2) + "/", intel + "objects/" + sid(2) + "/versions/"} {
		resp, b := e.get("bob", p)
		requireError(t, resp, b, http.StatusNotFound, "no such resource")
	}
	_, b := e.get("bob", intel+"objects/"+sid(3)+"/versions/")
	var vs Versions
	require.NoError(t, json.Unmarshal(b, &vs))
	require.Equal(t, []string{"2025-01-01T00:00:00Z"}, vs.Versions)
	_, b = e.get("bob", intel+"manifest/?match[version]=all")
	var m Manifest
	require.NoError(t, json.Unmarshal(b, &m))
	require.Len(t, m.Objects, 2)
	for _, r := range m.Objects {
		require.NotEqual(t, sid(2), r.ID)
	}
	// Paging counts only what bob receives: more is false once nothing
	// he may see remains.
	_, b = e.get("bob", intel+"objects/?match[version]=all&limit=2")
	p := decodePage(t, b)
	require.Len(t, p.Objects, 2)
	require.False(t, p.More)
}

func TestLongPoll(t *testing.T) {
	e := newEnv(t, func(c *ServerConfig) { c.MaxWait = 2 * time.Second })
	e.post(indicator(1, 0, ""))
	all, err := e.store.Query("intel", Filter{}, 10)
	require.NoError(t, err)
	after := intel + "objects/?added_after=" + url.QueryEscape(FormatTime(all.Records[0].DateAdded))

	// Objects at hand: answered at once.
	start := time.Now()
	resp, b := e.get("bob", intel+"objects/", "Prefer", "wait=2")
	require.Less(t, time.Since(start), time.Second)
	require.Len(t, decodePage(t, b).Objects, 1)
	require.Equal(t, "wait=2", resp.Header.Get("Preference-Applied"))

	// A waiting GET answers once another goroutine adds an object.
	var wg sync.WaitGroup
	wg.Go(func() {
		time.Sleep(200 * time.Millisecond)
		_, err := e.store.Add("intel", []Record{{ID: sid(2), Type: "indicator", SpecVersion: "2.1", Version: time.Unix(1, 0),
			Raw: []byte(indicator(2, 0, ""))}})
		require.NoError(t, err)
	})
	start = time.Now()
	resp, b = e.get("bob", after, "Prefer", "respond-async, wait=60")
	took := time.Since(start)
	wg.Wait()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "wait=2", resp.Header.Get("Preference-Applied"), "capped at MaxWait")
	p := decodePage(t, b)
	require.Len(t, p.Objects, 1)
	require.Equal(t, sid(2), p.Objects[0].ID)
	require.GreaterOrEqual(t, took, 150*time.Millisecond)
	require.Less(t, took, 1500*time.Millisecond, "promptly after the add")

	// Nothing comes: empty after the wait, not before, not hanging.
	all, err = e.store.Query("intel", Filter{}, 10)
	require.NoError(t, err)
	after = intel + "objects/?added_after=" + url.QueryEscape(FormatTime(all.Records[1].DateAdded))
	start = time.Now()
	resp, b = e.get("bob", after, "Prefer", "wait=1")
	took = time.Since(start)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.JSONEq(t, `{}`, string(b))
	require.GreaterOrEqual(t, took, 900*time.Millisecond)
	require.Less(t, took, 1900*time.Millisecond)

	// A record bob may not receive wakes the wait but does not end it:
	// no early empty page; a visible one added later still comes.
	wg.Go(func() {
		time.Sleep(100 * time.Millisecond)
		_, err := e.store.Add("intel", []Record{{ID: sid(3), Type: "indicator", SpecVersion: "2.1", Version: time.Unix(1, 0),
			Raw: []byte(indicator(3, 0, `,"x_tlp":"red"`))}})
		require.NoError(t, err)
		time.Sleep(300 * time.Millisecond)
		_, err = e.store.Add("intel", []Record{{ID: sid(4), Type: "indicator", SpecVersion: "2.1", Version: time.Unix(1, 0),
			Raw: []byte(indicator(4, 0, ""))}})
		require.NoError(t, err)
	})
	start = time.Now()
	_, b = e.get("bob", after, "Prefer", "wait=2")
	took = time.Since(start)
	wg.Wait()
	p = decodePage(t, b)
	require.Len(t, p.Objects, 1)
	require.Equal(t, sid(4), p.Objects[0].ID)
	require.GreaterOrEqual(t, took, 350*time.Millisecond, "the red record did not end the wait")

	// Only red records arrive: bob waits out his time, then gets empty.
	all, err = e.store.Query("intel", Filter{}, 10)
	require.NoError(t, err)
	after = intel + "objects/?added_after=" + url.QueryEscape(FormatTime(all.Records[len(all.Records)-1].DateAdded))
	wg.Go(func() {
		time.Sleep(100 * time.Millisecond)
		_, err := e.store.Add("intel", []Record{{ID: sid(5), Type: "indicator", SpecVersion: "2.1", Version: time.Unix(1, 0),
			Raw: []byte(indicator(5, 0, `,"x_tlp":"red"`))}})
		require.NoError(t, err)
	})
	calls := e.acc.received.Load()
	start = time.Now()
	_, b = e.get("bob", after, "Prefer", "wait=1")
	took = time.Since(start)
	wg.Wait()
	require.JSONEq(t, `{}`, string(b))
	require.GreaterOrEqual(t, took, 900*time.Millisecond)
	require.Less(t, e.acc.received.Load()-calls, int64(10), "woken once by the red record, not spinning on it")

	// Without Prefer there is no wait and no Preference-Applied.
	start = time.Now()
	resp, b = e.get("bob", after)
	require.Less(t, time.Since(start), 500*time.Millisecond)
	require.JSONEq(t, `{}`, string(b))
	require.Empty(t, resp.Header.Get("Preference-Applied"))
}

// shortIntake loses an outcome: an Intake bug the server must not paper
// over, nor describe to the partner.
type shortIntake struct{}

func (shortIntake) Accept(context.Context, Caller, string, []stix.Object) []Outcome { return nil }

func TestInternalErrorsLeakNothingAndRefusalsAreLogged(t *testing.T) {
	var logs testkit.Buffer
	e := newEnv(t, func(c *ServerConfig) {
		c.Intake = shortIntake{}
		c.Log = slog.New(slog.NewJSONHandler(&logs, nil))
	})
	resp, b := e.do("alice", http.MethodPost, intel+"objects/", strings.NewReader(env1(indicator(1, 0, ""))))
	requireError(t, resp, b, http.StatusInternalServerError, "the server could not answer; the error is logged")
	require.NotContains(t, string(b), "outcomes", "the cause stays in the log")
	require.Contains(t, logs.String(), `"err":"intake of \"intel\" gave 0 outcomes for 1 objects"`)

	_, _ = e.get("bob", intel+"objects/?limit=x")
	var found bool
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m))
		if m["status"] == float64(400) {
			found = true
			require.Equal(t, "INFO", m["level"])
			require.Equal(t, "bob", m["caller"])
			require.Equal(t, "/alliance/collections/"+CollectionID("intel")+"/objects/", m["path"])
			require.Contains(t, m["reason"], "limit")
		}
	}
	require.True(t, found, "the refusal is logged: %s", logs.String())
}

// A declared Content-Length over the limit is refused before a byte of
// the body is read.
func TestContentLengthRefusedUnread(t *testing.T) {
	e := newEnv(t, func(c *ServerConfig) { c.MaxContentLength = 1000 })
	pr, pw := io.Pipe()
	defer pw.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.ts.URL+intel+"objects/", pr)
	require.NoError(t, err)
	req.ContentLength = 1 << 30
	req.Header.Set("Accept", MediaType)
	req.Header.Set("Content-Type", MediaType)
	req.Header.Set("X-Test-Caller", "alice")
	resp, err := e.ts.Client().Do(req)
	require.NoError(t, err, "answered without the body being sent")
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	requireError(t, resp, b, http.StatusRequestEntityTooLarge, "max_content_length")
}
