#!/usr/bin/env bash
# Installs what `make test` needs that Go does not bring: kcat, the Kafka
# command-line client the tests use to check that a real third-party client
# reads cordon's topics. Runs as root (CI) or through sudo.
set -euo pipefail
need=()
command -v kcat >/dev/null 2>&1 || need+=(kcat)
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
