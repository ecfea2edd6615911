package intel

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Feed is one parsed file of indicators: everything in it or nothing is
// imported. A newer version of the same feed (same Name) replaces the
// older: what it no longer lists is revoked.
type Feed struct {
	// Name identifies the feed across versions (for example
	// "ofac:sanctioned_addresses_XBT") and is its indicators' namespace:
	// an import adds, changes and revokes only indicators of its own
	// feed (Key). Version is the file's content hash unless the format
	// carries one.
	Name    string
	Version string
	// Source is the publisher the operator names for the feed; it is
	// every indicator's source, whatever the file says.
	Source     string
	Indicators []Indicator
	// Skipped says what the file holds that cordon does not match (other
	// chains, unsupported patterns), one line each.
	Skipped []string
}

// Problem is one error in a file, where it is.
type Problem struct {
	Where string // "line 12", "object indicator--…"
	Err   error
}

// Problems is every error found in a file.
type Problems []Problem

func (p Problems) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d errors", len(p))
	for i, e := range p {
		if i == 50 {
			fmt.Fprintf(&b, "\n… and %d more", len(p)-50)
			break
		}
		fmt.Fprintf(&b, "\n%s: %v", e.Where, e.Err)
	}
	return b.String()
}

// maxProblems bounds the errors a parser collects before giving up.
const maxProblems = 1000

// collector gathers a feed's indicators and problems.
type collector struct {
	feed     *Feed
	problems Problems
	seen     map[string]int // id → index in feed.Indicators
	now      time.Time
}

// newCollector starts collecting feed name's indicators, published by
// source; both are the importer's (never the file's), and checked here.
func newCollector(name, source string, now time.Time) (*collector, error) {
	if !ValidFeedName(name) {
		return nil, fmt.Errorf("feed name %q: 1-128 letters, digits and ._:@+-_, starting with a letter or digit (--name)", name)
	}
	if !validSource(source) {
		return nil, fmt.Errorf("source %q: 1-64 letters, digits, spaces and ._:/@-, starting with a letter or digit (--source)", source)
	}
	return &collector{feed: &Feed{Name: name, Source: source}, seen: map[string]int{}, now: now}, nil
}

func (c *collector) problem(where string, err error) bool {
	c.problems = append(c.problems, Problem{where, err})
	return len(c.problems) < maxProblems
}

// add validates in and keeps it as the feed's, published by the feed's
// source; the same id twice in one file is one indicator (the later
// statement wins).
func (c *collector) add(where string, in Indicator) bool {
	in.Source = c.feed.Source
	if in.ValidFrom.IsZero() {
		in.ValidFrom = c.now
	}
	if in.Created.IsZero() {
		in.Created = c.now
	}
	if in.Modified.IsZero() {
		in.Modified = in.Created
	}
	in.Feed = c.feed.Name
	if err := in.Validate(); err != nil {
		return c.problem(where, err)
	}
	if i, dup := c.seen[in.ID]; dup {
		c.feed.Indicators[i] = in
		return true
	}
	c.seen[in.ID] = len(c.feed.Indicators)
	c.feed.Indicators = append(c.feed.Indicators, in)
	return true
}

// done returns the feed, or every problem.
func (c *collector) done(content []byte) (*Feed, error) {
	if len(c.problems) > 0 {
		return nil, c.problems
	}
	if c.feed.Version == "" {
		sum := sha256.Sum256(content)
		c.feed.Version = hex.EncodeToString(sum[:8])
	}
	for i := range c.feed.Indicators {
		c.feed.Indicators[i].FeedVersion = c.feed.Version
	}
	return c.feed, nil
}

// ErrEmpty is returned for a file with no indicator and no error: an
// empty or truncated download would otherwise revoke the whole feed.
var ErrEmpty = errors.New("the file holds no indicator")
