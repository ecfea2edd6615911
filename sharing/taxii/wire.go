package taxii

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/cordonhq/cordon/internal/uuid"
)

// The TAXII 2.1 resources (OASIS TAXII Version 2.1, section 4 and 5),
// as the server sends them and the client reads them.

// MediaType is the TAXII 2.1 media type: required in Accept, sent in
// Content-Type.
const MediaType = "application/taxii+json;version=2.1"

// STIXMediaType is the media type of the objects a collection holds.
const STIXMediaType = "application/stix+json;version=2.1"

// The date-added headers of a page (section 3.3.1).
const (
	HeaderDateAddedFirst = "X-TAXII-Date-Added-First"
	HeaderDateAddedLast  = "X-TAXII-Date-Added-Last"
)

// Discovery is the discovery resource (GET /taxii2/).
type Discovery struct {
	Title       string   `json:"title"`
	Description string   `json:"description,omitempty"`
	Contact     string   `json:"contact,omitempty"`
	Default     string   `json:"default,omitempty"`
	APIRoots    []string `json:"api_roots"`
}

// APIRoot is the API root resource (GET {api-root}/).
type APIRoot struct {
	Title            string   `json:"title"`
	Description      string   `json:"description,omitempty"`
	Versions         []string `json:"versions"`
	MaxContentLength int      `json:"max_content_length"`
}

// Collection is a collection resource.
type Collection struct {
	ID          string   `json:"id"`
	Title       string   `json:"title"`
	Description string   `json:"description,omitempty"`
	Alias       string   `json:"alias,omitempty"`
	CanRead     bool     `json:"can_read"`
	CanWrite    bool     `json:"can_write"`
	MediaTypes  []string `json:"media_types,omitempty"`
}

// Collections is the collections resource (GET {api-root}/collections/).
type Collections struct {
	Collections []Collection `json:"collections"`
}

// Envelope is a page of objects (GET …/objects/ and …/objects/{id}/),
// and the body of a POST to …/objects/.
type Envelope struct {
	More    bool              `json:"more,omitempty"`
	Next    string            `json:"next,omitempty"`
	Objects []json.RawMessage `json:"objects,omitempty"`
}

// ManifestRecord describes one version of one object.
type ManifestRecord struct {
	ID        string `json:"id"`
	DateAdded string `json:"date_added"`
	Version   string `json:"version"`
	MediaType string `json:"media_type,omitempty"`
}

// Manifest is a page of manifest records (GET …/manifest/).
type Manifest struct {
	More bool `json:"more,omitempty"`
	// Next is cordon's extension: the cursor of the next page, as in an
	// envelope.
	Next    string           `json:"next,omitempty"`
	Objects []ManifestRecord `json:"objects,omitempty"`
}

// Versions lists an object's versions (GET …/objects/{id}/versions/).
type Versions struct {
	More bool `json:"more,omitempty"`
	// Next is cordon's extension: the cursor of the next page, as in an
	// envelope.
	Next     string   `json:"next,omitempty"`
	Versions []string `json:"versions,omitempty"`
}

// Status values.
const (
	StatusPending  = "pending"
	StatusComplete = "complete"
)

// StatusDetails is one object of a status resource.
type StatusDetails struct {
	ID      string `json:"id"`
	Version string `json:"version"`
	Message string `json:"message,omitempty"`
}

// Status is the status resource of a POST (GET {api-root}/status/{id}/).
type Status struct {
	ID               string          `json:"id"`
	Status           string          `json:"status"`
	RequestTimestamp string          `json:"request_timestamp,omitempty"`
	TotalCount       int             `json:"total_count"`
	SuccessCount     int             `json:"success_count"`
	Successes        []StatusDetails `json:"successes,omitempty"`
	FailureCount     int             `json:"failure_count"`
	Failures         []StatusDetails `json:"failures,omitempty"`
	PendingCount     int             `json:"pending_count"`
	Pendings         []StatusDetails `json:"pendings,omitempty"`
}

// Error is the error message body (section 3.6.1). HTTPStatus is a
// string, as the specification defines it.
type Error struct {
	Title           string            `json:"title"`
	Description     string            `json:"description,omitempty"`
	ErrorID         string            `json:"error_id,omitempty"`
	ErrorCode       string            `json:"error_code,omitempty"`
	HTTPStatus      string            `json:"http_status,omitempty"`
	ExternalDetails string            `json:"external_details,omitempty"`
	Details         map[string]string `json:"details,omitempty"`
}

func (e *Error) Error() string {
	if e.Description != "" {
		return fmt.Sprintf("TAXII %s: %s: %s", e.HTTPStatus, e.Title, e.Description)
	}
	return fmt.Sprintf("TAXII %s: %s", e.HTTPStatus, e.Title)
}

// FormatTime writes a TAXII timestamp at the store's microsecond
// precision (date_added, the headers, added_after).
func FormatTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000Z") }

// collectionNS is the UUID namespace of collection ids.
var collectionNS = [16]byte{0x3a, 0x8e, 0x51, 0x0c, 0x44, 0x7b, 0x4f, 0x19, 0x8d, 0x02, 0x6e, 0x93, 0xb1, 0x5a, 0x27, 0xc4}

// CollectionID is the id of the collection named alias: a name-based
// (version 5) UUID, the same on every instance, so a partner's
// configuration names collections by alias.
func CollectionID(alias string) string { return uuid.V5(collectionNS, alias) }
