#!/usr/bin/env bash
# Set up everything the test suite needs on a fresh Debian/Ubuntu machine with Python 3.11, then run it.
# Services: a real mosquitto broker, a real headless Chromium and PostgreSQL (Debian packages); the tests start them.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need_apt+=(mosquitto)
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need_apt+=(postgresql)
if [ ${#need_apt[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${need_apt[@]}"
fi
# the package's own mosquitto service is not needed: tests start brokers on free ports
systemctl disable --now mosquitto >/dev/null 2>&1 || true
# nor PostgreSQL's default cluster: tests/postgres_testing.py starts a throwaway server on a free port
systemctl disable --now postgresql >/dev/null 2>&1 || true

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[train,dev]'
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
.venv/bin/python -m pytest -q "$@"
# ARM stage: the package on an emulated Pi 4 and Pi 5 (scripts/arm_smoke.sh; root). Not with pytest arguments
# (a subset of the tests), nor with AUDEEP_ARM_SMOKE=0.
[ $# -gt 0 ] || [ "${AUDEEP_ARM_SMOKE:-1}" = 0 ] || bash scripts/arm_smoke.sh
