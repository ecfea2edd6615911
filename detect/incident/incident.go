package incident

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/cordonhq/cordon/internal/chain"
	iconfig "github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/internal/uuid"
)

// Event types: an incident's history is a list of these on
// cordon.incidents, keyed by the incident's id.
const (
	Opened    = "opened"
	Joined    = "alert"     // an alert joined the incident
	Retracted = "retracted" // an alert of the incident was retracted (its block left the chain)
	Noted     = "note"
	Closed    = "closed"
	Sealed    = "sealed" // an evidence bundle was written
)

// Actor is the actor of the events detection writes itself.
const Actor = "detect"

// Event is one entry of an incident's history.
type Event struct {
	V int `json:"v"`
	// ID is the event's own id: derived from what caused it for
	// detection's events (a replay writes the same ids), random for an
	// operator's.
	ID       string    `json:"id"`
	Incident string    `json:"incident"`
	Type     string    `json:"type"`
	Time     time.Time `json:"time"`
	// Actor is detection (Actor) or the operator who wrote the event.
	Actor    string `json:"actor"`
	Title    string `json:"title,omitempty"`
	Severity string `json:"severity,omitempty"`
	Text     string `json:"text,omitempty"`
	// Keys are what an alert must share (an address, a transaction) to
	// join an incident an operator opened.
	Keys  []string     `json:"keys,omitempty"`
	Alert *chain.Alert `json:"alert,omitempty"`
	Seal  *Seal        `json:"seal,omitempty"`
}

// Seal is what an evidence bundle's sealed event records: the manifest's
// hash pins the bundle (every file's hash is in the manifest).
type Seal struct {
	Manifest string `json:"manifest_sha256"`
	Files    int    `json:"files"`
	Key      string `json:"key_id"`
	Path     string `json:"path,omitempty"`
}

// Check tells what is wrong with an event read from the topic (every
// reader checks it: the topic is signed, yet an event is applied only
// whole).
func (e *Event) Check() error {
	switch {
	case !strings.HasPrefix(e.Incident, Prefix) || len(e.Incident) > 200:
		return fmt.Errorf("incident id %q: want %s followed by an id", trunc(e.Incident), Prefix)
	case e.ID == "" || len(e.ID) > 200:
		return fmt.Errorf("event id %q: empty or too long", trunc(e.ID))
	case e.Time.IsZero():
		return fmt.Errorf("event %s: no time", e.ID)
	case e.Actor == "":
		return fmt.Errorf("event %s: no actor", e.ID)
	}
	switch e.Type {
	case Opened, Noted, Closed:
	case Joined, Retracted:
		if e.Alert == nil {
			return fmt.Errorf("event %s (%s): no alert", e.ID, e.Type)
		}
	case Sealed:
		if e.Seal == nil || len(e.Seal.Manifest) != 64 {
			return fmt.Errorf("event %s (sealed): no manifest hash", e.ID)
		}
	default:
		return fmt.Errorf("event %s: unknown type %q", e.ID, trunc(e.Type))
	}
	return nil
}

// Prefix starts every incident id.
const Prefix = "incident/"

// ns is the namespace of detection's incident and event ids.
var ns = [16]byte{0x1d, 0x52, 0x9e, 0x03, 0xb4, 0x6a, 0x4c, 0x81, 0x8f, 0x27, 0x5e, 0xc0, 0x93, 0x11, 0xaa, 0x74}

// Config is the incidents' config section (key detect.incidents).
type Config struct {
	// OpenAt is the severity from which an alert that joins no open
	// incident opens one (default critical; "none": only operators open
	// incidents).
	OpenAt string `yaml:"open_at"`
	// Window is how long after an incident's last alert a new alert
	// sharing an address or a transaction with it still joins it
	// (default 6h, by the alerts' chain times).
	Window time.Duration `yaml:"window"`
}

// Fill sets the defaults.
func (c *Config) Fill() {
	if c.OpenAt == "" {
		c.OpenAt = "critical"
	}
	if c.Window <= 0 {
		c.Window = 6 * time.Hour
	}
}

// Validate adds every bad key under prefix to p.
func (c Config) Validate(p *iconfig.Problems, prefix string) {
	c.Fill()
	if c.OpenAt != "none" && rank(c.OpenAt) == 0 {
		p.Add(prefix+".open_at", "%q: want low, medium, high, critical or none", c.OpenAt)
	}
}

func rank(s string) int {
	return slices.Index([]string{"low", "medium", "high", "critical"}, s) + 1
}

// Incident is an open incident as the grouper keeps it.
type Incident struct {
	ID       string    `json:"id"`
	Title    string    `json:"title"`
	Severity string    `json:"severity"`
	Opened   time.Time `json:"opened"`
	// Last is the chain time of its newest alert (or its opening).
	Last   time.Time `json:"last"`
	Keys   []string  `json:"keys"`
	Alerts []string  `json:"alerts"`
}

// Record is one changed piece of the grouper's state: Value nil deletes.
type Record struct {
	Key   string
	Value []byte
}

// StatePrefix keys the open incidents in detection's state.
const StatePrefix = "incident/"

// maxAlerts bounds the alert ids an open incident keeps (its history on
// the topic keeps all of them).
const maxAlerts = 4096

// maxKeys bounds the keys an open incident collects.
const maxKeys = 1024

// Grouper puts alerts into incidents: an alert sharing an address or a
// transaction with an open incident (within Window of its last alert)
// joins it; one at or above OpenAt that joins none opens one. It is
// deterministic: the same alerts in the same order give the same events
// and ids, so a replay after a restart writes nothing new.
type Grouper struct {
	cfg     Config
	open    map[string]*Incident
	byKey   map[string]string // key → incident
	byAlert map[string]string // alert → incident
	changed map[string]bool
}

// NewGrouper returns an empty grouper.
func NewGrouper(cfg Config) *Grouper {
	cfg.Fill()
	return &Grouper{cfg: cfg, open: map[string]*Incident{}, byKey: map[string]string{}, byAlert: map[string]string{}, changed: map[string]bool{}}
}

// Keys are what alerts share to be of one incident: the addresses and
// the transaction, by chain (Ethereum's in lower case).
func Keys(a *chain.Alert) []string {
	var ks []string
	norm := func(s string) string {
		if a.Chain == chain.ETH || strings.HasPrefix(s, "0x") {
			return strings.ToLower(s)
		}
		return s
	}
	for _, ad := range a.Addresses {
		if ad != "" {
			ks = append(ks, string(a.Chain)+":"+norm(ad))
		}
	}
	if a.TxHash != "" {
		ks = append(ks, string(a.Chain)+":tx:"+norm(a.TxHash))
	}
	slices.Sort(ks)
	return slices.Compact(ks)
}

// Open lists the open incidents, oldest first.
func (g *Grouper) Open() []Incident {
	out := make([]Incident, 0, len(g.open))
	for _, in := range g.open {
		out = append(out, *in)
	}
	slices.SortFunc(out, func(a, b Incident) int {
		if c := a.Opened.Compare(b.Opened); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// Alert files one alert (or retraction) and returns the events it
// causes.
func (g *Grouper) Alert(a chain.Alert) []Event {
	if a.Retracted {
		id, ok := g.byAlert[a.ID]
		if !ok {
			return nil
		}
		return []Event{g.event(id, Retracted, a.Time, func(e *Event) { e.Alert = &a })}
	}
	if _, ok := g.byAlert[a.ID]; ok {
		return nil // raised again (a replay): already in its incident
	}
	keys := Keys(&a)
	var join *Incident
	for _, k := range keys {
		in := g.open[g.byKey[k]]
		if in == nil || a.Time.Sub(in.Last) > g.cfg.Window {
			continue
		}
		if join == nil || in.Opened.Before(join.Opened) || (in.Opened.Equal(join.Opened) && in.ID < join.ID) {
			join = in
		}
	}
	var out []Event
	if join == nil {
		if g.cfg.OpenAt == "none" || rank(a.Severity) < rank(g.cfg.OpenAt) {
			return nil
		}
		id := Prefix + uuid.V5(ns, a.ID)
		if _, ok := g.open[id]; ok {
			return nil
		}
		title := a.Rule
		if title == "" {
			title = a.Type
		}
		title = fmt.Sprintf("%s on %s/%s", title, a.Chain, a.Network)
		join = &Incident{ID: id, Title: title, Severity: a.Severity, Opened: a.Time, Last: a.Time}
		g.open[id] = join
		out = append(out, g.event(id, Opened, a.Time, func(e *Event) {
			e.Title, e.Severity, e.Text = title, a.Severity, "opened by detection on alert "+a.ID
		}))
	}
	g.attach(join, &a, keys)
	out = append(out, g.event(join.ID, Joined, a.Time, func(e *Event) { e.Alert = &a; e.Severity = a.Severity }))
	return out
}

func (g *Grouper) attach(in *Incident, a *chain.Alert, keys []string) {
	if rank(a.Severity) > rank(in.Severity) {
		in.Severity = a.Severity
	}
	if a.Time.After(in.Last) {
		in.Last = a.Time
	}
	if len(in.Alerts) < maxAlerts {
		in.Alerts = append(in.Alerts, a.ID)
	}
	g.byAlert[a.ID] = in.ID
	for _, k := range keys {
		if len(in.Keys) >= maxKeys {
			break
		}
		if _, ok := g.byKey[k]; !ok {
			g.byKey[k] = in.ID
			in.Keys = append(in.Keys, k)
		}
	}
	g.changed[in.ID] = true
}

// event is detection's event of type typ on incident id: its id is
// derived from the incident, the type and the alert (or the time).
func (g *Grouper) event(id, typ string, at time.Time, fill func(*Event)) Event {
	e := Event{V: chain.SchemaVersion, Incident: id, Type: typ, Time: at.UTC(), Actor: Actor}
	fill(&e)
	name := id + "\x00" + typ
	if e.Alert != nil {
		name += "\x00" + e.Alert.ID
	}
	e.ID = uuid.V5(ns, name)
	return e
}

// Apply takes an event an operator wrote (events of Actor are
// detection's own, already applied): an incident opened with keys
// gathers the alerts that share them; a closed one gathers no more.
func (g *Grouper) Apply(e Event) {
	if e.Actor == Actor {
		return
	}
	switch e.Type {
	case Opened:
		if _, ok := g.open[e.Incident]; ok {
			return
		}
		in := &Incident{ID: e.Incident, Title: e.Title, Severity: e.Severity, Opened: e.Time, Last: e.Time}
		g.open[e.Incident] = in
		for _, k := range e.Keys {
			if len(in.Keys) >= maxKeys {
				break
			}
			if _, ok := g.byKey[k]; !ok {
				g.byKey[k] = in.ID
				in.Keys = append(in.Keys, k)
			}
		}
		g.changed[in.ID] = true
	case Closed:
		in, ok := g.open[e.Incident]
		if !ok {
			return
		}
		g.forget(in)
		delete(g.open, in.ID)
		g.changed[in.ID] = true
	}
}

func (g *Grouper) forget(in *Incident) {
	for _, k := range in.Keys {
		if g.byKey[k] == in.ID {
			delete(g.byKey, k)
		}
	}
	for _, a := range in.Alerts {
		if g.byAlert[a] == in.ID {
			delete(g.byAlert, a)
		}
	}
}

// Changed tells whether the state changed since TakeState.
func (g *Grouper) Changed() bool { return len(g.changed) > 0 }

// TakeState returns the open incidents changed since the last call (a
// closed one as a deletion), in key order.
func (g *Grouper) TakeState() ([]Record, error) {
	ids := slices.Sorted(maps.Keys(g.changed))
	out := make([]Record, 0, len(ids))
	for _, id := range ids {
		r := Record{Key: StatePrefix + strings.TrimPrefix(id, Prefix)}
		if in, ok := g.open[id]; ok {
			v, err := json.Marshal(in)
			if err != nil {
				return nil, err
			}
			r.Value = v
		}
		out = append(out, r)
	}
	clear(g.changed)
	return out, nil
}

// Restore puts back an open incident from its state record.
func (g *Grouper) Restore(value []byte) error {
	var in Incident
	if err := json.Unmarshal(value, &in); err != nil {
		return fmt.Errorf("incident state: %w", err)
	}
	if !strings.HasPrefix(in.ID, Prefix) {
		return fmt.Errorf("incident state: id %q", trunc(in.ID))
	}
	g.open[in.ID] = &in
	for _, k := range in.Keys {
		g.byKey[k] = in.ID
	}
	for _, a := range in.Alerts {
		g.byAlert[a] = in.ID
	}
	return nil
}

func trunc(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
