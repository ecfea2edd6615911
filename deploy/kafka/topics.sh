#!/usr/bin/env bash
# Creates cordon's topics with the production settings of README.md.
# Usage: BOOTSTRAP=kafka-1:9092 [CONFIG=client.properties] ./topics.sh
set -euo pipefail
: "${BOOTSTRAP:?set BOOTSTRAP to host:port of a broker}"
cmd=(kafka-topics.sh --bootstrap-server "$BOOTSTRAP")
[ -n "${CONFIG:-}" ] && cmd+=(--command-config "$CONFIG")
create() { # name partitions retention.ms
  "${cmd[@]}" --create --if-not-exists --topic "$1" --partitions "$2" --replication-factor 3 \
    --config min.insync.replicas=2 --config cleanup.policy=delete --config retention.ms="$3"
}
create cordon.blocks 6 -1
create cordon.transactions 12 2592000000
create cordon.transfers 12 2592000000
create cordon.outputs 12 2592000000
create cordon.spends 12 2592000000
create cordon.alerts 3 31536000000
