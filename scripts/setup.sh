#!/usr/bin/env bash
# Set up everything this checkout needs, idempotently.
#
#   scripts/setup.sh            Python venv (.venv) with the server, edge and 3D parts
#   scripts/setup.sh --system   also the Debian/Ubuntu packages the test suite talks to
#                               (mosquitto, influxdb, chromium, node/npm, libusb ...)
#   scripts/setup.sh --light    only what the demo needs (server, edge, the scene builder; no open3d)
#
# System packages are installed with apt when they are missing and this runs as root;
# otherwise the script stops and names what to install. Re-running does only what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

want_system=0
extras="server,edge,models3d,dev"
for arg in "$@"; do
  case "$arg" in
    --system) want_system=1 ;;
    --light) extras="server,edge,scene" ;;
    *) echo "setup.sh: unknown option $arg (use --system or --light)" >&2; exit 2 ;;
  esac
done

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

# --- Python 3.11+ -------------------------------------------------------------------------
PY=""
for cand in python3.11 python3.12 python3.13 python3; do
  if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    PY=$(command -v "$cand"); break
  fi
done
if [ -z "$PY" ]; then
  echo "setup.sh: Python >= 3.11 is required (Debian 12: apt-get install python3 python3-venv;" \
       "Ubuntu 22.04: apt-get install python3.11 python3.11-venv)" >&2
  exit 1
fi

# --- system packages ----------------------------------------------------------------------
apt_missing=()
need_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed" || apt_missing+=("$1"); }
need_cmd() { command -v "$1" >/dev/null 2>&1 || apt_missing+=("$2"); }
if [ "$want_system" = 1 ]; then
  if command -v dpkg-query >/dev/null 2>&1; then
    need_cmd mosquitto mosquitto; need_cmd mosquitto_sub mosquitto-clients
    command -v influxd >/dev/null 2>&1 || [ -x /usr/bin/influxd ] || apt_missing+=(influxdb)
    need_cmd chromium chromium
    need_cmd node nodejs; need_cmd npm npm
    for p in libusb-1.0-0 libgl1 libegl1 libx11-6 libgomp1 fonts-noto-cjk; do need_pkg "$p"; done
  else
    for c in mosquitto influxd chromium node npm; do
      command -v "$c" >/dev/null 2>&1 || apt_missing+=("$c")
    done
  fi
fi
"$PY" -c 'import ensurepip, venv' 2>/dev/null || apt_missing+=("python3-venv")

if [ ${#apt_missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing system packages: ${apt_missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${apt_missing[@]}" >/dev/null
  else
    echo "setup.sh: missing system packages: ${apt_missing[*]}" >&2
    echo "  install them with: sudo apt-get install ${apt_missing[*]}" >&2
    echo "  (or run this script as root, which installs them itself)" >&2
    exit 1
  fi
fi

# --- virtual environment ------------------------------------------------------------------
if [ ! -x .venv/bin/python ]; then
  say "creating .venv with $PY"
  "$PY" -m venv .venv
fi
stamp=.venv/.installed-$extras
digest=$(cat pyproject.toml | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
  say "installing Python packages [$extras] (first run takes a few minutes)"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e ".[$extras]"
  echo "$digest" > "$stamp"
else
  say "Python packages up to date"
fi

# --- three.js for the browser viewer (from npm; no CDN at run time) -----------------------
if [ -f replay/package-lock.json ]; then
  if command -v npm >/dev/null 2>&1; then
    lock=$(sha256sum replay/package-lock.json | cut -c1-16)
    if [ ! -f replay/node_modules/.installed ] || [ "$(cat replay/node_modules/.installed)" != "$lock" ]; then
      say "installing the viewer's npm packages"
      (cd replay && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
      echo "$lock" > replay/node_modules/.installed
    fi
  else
    # No Node.js here (the demo needs only Python): fetch the same pinned tarball from the npm
    # registry and check it against package-lock.json's integrity hash.
    if [ ! -f replay/node_modules/three/package.json ] || [ ! -f replay/node_modules/swagger-ui-dist/package.json ]; then
      say "npm not found: fetching three.js and Swagger UI from the npm registry with Python"
      .venv/bin/python scripts/fetch_npm_package.py replay three
      .venv/bin/python scripts/fetch_npm_package.py replay swagger-ui-dist
    fi
  fi
fi
say "ready ($ROOT/.venv)"
