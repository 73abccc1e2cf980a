#!/usr/bin/env bash
# Debian packages the tests need besides PostgreSQL/TimescaleDB: a real MQTT broker
# (mosquitto) for the air-quality MQTT path, and chromium for the console's browser tests
# (Playwright's own browser download does not work here). Installs only what is missing (naming an
# installed package would upgrade it) and never starts the system service: tests run
# their own broker on a free port.
set -euo pipefail
log() { printf '[system] %s\n' "$*" >&2; }

missing=()
[[ -x /usr/sbin/mosquitto ]] || missing+=(mosquitto)
[[ -x /usr/bin/chromium ]] || missing+=(chromium)  # the console's browser tests (Playwright drives it)
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  apt-get update -qq
  # policy-rc.d exit 101: do not start services from maintainer scripts. Only ours to
  # remove if we made it; an existing one is left as it is.
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  log "system packages present"
fi
