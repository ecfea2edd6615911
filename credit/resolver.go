package credit

import (
	"context"
	"fmt"

	"github.com/cordonhq/cordon/ingest/clickhouse"
	"github.com/cordonhq/cordon/internal/chain"
)

// ClickHouseResolver resolves spent outputs from the ClickHouse outputs
// table (loaded by the loader; the outputs of any branch have the same
// address, so canonicity does not matter here).
type ClickHouseResolver struct{ Store *clickhouse.Store }

// Loaded returns the newest block event seq of the stream in ClickHouse
// (0 when none): the loader loads a stream's events in order, so every
// earlier block is in too.
func (r ClickHouseResolver) Loaded(ctx context.Context, c chain.Chain, network string) (uint64, error) {
	var seq uint64
	if err := r.Store.QueryRow(ctx, `SELECT max(seq) FROM blocks WHERE chain = ? AND network = ?`, string(c), network).Scan(&seq); err != nil {
		return 0, fmt.Errorf("resolve spent outputs: loaded height: %w", err)
	}
	return seq, nil
}

// Resolve implements SenderResolver.
func (r ClickHouseResolver) Resolve(ctx context.Context, c chain.Chain, network string, ops []Outpoint) (map[Outpoint]string, error) {
	want := map[Outpoint]bool{}
	txs := map[string]bool{}
	for _, op := range ops {
		want[op] = true
		txs[op.Tx] = true
	}
	out := map[Outpoint]string{}
	list := make([]string, 0, len(txs))
	for tx := range txs {
		list = append(list, tx)
	}
	for len(list) > 0 {
		n := min(len(list), 2000)
		rows, err := r.Store.Query(ctx, `SELECT DISTINCT tx_hash, vout, assumeNotNull(address) FROM outputs
			WHERE chain = ? AND network = ? AND address IS NOT NULL AND tx_hash IN (`+clickhouse.QuoteList(list[:n])+`)`, string(c), network)
		if err != nil {
			return nil, fmt.Errorf("resolve spent outputs: %w", err)
		}
		for rows.Next() {
			var op Outpoint
			var addr string
			if err := rows.Scan(&op.Tx, &op.Vout, &addr); err != nil {
				_ = rows.Close()
				return nil, err
			}
			if want[op] {
				out[op] = addr
			}
		}
		_ = rows.Close()
		list = list[n:]
	}
	return out, nil
}
