package testkit

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
)

// PostJSON sends a JSON body to h at path with a bearer token (none when
// empty) and returns the status code and the body of the reply.
func PostJSON(h http.Handler, path, auth, body string) (int, string) {
	req := httptest.NewRequestWithContext(context.Background(), http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}
