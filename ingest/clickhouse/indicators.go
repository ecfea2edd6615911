package clickhouse

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/cordonhq/cordon/ingest/kafka"
)

// IndicatorRow is a cordon.intel indicator as the indicators table holds
// it (the record's documented JSON form, docs/intel.md).
type IndicatorRow struct {
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

// InsertIndicators writes indicators into the indicators table (a
// replayed batch collapses: the table keeps the newest of each).
func (s *Store) InsertIndicators(ctx context.Context, rows []IndicatorRow) error {
	if len(rows) == 0 {
		return nil
	}
	return s.insertColumns(ctx, "indicators", len(rows), indicatorColumns(rows))
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

func indicatorColumns(rows []IndicatorRow) columns {
	var c columns
	str := func(name string, f func(*IndicatorRow) string) { addCol(&c, name, mapCol(rows, f)) }
	tm := func(name string, f func(*IndicatorRow) time.Time) {
		addCol(&c, name, mapCol(rows, func(r *IndicatorRow) time.Time { return clampTime(f(r)) }))
	}
	str("id", func(r *IndicatorRow) string { return r.ID })
	str("kind", func(r *IndicatorRow) string { return r.Kind })
	str("chain", func(r *IndicatorRow) string { return r.Chain })
	str("network", func(r *IndicatorRow) string { return r.Network })
	str("value", func(r *IndicatorRow) string { return r.Value })
	str("category", func(r *IndicatorRow) string { return r.Category })
	str("source", func(r *IndicatorRow) string { return r.Source })
	addCol(&c, "confidence", mapCol(rows, func(r *IndicatorRow) uint8 { return uint8(r.Confidence) }))
	str("tlp", func(r *IndicatorRow) string { return r.TLP })
	tm("valid_from", func(r *IndicatorRow) time.Time { return r.ValidFrom })
	tm("valid_until", func(r *IndicatorRow) time.Time { return r.ValidUntil })
	addCol(&c, "revoked", mapCol(rows, func(r *IndicatorRow) uint8 { return u8(r.Revoked) }))
	tm("created", func(r *IndicatorRow) time.Time { return r.Created })
	tm("modified", func(r *IndicatorRow) time.Time { return r.Modified })
	str("feed", func(r *IndicatorRow) string { return r.Feed })
	str("feed_version", func(r *IndicatorRow) string { return r.FeedVersion })
	str("description", func(r *IndicatorRow) string { return r.Description })
	str("refs", func(r *IndicatorRow) string {
		if len(r.Refs) == 0 {
			return "[]"
		}
		return string(r.Refs)
	})
	return c
}

// addressRow is an address-registry record (cordon.addresses, written by
// the credit package) as registered_addresses holds it.
type addressRow struct {
	Chain   string `json:"chain"`
	Network string `json:"network"`
	Address string `json:"address"`
	Account string `json:"account"`
	Kind    string `json:"kind"`
	Removed bool   `json:"removed"`
	version uint64
}

func decodeAddress(b *batch, m kafka.Message) error {
	var r addressRow
	if err := json.Unmarshal(m.Value, &r); err != nil {
		return err
	}
	if r.Chain == "" || r.Address == "" || string(m.Key) != r.Chain+"/"+r.Network+"/"+r.Address {
		return errors.New("not an address record keyed by chain/network/address")
	}
	// The record's offset orders the versions of an address (one key, one
	// partition), so the newest wins in the ReplacingMergeTree.
	r.version = uint64(m.Offset) + 1
	b.addresses = append(b.addresses, r)
	return nil
}

func addressColumns(rows []addressRow) columns {
	var c columns
	str := func(name string, f func(*addressRow) string) { addCol(&c, name, mapCol(rows, f)) }
	str("chain", func(r *addressRow) string { return r.Chain })
	str("network", func(r *addressRow) string { return r.Network })
	str("address", func(r *addressRow) string { return r.Address })
	str("account", func(r *addressRow) string { return r.Account })
	str("kind", func(r *addressRow) string { return r.Kind })
	now := time.Now()
	addCol(&c, "added", mapCol(rows, func(*addressRow) time.Time { return now }))
	addCol(&c, "removed", mapCol(rows, func(r *addressRow) uint8 { return u8(r.Removed) }))
	addCol(&c, "version", mapCol(rows, func(r *addressRow) uint64 { return r.version }))
	return c
}
