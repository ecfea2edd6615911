package taxii

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/cordonhq/cordon/sharing/stix"
)

// Caller is the partner a request comes from, named by the partner
// registry from the request's verified client certificate.
type Caller struct {
	Name string
}

// ErrUnauthenticated is wrapped by an Identify error when the request
// carried no credentials (answered 401) rather than unacceptable ones
// (403).
var ErrUnauthenticated = errors.New("no client certificate")

// Access decides who may do what on the server: the partner registry
// (sharing/partner) implements it.
type Access interface {
	// Identify names the partner whose verified client certificate made
	// r; an error is answered 403 with its text, or 401 when it wraps
	// ErrUnauthenticated (no client certificate at all).
	Identify(r *http.Request) (Caller, error)
	// CanRead and CanWrite tell whether c may read or write the
	// collection named alias.
	CanRead(c Caller, alias string) bool
	CanWrite(c Caller, alias string) bool
	// MayReceive tells whether c may receive rec, a record of the
	// collection alias (TLP on the way out). Records it may not receive
	// are left out of every answer as if they did not exist.
	MayReceive(c Caller, alias string, rec *Record) bool
	// Allow takes one request from c's rate budget; false is answered
	// 429.
	Allow(c Caller) bool
}

// Outcome is what became of one posted object.
type Outcome struct {
	ID      string
	Version time.Time
	// Duplicate: the same version was held already (not an error).
	Duplicate bool
	// Err is why the object was refused (nil: accepted or duplicate).
	Err error
}

// Intake takes the objects a partner posted to a collection: it checks
// each (signature, identity, version order, values), stores the
// accepted ones durably, and returns one outcome per object, in order.
// Objects refused never affect the others, nor anything held before.
type Intake interface {
	Accept(ctx context.Context, c Caller, alias string, objs []stix.Object) []Outcome
}
