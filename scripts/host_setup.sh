#!/usr/bin/env bash
# Install the host tools the stack and the tests need, when they are missing.
# Debian 12 as root: apt-get installs them. Otherwise: says what is missing and stops.
set -euo pipefail

declare -A need=(
  [dockerd]=docker.io
  [docker-compose]=docker-compose
  [debootstrap]=debootstrap
  [prometheus]=prometheus
  [prometheus-alertmanager]=prometheus-alertmanager
  [promtool]=prometheus
  [amtool]=prometheus-alertmanager
  [wrk]=wrk
  [jq]=jq
  [curl]=curl
)
missing=()
for bin in "${!need[@]}"; do
  command -v "$bin" >/dev/null 2>&1 || missing+=("${need[$bin]}")
done
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then missing+=(python3-venv); fi
# PostgreSQL 15 (the tests' private cluster, and the store replicas share): its programs are
# not on PATH, Debian keeps them under /usr/lib/postgresql/15/bin.
[ -x /usr/lib/postgresql/15/bin/initdb ] || missing+=(postgresql)
[ ${#missing[@]} -eq 0 ] && { echo "[host] tools present"; exit 0; }

mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
if [ "$(id -u)" -ne 0 ]; then
  echo "[host] missing: ${missing[*]}" >&2
  echo "[host] install them (sudo apt-get install -y ${missing[*]}) or run make as root." >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "[host] missing: ${missing[*]} and no apt-get here: install them by hand." >&2
  exit 1
fi
echo "[host] installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# The packages' own service units are not used: `make up` and the tests start what they need.
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "[host] installed: ${missing[*]}"
