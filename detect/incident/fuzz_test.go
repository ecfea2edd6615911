package incident_test

import (
	"encoding/json"
	"io"
	"testing"

	"github.com/cordonhq/cordon/detect/incident"
)

// FuzzEvent: whatever a record of cordon.incidents holds, decoding,
// checking, folding and drawing it never panics, and an event that
// passes Check folds into the incident it names.
func FuzzEvent(f *testing.F) {
	f.Add([]byte(`{"v":1,"id":"e1","incident":"incident/a","type":"opened","time":"2026-12-04T10:00:00Z","actor":"alice","title":"t","keys":["eth:0xaa"]}`))
	f.Add([]byte(`{"v":1,"id":"e2","incident":"incident/a","type":"alert","time":"2026-12-04T10:00:00Z","actor":"detect","alert":{"id":"x","severity":"critical","message":"<b>"}}`))
	f.Add([]byte(`{"v":1,"id":"e3","incident":"incident/a","type":"sealed","time":"2026-12-04T10:00:00Z","actor":"a","seal":{"manifest_sha256":"0000000000000000000000000000000000000000000000000000000000000000"}}`))
	f.Add([]byte(`{"type":"retracted","alert":null}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var e incident.Event
		if json.Unmarshal(raw, &e) != nil || e.Check() != nil {
			return
		}
		v := incident.Fold([]incident.Event{e})[e.Incident]
		if v == nil {
			t.Fatalf("event of %q folded into nothing", e.Incident)
		}
		g := incident.NewGrouper(incident.Config{})
		g.Apply(e)
		if err := v.WriteText(io.Discard); err != nil {
			t.Fatal(err)
		}
		if err := v.WriteHTML(io.Discard); err != nil {
			t.Fatal(err)
		}
	})
}
