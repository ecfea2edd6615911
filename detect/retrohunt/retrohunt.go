package retrohunt

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/cordonhq/cordon/ingest/clickhouse"
	"github.com/cordonhq/cordon/internal/chain"
)

// Sink publishes alerts (a *kafka.Producer).
type Sink interface {
	Alert(ctx context.Context, a chain.Alert) error
}

// Config tunes the hunt.
type Config struct {
	// Window is how far back transfers are searched (default 90 days).
	Window time.Duration `yaml:"retro_hunt_window"`
	// Interval is how often new indicators are looked for (default 1m).
	Interval time.Duration `yaml:"retro_hunt_interval"`
}

// Hunter runs the retro-hunt.
type Hunter struct {
	cfg   Config
	store *clickhouse.Store
	sink  Sink
	log   *slog.Logger
	now   func() time.Time
	// hunted are the indicator versions (id and modified) hunted within
	// the overlap before the checkpoint, so a round looking back over it
	// does not raise their alerts again.
	hunted map[string]time.Time
}

// overlap is how far before its checkpoint a round looks again: the
// ClickHouse copy of the indicators may take in an older version after a
// newer one (partitions are copied independently; modified has whole
// seconds), and a checkpoint at the newest modified time would skip it
// for good.
const overlap = 5 * time.Minute

// New returns a hunter over store publishing to sink.
func New(cfg Config, store *clickhouse.Store, sink Sink, log *slog.Logger) *Hunter {
	if cfg.Window <= 0 {
		cfg.Window = 90 * 24 * time.Hour
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Minute
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Hunter{cfg: cfg, store: store, sink: sink, log: log, now: time.Now, hunted: map[string]time.Time{}}
}

// Run hunts every Interval until ctx ends; failures are logged and
// retried at the next round (the checkpoint moves only after success).
func (h *Hunter) Run(ctx context.Context) error {
	t := time.NewTicker(h.cfg.Interval)
	defer t.Stop()
	for {
		if n, err := h.Once(ctx); err != nil {
			if ctx.Err() != nil {
				return nil //nolint:nilerr // stopping
			}
			h.log.Warn("retro-hunt failed; retrying next round", "err", err)
		} else if n > 0 {
			h.log.Info("retro-hunt raised alerts", "alerts", n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// indicator is a listed address to hunt.
type indicator struct {
	id, chain, value, category, source string
	confidence                         uint8
	modified                           time.Time
}

const stateName = "indicators"

// Once hunts the indicators modified since the checkpoint and returns the
// alerts raised. Alerts have deterministic ids, so a round repeated after
// a crash raises the same alerts again, not new ones.
func (h *Hunter) Once(ctx context.Context) (int, error) {
	var cp time.Time
	rows, err := h.store.Query(ctx, `SELECT argMax(checkpoint, updated) FROM retrohunt_state WHERE name = ?`, stateName)
	if err != nil {
		return 0, fmt.Errorf("retro-hunt: read checkpoint: %w", err)
	}
	for rows.Next() {
		if err := rows.Scan(&cp); err != nil {
			_ = rows.Close()
			return 0, err
		}
	}
	_ = rows.Close()
	now := h.now()
	rows, err = h.store.Query(ctx, `SELECT id, chain, value, category, source, confidence, modified FROM indicators FINAL
		WHERE modified > ? AND revoked = 0 AND kind IN ('address', 'contract') AND chain IN ('eth', 'btc')
		AND valid_from <= ? AND (valid_until = toDateTime(0) OR valid_until > ?)`, cp.Add(-overlap), now, now)
	if err != nil {
		return 0, fmt.Errorf("retro-hunt: read indicators: %w", err)
	}
	var inds []indicator
	for rows.Next() {
		var in indicator
		if err := rows.Scan(&in.id, &in.chain, &in.value, &in.category, &in.source, &in.confidence, &in.modified); err != nil {
			_ = rows.Close()
			return 0, err
		}
		if m, ok := h.hunted[in.id]; ok && !in.modified.After(m) {
			continue // this version was hunted in an earlier round
		}
		inds = append(inds, in)
	}
	_ = rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	if len(inds) == 0 {
		return 0, nil
	}
	since := now.Add(-h.cfg.Window)
	alerts := 0
	for _, c := range []string{"eth", "btc"} {
		byValue := map[string][]indicator{}
		for _, in := range inds {
			if in.chain == c {
				byValue[in.value] = append(byValue[in.value], in)
			}
		}
		if len(byValue) == 0 {
			continue
		}
		values := slices.Sorted(func(yield func(string) bool) {
			for v := range byValue {
				if !yield(v) {
					return
				}
			}
		})
		var hits []hit
		for len(values) > 0 {
			n := min(len(values), 1000)
			chunk := clickhouse.QuoteList(values[:n])
			values = values[n:]
			var found []hit
			if c == "eth" {
				found, err = h.ethHits(ctx, chunk, since)
			} else {
				found, err = h.btcHits(ctx, chunk, since)
			}
			if err != nil {
				return alerts, err
			}
			hits = append(hits, found...)
		}
		for _, ht := range hits {
			for _, in := range byValue[ht.flagged] {
				if err := h.sink.Alert(ctx, ht.alert(c, in, now)); err != nil {
					return alerts, fmt.Errorf("retro-hunt: publish alert: %w", err)
				}
				alerts++
			}
		}
	}
	last := cp
	for _, in := range inds {
		if in.modified.After(last) {
			last = in.modified
		}
		h.hunted[in.id] = in.modified
	}
	for id, m := range h.hunted {
		if m.Before(last.Add(-overlap)) {
			delete(h.hunted, id)
		}
	}
	if err := h.store.Exec(ctx, `INSERT INTO retrohunt_state (name, checkpoint, updated) SELECT ?, toDateTime(?), now()`,
		stateName, last.Unix()); err != nil {
		return alerts, fmt.Errorf("retro-hunt: save checkpoint: %w", err)
	}
	return alerts, nil
}

// hit is a transfer between a listed address and one of ours.
type hit struct {
	direction     string // deposit (from the listed address) or withdrawal (to it)
	flagged, ours string
	asset, amount string
	tx            string
	index         int64
	block         uint64
	blockHash     string
	blockTime     time.Time
}

func (ht hit) alert(c string, in indicator, now time.Time) chain.Alert {
	sev := "critical" // a deposit from a listed address may have been credited
	msg := fmt.Sprintf("retro-hunt: %s received funds from %s, listed by %s as %s", ht.ours, ht.flagged, in.source, in.category)
	if ht.direction == "withdrawal" {
		sev = "high"
		msg = fmt.Sprintf("retro-hunt: %s sent funds to %s, listed by %s as %s", ht.ours, ht.flagged, in.source, in.category)
	}
	return chain.Alert{V: chain.SchemaVersion, Type: "retro_hunt", Severity: sev, Chain: chain.Chain(c), Time: now.UTC(), Message: msg,
		ID: "retrohunt/" + in.id + "/" + ht.blockHash + "/" + ht.tx + "/" + strconv.FormatInt(ht.index, 10),
		Details: map[string]string{"direction": ht.direction, "indicator_id": in.id, "source": in.source, "category": in.category,
			"confidence": strconv.Itoa(int(in.confidence)), "listed_address": ht.flagged, "our_address": ht.ours, "tx_hash": ht.tx,
			"index": strconv.FormatInt(ht.index, 10), "asset": ht.asset, "amount": ht.amount,
			"block_number": strconv.FormatUint(ht.block, 10), "block_hash": ht.blockHash, "block_time": ht.blockTime.UTC().Format(time.RFC3339)}}
}

func canonical(c string) string {
	return `block_key IN (SELECT cityHash64(hash) FROM blocks FINAL WHERE removed = 0 AND chain = '` + c + `')`
}

func registered(c string) string {
	return `(SELECT address FROM registered_addresses FINAL WHERE removed = 0 AND chain = '` + c + `')`
}

func (h *Hunter) ethHits(ctx context.Context, flagged string, since time.Time) ([]hit, error) {
	var out []hit
	for _, q := range []struct{ direction, table, mine, theirs string }{
		{"deposit", "transfers", "to_address", "from_address"},
		{"withdrawal", "transfers_by_to", "from_address", "to_address"},
	} {
		rows, err := h.store.Query(ctx, `SELECT DISTINCT `+q.theirs+`, `+q.mine+`, asset, amount, tx_hash, log_index, block_number, block_hash, block_time
			FROM `+q.table+` WHERE chain = 'eth' AND `+q.theirs+` IN (`+flagged+`) AND block_time >= ?
			AND `+q.mine+` IN `+registered("eth")+` AND `+canonical("eth"), since)
		if err != nil {
			return nil, fmt.Errorf("retro-hunt: %s: %w", q.table, err)
		}
		for rows.Next() {
			ht := hit{direction: q.direction}
			if err := rows.Scan(&ht.flagged, &ht.ours, &ht.asset, &ht.amount, &ht.tx, &ht.index, &ht.block, &ht.blockHash, &ht.blockTime); err != nil {
				_ = rows.Close()
				return nil, err
			}
			out = append(out, ht)
		}
		_ = rows.Close()
	}
	return out, nil
}

// btcHits: deposits are outputs paying one of ours in a transaction that
// spends an output of a listed address; withdrawals are outputs paying a
// listed address in a transaction that spends one of ours.
func (h *Hunter) btcHits(ctx context.Context, flagged string, since time.Time) ([]hit, error) {
	var out []hit
	for _, q := range []struct{ direction, payee, payer string }{
		{"deposit", registered("btc"), "(" + flagged + ")"},
		{"withdrawal", "(" + flagged + ")", registered("btc")},
	} {
		rows, err := h.store.Query(ctx, `SELECT DISTINCT p.prev_address, o.address, toString(o.amount), o.tx_hash, toInt64(o.vout), o.block_number, o.block_hash, o.block_time
			FROM (SELECT tx_hash, vout, address, amount, block_number, block_hash, block_time FROM outputs_by_address
			      WHERE chain = 'btc' AND address IN `+q.payee+` AND block_time >= ? AND `+canonical("btc")+`) AS o
			ALL INNER JOIN (
				SELECT s.tx_hash AS tx_hash, f.address AS prev_address
				FROM (SELECT tx_hash, prev_tx_hash, prev_vout FROM spends WHERE chain = 'btc' AND block_time >= ? AND `+canonical("btc")+`
				      AND prev_tx_hash IN (SELECT tx_hash FROM outputs_by_address WHERE chain = 'btc' AND address IN `+q.payer+`)) AS s
				ALL INNER JOIN (SELECT tx_hash AS prev_tx_hash, vout AS prev_vout, address FROM outputs_by_address
				      WHERE chain = 'btc' AND address IN `+q.payer+` AND `+canonical("btc")+`) AS f
				USING (prev_tx_hash, prev_vout)
			) AS p USING (tx_hash)`, since, since)
		if err != nil {
			return nil, fmt.Errorf("retro-hunt: bitcoin %ss: %w", q.direction, err)
		}
		for rows.Next() {
			ht := hit{direction: q.direction, asset: chain.AssetNative}
			if err := rows.Scan(&ht.flagged, &ht.ours, &ht.amount, &ht.tx, &ht.index, &ht.block, &ht.blockHash, &ht.blockTime); err != nil {
				_ = rows.Close()
				return nil, err
			}
			if q.direction == "withdrawal" {
				ht.flagged, ht.ours = ht.ours, ht.flagged
			}
			out = append(out, ht)
		}
		_ = rows.Close()
	}
	return out, nil
}
