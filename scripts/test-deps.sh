#!/usr/bin/env bash
# Installs what `make test` needs that Go does not bring, from Debian's
# packages: kcat (a third-party Kafka client the tests read cordon's topics
# with) and clickhouse-server + clickhouse-client (the tests start private
# servers of their own; nothing is configured system-wide), and chromium
# (a test opens `cordon trace --format html` headless), and python3-nacl
# (a test re-verifies the audit log with Python's hashlib, json and
# PyNaCl, as an outside auditor would), and softhsm2 (the PKCS#11 signer
# plugin's tests create private tokens in temporary directories). Runs as
# root (CI) or through sudo.
set -euo pipefail
need=()
command -v kcat >/dev/null 2>&1 || need+=(kcat)
{ command -v clickhouse-server >/dev/null 2>&1 || [ -x /usr/sbin/clickhouse-server ]; } || need+=(clickhouse-server)
command -v clickhouse-client >/dev/null 2>&1 || need+=(clickhouse-client)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
{ python3 -c 'import nacl.signing' >/dev/null 2>&1 || /usr/bin/python3 -c 'import nacl.signing' >/dev/null 2>&1; } || need+=(python3-nacl)
command -v softhsm2-util >/dev/null 2>&1 || need+=(softhsm2)
[ ${#need[@]} -eq 0 ] && exit 0
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "test-deps: need ${need[*]} and cannot install them without root; install them and rerun" >&2; exit 1
  fi
fi
echo "test-deps: installing ${need[*]} from Debian's packages"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
