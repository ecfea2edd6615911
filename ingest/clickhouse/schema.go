package clickhouse

// Schema is cordon's ClickHouse schema, as migrations. It works on
// ClickHouse 18.16 (Debian's) and current releases.
//
// Every Kafka record kind has a table. Rows are identified by what
// identifies the record (block hash included: a transaction mined again
// on another branch is another row); the tables are ReplacingMergeTree
// ordered by that identity, so a replayed or retried batch never makes a
// row count twice once merged, and the canonical_* views read them with
// FINAL. `blocks` holds every block event; the newest event of a block
// (highest seq) says whether it is canonical. The canonical_* views keep
// only rows of blocks whose newest event is block_added — rows of removed
// blocks, and of blocks whose event never came (a watcher that crashed
// between a block's records and its event, then saw a reorg), never show.
var Schema = []Migration{{
	Version: 1,
	Name:    "blocks, transactions, transfers, outputs, spends and canonical views",
	Stmts: []string{
		`CREATE TABLE IF NOT EXISTS blocks (
			chain String, network String, height UInt64, hash String, parent_hash String, time DateTime,
			seq UInt64, removed UInt8,
			tx_count UInt32, transfer_count UInt32, output_count UInt32, spend_count UInt32,
			block_key UInt64 MATERIALIZED cityHash64(hash)
		) ENGINE = ReplacingMergeTree(seq) PARTITION BY (chain, network) ORDER BY (chain, network, hash)`,
		`CREATE TABLE IF NOT EXISTS transactions (
			chain String, network String, block_number UInt64, block_hash String, block_time DateTime,
			hash String, tx_index UInt32, from_address String, to_address String, value String, fee Nullable(String),
			nonce UInt64, gas UInt64, gas_used UInt64, gas_price String, tx_type UInt8, status Nullable(UInt8),
			contract_address String, method_id String, input_size UInt32, log_count UInt32,
			size UInt32, vsize UInt32, weight UInt32, version Int32, locktime UInt32, input_count UInt32, output_count UInt32, coinbase UInt8,
			block_key UInt64 MATERIALIZED cityHash64(block_hash)
		) ENGINE = ReplacingMergeTree PARTITION BY (chain, network, toYYYYMM(block_time))
		ORDER BY (chain, network, hash, block_hash)`,
		`CREATE TABLE IF NOT EXISTS transfers (
			chain String, network String, block_number UInt64, block_hash String, block_time DateTime,
			tx_hash String, tx_index UInt32, log_index Int64, asset String, standard String,
			from_address String, to_address String, amount String, token_id String,
			block_key UInt64 MATERIALIZED cityHash64(block_hash)
		) ENGINE = ReplacingMergeTree PARTITION BY (chain, network, toYYYYMM(block_time))
		ORDER BY (chain, network, from_address, block_number, tx_hash, log_index, block_hash)`,
		`CREATE TABLE IF NOT EXISTS outputs (
			chain String, network String, block_number UInt64, block_hash String, block_time DateTime,
			tx_hash String, tx_index UInt32, vout UInt32, address Nullable(String), script_type String, script String,
			amount UInt64, coinbase UInt8,
			block_key UInt64 MATERIALIZED cityHash64(block_hash)
		) ENGINE = ReplacingMergeTree PARTITION BY (chain, network, toYYYYMM(block_time))
		ORDER BY (chain, network, tx_hash, vout, block_hash)`,
		`CREATE TABLE IF NOT EXISTS spends (
			chain String, network String, block_number UInt64, block_hash String, block_time DateTime,
			tx_hash String, tx_index UInt32, vin UInt32, prev_tx_hash String, prev_vout UInt32, sequence UInt32,
			block_key UInt64 MATERIALIZED cityHash64(block_hash)
		) ENGINE = ReplacingMergeTree PARTITION BY (chain, network, toYYYYMM(block_time))
		ORDER BY (chain, network, prev_tx_hash, prev_vout, block_hash, tx_hash, vin)`,
		`CREATE VIEW IF NOT EXISTS canonical_blocks AS
			SELECT chain, network, height, hash, parent_hash, time, tx_count, transfer_count, output_count, spend_count
			FROM blocks FINAL WHERE removed = 0`,
		canonicalView("transactions", "hash, tx_index, from_address, to_address, value, fee, nonce, gas, gas_used, gas_price, tx_type, status, "+
			"contract_address, method_id, input_size, log_count, size, vsize, weight, version, locktime, input_count, output_count, coinbase"),
		canonicalView("transfers", "tx_hash, tx_index, log_index, asset, standard, from_address, to_address, amount, token_id"),
		canonicalView("outputs", "tx_hash, tx_index, vout, address, script_type, script, amount, coinbase"),
		canonicalView("spends", "tx_hash, tx_index, vin, prev_tx_hash, prev_vout, sequence"),
	},
}, {
	Version: 2,
	Name:    "canonical_inputs: Bitcoin spends joined to the outputs they spend",
	Stmts: []string{
		// address and amount are NULL / 0 when the spent output is not
		// loaded (it is older than the stream's start height).
		`CREATE VIEW IF NOT EXISTS canonical_inputs AS
		SELECT chain, network, block_number, block_hash, block_time, tx_hash, tx_index, vin, prev_tx_hash, prev_vout, sequence,
			prev_address AS address, prev_amount AS amount, prev_script_type AS script_type, prev_block_number, prev_found
		FROM canonical_spends
		ANY LEFT JOIN (
			SELECT chain, network, tx_hash AS prev_tx_hash, vout AS prev_vout, address AS prev_address, amount AS prev_amount,
				script_type AS prev_script_type, block_number AS prev_block_number, toUInt8(1) AS prev_found
			FROM canonical_outputs
		) USING (chain, network, prev_tx_hash, prev_vout)`,
	},
}, {
	Version: 3,
	Name:    "address-ordered copies for tracing; block fee recipient and base fee",
	Stmts: []string{
		// Ethereum fee accounting (cordon reconcile): the fee recipient
		// earns gas_used × (gas_price − base_fee) per transaction.
		`ALTER TABLE blocks ADD COLUMN miner String DEFAULT ''`,
		`ALTER TABLE blocks ADD COLUMN base_fee String DEFAULT ''`,
		// The tables are ordered for lookups by their own identity (and
		// transfers by sender); tracing also needs transfers by receiver,
		// outputs by address and spends by spending transaction. Each copy
		// is a ReplacingMergeTree on the same identity fed by a
		// materialized view, then filled from what is already loaded (rows
		// inserted while the copy runs arrive twice and collapse). 18.16
		// cannot feed a MATERIALIZED column from a view: block_key is an
		// ordinary column here, computed by the view. The outputs filter
		// reads the ifNull alias (an alias shadows the column in 18.16's
		// WHERE), which is why it tests != '' rather than IS NOT NULL.
		`CREATE TABLE IF NOT EXISTS transfers_by_to (
			chain String, network String, block_number UInt64, block_hash String, block_time DateTime,
			tx_hash String, tx_index UInt32, log_index Int64, asset String, standard String,
			from_address String, to_address String, amount String, token_id String,
			block_key UInt64
		) ENGINE = ReplacingMergeTree PARTITION BY (chain, network, toYYYYMM(block_time))
		ORDER BY (chain, network, to_address, block_number, tx_hash, log_index, block_hash)`,
		`CREATE MATERIALIZED VIEW IF NOT EXISTS transfers_by_to_mv TO transfers_by_to AS SELECT ` + transferCols + `, cityHash64(block_hash) AS block_key FROM transfers`,
		`INSERT INTO transfers_by_to (` + transferCols + `, block_key) SELECT ` + transferCols + `, cityHash64(block_hash) FROM transfers`,
		`CREATE TABLE IF NOT EXISTS outputs_by_address (
			chain String, network String, block_number UInt64, block_hash String, block_time DateTime,
			tx_hash String, tx_index UInt32, vout UInt32, address String, script_type String, amount UInt64, coinbase UInt8,
			block_key UInt64
		) ENGINE = ReplacingMergeTree PARTITION BY (chain, network, toYYYYMM(block_time))
		ORDER BY (chain, network, address, block_number, tx_hash, vout, block_hash)`,
		`CREATE MATERIALIZED VIEW IF NOT EXISTS outputs_by_address_mv TO outputs_by_address AS SELECT ` + outputByAddrSelect + `, cityHash64(block_hash) AS block_key FROM outputs WHERE address != ''`,
		`INSERT INTO outputs_by_address (` + outputByAddrCols + `, block_key) SELECT ` + outputByAddrSelect + `, cityHash64(block_hash) FROM outputs WHERE address != ''`,
		`CREATE TABLE IF NOT EXISTS spends_by_tx (
			chain String, network String, block_number UInt64, block_hash String, block_time DateTime,
			tx_hash String, tx_index UInt32, vin UInt32, prev_tx_hash String, prev_vout UInt32, sequence UInt32,
			block_key UInt64
		) ENGINE = ReplacingMergeTree PARTITION BY (chain, network, toYYYYMM(block_time))
		ORDER BY (chain, network, tx_hash, vin, block_hash)`,
		`CREATE MATERIALIZED VIEW IF NOT EXISTS spends_by_tx_mv TO spends_by_tx AS SELECT ` + spendCols + `, cityHash64(block_hash) AS block_key FROM spends`,
		`INSERT INTO spends_by_tx (` + spendCols + `, block_key) SELECT ` + spendCols + `, cityHash64(block_hash) FROM spends`,
	},
}, {
	Version: 4,
	Name:    "indicators from the cordon.intel topic",
	Stmts: []string{
		// The newest statement of each indicator (highest modified) wins;
		// ordered by value so "is this address listed" reads few rows.
		`CREATE TABLE IF NOT EXISTS indicators (
			id String, kind String, chain String, network String, value String, category String, source String,
			confidence UInt8, tlp String, valid_from DateTime, valid_until DateTime, revoked UInt8,
			created DateTime, modified DateTime, feed String, feed_version String, description String, refs String
		) ENGINE = ReplacingMergeTree(modified) ORDER BY (chain, value, id)`,
		// Indicators that match now (valid_until 0: no end).
		`CREATE VIEW IF NOT EXISTS active_indicators AS
			SELECT id, kind, chain, network, value, category, source, confidence, tlp, valid_from, valid_until, feed, description
			FROM indicators FINAL
			WHERE revoked = 0 AND valid_from <= now() AND (valid_until = toDateTime(0) OR valid_until > now())`,
	},
}, {
	Version: 5,
	Name:    "registered addresses and retro-hunt state",
	Stmts: []string{
		// The exchange's own addresses (deposit addresses and hot/cold
		// wallets), newest version of each winning; the address registry
		// fills it.
		`CREATE TABLE IF NOT EXISTS registered_addresses (
			chain String, network String, address String, account String, kind String,
			added DateTime, removed UInt8, version UInt64
		) ENGINE = ReplacingMergeTree(version) ORDER BY (chain, network, address)`,
		// How far the retro-hunt has looked: indicators modified up to
		// checkpoint have been hunted.
		`CREATE TABLE IF NOT EXISTS retrohunt_state (
			name String, checkpoint DateTime, updated DateTime
		) ENGINE = ReplacingMergeTree(updated) ORDER BY name`,
	},
}, {
	Version: 6,
	Name:    "indicators keyed by feed",
	Stmts: []string{
		// An indicator's id is now its key on cordon.intel, feed/id (ids
		// are per feed). Rows copied before have bare ids: cordon no
		// longer matches those records, so neither does ClickHouse; the
		// copy reads the topic again under a new consumer group.
		`ALTER TABLE indicators DELETE WHERE position(id, '/') = 0`,
	},
}, {
	Version: 7,
	Name:    "alerts from the cordon.alerts topic",
	Stmts: []string{
		// One row per alert id, its newest record winning (version: the
		// record's offset): a retraction replaces the alert it withdraws.
		// details is the alert's details as a JSON object (read them with
		// visitParamExtractString); addresses the addresses it names.
		`CREATE TABLE IF NOT EXISTS alerts (
			id String, type String, rule String, severity String, chain String, network String, time DateTime,
			message String, details String, retracted UInt8, height UInt64, block_hash String, tx_hash String,
			addresses Array(String), asset String, amount String, version UInt64
		) ENGINE = ReplacingMergeTree(version) ORDER BY id`,
		// The alerts that stand: the newest record of each id, not retracted.
		`CREATE VIEW IF NOT EXISTS active_alerts AS
			SELECT id, type, rule, severity, chain, network, time, message, details, height, block_hash, tx_hash, addresses, asset, amount
			FROM alerts FINAL WHERE retracted = 0`,
	},
}}

const (
	transferCols       = "chain, network, block_number, block_hash, block_time, tx_hash, tx_index, log_index, asset, standard, from_address, to_address, amount, token_id"
	spendCols          = "chain, network, block_number, block_hash, block_time, tx_hash, tx_index, vin, prev_tx_hash, prev_vout, sequence"
	outputByAddrCols   = "chain, network, block_number, block_hash, block_time, tx_hash, tx_index, vout, address, script_type, amount, coinbase"
	outputByAddrSelect = "chain, network, block_number, block_hash, block_time, tx_hash, tx_index, vout, ifNull(address, '') AS address, script_type, amount, coinbase"
)

func canonicalView(table, cols string) string {
	return `CREATE VIEW IF NOT EXISTS canonical_` + table + ` AS
		SELECT chain, network, block_number, block_hash, block_time, ` + cols + `
		FROM ` + table + ` FINAL
		WHERE block_key IN (SELECT cityHash64(hash) FROM blocks FINAL WHERE removed = 0)`
}
