#!/usr/bin/env bash
# Best effort for `make run`: installs Debian's clickhouse-server (the dev
# system's analysts' store) when it is missing and this user may install
# packages (root, or sudo without a password). Never fails: without it,
# cordon dev runs without the ClickHouse sink and says so.
{ command -v clickhouse-server >/dev/null 2>&1 || [ -x /usr/sbin/clickhouse-server ]; } && exit 0
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; else
    echo "dev-deps: clickhouse-server is not installed and packages cannot be installed here; cordon dev runs without ClickHouse" >&2
    exit 0
  fi
fi
echo "dev-deps: installing clickhouse-server and clickhouse-client from Debian's packages"
{ $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq clickhouse-server clickhouse-client >/dev/null; } ||
  echo "dev-deps: could not install clickhouse-server; cordon dev runs without ClickHouse" >&2
exit 0
