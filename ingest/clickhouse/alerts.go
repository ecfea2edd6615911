package clickhouse

import (
	"context"
	"encoding/json"
	"time"

	"github.com/cordonhq/cordon/internal/chain"
)

// AlertRow is a cordon.alerts record as the alerts table holds it.
// Version orders the records of one alert id (its offset on its partition:
// one id, one partition), so a retraction, or the alert raised again after
// its block came back, replaces what was there.
type AlertRow struct {
	Alert   chain.Alert
	Version uint64
}

// InsertAlerts writes alerts into the alerts table (a replayed batch
// collapses: the table keeps the newest version of each id).
func (s *Store) InsertAlerts(ctx context.Context, rows []AlertRow) error {
	if len(rows) == 0 {
		return nil
	}
	return s.insertColumns(ctx, "alerts", len(rows), alertColumns(rows))
}

func alertColumns(rows []AlertRow) columns {
	var c columns
	str := func(name string, f func(*chain.Alert) string) {
		addCol(&c, name, mapCol(rows, func(r *AlertRow) string { return f(&r.Alert) }))
	}
	str("id", func(a *chain.Alert) string { return a.ID })
	str("type", func(a *chain.Alert) string { return a.Type })
	str("rule", func(a *chain.Alert) string { return a.Rule })
	str("severity", func(a *chain.Alert) string { return a.Severity })
	str("chain", func(a *chain.Alert) string { return string(a.Chain) })
	str("network", func(a *chain.Alert) string { return a.Network })
	addCol(&c, "time", mapCol(rows, func(r *AlertRow) time.Time { return clampTime(r.Alert.Time) }))
	str("message", func(a *chain.Alert) string { return a.Message })
	str("details", func(a *chain.Alert) string {
		if len(a.Details) == 0 {
			return "{}"
		}
		b, _ := json.Marshal(a.Details) // a map of strings always encodes
		return string(b)
	})
	addCol(&c, "retracted", mapCol(rows, func(r *AlertRow) uint8 { return u8(r.Alert.Retracted) }))
	addCol(&c, "height", mapCol(rows, func(r *AlertRow) uint64 { return r.Alert.Height }))
	str("block_hash", func(a *chain.Alert) string { return a.BlockHash })
	str("tx_hash", func(a *chain.Alert) string { return a.TxHash })
	addCol(&c, "addresses", mapCol(rows, func(r *AlertRow) []string {
		if r.Alert.Addresses == nil {
			return []string{}
		}
		return r.Alert.Addresses
	}))
	str("asset", func(a *chain.Alert) string { return a.Asset })
	str("amount", func(a *chain.Alert) string { return a.Amount })
	addCol(&c, "version", mapCol(rows, func(r *AlertRow) uint64 { return r.Version }))
	return c
}
