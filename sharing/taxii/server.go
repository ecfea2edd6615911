package taxii

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cordonhq/cordon/internal/clock"
	"github.com/cordonhq/cordon/internal/uuid"
	"github.com/cordonhq/cordon/sharing/stix"
)

// CollectionInfo describes one collection the server offers. Its id is
// CollectionID(Alias); the Store holds it by Alias.
type CollectionInfo struct {
	Alias       string
	Title       string
	Description string
}

// ServerConfig configures a Server.
type ServerConfig struct {
	// Title, Description and Contact describe the server (discovery)
	// and its API root.
	Title       string
	Description string
	Contact     string
	// APIRoot is the one path segment of the API root ("alliance":
	// /alliance/).
	APIRoot     string
	Collections []CollectionInfo
	Store       *Store
	Access      Access
	Intake      Intake
	// CursorKey keys the HMAC of next cursors: at least 32 bytes.
	CursorKey []byte
	// MaxContentLength bounds a POST body (default 16 MiB).
	MaxContentLength int
	// DefaultPage is the page size without limit (default 100); MaxPage
	// the largest (default 1000): a larger limit is clamped to it.
	DefaultPage int
	MaxPage     int
	// MaxWait caps the long-poll wait of Prefer: wait=N (default 30s).
	MaxWait time.Duration
	Clock   clock.Clock
	Log     *slog.Logger
}

// The defaults of ServerConfig.
const (
	DefaultMaxContentLength = 16 << 20
	DefaultPageSize         = 100
	DefaultMaxPage          = 1000
	DefaultMaxWait          = 30 * time.Second
)

// Status resources are kept this long, and at most this many (the
// oldest dropped first).
const (
	statusTTL = 24 * time.Hour
	statusMax = 1000 // per partner
)

func (c *ServerConfig) validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.Title == "" {
		bad("Title is required")
	}
	if !segment(c.APIRoot) || c.APIRoot == "taxii2" {
		bad("APIRoot %q: want one path segment of letters, digits, '-', '_' or '.', not taxii2", c.APIRoot)
	}
	if len(c.Collections) == 0 {
		bad("Collections: at least one is required")
	}
	seen := map[string]bool{}
	for i, col := range c.Collections {
		switch {
		case !segment(col.Alias):
			bad("Collections[%d].Alias %q: want letters, digits, '-', '_' or '.'", i, col.Alias)
		case seen[col.Alias]:
			bad("Collections[%d].Alias %q: given twice", i, col.Alias)
		case c.Store != nil:
			if _, err := c.Store.Query(col.Alias, Filter{}, 0); err != nil {
				bad("Collections[%d].Alias %q: the Store does not hold it", i, col.Alias)
			}
		}
		seen[col.Alias] = true
		if col.Title == "" {
			bad("Collections[%d].Title is required", i)
		}
	}
	if c.Store == nil {
		bad("Store is required")
	}
	if c.Access == nil {
		bad("Access is required")
	}
	if c.Intake == nil {
		bad("Intake is required")
	}
	if len(c.CursorKey) < 32 {
		bad("CursorKey: %d bytes, want at least 32", len(c.CursorKey))
	}
	if c.MaxContentLength < 0 {
		bad("MaxContentLength %d: negative", c.MaxContentLength)
	}
	if c.DefaultPage < 0 {
		bad("DefaultPage %d: negative", c.DefaultPage)
	}
	if c.MaxPage < 0 {
		bad("MaxPage %d: negative", c.MaxPage)
	}
	if c.MaxWait < 0 {
		bad("MaxWait %s: negative", c.MaxWait)
	}
	if len(errs) > 0 {
		return fmt.Errorf("taxii server config: %w", errors.Join(errs...))
	}
	if c.MaxContentLength == 0 {
		c.MaxContentLength = DefaultMaxContentLength
	}
	if c.MaxPage == 0 {
		c.MaxPage = DefaultMaxPage
	}
	if c.DefaultPage == 0 {
		c.DefaultPage = min(DefaultPageSize, c.MaxPage)
	}
	if c.DefaultPage > c.MaxPage {
		return fmt.Errorf("taxii server config: DefaultPage %d above MaxPage %d", c.DefaultPage, c.MaxPage)
	}
	if c.MaxWait == 0 {
		c.MaxWait = DefaultMaxWait
	}
	if c.Clock == nil {
		c.Clock = clock.Real{}
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return nil
}

// segment tells whether s is a plain path segment.
func segment(s string) bool {
	if s == "" || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '-' && c != '_' && c != '.' {
			return false
		}
	}
	return true
}

// Server is the TAXII 2.1 server: an http.Handler of the discovery
// resource, one API root, its collections and status resources.
type Server struct {
	cfg      ServerConfig
	root     string // "/alliance/"
	byID     map[string]CollectionInfo
	lim      stix.Limits
	statuses statusStore
}

// NewServer validates cfg and returns the server.
func NewServer(cfg ServerConfig) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:      cfg,
		root:     "/" + cfg.APIRoot + "/",
		byID:     map[string]CollectionInfo{},
		lim:      stix.DefaultLimits,
		statuses: statusStore{max: statusMax, ttl: statusTTL, m: map[string]*statusEntry{}},
	}
	s.lim.MaxBytes = cfg.MaxContentLength
	for _, c := range cfg.Collections {
		s.byID[CollectionID(c.Alias)] = c
	}
	return s, nil
}

// fault is a refusal: the status and the error body sent.
type fault struct {
	status     int
	title      string
	desc       string
	allow      string // 405
	retryAfter string // 429
}

func refuse(status int, title, desc string) *fault {
	return &fault{status: status, title: title, desc: desc}
}

func badRequest(format string, a ...any) *fault {
	return refuse(http.StatusBadRequest, "bad request", fmt.Sprintf(format, a...))
}

var (
	errNotFound = refuse(http.StatusNotFound, "not found", "no such resource, or no access to it")
	errInternal = refuse(http.StatusInternalServerError, "internal error", "the server could not answer; the error is logged")
)

// request is one request being answered.
type request struct {
	w      http.ResponseWriter
	r      *http.Request
	caller Caller
}

// endpoint kinds.
type kind int

const (
	kDiscovery kind = iota
	kAPIRoot
	kCollections
	kCollection
	kManifest
	kObjects
	kObject
	kVersions
	kStatus
)

// route is a parsed request path.
type route struct {
	kind   kind
	colID  string
	object string
	status string
}

func (k kind) methods() string {
	switch k {
	case kObjects:
		return "GET, POST"
	case kObject:
		return "GET, DELETE"
	}
	return "GET"
}

func (s *Server) parsePath(p string) (route, bool) {
	if p == "/taxii2/" {
		return route{kind: kDiscovery}, true
	}
	rest, ok := strings.CutPrefix(p, s.root)
	if !ok {
		return route{}, false
	}
	if rest == "" {
		return route{kind: kAPIRoot}, true
	}
	rest, ok = strings.CutSuffix(rest, "/")
	if !ok {
		return route{}, false
	}
	seg := strings.Split(rest, "/")
	for _, g := range seg {
		if g == "" {
			return route{}, false
		}
	}
	switch {
	case len(seg) == 2 && seg[0] == "status":
		return route{kind: kStatus, status: seg[1]}, true
	case seg[0] != "collections":
		return route{}, false
	case len(seg) == 1:
		return route{kind: kCollections}, true
	case len(seg) == 2:
		return route{kind: kCollection, colID: seg[1]}, true
	case len(seg) == 3 && seg[2] == "manifest":
		return route{kind: kManifest, colID: seg[1]}, true
	case len(seg) == 3 && seg[2] == "objects":
		return route{kind: kObjects, colID: seg[1]}, true
	case len(seg) == 4 && seg[2] == "objects":
		return route{kind: kObject, colID: seg[1], object: seg[3]}, true
	case len(seg) == 5 && seg[2] == "objects" && seg[4] == "versions":
		return route{kind: kVersions, colID: seg[1], object: seg[3]}, true
	}
	return route{}, false
}

// ServeHTTP answers one TAXII request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := &request{w: w, r: r}
	if f := s.serve(q); f != nil {
		s.fail(q, f)
	}
}

func (s *Server) serve(q *request) *fault {
	c, err := s.cfg.Access.Identify(q.r)
	if err != nil {
		if errors.Is(err, ErrUnauthenticated) {
			return refuse(http.StatusUnauthorized, "unauthenticated", err.Error())
		}
		return refuse(http.StatusForbidden, "forbidden", err.Error())
	}
	q.caller = c
	if !s.cfg.Access.Allow(c) {
		f := refuse(http.StatusTooManyRequests, "too many requests", "the partner's request budget is spent; retry later")
		f.retryAfter = "1"
		return f
	}
	rt, ok := s.parsePath(q.r.URL.Path)
	if !ok {
		return errNotFound
	}
	methods := rt.kind.methods()
	if !slices.Contains(strings.Split(methods, ", "), q.r.Method) {
		f := refuse(http.StatusMethodNotAllowed, "method not allowed", q.r.Method+" is not allowed here; allowed: "+methods)
		f.allow = methods
		return f
	}
	if !acceptsTAXII(q.r.Header.Values("Accept")) {
		return refuse(http.StatusNotAcceptable, "not acceptable", "Accept must allow "+MediaType)
	}
	switch rt.kind {
	case kDiscovery:
		return s.discovery(q)
	case kAPIRoot:
		return s.apiRoot(q)
	case kCollections:
		return s.collections(q)
	case kStatus:
		return s.status(q, rt.status)
	}
	col, ok := s.byID[rt.colID]
	if !ok {
		return errNotFound
	}
	read := s.cfg.Access.CanRead(c, col.Alias)
	write := s.cfg.Access.CanWrite(c, col.Alias)
	if !read && !write {
		return errNotFound
	}
	switch {
	case rt.kind == kCollection:
		s.writeJSON(q, http.StatusOK, s.collection(col, read, write))
		return nil
	case rt.kind == kObjects && q.r.Method == http.MethodPost:
		if !write {
			return refuse(http.StatusForbidden, "forbidden", "no write access to this collection")
		}
		return s.post(q, col)
	case rt.kind == kObject && q.r.Method == http.MethodDelete:
		return s.delete(q, col, rt.object, read, write)
	case !read:
		return refuse(http.StatusForbidden, "forbidden", "no read access to this collection")
	case rt.kind == kObjects:
		return s.objects(q, col)
	case rt.kind == kManifest:
		return s.manifest(q, col)
	case rt.kind == kObject:
		return s.object(q, col, rt.object)
	case rt.kind == kVersions:
		return s.versions(q, col, rt.object)
	}
	return errNotFound
}

// fail answers f and logs the refusal.
func (s *Server) fail(q *request, f *fault) {
	lvl := slog.LevelInfo
	if f.status >= 500 {
		lvl = slog.LevelError
	}
	s.cfg.Log.Log(q.r.Context(), lvl, "taxii request refused", "caller", q.caller.Name, "method", q.r.Method,
		"path", q.r.URL.Path, "status", f.status, "reason", f.desc)
	h := q.w.Header()
	if f.allow != "" {
		h.Set("Allow", f.allow)
	}
	if f.retryAfter != "" {
		h.Set("Retry-After", f.retryAfter)
	}
	s.writeJSON(q, f.status, &Error{Title: f.title, Description: f.desc, HTTPStatus: strconv.Itoa(f.status)})
}

// internal logs err and returns the 500 the caller sees.
func (s *Server) internal(q *request, err error) *fault {
	s.cfg.Log.Error("taxii internal error", "caller", q.caller.Name, "path", q.r.URL.Path, "err", err)
	return errInternal
}

func (s *Server) writeJSON(q *request, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil { // the resources are plain structs: never
		s.cfg.Log.Error("taxii encode response", "err", err)
		b, status = []byte(`{"title":"internal error","http_status":"500"}`), http.StatusInternalServerError
	}
	s.writeBody(q, status, b)
}

func (s *Server) writeBody(q *request, status int, b []byte) {
	h := q.w.Header()
	h.Set("Content-Type", MediaType)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	q.w.WriteHeader(status)
	_, _ = q.w.Write(b)
}

func (s *Server) discovery(q *request) *fault {
	s.writeJSON(q, http.StatusOK, &Discovery{Title: s.cfg.Title, Description: s.cfg.Description, Contact: s.cfg.Contact,
		Default: s.root, APIRoots: []string{s.root}})
	return nil
}

func (s *Server) apiRoot(q *request) *fault {
	s.writeJSON(q, http.StatusOK, &APIRoot{Title: s.cfg.Title, Description: s.cfg.Description,
		Versions: []string{MediaType}, MaxContentLength: s.cfg.MaxContentLength})
	return nil
}

func (s *Server) collection(c CollectionInfo, read, write bool) *Collection {
	return &Collection{ID: CollectionID(c.Alias), Title: c.Title, Description: c.Description, Alias: c.Alias,
		CanRead: read, CanWrite: write, MediaTypes: []string{STIXMediaType}}
}

func (s *Server) collections(q *request) *fault {
	out := Collections{Collections: []Collection{}}
	for _, c := range s.cfg.Collections {
		read, write := s.cfg.Access.CanRead(q.caller, c.Alias), s.cfg.Access.CanWrite(q.caller, c.Alias)
		if read || write {
			out.Collections = append(out.Collections, *s.collection(c, read, write))
		}
	}
	s.writeJSON(q, http.StatusOK, &out)
	return nil
}

// params are the parsed URL parameters of a paged endpoint.
type params struct {
	addedAfter string // as given, validated
	after      time.Time
	limit      int
	next       string
	ids        []string
	types      []string
	versions   []string
	specs      []string
}

func (s *Server) parseParams(q *request) (params, *fault) {
	v, err := url.ParseQuery(q.r.URL.RawQuery)
	if err != nil {
		return params{}, badRequest("query string: %v", err)
	}
	p := params{limit: s.cfg.DefaultPage}
	one := func(name string) (string, *fault) {
		switch vs := v[name]; len(vs) {
		case 0:
			return "", nil
		case 1:
			if vs[0] == "" {
				return "", badRequest("%s: empty", name)
			}
			return vs[0], nil
		default:
			return "", badRequest("%s: given %d times", name, len(vs))
		}
	}
	list := func(name string, valid func(string) bool, want string) ([]string, *fault) {
		var out []string
		for _, x := range v[name] {
			for _, e := range strings.Split(x, ",") {
				if !valid(e) {
					return nil, badRequest("%s: %q is not %s", name, e, want)
				}
				out = append(out, e)
			}
		}
		return out, nil
	}
	var f *fault
	if p.addedAfter, f = one("added_after"); f != nil {
		return p, f
	}
	if p.addedAfter != "" {
		if p.after, err = stix.ParseTimestamp(p.addedAfter); err != nil {
			return p, badRequest("added_after: %q is not a TAXII timestamp (RFC 3339 in UTC, …Z)", p.addedAfter)
		}
	}
	l, f := one("limit")
	if f != nil {
		return p, f
	}
	if l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 {
			return p, badRequest("limit: %q is not a positive integer", l)
		}
		p.limit = min(n, s.cfg.MaxPage)
	}
	if p.next, f = one("next"); f != nil {
		return p, f
	}
	nonEmpty := func(e string) bool { return e != "" }
	if p.ids, f = list("match[id]", stix.ValidID, "a STIX id"); f != nil {
		return p, f
	}
	if p.types, f = list("match[type]", nonEmpty, "a type"); f != nil {
		return p, f
	}
	if p.specs, f = list("match[spec_version]", nonEmpty, "a spec version"); f != nil {
		return p, f
	}
	version := func(e string) bool {
		if e == "last" || e == "first" || e == "all" {
			return true
		}
		_, err := stix.ParseTimestamp(e)
		return err == nil
	}
	if p.versions, f = list("match[version]", version, "last, first, all or a STIX timestamp"); f != nil {
		return p, f
	}
	return p, nil
}

// query runs one page of a paged endpoint: the cursor checked, the
// caller's TLP applied, the next cursor minted when more follow.
type pager struct {
	alias string
	f     Filter
	limit int
	bind  binding
}

func (s *Server) pager(q *request, col CollectionInfo, endpoint, object string, p params, f Filter) (*pager, *fault) {
	b := binding(nil).str(q.caller.Name).str(col.Alias).str(endpoint).str(object).str(p.addedAfter).
		list(p.ids).list(p.types).list(p.versions).list(p.specs)
	f.AddedAfter = p.after
	if p.next != "" {
		pos, err := openCursor(s.cfg.CursorKey, b, p.next)
		if err != nil {
			return nil, badRequest("%v", err)
		}
		f.AddedAfter = pos
	}
	caller, alias := q.caller, col.Alias
	f.Keep = func(r *Record) bool { return s.cfg.Access.MayReceive(caller, alias, r) }
	return &pager{alias: col.Alias, f: f, limit: p.limit, bind: b}, nil
}

func (s *Server) run(pg *pager) (Page, string, error) {
	page, err := s.cfg.Store.Query(pg.alias, pg.f, pg.limit)
	if err != nil {
		return Page{}, "", err
	}
	var next string
	if page.More {
		next = mintCursor(s.cfg.CursorKey, pg.bind, page.Records[len(page.Records)-1].DateAdded)
	}
	return page, next, nil
}

// visible tells whether the caller may see any version of object.
func (s *Server) visible(q *request, col CollectionInfo, object string) (bool, error) {
	caller := q.caller
	p, err := s.cfg.Store.Query(col.Alias, Filter{IDs: []string{object}, Versions: []string{"all"},
		Keep: func(r *Record) bool { return s.cfg.Access.MayReceive(caller, col.Alias, r) }}, 1)
	return len(p.Records) > 0, err
}

func dateHeaders(w http.ResponseWriter, recs []*Record) {
	if len(recs) > 0 {
		w.Header().Set(HeaderDateAddedFirst, FormatTime(recs[0].DateAdded))
		w.Header().Set(HeaderDateAddedLast, FormatTime(recs[len(recs)-1].DateAdded))
	}
}

// writeEnvelope writes the envelope of a page with every object byte
// for byte as posted (encoding/json would compact and escape them).
func (s *Server) writeEnvelope(q *request, page Page, next string) {
	var b bytes.Buffer
	b.WriteString("{")
	sep := ""
	if page.More {
		n, _ := json.Marshal(next)
		b.WriteString(`"more":true,"next":`)
		b.Write(n)
		sep = ","
	}
	if len(page.Records) > 0 {
		b.WriteString(sep + `"objects":[`)
		for i, r := range page.Records {
			if i > 0 {
				b.WriteByte(',')
			}
			b.Write(r.Raw)
		}
		b.WriteByte(']')
	}
	b.WriteString("}")
	dateHeaders(q.w, page.Records)
	s.writeBody(q, http.StatusOK, b.Bytes())
}

func (s *Server) objects(q *request, col CollectionInfo) *fault {
	p, f := s.parseParams(q)
	if f != nil {
		return f
	}
	pg, f := s.pager(q, col, "objects", "", p,
		Filter{IDs: p.ids, Types: p.types, Versions: p.versions, SpecVersion: p.specs})
	if f != nil {
		return f
	}
	wait, ok := preferWait(q.r.Header.Values("Prefer"))
	if ok {
		wait = min(wait, s.cfg.MaxWait)
		q.w.Header().Set("Preference-Applied", "wait="+strconv.Itoa(int(wait/time.Second)))
	}
	page, next, err := s.longPoll(q.r.Context(), pg, wait)
	if err != nil {
		return s.internal(q, err)
	}
	s.writeEnvelope(q, page, next)
	return nil
}

// longPoll runs pg; while it finds nothing, it waits (at most wait) for
// the store to take a record newer than any it has considered, and
// runs pg again. The position it waits from moves past records the
// query did not return (refused by TLP or filtered out), so they wake
// it once, never in a loop.
func (s *Server) longPoll(ctx context.Context, pg *pager, wait time.Duration) (Page, string, error) {
	if wait <= 0 {
		return s.run(pg)
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	pos := pg.f.AddedAfter
	for {
		// Read before the query: every record up to newest is visible
		// to it, so a record it missed is newer and wakes Wait.
		newest := s.cfg.Store.Newest(pg.alias)
		page, next, err := s.run(pg)
		if err != nil || len(page.Records) > 0 {
			return page, next, err
		}
		if newest.After(pos) {
			pos = newest
		}
		// Wait returns at once when a record is already newer than pos,
		// so the deadline is checked here too: a stream of records the
		// caller may not see cannot hold it past the deadline.
		if ctx.Err() != nil {
			return page, next, nil // waited long enough (or the client left): the empty page
		}
		if err := s.cfg.Store.Wait(ctx, pg.alias, pos); err != nil {
			if ctx.Err() != nil {
				return page, next, nil
			}
			return page, next, err
		}
	}
}

func (s *Server) manifest(q *request, col CollectionInfo) *fault {
	p, f := s.parseParams(q)
	if f != nil {
		return f
	}
	pg, f := s.pager(q, col, "manifest", "", p,
		Filter{IDs: p.ids, Types: p.types, Versions: p.versions, SpecVersion: p.specs})
	if f != nil {
		return f
	}
	page, next, err := s.run(pg)
	if err != nil {
		return s.internal(q, err)
	}
	out := Manifest{More: page.More, Next: next}
	for _, r := range page.Records {
		out.Objects = append(out.Objects, ManifestRecord{ID: r.ID, DateAdded: FormatTime(r.DateAdded),
			Version: FormatVersion(r.Version), MediaType: STIXMediaType})
	}
	dateHeaders(q.w, page.Records)
	s.writeJSON(q, http.StatusOK, &out)
	return nil
}

func (s *Server) object(q *request, col CollectionInfo, object string) *fault {
	page, next, f := s.objectPage(q, col, object, "object", func(p params) []string { return p.versions })
	if f != nil {
		return f
	}
	s.writeEnvelope(q, page, next)
	return nil
}

func (s *Server) versions(q *request, col CollectionInfo, object string) *fault {
	page, next, f := s.objectPage(q, col, object, "versions", func(params) []string { return []string{"all"} })
	if f != nil {
		return f
	}
	out := Versions{More: page.More, Next: next}
	for _, r := range page.Records {
		out.Versions = append(out.Versions, FormatVersion(r.Version))
	}
	dateHeaders(q.w, page.Records)
	s.writeJSON(q, http.StatusOK, &out)
	return nil
}

// objectPage is a page of one object's versions the caller may see, for
// endpoint (object: the versions its match[version] names; versions:
// all): 404 when the caller sees none of them.
func (s *Server) objectPage(q *request, col CollectionInfo, object, endpoint string, versions func(params) []string) (Page, string, *fault) {
	p, f := s.parseParams(q)
	if f != nil {
		return Page{}, "", f
	}
	if ok, err := s.visible(q, col, object); err != nil {
		return Page{}, "", s.internal(q, err)
	} else if !ok {
		return Page{}, "", errNotFound
	}
	pg, f := s.pager(q, col, endpoint, object, p, Filter{IDs: []string{object}, Versions: versions(p), SpecVersion: p.specs})
	if f != nil {
		return Page{}, "", f
	}
	page, next, err := s.run(pg)
	if err != nil {
		return Page{}, "", s.internal(q, err)
	}
	return page, next, nil
}

// FormatVersion writes an object's version as the versions and manifest
// endpoints and status resources give it: RFC 3339 in UTC at the
// precision the object carries (time.RFC3339Nano), so that it names the
// version exactly in match[version].
func FormatVersion(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func (s *Server) delete(q *request, col CollectionInfo, object string, read, write bool) *fault {
	if !write {
		return refuse(http.StatusForbidden, "forbidden", "no write access to this collection")
	}
	// A writer that may not read learns nothing of what the collection
	// holds: it gets the same refusal for any id.
	if read {
		if ok, err := s.visible(q, col, object); err != nil {
			return s.internal(q, err)
		} else if !ok {
			return errNotFound
		}
	}
	return refuse(http.StatusForbidden, "deletion refused",
		"cordon never deletes objects: revoke one by posting a new signed version with revoked: true")
}

func (s *Server) post(q *request, col CollectionInfo) *fault {
	mt, prm, err := mime.ParseMediaType(q.r.Header.Get("Content-Type"))
	if err != nil || mt != "application/taxii+json" || prm["version"] != "" && prm["version"] != "2.1" {
		return refuse(http.StatusUnsupportedMediaType, "unsupported media type", "Content-Type must be "+MediaType)
	}
	limit := int64(s.cfg.MaxContentLength)
	tooBig := refuse(http.StatusRequestEntityTooLarge, "request too large",
		fmt.Sprintf("the body is over max_content_length, %d bytes", limit))
	if q.r.ContentLength > limit {
		return tooBig
	}
	body, err := io.ReadAll(http.MaxBytesReader(q.w, q.r.Body, limit))
	if err != nil {
		if mbe := new(http.MaxBytesError); errors.As(err, &mbe) {
			return tooBig
		}
		return badRequest("reading the body: %v", err)
	}
	var head struct {
		Type *json.RawMessage `json:"type"`
	}
	var objs []stix.Object
	if json.Unmarshal(body, &head) == nil && head.Type != nil {
		var b *stix.Bundle
		if b, err = stix.DecodeBundle(body, s.lim); err == nil {
			objs = b.Objects
		}
	} else {
		objs, err = stix.DecodeEnvelope(body, s.lim)
	}
	if err != nil {
		return badRequest("%v", err)
	}
	now := s.cfg.Clock.Now()
	outs := s.cfg.Intake.Accept(q.r.Context(), q.caller, col.Alias, objs)
	if len(outs) != len(objs) {
		return s.internal(q, fmt.Errorf("intake of %q gave %d outcomes for %d objects", col.Alias, len(outs), len(objs)))
	}
	st := Status{ID: newStatusID(), Status: StatusComplete, RequestTimestamp: FormatTime(now), TotalCount: len(objs)}
	for _, o := range outs {
		d := StatusDetails{ID: o.ID, Version: FormatVersion(o.Version)}
		if o.Err != nil {
			d.Message = o.Err.Error()
			st.Failures = append(st.Failures, d)
		} else {
			st.Successes = append(st.Successes, d)
		}
	}
	st.SuccessCount, st.FailureCount = len(st.Successes), len(st.Failures)
	s.statuses.put(q.caller.Name, now, st)
	s.writeJSON(q, http.StatusAccepted, &st)
	return nil
}

func (s *Server) status(q *request, id string) *fault {
	st, ok := s.statuses.get(id, q.caller.Name, s.cfg.Clock.Now())
	if !ok {
		return errNotFound
	}
	s.writeJSON(q, http.StatusOK, &st)
	return nil
}

// newStatusID is a random (version 4) UUID.
func newStatusID() string {
	id, _ := uuid.V4() // never fails (crypto/rand)
	return id
}

type statusEntry struct {
	owner string
	at    time.Time
	st    Status
}

// statusStore keeps status resources in memory, each readable by the
// partner that posted only: at most max per partner (the oldest dropped
// first), none older than ttl. The bound is per partner, so that one
// partner's posts never push another's statuses out.
type statusStore struct {
	mu    sync.Mutex
	max   int
	ttl   time.Duration
	m     map[string]*statusEntry
	order map[string][]string // by owner, oldest first
}

func (s *statusStore) put(owner string, now time.Time, st Status) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.order == nil {
		s.order = map[string][]string{}
	}
	o := s.order[owner]
	for len(o) > 0 && (len(o) >= s.max || now.Sub(s.m[o[0]].at) >= s.ttl) {
		delete(s.m, o[0])
		o = o[1:]
	}
	s.m[st.ID] = &statusEntry{owner: owner, at: now, st: st}
	s.order[owner] = append(o, st.ID)
	// Another partner's expired statuses go as well, as it posts no more.
	for other, oo := range s.order {
		for len(oo) > 0 && now.Sub(s.m[oo[0]].at) >= s.ttl {
			delete(s.m, oo[0])
			oo = oo[1:]
		}
		if len(oo) == 0 {
			delete(s.order, other)
		} else {
			s.order[other] = oo
		}
	}
}

func (s *statusStore) get(id, owner string, now time.Time) (Status, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[id]
	if e == nil || e.owner != owner || now.Sub(e.at) >= s.ttl {
		return Status{}, false
	}
	return e.st, true
}
