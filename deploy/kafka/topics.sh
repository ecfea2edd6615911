#!/usr/bin/env bash
# Creates every topic cordon uses, with the settings cordon itself creates
# them with. Generated from ingest/kafka/topics.go (Topics.Specs) by
# `cordon topics --script > deploy/kafka/topics.sh`;
# a test keeps the two equal. Edit the specs, not this file.
# Usage: BOOTSTRAP=kafka-1:9092 [CONFIG=client.properties] [REPLICATION=3] ./topics.sh
set -euo pipefail
: "${BOOTSTRAP:?set BOOTSTRAP to host:port of a broker}"
REPLICATION="${REPLICATION:-3}"
MIN_ISR=$(( REPLICATION >= 3 ? 2 : 1 ))
cmd=(kafka-topics.sh --bootstrap-server "$BOOTSTRAP")
[ -n "${CONFIG:-}" ] && cmd+=(--command-config "$CONFIG")
create() { # name partitions cleanup.policy [retention.ms]
  local extra=()
  [ "$3" = delete ] && extra=(--config retention.ms="$4")
  "${cmd[@]}" --create --if-not-exists --topic "$1" --partitions "$2" --replication-factor "$REPLICATION" \
    --config min.insync.replicas="$MIN_ISR" --config cleanup.policy="$3" "${extra[@]}"
}
create cordon.blocks 6 delete -1
create cordon.transactions 12 delete 2592000000
create cordon.transfers 12 delete 2592000000
create cordon.outputs 12 delete 2592000000
create cordon.spends 12 delete 2592000000
create cordon.alerts 3 delete 31536000000
create cordon.incidents 1 delete -1
create cordon.notify-dead-letters 3 delete 31536000000
create cordon.intel 3 compact
create cordon.addresses 3 compact
create cordon.deposits 6 compact
create cordon.deposit-decisions 3 delete -1
create cordon.credit-state 6 compact
create cordon.audit 1 delete -1
create cordon.deposits-leader 1 delete -1
create cordon.withdrawals 6 compact
create cordon.gate-state 6 compact
create cordon.prices 1 compact
create cordon.sharing 1 compact
create cordon.sign-requests 3 delete 2592000000
create cordon.signer-state 3 compact
create cordon.sign-results 3 compact
create cordon.detect-state 3 compact
create cordon.detect-state-leader 1 delete -1
create cordon.withdrawals-leader 1 delete -1
