#!/usr/bin/env bash
# Set up everything (system packages when root, venv, npm) and run the whole test suite:
# ruff (lint and format), import-linter, mypy, pytest (real mosquitto, influxd and headless
# Chromium), and the viewer's node tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --system
export PYTHONDONTWRITEBYTECODE=1
echo "[test] ruff"
.venv/bin/ruff check .
status=0
echo "[test] import-linter (the server's layers, docs/architecture.md)"
.venv/bin/lint-imports --no-cache || status=$?
echo "[test] ruff format --check"
.venv/bin/ruff format --check . || status=$?
echo "[test] mypy (strict: vocabulary, store, analysis; [tool.mypy] in pyproject.toml)"
.venv/bin/mypy || status=$?
if [ -f replay/package.json ]; then
  echo "[test] node --test (replay/)"
  (cd replay && npm test --silent) || status=$?
fi
echo "[test] pytest"
.venv/bin/python -m pytest -q -p no:cacheprovider "$@" || status=$?
exit $status
