package incident_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/detect/incident"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/recordauth"
)

var t0 = time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)

func alert(id, sev string, at time.Duration, tx string, addrs ...string) chain.Alert {
	return chain.Alert{V: 1, ID: id, Type: "detect", Rule: strings.Split(id, "/")[0], Severity: sev, Chain: chain.ETH, Network: "devnet",
		Time: t0.Add(at), Message: id + " fired", TxHash: tx, Addresses: addrs, Height: 7, BlockHash: "0xb7"}
}

func types(evs []incident.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Type)
	}
	return out
}

// TestGrouping: one attack is one incident. A critical alert opens one;
// the alerts sharing an address or a transaction with it join it (in
// any case of the address), also below the opening severity; an
// unrelated alert below it opens nothing, an unrelated critical one
// opens a second incident; past the window nothing joins.
func TestGrouping(t *testing.T) {
	g := incident.NewGrouper(incident.Config{})
	hot, thief, thief2 := "0x00000000000000000000000000000000000000aa", "0x00000000000000000000000000000000000000bb", "0x00000000000000000000000000000000000000cc"
	evs := g.Alert(alert("drain/1", "critical", 0, "0x01", hot, thief))
	require.Equal(t, []string{incident.Opened, incident.Joined}, types(evs))
	inc := evs[0].Incident
	require.True(t, strings.HasPrefix(inc, incident.Prefix))
	require.Equal(t, "drain on eth/devnet", evs[0].Title)
	// the sweep: the thief forwards to a fresh address (upper case hex)
	evs = g.Alert(alert("flagged/2", "medium", time.Minute, "0x02", strings.ToUpper(thief[2:]), thief2))
	require.Empty(t, evs, "the address without 0x is another key: no join")
	evs = g.Alert(alert("flagged/2", "medium", time.Minute, "0x02", "0x"+strings.ToUpper(thief[2:]), thief2))
	require.Equal(t, []string{incident.Joined}, types(evs))
	require.Equal(t, inc, evs[0].Incident)
	// the peel chain: shares only the second hop's address
	evs = g.Alert(alert("flagged/3", "low", 2*time.Minute, "0x03", thief2, "0x00000000000000000000000000000000000000dd"))
	require.Equal(t, inc, evs[0].Incident)
	// unrelated, not severe: nothing
	require.Empty(t, g.Alert(alert("whale/4", "high", 3*time.Minute, "0x04", "0x00000000000000000000000000000000000000ee")))
	// unrelated, critical: a second incident
	evs = g.Alert(alert("drain/5", "critical", 4*time.Minute, "0x05", "0x00000000000000000000000000000000000000ff"))
	require.Equal(t, []string{incident.Opened, incident.Joined}, types(evs))
	require.NotEqual(t, inc, evs[0].Incident)
	// past the window of the first incident's last alert: no join
	require.Empty(t, g.Alert(alert("flagged/6", "low", 7*time.Hour, "0x06", thief)))
	// the same alert again (a replay): nothing
	require.Empty(t, g.Alert(alert("flagged/3", "low", 2*time.Minute, "0x03", thief2)))
	// a retraction of one of its alerts
	r := alert("flagged/2", "medium", time.Minute, "0x02", thief)
	r.Retracted = true
	evs = g.Alert(r)
	require.Equal(t, []string{incident.Retracted}, types(evs))
	require.Equal(t, inc, evs[0].Incident)
	open := g.Open()
	require.Len(t, open, 2)
	require.Equal(t, inc, open[0].ID)
	require.Equal(t, []string{"drain/1", "flagged/2", "flagged/3"}, open[0].Alerts)
	require.Equal(t, "critical", open[0].Severity)
}

// TestGroupingDeterministic: a grouper restored from the state records
// of another gives the same events, ids included, for what follows; an
// operator's close stops alerts joining, an operator's keys gather them.
func TestGroupingDeterministic(t *testing.T) {
	seq := []chain.Alert{
		alert("drain/1", "critical", 0, "0x01", "0xaa", "0xbb"),
		alert("flagged/2", "medium", time.Minute, "0x02", "0xbb", "0xcc"),
		alert("drain/3", "critical", 2*time.Minute, "0x03", "0xdd"),
		alert("flagged/4", "low", 3*time.Minute, "0x04", "0xcc"),
		alert("flagged/5", "low", 4*time.Minute, "0x05", "0xdd", "0xee"),
	}
	run := func(g *incident.Grouper, as []chain.Alert) []incident.Event {
		var out []incident.Event
		for _, a := range as {
			out = append(out, g.Alert(a)...)
		}
		return out
	}
	whole := run(incident.NewGrouper(incident.Config{}), seq)
	g := incident.NewGrouper(incident.Config{})
	first := run(g, seq[:2])
	state, err := g.TakeState()
	require.NoError(t, err)
	g2 := incident.NewGrouper(incident.Config{})
	for _, r := range state {
		require.NoError(t, g2.Restore(r.Value))
	}
	rest := run(g2, seq[2:])
	require.Equal(t, whole, append(first, rest...))
	// an operator closes the first incident: 0xcc no longer joins it
	g2.Apply(incident.Event{ID: "op-1", Incident: whole[0].Incident, Type: incident.Closed, Time: t0.Add(5 * time.Minute), Actor: "alice"})
	require.Empty(t, g2.Alert(alert("flagged/6", "low", 6*time.Minute, "0x06", "0xcc")))
	state, err = g2.TakeState()
	require.NoError(t, err)
	var deleted bool
	for _, r := range state {
		if r.Value == nil {
			deleted = true
		}
	}
	require.True(t, deleted, "the closed incident leaves the state")
	// an operator opens one with keys: alerts sharing them join it
	g2.Apply(incident.Event{ID: "op-2", Incident: "incident/manual-1", Type: incident.Opened, Time: t0.Add(7 * time.Minute), Actor: "bob",
		Title: "phishing report", Severity: "high", Keys: []string{"eth:0x99"}})
	evs := g2.Alert(alert("flagged/7", "low", 8*time.Minute, "0x07", "0x99"))
	require.Equal(t, []string{incident.Joined}, types(evs))
	require.Equal(t, "incident/manual-1", evs[0].Incident)
	// detection's own events read back change nothing
	g2.Apply(incident.Event{ID: "x", Incident: "incident/other", Type: incident.Opened, Time: t0, Actor: incident.Actor, Keys: []string{"eth:0x98"}})
	require.Empty(t, g2.Alert(alert("flagged/8", "low", 9*time.Minute, "0x08", "0x98")))
}

// TestOpenAtNone: with open_at none, detection opens nothing itself.
func TestOpenAtNone(t *testing.T) {
	g := incident.NewGrouper(incident.Config{OpenAt: "none"})
	require.Empty(t, g.Alert(alert("drain/1", "critical", 0, "0x01", "0xaa")))
}

func keyring(t *testing.T) (*recordauth.Signer, *recordauth.Keyring) {
	k := recordauth.Generate(recordauth.Detect)
	s, ok := k.Signer(recordauth.Detect)
	require.True(t, ok)
	return s, k.Readers()
}

// TestBundle: a bundle verifies as written; changing, removing or adding
// any file, editing the manifest, or re-signing it with a key not
// trusted is named; the directory is never written twice.
func TestBundle(t *testing.T) {
	signer, trust := keyring(t)
	files := []incident.File{{Name: "alerts.json", Data: []byte(`[{"id":"drain/1"}]`)}, {Name: "wallets.json", Data: []byte(`{"0xaa":"12"}`)}}
	m := incident.Manifest{V: 1, Incident: "incident/x", Created: t0, Sources: map[string]string{"alerts": "cordon.alerts"}}
	fresh := func(t *testing.T) (string, incident.Seal) {
		dir := filepath.Join(t.TempDir(), "bundle")
		seal, err := incident.Write(dir, m, files, signer)
		require.NoError(t, err)
		return dir, seal
	}
	dir, seal := fresh(t)
	require.Equal(t, 2, seal.Files)
	rep, err := incident.Verify(dir, trust)
	require.NoError(t, err)
	require.Empty(t, rep.Problems)
	require.Equal(t, seal.Manifest, rep.Manifest)
	require.Equal(t, "incident/x", rep.Incident)
	_, err = incident.Write(dir, m, files, signer)
	require.ErrorContains(t, err, "exists: a bundle is written once")
	fi, err := os.Stat(filepath.Join(dir, "alerts.json"))
	require.NoError(t, err)
	require.Zero(t, fi.Mode().Perm()&0o222, "files are read-only")

	tamper := map[string]func(dir string){
		"alerts.json: changed": func(dir string) {
			p := filepath.Join(dir, "alerts.json")
			require.NoError(t, os.Chmod(p, 0o640))
			require.NoError(t, os.WriteFile(p, []byte(`[{"id":"drain/2"}]`), 0o640))
		},
		"wallets.json: missing":                  func(dir string) { require.NoError(t, os.Remove(filepath.Join(dir, "wallets.json"))) },
		"extra.txt: not in the manifest (added)": func(dir string) { require.NoError(t, os.WriteFile(filepath.Join(dir, "extra.txt"), nil, 0o600)) },
		"manifest.sig: the manifest's signature": func(dir string) { editManifest(t, dir) },
		"manifest.sig: the manifest's signature does not verify: " + recordauth.ErrUnknown.Error(): func(dir string) {
			other, _ := keyring(t)
			raw, err := os.ReadFile(filepath.Join(dir, incident.ManifestFile))
			require.NoError(t, err)
			p := filepath.Join(dir, incident.SignatureFile)
			require.NoError(t, os.Chmod(p, 0o640))
			require.NoError(t, os.WriteFile(p, other.Sign(incident.ManifestKind, []byte("incident/x"), raw), 0o640))
		},
	}
	for want, f := range tamper {
		t.Run(want, func(t *testing.T) {
			dir, _ := fresh(t)
			f(dir)
			rep, err := incident.Verify(dir, trust)
			require.NoError(t, err)
			require.NotEmpty(t, rep.Problems)
			require.Contains(t, strings.Join(rep.Problems, "\n"), want)
		})
	}
	_, err = incident.Write(filepath.Join(t.TempDir(), "b"), m, []incident.File{{Name: "../x", Data: nil}}, signer)
	require.ErrorContains(t, err, `file name "../x"`)
	gate := recordauth.Generate(recordauth.Gate)
	gs, _ := gate.Signer(recordauth.Gate)
	_, err = incident.Write(filepath.Join(t.TempDir(), "b"), m, files, gs)
	require.ErrorContains(t, err, "want detect's")
}

// editManifest changes a file's recorded hash in the manifest to the
// hash of new content written to the file (a consistent forgery without
// the key).
func editManifest(t *testing.T, dir string) {
	p := filepath.Join(dir, incident.ManifestFile)
	raw, err := os.ReadFile(p)
	require.NoError(t, err)
	var m incident.Manifest
	require.NoError(t, json.Unmarshal(raw, &m))
	m.Sources["alerts"] = "somewhere else"
	out, err := json.Marshal(&m)
	require.NoError(t, err)
	require.NoError(t, os.Chmod(p, 0o640))
	require.NoError(t, os.WriteFile(p, out, 0o640))
}

// TestTimeline: the history folds into the incident; the timeline is in
// time order; text from alerts and operators is escaped in both forms.
func TestTimeline(t *testing.T) {
	g := incident.NewGrouper(incident.Config{})
	evil := alert("drain/1", "critical", 0, "0x01", "0xaa")
	evil.Message = "<script>alert(1)</script>\x1b[2J"
	evs := g.Alert(evil)
	evs = append(evs, incident.Event{ID: "n1", Incident: evs[0].Incident, Type: incident.Noted, Time: t0.Add(time.Minute), Actor: "alice", Text: "paged on-call"},
		incident.Event{ID: "s1", Incident: evs[0].Incident, Type: incident.Sealed, Time: t0.Add(2 * time.Minute), Actor: "alice",
			Seal: &incident.Seal{Manifest: strings.Repeat("a", 64), Files: 5, Key: "k"}},
		incident.Event{ID: "c1", Incident: evs[0].Incident, Type: incident.Closed, Time: t0.Add(3 * time.Minute), Actor: "alice", Text: "contained"})
	for _, e := range evs {
		require.NoError(t, e.Check())
	}
	v := incident.Fold(evs)[evs[0].Incident]
	require.Equal(t, "closed", v.Status)
	require.Equal(t, "critical", v.Severity)
	require.Len(t, v.Alerts, 1)
	require.Len(t, v.Seals, 1)
	// every event replayed (a Kafka writer repeating signed records,
	// detection writing its round again): the same incident
	again := incident.Fold(append(slices.Clone(evs), evs...))[evs[0].Incident]
	require.Equal(t, v, again, "a replayed event counted twice")
	require.Len(t, again.Events, len(evs))
	var txt, page bytes.Buffer
	require.NoError(t, v.WriteText(&txt))
	require.NotContains(t, txt.String(), "\x1b")
	lines := strings.Split(txt.String(), "\n")
	require.Contains(t, lines[1], "opened")
	require.Contains(t, txt.String(), "note: paged on-call")
	require.Contains(t, txt.String(), "evidence sealed: 5 files")
	require.NoError(t, v.WriteHTML(&page))
	require.NotContains(t, page.String(), "<script>")
	require.Contains(t, page.String(), "&lt;script&gt;")
	require.Contains(t, page.String(), `style="background:#c62828"`)
	require.Equal(t, 5, strings.Count(page.String(), "<circle"))
}
