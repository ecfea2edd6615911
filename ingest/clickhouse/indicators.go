package clickhouse

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cordonhq/cordon/ingest/kafka"
)

// indicatorRow is a cordon.intel record as the indicators table holds it.
// The loader does not import the intel package: it takes the record's
// documented JSON form (docs/intel.md).
type indicatorRow struct {
	ID          string          `json:"id"`
	Kind        string          `json:"kind"`
	Chain       string          `json:"chain"`
	Network     string          `json:"network"`
	Value       string          `json:"value"`
	Category    string          `json:"category"`
	Source      string          `json:"source"`
	Confidence  int             `json:"confidence"`
	TLP         string          `json:"tlp"`
	ValidFrom   time.Time       `json:"valid_from"`
	ValidUntil  time.Time       `json:"valid_until"`
	Revoked     bool            `json:"revoked"`
	Created     time.Time       `json:"created"`
	Modified    time.Time       `json:"modified"`
	Feed        string          `json:"feed"`
	FeedVersion string          `json:"feed_version"`
	Description string          `json:"description"`
	Refs        json.RawMessage `json:"external_references"`
}

func decodeIndicator(b *batch, m kafka.Message) error {
	if m.Value == nil {
		return nil // a tombstone: cordon writes none; the row stays as it was
	}
	var r indicatorRow
	if err := json.Unmarshal(m.Value, &r); err != nil {
		return err
	}
	if r.ID == "" || r.ID != string(m.Key) || r.Value == "" || r.Chain == "" {
		return errors.New("not an indicator keyed by its id")
	}
	if r.Confidence < 0 || r.Confidence > 100 {
		return fmt.Errorf("confidence %d", r.Confidence)
	}
	b.indicators = append(b.indicators, r)
	return nil
}

// clampTime keeps a time inside DateTime's range (1970-2105).
func clampTime(t time.Time) time.Time {
	switch {
	case t.IsZero() || t.Unix() < 0:
		return time.Unix(0, 0)
	case t.Unix() > 4_294_967_295:
		return time.Unix(4_294_967_295, 0)
	}
	return t
}

func indicatorColumns(rows []indicatorRow) columns {
	var c columns
	str := func(name string, f func(*indicatorRow) string) { addCol(&c, name, mapCol(rows, f)) }
	tm := func(name string, f func(*indicatorRow) time.Time) {
		addCol(&c, name, mapCol(rows, func(r *indicatorRow) time.Time { return clampTime(f(r)) }))
	}
	str("id", func(r *indicatorRow) string { return r.ID })
	str("kind", func(r *indicatorRow) string { return r.Kind })
	str("chain", func(r *indicatorRow) string { return r.Chain })
	str("network", func(r *indicatorRow) string { return r.Network })
	str("value", func(r *indicatorRow) string { return r.Value })
	str("category", func(r *indicatorRow) string { return r.Category })
	str("source", func(r *indicatorRow) string { return r.Source })
	addCol(&c, "confidence", mapCol(rows, func(r *indicatorRow) uint8 { return uint8(r.Confidence) }))
	str("tlp", func(r *indicatorRow) string { return r.TLP })
	tm("valid_from", func(r *indicatorRow) time.Time { return r.ValidFrom })
	tm("valid_until", func(r *indicatorRow) time.Time { return r.ValidUntil })
	addCol(&c, "revoked", mapCol(rows, func(r *indicatorRow) uint8 { return u8(r.Revoked) }))
	tm("created", func(r *indicatorRow) time.Time { return r.Created })
	tm("modified", func(r *indicatorRow) time.Time { return r.Modified })
	str("feed", func(r *indicatorRow) string { return r.Feed })
	str("feed_version", func(r *indicatorRow) string { return r.FeedVersion })
	str("description", func(r *indicatorRow) string { return r.Description })
	str("refs", func(r *indicatorRow) string {
		if len(r.Refs) == 0 {
			return "[]"
		}
		return string(r.Refs)
	})
	return c
}
