package trace

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/cordonhq/cordon/internal/address"
	"github.com/cordonhq/cordon/internal/chain"
)

// maxSinkErrors bounds the errors one file reports.
const maxSinkErrors = 20

// ReadSinks reads known addresses from a CSV file with a header row
// naming at least `address`, and optionally `label`, `kind`, `chain` and
// `network`. Rows of another chain or network are skipped; every other
// address must be valid for c and network. All errors are reported, by
// line, and nothing is returned when there are any.
func ReadSinks(r io.Reader, name string, c chain.Chain, network string, into map[string]Sink) error {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return fmt.Errorf("%s: read header: %w", name, err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.ToLower(strings.TrimSpace(h))] = i
	}
	if _, ok := col["address"]; !ok {
		return fmt.Errorf("%s: line 1: the header has no address column (want address[,label,kind,chain,network])", name)
	}
	get := func(rec []string, k string) string {
		if i, ok := col[k]; ok && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	found := map[string]Sink{}
	var errs []error
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err)) // a csv.ParseError names its line
			break
		}
		line, _ := cr.FieldPos(0)
		if ch := get(rec, "chain"); ch != "" && !strings.EqualFold(ch, string(c)) {
			continue
		}
		if nw := get(rec, "network"); nw != "" && nw != network {
			continue
		}
		a, err := address.Normalize(c, network, get(rec, "address"))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: line %d: %w", name, line, err))
			if len(errs) >= maxSinkErrors {
				errs = append(errs, fmt.Errorf("%s: stopped after %d errors", name, maxSinkErrors))
				break
			}
			continue
		}
		kind := get(rec, "kind")
		if kind == "" {
			kind = "known"
		}
		found[a] = Sink{Address: a, Label: get(rec, "label"), Kind: kind}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	for k, v := range found {
		into[k] = v
	}
	return nil
}
