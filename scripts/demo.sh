#!/usr/bin/env bash
# Set up the Python parts and run the demo: an embedded MQTT broker, simulated edge agents
# replaying a shift in accelerated time, and the twin server with its browser viewer.
# Needs only Python 3.11 (no Docker, no system services). Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --light
exec .venv/bin/python -m twin_server demo --site examples/pilot_site.yaml "$@"
