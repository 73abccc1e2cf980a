#!/usr/bin/env bash
# Builds TimescaleDB (Apache edition) from Debian trixie's source package against the
# machine's PostgreSQL 15, because bookworm ships no timescaledb package and trixie's
# binaries need a newer glibc (see ../shared/docs/infrastructure.md). Idempotent: does
# nothing when the extension is already installed.
set -euo pipefail

PG_MAJOR=15
TSDB_VERSION="${TSDB_VERSION:-2.19.3+dfsg-1+deb13u1}"
PG_BIN="/usr/lib/postgresql/${PG_MAJOR}/bin"
CONTROL="/usr/share/postgresql/${PG_MAJOR}/extension/timescaledb.control"
WORK="${TSDB_BUILD_DIR:-/var/tmp/citywatch-timescaledb-build}"

log() { printf '[timescaledb] %s\n' "$*" >&2; }

if [[ -f "$CONTROL" ]]; then
  log "already installed ($(grep default_version "$CONTROL" | tr -d "'" | awk '{print $3}'))"
  exit 0
fi

apt_updated=0
apt_install_missing() {
  # Install only what is missing: naming an installed package would upgrade it.
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "${pkg%%=*}" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if ((${#missing[@]})); then
    if ((apt_updated == 0)); then apt-get update -qq; apt_updated=1; fi
    log "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

if [[ ! -x "$PG_BIN/postgres" ]]; then
  apt_install_missing "postgresql-${PG_MAJOR}"
fi
pg_version="$(dpkg-query -W -f='${Version}' "postgresql-${PG_MAJOR}")"
# postgresql-server-dev pinned to the server's exact version: unpinned, apt upgrades the server.
apt_install_missing cmake gcc make libssl-dev dpkg-dev xz-utils "postgresql-server-dev-${PG_MAJOR}=${pg_version}"

mkdir -p "$WORK/lists/partial" "$WORK/cache/archives/partial"
mirror="$(grep -hoE 'https?://[^ ]*debian(/)?$' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null | head -n1 || true)"
mirror="${mirror:-http://deb.debian.org/debian}"
echo "deb-src ${mirror%/} trixie main" > "$WORK/sources.list"
apt_opts=(-oDir::State::Lists="$WORK/lists" -oDir::Etc::SourceList="$WORK/sources.list"
          -oDir::Etc::SourceParts=/dev/null -oDir::Cache="$WORK/cache")
log "fetching source timescaledb=${TSDB_VERSION} from ${mirror} (trixie)"
apt-get "${apt_opts[@]}" update -qq
( cd "$WORK" && apt-get "${apt_opts[@]}" source --download-only "timescaledb=${TSDB_VERSION}" >/dev/null )
dsc="$(ls "$WORK"/timescaledb_*.dsc | head -n1)"
rm -rf "$WORK/src"
dpkg-source --no-check -x "$dsc" "$WORK/src" >/dev/null

log "building"
cmake -S "$WORK/src" -B "$WORK/src/build" -DPG_CONFIG="$PG_BIN/pg_config" \
  -DAPACHE_ONLY=ON -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF -DSEND_TELEMETRY_DEFAULT=OFF \
  -DUSE_TELEMETRY=OFF -DWARNINGS_AS_ERRORS=OFF >/dev/null
cmake --build "$WORK/src/build" -j"$(nproc)" >/dev/null
cmake --install "$WORK/src/build" >/dev/null
test -f "$CONTROL"
log "installed"
