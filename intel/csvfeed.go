package intel

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/cordonhq/cordon/internal/chain"
)

// CSVColumns are the columns ParseCSV knows; address (or value) is
// required, chain unless a default is given.
var CSVColumns = []string{"address", "value", "chain", "network", "kind", "category", "confidence", "tlp", "source",
	"valid_from", "valid_until", "revoked", "description", "reference", "id"}

// ParseCSV parses a CSV file with a header row (see CSVColumns). Missing
// columns take the defaults: network mainnet, kind address, category
// other, confidence 50, TLP amber. Every indicator's source is the given
// one: a source column is kept as the informational creator. Times are
// RFC 3339 or YYYY-MM-DD. Every bad row is reported by line.
func ParseCSV(content []byte, name, source string, defaultChain chain.Chain, now time.Time) (*Feed, error) {
	col, err := newCollector(name, source, now)
	if err != nil {
		return nil, err
	}
	r := csv.NewReader(bytes.NewReader(content))
	r.FieldsPerRecord = -1
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	idx := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		known := false
		for _, k := range CSVColumns {
			known = known || k == h
		}
		if !known {
			return nil, fmt.Errorf("line 1: unknown column %q (known: %s)", h, strings.Join(CSVColumns, ", "))
		}
		idx[h] = i
	}
	if _, ok := idx["address"]; !ok {
		if _, ok := idx["value"]; !ok {
			return nil, errors.New("line 1: the header has no address (or value) column")
		}
		idx["address"] = idx["value"]
	}
	if _, ok := idx["chain"]; !ok && defaultChain == "" {
		return nil, errors.New("line 1: no chain column and no default chain (--chain)")
	}
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			col.problem("csv", err) // a csv.ParseError names its line
			break
		}
		line, _ := r.FieldPos(0)
		where := fmt.Sprintf("line %d", line)
		get := func(k string) string {
			if i, ok := idx[k]; ok && i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		in := Indicator{ID: get("id"), Kind: Kind(strings.ToLower(get("kind"))), Chain: chain.Chain(strings.ToLower(get("chain"))),
			Network: get("network"), Value: get("address"), Category: get("category"), Creator: sanitizeSource(get("source")),
			TLP: TLP(get("tlp")), Description: get("description"), Confidence: 50}
		if in.Chain == "" {
			in.Chain = defaultChain
		}
		if in.Network == "" {
			in.Network = "mainnet"
		}
		if in.TLP == "" {
			in.TLP = TLPAmber
		}
		if ref := get("reference"); ref != "" {
			in.Refs = []Ref{{SourceName: source, URL: ref}}
		}
		bad := false
		if v := get("confidence"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				col.problem(where, fmt.Errorf("confidence %q: want 0-100", v))
				bad = true
			}
			in.Confidence = n
		}
		for _, f := range []struct {
			col string
			dst *time.Time
		}{{"valid_from", &in.ValidFrom}, {"valid_until", &in.ValidUntil}} {
			if v := get(f.col); v != "" {
				t, err := parseTime(v)
				if err != nil {
					col.problem(where, fmt.Errorf("%s: %w", f.col, err))
					bad = true
				}
				*f.dst = t
			}
		}
		if v := strings.ToLower(get("revoked")); v != "" {
			switch v {
			case "true", "1", "yes":
				in.Revoked = true
			case "false", "0", "no":
			default:
				col.problem(where, fmt.Errorf("revoked %q: want true or false", v))
				bad = true
			}
		}
		if bad {
			if len(col.problems) >= maxProblems {
				break
			}
			continue
		}
		if !col.add(where, in) {
			break
		}
	}
	if len(col.problems) == 0 && len(col.feed.Indicators) == 0 {
		return nil, ErrEmpty
	}
	return col.done(content)
}

func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q: want RFC 3339 or YYYY-MM-DD", s)
}
