package intel

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/internal/chain"
)

// ImportOptions tune Import.
type ImportOptions struct {
	// AllowShrink lets a new version of a feed revoke more than half of
	// what the feed lists now (a truncated download otherwise revokes a
	// sanctions list).
	AllowShrink bool
	// Now stamps modified indicators (default time.Now).
	Now time.Time
	// Alerts is told, before anything is published, when the feed lists
	// ids other feeds use (ImportResult.SharedIDs); if it cannot be told,
	// nothing is imported. Nil: nobody is.
	Alerts Alerter
}

// Alerter raises an alert (kafka.Producer writes it to cordon.alerts).
type Alerter interface {
	Alert(ctx context.Context, a chain.Alert) error
}

// sharedIDsAlert is the alert for a feed that lists ids other feeds use:
// harmless now that ids are per feed, but a partner file carrying, say,
// OFAC's computable ids is broken or hostile, and a person should look.
func sharedIDsAlert(feed *Feed, res *ImportResult, example string, now time.Time) chain.Alert {
	others := res.OtherFeeds
	if len(others) > 10 {
		others = others[:10]
	}
	return chain.Alert{V: chain.SchemaVersion, ID: "intel_shared_ids/" + feed.Name + "/" + feed.Version, Type: "intel_shared_ids",
		Severity: "warning", Time: now.UTC(),
		Message: fmt.Sprintf("intel: feed %s (source %s) lists %d ids that feeds %s use; they are %s's own indicators and change nothing of the others'",
			feed.Name, feed.Source, res.SharedIDs, strings.Join(others, ", "), feed.Name),
		Details: map[string]string{"feed": feed.Name, "feed_version": feed.Version, "source": feed.Source,
			"shared_ids": strconv.Itoa(res.SharedIDs), "other_feeds": strings.Join(others, ","), "example_id": example}}
}

// ImportResult says what an import changed.
type ImportResult struct {
	Feed      string   `json:"feed"`
	Version   string   `json:"version"`
	Added     int      `json:"added"`
	Updated   int      `json:"updated"`
	Revoked   int      `json:"revoked"`
	Unchanged int      `json:"unchanged"`
	Skipped   []string `json:"skipped,omitempty"`
	// SharedIDs counts the feed's ids that other feeds use too, and
	// OtherFeeds names those feeds: ids are per feed, so these are the
	// feed's own indicators and change nothing of the others' — but a
	// file reusing, say, OFAC's computable ids is worth a look.
	SharedIDs  int      `json:"shared_ids,omitempty"`
	OtherFeeds []string `json:"other_feeds,omitempty"`
}

// Current reads every indicator of the topic (the latest record of each
// key).
func Current(ctx context.Context, t *Topic) (map[Key]Indicator, error) {
	cur := map[Key]Indicator{}
	err := t.Read(ctx, false, func(k Key, in *Indicator) error {
		if in == nil {
			delete(cur, k)
		} else {
			cur[k] = *in
		}
		return nil
	}, nil)
	return cur, err
}

// sameStatement compares two indicators but for their timestamps and
// feed version.
func sameStatement(a, b Indicator) bool {
	a.Created, a.Modified, a.FeedVersion = time.Time{}, time.Time{}, ""
	b.Created, b.Modified, b.FeedVersion = time.Time{}, time.Time{}, ""
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// Import publishes feed to the topic in one transaction: new and changed
// indicators, and the feed's earlier indicators it no longer lists,
// revoked. It touches only the feed's own keys (feed name, id): an id in
// the file names this feed's indicator whatever other feeds use it for.
// Importing the same file again publishes nothing.
func Import(ctx context.Context, t *Topic, feed *Feed, opts ImportOptions) (*ImportResult, error) {
	if opts.Now.IsZero() {
		opts.Now = time.Now().UTC().Truncate(time.Second)
	}
	for i := range feed.Indicators {
		if in := &feed.Indicators[i]; in.Feed != feed.Name || in.Source != feed.Source {
			return nil, fmt.Errorf("intel: feed %s: indicator %s is feed %q's from source %q, not the feed's (source %q)",
				feed.Name, in.ID, in.Feed, in.Source, feed.Source)
		}
	}
	cur, err := Current(ctx, t)
	if err != nil {
		return nil, err
	}
	res := &ImportResult{Feed: feed.Name, Version: feed.Version, Skipped: feed.Skipped}
	var out []Indicator
	listed := map[string]bool{}
	owners := map[string][]string{} // id → the other feeds using it
	for k := range cur {
		if k.Feed != feed.Name {
			owners[k.ID] = append(owners[k.ID], k.Feed)
		}
	}
	others := map[string]bool{}
	example := ""
	for _, in := range feed.Indicators {
		listed[in.ID] = true
		if fs := owners[in.ID]; len(fs) > 0 {
			if res.SharedIDs == 0 {
				example = in.ID
			}
			res.SharedIDs++
			for _, f := range fs {
				others[f] = true
			}
		}
		old, ok := cur[KeyOf(&in)]
		switch {
		case !ok:
			res.Added++
		case sameStatement(old, in):
			res.Unchanged++
			continue
		default:
			res.Updated++
			in.Created = old.Created
		}
		in.Modified = opts.Now
		out = append(out, in)
	}
	res.OtherFeeds = slices.Sorted(maps.Keys(others))
	active := 0
	for k, old := range cur {
		if k.Feed != feed.Name || old.Revoked {
			continue
		}
		active++
		if listed[k.ID] {
			continue
		}
		old.Revoked, old.Modified, old.FeedVersion = true, opts.Now, feed.Version
		out = append(out, old)
		res.Revoked++
	}
	if res.Revoked*2 > active && active > 0 && !opts.AllowShrink {
		return nil, fmt.Errorf("intel: version %s of feed %s would revoke %d of its %d indicators; if the feed really shrank, import with --allow-shrink",
			feed.Version, feed.Name, res.Revoked, active)
	}
	if res.SharedIDs > 0 && len(out) > 0 && opts.Alerts != nil {
		if err := opts.Alerts.Alert(ctx, sharedIDsAlert(feed, res, example, opts.Now)); err != nil {
			return nil, fmt.Errorf("intel: feed %s lists %d ids other feeds use, and the alert saying so failed (nothing imported): %w",
				feed.Name, res.SharedIDs, err)
		}
	}
	if err := t.Publish(ctx, kafka.TxIntelImport, out); err != nil {
		return nil, err
	}
	return res, nil
}

// Stats counts indicators.
type Stats struct {
	Total    int `json:"total"`
	Active   int `json:"active"`
	Revoked  int `json:"revoked"`
	Inactive int `json:"inactive"`
	// Active indicators by source, category and chain.
	BySource   map[string]int `json:"by_source"`
	ByCategory map[string]int `json:"by_category"`
	ByChain    map[string]int `json:"by_chain"`
	// Refused counts the topic's records refused, by reason (Topic.Refused).
	Refused map[string]int64 `json:"refused,omitempty"`
}

// Summarize counts the indicators at now.
func Summarize(all map[Key]Indicator, now time.Time) Stats {
	st := Stats{BySource: map[string]int{}, ByCategory: map[string]int{}, ByChain: map[string]int{}}
	for _, in := range all {
		st.Total++
		switch {
		case in.Revoked:
			st.Revoked++
		case !in.Active(now):
			st.Inactive++
		default:
			st.Active++
			st.BySource[in.Source]++
			st.ByCategory[in.Category]++
			st.ByChain[string(in.Chain)]++
		}
	}
	return st
}
