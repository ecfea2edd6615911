package incident

import (
	"fmt"
	"html/template"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/cordonhq/cordon/internal/chain"
)

// View is an incident as its history on the topic tells it.
type View struct {
	ID       string    `json:"id"`
	Title    string    `json:"title"`
	Severity string    `json:"severity"`
	Status   string    `json:"status"` // open or closed
	Opened   time.Time `json:"opened"`
	OpenedBy string    `json:"opened_by"`
	Closed   time.Time `json:"closed,omitzero"`
	// Alerts are the alerts that joined, newest record of each (a
	// retraction replaces the alert), in the order they joined.
	Alerts []chain.Alert `json:"alerts"`
	Seals  []Seal        `json:"seals,omitempty"`
	Events []Event       `json:"events"`
}

// Fold builds the incidents from their events in topic order; events of
// an incident before its opened event (none should be) are kept in its
// history all the same. An event whose id came before is left out: a
// replayed record, or detection writing a round again after a restart
// (its events' ids are derived from what caused them).
func Fold(events []Event) map[string]*View {
	out := map[string]*View{}
	seen := make(map[string]bool, len(events))
	for _, e := range events {
		if seen[e.Incident+"\x00"+e.ID] {
			continue
		}
		seen[e.Incident+"\x00"+e.ID] = true
		v := out[e.Incident]
		if v == nil {
			v = &View{ID: e.Incident, Status: "open"}
			out[e.Incident] = v
		}
		v.Events = append(v.Events, e)
		if rank(e.Severity) > rank(v.Severity) {
			v.Severity = e.Severity
		}
		switch e.Type {
		case Opened:
			if v.Opened.IsZero() {
				v.Title, v.Opened, v.OpenedBy = e.Title, e.Time, e.Actor
			}
		case Joined, Retracted:
			i := slices.IndexFunc(v.Alerts, func(a chain.Alert) bool { return a.ID == e.Alert.ID })
			if i < 0 {
				v.Alerts = append(v.Alerts, *e.Alert)
			} else {
				v.Alerts[i] = *e.Alert
			}
		case Closed:
			v.Status, v.Closed = "closed", e.Time
		case Sealed:
			v.Seals = append(v.Seals, *e.Seal)
		}
	}
	return out
}

// Entry is one line of a timeline.
type Entry struct {
	Time   time.Time
	Kind   string // the event's type
	Actor  string
	What   string
	Detail string
}

// Timeline is what happened when: the incident's events with their
// alerts' chain facts, in time order (the topic's order among equal
// times).
func (v *View) Timeline() []Entry {
	out := make([]Entry, 0, len(v.Events))
	for _, e := range v.Events {
		en := Entry{Time: e.Time, Kind: e.Type, Actor: e.Actor}
		switch e.Type {
		case Opened:
			en.What = "opened: " + e.Title
			en.Detail = e.Text
		case Joined, Retracted:
			a := e.Alert
			en.What = fmt.Sprintf("[%s] %s", strings.ToUpper(a.Severity), a.Message)
			if e.Type == Retracted {
				en.What = "retracted (its block left the chain): " + a.Message
			}
			var d []string
			if a.Height > 0 {
				d = append(d, fmt.Sprintf("%s/%s block %d %s", a.Chain, a.Network, a.Height, a.BlockHash))
			}
			if a.TxHash != "" {
				d = append(d, "tx "+a.TxHash)
			}
			if len(a.Addresses) > 0 {
				d = append(d, "addresses "+strings.Join(a.Addresses, ", "))
			}
			if a.Amount != "" {
				d = append(d, "amount "+a.Amount+" "+a.Asset)
			}
			d = append(d, "alert "+a.ID)
			en.Detail = strings.Join(d, "; ")
		case Noted:
			en.What = "note: " + e.Text
		case Closed:
			en.What = "closed"
			en.Detail = e.Text
		case Sealed:
			en.What = fmt.Sprintf("evidence sealed: %d files", e.Seal.Files)
			en.Detail = fmt.Sprintf("manifest sha256 %s, key %s, %s", e.Seal.Manifest, e.Seal.Key, e.Seal.Path)
		}
		out = append(out, en)
	}
	slices.SortStableFunc(out, func(a, b Entry) int { return a.Time.Compare(b.Time) })
	return out
}

// WriteText prints the timeline, one entry a line (details indented).
// Text from alerts and operators is printed with control characters
// escaped, so nothing in it can move a terminal's cursor.
func (v *View) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "%s  %s  [%s] %s\n", v.ID, v.Status, strings.ToUpper(v.Severity), clean(v.Title))
	for _, e := range v.Timeline() {
		if _, err := fmt.Fprintf(w, "%s  %-9s %-12s %s\n", e.Time.UTC().Format(time.RFC3339), e.Kind, clean(e.Actor), clean(e.What)); err != nil {
			return err
		}
		if e.Detail != "" {
			fmt.Fprintf(w, "%33s %s\n", "", clean(e.Detail))
		}
	}
	return nil
}

func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return '?'
		}
		return r
	}, s)
}

// WriteHTML draws the timeline as one self-contained page: a time axis
// with a mark per entry (coloured by kind), and the entries below.
// html/template escapes everything that came from alerts or operators.
func (v *View) WriteHTML(w io.Writer) error {
	entries := v.Timeline()
	type mark struct {
		X     float64
		Color string
		Title string
	}
	var marks []mark
	if len(entries) > 0 {
		first, last := entries[0].Time, entries[len(entries)-1].Time
		span := last.Sub(first)
		for _, e := range entries {
			x := 20.0
			if span > 0 {
				x = 20 + 960*float64(e.Time.Sub(first))/float64(span)
			}
			marks = append(marks, mark{X: x, Color: colors[e.Kind], Title: e.Time.UTC().Format(time.RFC3339) + " " + e.What})
		}
	}
	return page.Execute(w, struct {
		V       *View
		Entries []Entry
		Marks   []mark
		Colors  map[string]string
	}{v, entries, marks, colors})
}

var colors = map[string]string{Opened: "#444", Joined: "#c62828", Retracted: "#999", Noted: "#1565c0", Closed: "#2e7d32", Sealed: "#6a1b9a"}

var page = template.Must(template.New("timeline").Funcs(template.FuncMap{
	"ts":    func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"upper": strings.ToUpper,
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>{{.V.ID}} — timeline</title>
<style>
body{font:14px system-ui,sans-serif;margin:2em;color:#222}
h1{font-size:1.3em} .sev{font-weight:bold}
table{border-collapse:collapse;width:100%} td{border-top:1px solid #ddd;padding:4px 8px;vertical-align:top}
td.t{white-space:nowrap;font-family:monospace} .d{color:#666;font-size:.9em;word-break:break-all}
.k{display:inline-block;width:.8em;height:.8em;border-radius:50%;margin-right:.4em}
</style></head><body>
<h1>{{.V.Title}}</h1>
<p>{{.V.ID}} · <span class="sev">{{upper .V.Severity}}</span> · {{.V.Status}} · opened {{ts .V.Opened}} by {{.V.OpenedBy}}{{if not .V.Closed.IsZero}} · closed {{ts .V.Closed}}{{end}} · {{len .V.Alerts}} alerts</p>
<svg width="1000" height="50" role="img" aria-label="timeline">
<line x1="20" y1="25" x2="980" y2="25" stroke="#bbb" stroke-width="2"/>
{{range .Marks}}<circle cx="{{printf "%.1f" .X}}" cy="25" r="6" fill="{{.Color}}"><title>{{.Title}}</title></circle>
{{end}}</svg>
<table>
{{range .Entries}}<tr><td class="t">{{ts .Time}}</td><td><span class="k" style="background:{{index $.Colors .Kind}}"></span>{{.Kind}}</td><td>{{.Actor}}</td><td>{{.What}}{{if .Detail}}<div class="d">{{.Detail}}</div>{{end}}</td></tr>
{{end}}</table>
</body></html>
`))
