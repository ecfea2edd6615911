#!/usr/bin/env bash
# Grants each of cordon's roles its own Kafka principal's rights, and no
# more: the watchers write only blocks and their parts, the API only
# registry entries and decisions, crediting only deposits and its state,
# the intel importer and partner sharing (one principal: both write
# indicators) only indicators and sharing's state; the ledger only reads
# deposits.
# Generated from ingest/kafka/topics.go (Topics.Specs) by
# `cordon topics --acls > deploy/kafka/acls.sh`;
# a test keeps the two equal. Edit the specs, not this file.
# Usage: BOOTSTRAP=kafka-1:9092 [CONFIG=admin.properties] ./acls.sh
#   principals: PRINCIPAL_WATCHER=User:cordon-watcher ... (the defaults below)
#   groups:     CLICKHOUSE_GROUP=cordon-clickhouse LEDGER_GROUP=cordon-ledger
set -euo pipefail
: "${BOOTSTRAP:?set BOOTSTRAP to host:port of a broker}"
cmd=(kafka-acls.sh --bootstrap-server "$BOOTSTRAP")
[ -n "${CONFIG:-}" ] && cmd+=(--command-config "$CONFIG")
allow() { # principal operation... --resource-type name
  local p="$1"; shift
  "${cmd[@]}" --add --allow-principal "$p" "$@"
}
PRINCIPAL_WATCHER="${PRINCIPAL_WATCHER:-User:cordon-watcher}"
PRINCIPAL_LOADER="${PRINCIPAL_LOADER:-User:cordon-loader}"
PRINCIPAL_CREDIT="${PRINCIPAL_CREDIT:-User:cordon-credit}"
PRINCIPAL_API="${PRINCIPAL_API:-User:cordon-api}"
PRINCIPAL_INTEL="${PRINCIPAL_INTEL:-User:cordon-intel}"
PRINCIPAL_GATE="${PRINCIPAL_GATE:-User:cordon-gate}"
PRINCIPAL_LEDGER="${PRINCIPAL_LEDGER:-User:cordon-ledger}"
PRINCIPAL_SIGNER="${PRINCIPAL_SIGNER:-User:cordon-signer}"
PRINCIPAL_DETECT="${PRINCIPAL_DETECT:-User:cordon-detect}"
CLICKHOUSE_GROUP="${CLICKHOUSE_GROUP:-cordon-clickhouse}"
LEDGER_GROUP="${LEDGER_GROUP:-cordon-ledger}"

# Topics.
allow "$PRINCIPAL_WATCHER" --operation Write --operation Describe --topic cordon.blocks
allow "$PRINCIPAL_WATCHER" --operation Read --operation Describe --topic cordon.blocks
allow "$PRINCIPAL_LOADER" --operation Read --operation Describe --topic cordon.blocks
allow "$PRINCIPAL_CREDIT" --operation Read --operation Describe --topic cordon.blocks
allow "$PRINCIPAL_DETECT" --operation Read --operation Describe --topic cordon.blocks
allow "$PRINCIPAL_WATCHER" --operation Write --operation Describe --topic cordon.transactions
allow "$PRINCIPAL_LOADER" --operation Read --operation Describe --topic cordon.transactions
allow "$PRINCIPAL_CREDIT" --operation Read --operation Describe --topic cordon.transactions
allow "$PRINCIPAL_DETECT" --operation Read --operation Describe --topic cordon.transactions
allow "$PRINCIPAL_WATCHER" --operation Write --operation Describe --topic cordon.transfers
allow "$PRINCIPAL_LOADER" --operation Read --operation Describe --topic cordon.transfers
allow "$PRINCIPAL_CREDIT" --operation Read --operation Describe --topic cordon.transfers
allow "$PRINCIPAL_DETECT" --operation Read --operation Describe --topic cordon.transfers
allow "$PRINCIPAL_WATCHER" --operation Write --operation Describe --topic cordon.outputs
allow "$PRINCIPAL_LOADER" --operation Read --operation Describe --topic cordon.outputs
allow "$PRINCIPAL_CREDIT" --operation Read --operation Describe --topic cordon.outputs
allow "$PRINCIPAL_DETECT" --operation Read --operation Describe --topic cordon.outputs
allow "$PRINCIPAL_WATCHER" --operation Write --operation Describe --topic cordon.spends
allow "$PRINCIPAL_LOADER" --operation Read --operation Describe --topic cordon.spends
allow "$PRINCIPAL_CREDIT" --operation Read --operation Describe --topic cordon.spends
allow "$PRINCIPAL_DETECT" --operation Read --operation Describe --topic cordon.spends
allow "$PRINCIPAL_WATCHER" --operation Write --operation Describe --topic cordon.alerts
allow "$PRINCIPAL_LOADER" --operation Write --operation Describe --topic cordon.alerts
allow "$PRINCIPAL_CREDIT" --operation Write --operation Describe --topic cordon.alerts
allow "$PRINCIPAL_API" --operation Write --operation Describe --topic cordon.alerts
allow "$PRINCIPAL_GATE" --operation Write --operation Describe --topic cordon.alerts
allow "$PRINCIPAL_SIGNER" --operation Write --operation Describe --topic cordon.alerts
allow "$PRINCIPAL_DETECT" --operation Write --operation Describe --topic cordon.alerts
allow "$PRINCIPAL_LOADER" --operation Read --operation Describe --topic cordon.alerts
allow "$PRINCIPAL_DETECT" --operation Read --operation Describe --topic cordon.alerts
allow "$PRINCIPAL_DETECT" --operation Write --operation Describe --topic cordon.incidents
allow "$PRINCIPAL_DETECT" --operation Read --operation Describe --topic cordon.incidents
allow "$PRINCIPAL_DETECT" --operation Write --operation Describe --topic cordon.notify-dead-letters
allow "$PRINCIPAL_DETECT" --operation Read --operation Describe --topic cordon.notify-dead-letters
allow "$PRINCIPAL_INTEL" --operation Write --operation Describe --topic cordon.intel
allow "$PRINCIPAL_INTEL" --operation Read --operation Describe --topic cordon.intel
allow "$PRINCIPAL_LOADER" --operation Read --operation Describe --topic cordon.intel
allow "$PRINCIPAL_CREDIT" --operation Read --operation Describe --topic cordon.intel
allow "$PRINCIPAL_API" --operation Read --operation Describe --topic cordon.intel
allow "$PRINCIPAL_DETECT" --operation Read --operation Describe --topic cordon.intel
allow "$PRINCIPAL_API" --operation Write --operation Describe --topic cordon.addresses
allow "$PRINCIPAL_LOADER" --operation Read --operation Describe --topic cordon.addresses
allow "$PRINCIPAL_CREDIT" --operation Read --operation Describe --topic cordon.addresses
allow "$PRINCIPAL_API" --operation Read --operation Describe --topic cordon.addresses
allow "$PRINCIPAL_DETECT" --operation Read --operation Describe --topic cordon.addresses
allow "$PRINCIPAL_CREDIT" --operation Write --operation Describe --topic cordon.deposits
allow "$PRINCIPAL_CREDIT" --operation Read --operation Describe --topic cordon.deposits
allow "$PRINCIPAL_API" --operation Read --operation Describe --topic cordon.deposits
allow "$PRINCIPAL_INTEL" --operation Read --operation Describe --topic cordon.deposits
allow "$PRINCIPAL_LEDGER" --operation Read --operation Describe --topic cordon.deposits
allow "$PRINCIPAL_API" --operation Write --operation Describe --topic cordon.deposit-decisions
allow "$PRINCIPAL_CREDIT" --operation Read --operation Describe --topic cordon.deposit-decisions
allow "$PRINCIPAL_CREDIT" --operation Write --operation Describe --topic cordon.credit-state
allow "$PRINCIPAL_CREDIT" --operation Read --operation Describe --topic cordon.credit-state
allow "$PRINCIPAL_GATE" --operation Write --operation Describe --topic cordon.audit
allow "$PRINCIPAL_GATE" --operation Read --operation Describe --topic cordon.audit
allow "$PRINCIPAL_CREDIT" --operation Read --operation Describe --topic cordon.deposits-leader
allow "$PRINCIPAL_GATE" --operation Write --operation Describe --topic cordon.withdrawals
allow "$PRINCIPAL_GATE" --operation Read --operation Describe --topic cordon.withdrawals
allow "$PRINCIPAL_INTEL" --operation Read --operation Describe --topic cordon.withdrawals
allow "$PRINCIPAL_LEDGER" --operation Read --operation Describe --topic cordon.withdrawals
allow "$PRINCIPAL_GATE" --operation Write --operation Describe --topic cordon.gate-state
allow "$PRINCIPAL_GATE" --operation Read --operation Describe --topic cordon.gate-state
allow "$PRINCIPAL_API" --operation Write --operation Describe --topic cordon.prices
allow "$PRINCIPAL_GATE" --operation Read --operation Describe --topic cordon.prices
allow "$PRINCIPAL_INTEL" --operation Write --operation Describe --topic cordon.sharing
allow "$PRINCIPAL_INTEL" --operation Read --operation Describe --topic cordon.sharing
allow "$PRINCIPAL_GATE" --operation Write --operation Describe --topic cordon.sign-requests
allow "$PRINCIPAL_SIGNER" --operation Read --operation Describe --topic cordon.sign-requests
allow "$PRINCIPAL_SIGNER" --operation Write --operation Describe --topic cordon.signer-state
allow "$PRINCIPAL_SIGNER" --operation Read --operation Describe --topic cordon.signer-state
allow "$PRINCIPAL_SIGNER" --operation Write --operation Describe --topic cordon.sign-results
allow "$PRINCIPAL_GATE" --operation Read --operation Describe --topic cordon.sign-results
allow "$PRINCIPAL_DETECT" --operation Write --operation Describe --topic cordon.detect-state
allow "$PRINCIPAL_DETECT" --operation Read --operation Describe --topic cordon.detect-state
allow "$PRINCIPAL_DETECT" --operation Read --operation Describe --topic cordon.detect-state-leader
allow "$PRINCIPAL_GATE" --operation Read --operation Describe --topic cordon.withdrawals-leader

# Consumer groups: the ClickHouse loader and its copies of the indicators and alerts,
# crediting's leader election, the ledger.
allow "$PRINCIPAL_LOADER" --operation Read --group "$CLICKHOUSE_GROUP"
allow "$PRINCIPAL_LOADER" --operation Read --group "$CLICKHOUSE_GROUP-intel-by-feed"
allow "$PRINCIPAL_LOADER" --operation Read --group "$CLICKHOUSE_GROUP-alerts"
allow "$PRINCIPAL_CREDIT" --operation Read --group cordon-credit-leader
allow "$PRINCIPAL_GATE" --operation Read --group cordon-gate-leader
allow "$PRINCIPAL_DETECT" --operation Read --group cordon-detect-leader
allow "$PRINCIPAL_DETECT" --operation Read --resource-pattern-type prefixed --group cordon-notify-
allow "$PRINCIPAL_LEDGER" --operation Read --group "$LEDGER_GROUP"

# Transactional writers: crediting, the intel importer, the gate, partner sharing and the signer (franz-go's
# producers are idempotent, which brokers before 3.0 grant on the cluster).
allow "$PRINCIPAL_CREDIT" --operation Write --operation Describe --transactional-id cordon-credit
allow "$PRINCIPAL_INTEL" --operation Write --operation Describe --transactional-id cordon-intel-import
allow "$PRINCIPAL_GATE" --operation Write --operation Describe --transactional-id cordon-gate
allow "$PRINCIPAL_INTEL" --operation Write --operation Describe --transactional-id cordon-sharing
allow "$PRINCIPAL_SIGNER" --operation Write --operation Describe --transactional-id cordon-signer
allow "$PRINCIPAL_DETECT" --operation Write --operation Describe --transactional-id cordon-detect
allow "$PRINCIPAL_CREDIT" --operation IdempotentWrite --cluster
allow "$PRINCIPAL_INTEL" --operation IdempotentWrite --cluster
allow "$PRINCIPAL_GATE" --operation IdempotentWrite --cluster
allow "$PRINCIPAL_SIGNER" --operation IdempotentWrite --cluster
