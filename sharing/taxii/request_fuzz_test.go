package taxii

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// FuzzServerRequest sends the server arbitrary query strings, Accept and
// Prefer headers on every read endpoint: it never panics, never answers
// 5xx, and every answer is TAXII JSON (an error body with its status as
// a string, or a resource).
func FuzzServerRequest(f *testing.F) {
	for _, s := range []struct{ path, query, accept, prefer string }{
		{"collections/%s/objects/", "added_after=2026-12-02T12:00:00.000000Z&limit=5", MediaType, ""},
		{"collections/%s/objects/", "match[type]=indicator,sighting&match[version]=all&next=AAAA", MediaType, "wait=1"},
		{"collections/%s/manifest/", "match[id]=indicator--00000001-0000-4000-8000-000000000000&limit=0", "application/taxii+json", ""},
		{"collections/%s/objects/indicator--00000001-0000-4000-8000-000000000000/versions/", "limit=-1", "*/*", ""},
		{"collections/%s/objects/", "match%5Bspec_version%5D=2.1&added_after=yesterday", "application/taxii+json;version=2.0", "wait=abc"},
		{"status/x/", "", MediaType, ""},
	} {
		f.Add(s.path, s.query, s.accept, s.prefer)
	}
	e := newEnv(f, func(c *ServerConfig) { c.MaxWait = 0 })
	e.post(indicator(1, 0, ""), indicator(2, 0, ""))
	f.Fuzz(func(t *testing.T, path, query, accept, prefer string) {
		path = strings.Replace(path, "%s", CollectionID("intel"), 1)
		u := "/alliance/" + path
		req := httptest.NewRequest(http.MethodGet, "http://x/", nil)
		req.URL.Path, req.URL.RawQuery = u, query
		req.Header.Set("Accept", accept)
		req.Header.Set("Prefer", prefer)
		req.Header.Set("X-Test-Caller", "alice")
		w := httptest.NewRecorder()
		e.srv.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("%s?%s: %d %s", u, query, w.Code, w.Body.String())
		}
		if !json.Valid(w.Body.Bytes()) {
			t.Fatalf("%s?%s: %d, not JSON: %q", u, query, w.Code, w.Body.String())
		}
		if w.Code >= 400 {
			var e Error
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Title == "" || e.HTTPStatus != strconv.Itoa(w.Code) {
				t.Fatalf("%s?%s: %d without the spec's error body: %s", u, query, w.Code, w.Body.String())
			}
		}
	})
}
