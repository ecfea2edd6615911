#!/usr/bin/env bash
# Best effort for `make run`: installs Debian's clickhouse-server (the dev
# system's analysts' store) and softhsm2 (the SoftHSM2 token that holds one
# of the dev Bitcoin hot wallet's keys) when they are missing and this user
# may install packages (root, or sudo without a password). Never fails:
# without them, cordon dev runs without the ClickHouse sink, or with a dev
# key in place of the HSM's, and says so.
want=()
{ command -v clickhouse-server >/dev/null 2>&1 || [ -x /usr/sbin/clickhouse-server ]; } || want+=(clickhouse-server clickhouse-client)
command -v softhsm2-util >/dev/null 2>&1 || want+=(softhsm2)
[ ${#want[@]} -eq 0 ] && exit 0
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; else
    echo "dev-deps: ${want[*]} not installed and packages cannot be installed here; cordon dev runs without them" >&2
    exit 0
  fi
fi
echo "dev-deps: installing ${want[*]} from Debian's packages"
{ $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${want[@]}" >/dev/null; } ||
  echo "dev-deps: could not install ${want[*]}; cordon dev runs without them" >&2
exit 0
