package intel

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cordonhq/cordon/internal/chain"
)

// MISP feed layout: manifest.json maps event UUIDs to summaries, and
// <uuid>.json holds each event.

type mispTag struct {
	Name string `json:"name"`
}

type mispAttribute struct {
	UUID           string    `json:"uuid"`
	Type           string    `json:"type"`
	Category       string    `json:"category"`
	Value          string    `json:"value"`
	ToIDs          mispBool  `json:"to_ids"`
	Deleted        mispBool  `json:"deleted"`
	Distribution   mispInt   `json:"distribution"`
	Timestamp      mispInt   `json:"timestamp"`
	Comment        string    `json:"comment"`
	ObjectRelation string    `json:"object_relation"`
	Tags           []mispTag `json:"Tag"`
}

type mispEvent struct {
	UUID          string  `json:"uuid"`
	Info          string  `json:"info"`
	Date          string  `json:"date"`
	Timestamp     mispInt `json:"timestamp"`
	Distribution  mispInt `json:"distribution"`
	ThreatLevelID mispInt `json:"threat_level_id"`
	Orgc          struct {
		Name string `json:"name"`
	} `json:"Orgc"`
	Tags       []mispTag       `json:"Tag"`
	Attributes []mispAttribute `json:"Attribute"`
	Objects    []struct {
		Name         string          `json:"name"`
		UUID         string          `json:"uuid"`
		Distribution mispInt         `json:"distribution"`
		Deleted      mispBool        `json:"deleted"`
		Attributes   []mispAttribute `json:"Attribute"`
	} `json:"Object"`
}

// mispInt and mispBool accept MISP's numbers written as strings.
type mispInt int64

func (m *mispInt) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		*m = 0
		return nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("number %s: %w", b, err)
	}
	*m = mispInt(v)
	return nil
}

type mispBool bool

func (m *mispBool) UnmarshalJSON(b []byte) error {
	switch strings.Trim(string(b), `"`) {
	case "true", "1":
		*m = true
	case "false", "0", "", "null":
		*m = false
	default:
		return fmt.Errorf("boolean %s", b)
	}
	return nil
}

// mispTLP maps distribution levels (0 organisation only … 3 all
// communities, 4 sharing group) to TLP when no tlp: tag says.
var mispTLP = map[mispInt]TLP{0: TLPRed, 1: TLPAmber, 2: TLPGreen, 3: TLPClear, 4: TLPAmber}

// mispConfidence maps threat levels (1 high … 4 undefined).
var mispConfidence = map[mispInt]int{1: 90, 2: 70, 3: 50, 4: 30}

// MaxMISPEvents bounds the events of one feed.
const MaxMISPEvents = 100_000

// ParseMISP parses a MISP feed directory (fsys holds manifest.json and the
// event files): btc attributes and coin-address objects become
// indicators (Ethereum addresses too, by their 0x form or symbol); xmr and
// other coins are listed as not matched. The event's tlp: tag, or its
// distribution, gives the TLP; its tags naming a category the category;
// its threat level the confidence; the organisation that created it the
// informational creator (the source is the given one). Attributes not marked for detection (to_ids false) and deleted
// ones are left out.
func ParseMISP(fsys fs.FS, name, source string, now time.Time) (*Feed, error) {
	raw, err := fs.ReadFile(fsys, "manifest.json")
	if err != nil {
		return nil, fmt.Errorf("MISP feed: %w", err)
	}
	var manifest map[string]json.RawMessage
	if err := json.Unmarshal(raw, &manifest); err != nil {
		return nil, fmt.Errorf("MISP feed: manifest.json: %w", err)
	}
	if len(manifest) > MaxMISPEvents {
		return nil, fmt.Errorf("MISP feed: %d events, at most %d", len(manifest), MaxMISPEvents)
	}
	uuids := make([]string, 0, len(manifest))
	for u := range manifest {
		uuids = append(uuids, u)
	}
	sort.Strings(uuids)
	col, err := newCollector(name, source, now)
	if err != nil {
		return nil, err
	}
	var all []byte
	for _, u := range uuids {
		if !isUUID(strings.ToLower(u)) {
			col.problem("manifest.json", fmt.Errorf("event key %q is not a UUID", u))
			continue
		}
		b, err := fs.ReadFile(fsys, u+".json")
		if err != nil {
			col.problem("event "+u, err)
			continue
		}
		all = append(all, b...)
		var doc struct {
			Event *mispEvent `json:"Event"`
		}
		if err := json.Unmarshal(b, &doc); err != nil || doc.Event == nil {
			if err == nil {
				err = errors.New("no Event object")
			}
			col.problem("event "+u, err)
			continue
		}
		col.mispEvent(doc.Event)
		if len(col.problems) >= maxProblems {
			break
		}
	}
	if len(col.problems) == 0 && len(col.feed.Indicators) == 0 {
		return nil, ErrEmpty
	}
	return col.done(all)
}

func (c *collector) mispEvent(ev *mispEvent) {
	evTLP, hasTLP := TLP(""), false
	category := ""
	for _, t := range ev.Tags {
		n := strings.ToLower(t.Name)
		if tl, err := ParseTLP(n); strings.HasPrefix(n, "tlp:") && err == nil {
			if !hasTLP || tlpRank[tl] > tlpRank[evTLP] {
				evTLP, hasTLP = tl, true
			}
		}
		for cat := range severity {
			if cat != CategoryOther && strings.Contains(n, cat) && Severity(cat) > Severity(category) {
				category = cat
			}
		}
	}
	conf, ok := mispConfidence[ev.ThreatLevelID]
	if !ok {
		conf = 50
	}
	creator := sanitizeSource(ev.Orgc.Name) // informational: the source is the feed's
	var from time.Time
	if ev.Timestamp > 0 {
		from = time.Unix(int64(ev.Timestamp), 0).UTC()
	}
	add := func(a mispAttribute, objDist mispInt, symbol string) {
		where := "event " + ev.UUID + " attribute " + a.UUID
		if bool(a.Deleted) || !bool(a.ToIDs) {
			return
		}
		sym := strings.ToUpper(strings.TrimSpace(symbol))
		if t := strings.ToLower(a.Type); t != "btc" && t != "xmr" && t != "dash" {
			return // not a coin address (ip-dst, domain, …)
		}
		ch := chain.Chain("")
		switch {
		case strings.ToLower(a.Type) != "btc" || (sym != "" && sym != "BTC" && sym != "XBT" && sym != "ETH"):
			// xmr attributes, and coin-address objects of other coins
			// (whose address attribute MISP also types btc).
			coin := a.Type
			if sym != "" {
				coin = sym
			}
			c.feed.Skipped = append(c.feed.Skipped, fmt.Sprintf("%s: %s address %s; not matched", where, coin, a.Value))
			return
		case sym == "ETH" || strings.HasPrefix(a.Value, "0x"):
			ch = chain.ETH
		default:
			ch = chain.BTC
		}
		tlp := evTLP
		if !hasTLP {
			d := a.Distribution
			if d == 5 { // inherit
				d = objDist
			}
			if d == 5 {
				d = ev.Distribution
			}
			tlp = mispTLP[d]
			if tlp == "" {
				tlp = TLPAmber
			}
		}
		id := ""
		if u := strings.ToLower(a.UUID); isUUID(u) {
			id = "indicator--" + u
		}
		in := Indicator{ID: id, Kind: KindAddress, Chain: ch, Network: "mainnet", Value: a.Value, Category: category, Creator: creator,
			Confidence: conf, TLP: tlp, ValidFrom: from, Description: ev.Info,
			Refs: []Ref{{SourceName: "misp", ExternalID: ev.UUID}}}
		if in.Description == "" {
			in.Description = a.Comment
		}
		c.add(where, in)
	}
	for _, a := range ev.Attributes {
		add(a, ev.Distribution, "")
	}
	for _, o := range ev.Objects {
		if o.Name != "coin-address" || bool(o.Deleted) {
			continue
		}
		symbol := ""
		for _, a := range o.Attributes {
			if a.ObjectRelation == "symbol" {
				symbol = a.Value
			}
		}
		for _, a := range o.Attributes {
			if a.ObjectRelation == "address" {
				add(a, o.Distribution, symbol)
			}
		}
	}
}
