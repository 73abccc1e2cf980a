#!/usr/bin/env bash
# The two entry points the README gives: `./dev.sh demo` and `./dev.sh test`.
# Both run the idempotent set-up first, so they work on a fresh machine.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"
cmd="${1:-}"; shift || true
case "$cmd" in
  setup) scripts/setup.sh ;;
  demo)  scripts/setup.sh && exec .venv/bin/citywatch demo "$@" ;;
  test)
    scripts/setup.sh
    echo "[test] ruff";  .venv/bin/ruff check .
    echo "[test] mypy";  .venv/bin/mypy
    echo "[test] pytest"; exec .venv/bin/pytest "$@" ;;
  *) echo "usage: ./dev.sh demo [--duration S --json] | test [pytest args] | setup" >&2; exit 2 ;;
esac
