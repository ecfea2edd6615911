package apiauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
)

// ReadJSON checks that r is a POST of one JSON object of at most maxBody
// bytes with no unknown fields, and decodes it into v. On failure it
// answers (405, 415, 413 or 400, with a message naming what was wrong)
// and returns the status code; 0 means v was read.
func ReadJSON(w http.ResponseWriter, r *http.Request, maxBody int64, v any) int {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return Fail(w, http.StatusMethodNotAllowed, "use POST")
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return Fail(w, http.StatusUnsupportedMediaType, "send Content-Type: application/json")
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return Fail(w, http.StatusRequestEntityTooLarge, "body over %d bytes", maxBody)
		}
		return Fail(w, http.StatusBadRequest, "body: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Fail(w, http.StatusBadRequest, "body: one JSON object expected")
	}
	return 0
}

// Fail answers code with {"error": message} and returns code.
func Fail(w http.ResponseWriter, code int, format string, args ...any) int {
	return WriteJSON(w, code, map[string]string{"error": fmt.Sprintf(format, args...)})
}

// WriteJSON answers code with v as JSON and returns code.
func WriteJSON(w http.ResponseWriter, code int, v any) int {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
	return code
}
