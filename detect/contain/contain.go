package contain

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/cordonhq/cordon/internal/chain"
	iconfig "github.com/cordonhq/cordon/internal/config"
)

// Breaker scopes of an action.
const (
	TripNone  = ""
	TripAsset = "asset"
	TripChain = "chain"
	TripAll   = "all"
)

// Config is containment's config (key `detect.contain`).
type Config struct {
	Actions []Action `yaml:"actions"`
	// Gate is the withdrawal gate's API (POST /v1/breaker) and a token
	// with scope breaker; Share is partner sharing's (POST
	// /v1/share/listings) and a token with scope share. Without one, its
	// actions are recorded as not taken.
	Gate  Endpoint `yaml:"gate"`
	Share Endpoint `yaml:"share"`
}

// Endpoint is cordon's API at URL with a bearer token.
type Endpoint struct {
	URL   string         `yaml:"url"`
	Token iconfig.Secret `yaml:"token"`
}

// Configured reports whether the endpoint is set.
func (e Endpoint) Configured() bool { return e.URL != "" }

// Action is what alerts of its rules at or above its severity set off.
type Action struct {
	// Name names the action in task ids and records.
	Name string `yaml:"name"`
	// Rules are the rules (or alert types) it answers; all when empty.
	Rules []string `yaml:"rules"`
	// MinSeverity is the least severity it answers (default critical).
	MinSeverity string `yaml:"min_severity"`
	// Trip pulls the breaker over the alert's asset on its chain and
	// network (asset), its chain and network (chain), everything (all),
	// or not at all ("").
	Trip string `yaml:"trip"`
	// Publish lists the alert's counterparties (its addresses that are
	// not ours) as urgent indicators to partners, with Category (default
	// hack), Confidence (default 80) and TLP (default green).
	Publish    bool   `yaml:"publish"`
	Category   string `yaml:"category"`
	Confidence int    `yaml:"confidence"`
	TLP        string `yaml:"tlp"`
}

// Fill sets the defaults.
func (c *Config) Fill() {
	for i := range c.Actions {
		a := &c.Actions[i]
		iconfig.OrDefault(&a.MinSeverity, "critical")
		iconfig.OrDefault(&a.Category, "hack")
		iconfig.OrDefault(&a.Confidence, 80)
		iconfig.OrDefault(&a.TLP, "green")
	}
}

// Validate adds every bad key under prefix to p (on a filled config).
func (c Config) Validate(p *iconfig.Problems, prefix string) {
	names := map[string]bool{}
	for i, a := range c.Actions {
		k := fmt.Sprintf("%s.actions[%d]", prefix, i)
		if a.Name == "" || strings.ContainsAny(a.Name, "/ \t\n") || len(a.Name) > 64 {
			p.Add(k+".name", "%q: want 1 to 64 characters, no / or spaces", a.Name)
		} else if names[a.Name] {
			p.Add(k+".name", "%q: named twice", a.Name)
		}
		names[a.Name] = true
		if !slices.Contains([]string{"low", "medium", "high", "critical"}, a.MinSeverity) {
			p.Add(k+".min_severity", "%q: want low, medium, high or critical", a.MinSeverity)
		}
		if !slices.Contains([]string{TripNone, TripAsset, TripChain, TripAll}, a.Trip) {
			p.Add(k+".trip", "%q: want asset, chain, all, or empty", a.Trip)
		}
		if a.Trip == TripNone && !a.Publish {
			p.Add(k, "does nothing: set trip or publish")
		}
		if a.Confidence < 0 || a.Confidence > 100 {
			p.Add(k+".confidence", "%d: want 0 to 100", a.Confidence)
		}
	}
	for name, e := range map[string]Endpoint{"gate": c.Gate, "share": c.Share} {
		if e.Configured() && len(e.Token.Value()) < 16 {
			p.Add(prefix+"."+name+".token", "want the API token (at least 16 characters)")
		}
	}
}

// Task is one action to carry out for one alert.
type Task struct {
	// ID is "<action>/<alert id>".
	ID     string      `json:"id"`
	Action string      `json:"action"`
	Alert  chain.Alert `json:"alert"`
}

// Plan returns the tasks the alerts set off (retractions set off none:
// an action taken stays taken until people undo it; nor do containment
// records).
func Plan(c Config, alerts []chain.Alert) []Task {
	var out []Task
	for _, a := range alerts {
		if a.Retracted || a.Type == "containment" {
			continue
		}
		for _, act := range c.Actions {
			if rank(a.Severity) < rank(act.MinSeverity) {
				continue
			}
			if len(act.Rules) > 0 && !slices.Contains(act.Rules, ruleOf(a)) {
				continue
			}
			out = append(out, Task{ID: act.Name + "/" + a.ID, Action: act.Name, Alert: a})
		}
	}
	return out
}

func ruleOf(a chain.Alert) string {
	if a.Rule != "" {
		return a.Rule
	}
	return a.Type
}

func rank(s string) int {
	switch s {
	case "low":
		return 1
	case "medium", "warning":
		return 2
	case "high", "urgent":
		return 3
	}
	return 4
}

// Trip is a breaker trip asked of the gate.
type Trip struct {
	Scope, Chain, Network, Asset, Reason string
}

// Breaker pulls the gate's breaker. Find returns the id of a trip in
// force whose reason holds marker ("" when none).
type Breaker interface {
	Trip(ctx context.Context, t Trip) (id string, err error)
	Find(ctx context.Context, marker string) (id string, err error)
}

// Listing is an urgent publication asked of sharing.
type Listing struct {
	Chain       chain.Chain
	Network     string
	Values      []string
	Category    string
	Confidence  int
	TLP         string
	Description string
}

// Publisher publishes urgent listings to partners; it returns the ids of
// the objects published.
type Publisher interface {
	PublishUrgent(ctx context.Context, l Listing) ([]string, error)
}

// Ours tells whether an address is one of the exchange's own (registered).
type Ours func(c chain.Chain, network, addr string) bool

// Outcome is what carrying out a task did, for the containment record.
type Outcome struct {
	Task Task
	// Taken lists the actions taken ("breaker br_…", "published …"),
	// NotTaken those not taken and why.
	Taken    []string
	NotTaken []string
}

// Runner carries out tasks. A nil Breaker or Publisher is an action
// recorded as not taken.
type Runner struct {
	Config    Config
	Breaker   Breaker
	Publisher Publisher
	Ours      Ours
}

// ErrUnknownAction is a task naming an action no longer configured.
var ErrUnknownAction = errors.New("no such action configured")

// ErrRefused marks a target refusing a request itself (the API's 4xx
// other than 408 and 429: a network the gate does not serve, a token it
// does not know): asking again would be refused again, so the action is
// recorded as not taken instead of tried forever.
var ErrRefused = errors.New("refused")

// Marker is what a task's trip reason starts with: a hash of the task id,
// so a reason never cuts or mangles it.
func Marker(taskID string) string {
	h := sha256.Sum256([]byte(taskID))
	return "[detect task " + hex.EncodeToString(h[:8]) + "]"
}

// Run carries out t. An error is a target that failed (retry later);
// a target not configured is not an error but an outcome.
func (r *Runner) Run(ctx context.Context, t Task) (Outcome, error) {
	i := slices.IndexFunc(r.Config.Actions, func(a Action) bool { return a.Name == t.Action })
	if i < 0 {
		return Outcome{Task: t, NotTaken: []string{fmt.Sprintf("action %q: %v", t.Action, ErrUnknownAction)}}, nil
	}
	act := r.Config.Actions[i]
	o := Outcome{Task: t}
	if act.Trip != TripNone {
		if r.Breaker == nil {
			o.NotTaken = append(o.NotTaken, "breaker: no gate configured (detect.contain.gate)")
		} else if id, err := r.trip(ctx, t, act); errors.Is(err, ErrRefused) {
			o.NotTaken = append(o.NotTaken, "breaker: "+err.Error())
		} else if err != nil {
			return o, err
		} else {
			o.Taken = append(o.Taken, "breaker "+id)
		}
	}
	if act.Publish {
		if err := r.publish(ctx, t, act, &o); err != nil {
			return o, err
		}
	}
	return o, nil
}

// trip finds the task's trip, or pulls it.
func (r *Runner) trip(ctx context.Context, t Task, act Action) (string, error) {
	a := t.Alert
	marker := Marker(t.ID)
	id, err := r.Breaker.Find(ctx, marker)
	if err != nil {
		return "", fmt.Errorf("contain: %s: list the breaker's trips: %w", t.ID, err)
	}
	if id != "" {
		return id, nil
	}
	tr := Trip{Scope: act.Trip, Reason: clip(fmt.Sprintf("%s %s: %s", marker, ruleOf(a), a.Message), maxReason)}
	if act.Trip != TripAll {
		tr.Chain, tr.Network = string(a.Chain), a.Network
	}
	if act.Trip == TripAsset {
		tr.Asset = a.Asset
		if tr.Asset == "" {
			tr.Scope = TripChain // an alert without an asset: its whole chain
		}
	}
	if id, err = r.Breaker.Trip(ctx, tr); err != nil {
		return "", fmt.Errorf("contain: %s: trip the breaker: %w", t.ID, err)
	}
	return id, nil
}

// publish lists the alert's counterparties to partners.
func (r *Runner) publish(ctx context.Context, t Task, act Action, o *Outcome) error {
	a := t.Alert
	// The counterparties: the alert's addresses that are not ours, nor
	// the genuine counterparty a lookalike imitates.
	var vals []string
	for _, x := range a.Addresses {
		if (r.Ours == nil || !r.Ours(a.Chain, a.Network, x)) && !strings.EqualFold(x, a.Details["looks_like"]) && !slices.Contains(vals, x) {
			vals = append(vals, x)
		}
	}
	switch {
	case len(vals) == 0:
		o.NotTaken = append(o.NotTaken, "publish: the alert names no counterparty")
	case r.Publisher == nil:
		o.NotTaken = append(o.NotTaken, "publish: no sharing configured (detect.contain.share)")
	default:
		ids, err := r.Publisher.PublishUrgent(ctx, Listing{Chain: a.Chain, Network: a.Network, Values: vals, Category: act.Category,
			Confidence: act.Confidence, TLP: act.TLP, Description: fmt.Sprintf("cordon detection %s: %s (alert %s)", ruleOf(a), a.Message, a.ID)})
		switch {
		case errors.Is(err, ErrRefused):
			o.NotTaken = append(o.NotTaken, "publish: "+err.Error())
		case err != nil:
			return fmt.Errorf("contain: %s: publish: %w", t.ID, err)
		default:
			o.Taken = append(o.Taken, fmt.Sprintf("published %s to partners (%s)", strings.Join(vals, ", "), strings.Join(ids, ", ")))
		}
	}
	return nil
}

// maxReason is the longest reason the gate takes for a trip.
const maxReason = 500

// clip cuts s to at most n bytes on a character boundary, with control
// characters (the gate refuses them) made spaces.
func clip(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
	for len(s) > n {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return s
}

// Record is the containment record of an outcome for cordon.alerts:
// type "containment", keyed "contain/<task id>", naming the alert that
// caused it.
func Record(o Outcome) chain.Alert {
	a := o.Task.Alert
	sev := a.Severity
	msg := "containment for " + a.ID + ": "
	if len(o.Taken) > 0 {
		msg += "taken: " + strings.Join(o.Taken, "; ")
	}
	if len(o.NotTaken) > 0 {
		if len(o.Taken) > 0 {
			msg += "; "
		}
		msg += "not taken: " + strings.Join(o.NotTaken, "; ")
	}
	return chain.Alert{V: chain.SchemaVersion, ID: "contain/" + o.Task.ID, Type: "containment", Severity: sev, Chain: a.Chain, Network: a.Network,
		Time: a.Time, Message: msg, Height: a.Height, BlockHash: a.BlockHash, TxHash: a.TxHash, Addresses: a.Addresses, Asset: a.Asset,
		Details: map[string]string{"alert": a.ID, "action": o.Task.Action, "taken": strings.Join(o.Taken, "; "), "not_taken": strings.Join(o.NotTaken, "; ")}}
}
