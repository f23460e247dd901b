#!/usr/bin/env bash
# Refresh constraints.txt, the lock that `make setup` and CI install from: resolve settings.ini's requirements
# afresh (today's newest versions allowed by its ranges) in a throw-away virtual environment, then freeze it.
# torch is left out of the lock: the CPU set-up pins torch==2.13.0 itself (Makefile), a GPU set-up brings its own.
# Run it after changing requirements in settings.ini, then `make test` and commit constraints.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$(command -v python3.11 || command -v python3)}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$PY" -m venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install -q --upgrade pip
"$tmp/venv/bin/python" -m pip install -q torch==2.13.0
"$tmp/venv/bin/python" -m pip install -q -e ".[dev]"
{
  echo "# The lock: exact versions for 'pip install -c constraints.txt -e \".[dev]\"' (Python $("$PY" -c 'import sys; print(*sys.version_info[:2], sep=".")'), CPU)."
  echo "# Written by scripts/lock.sh on $(date -u +%Y-%m-%d); settings.ini keeps the ranges users install from."
  "$tmp/venv/bin/python" -m pip freeze --exclude-editable | grep -viE '^(torch|nvidia-|triton)[=-]' | LC_ALL=C sort -f
} > constraints.txt.new
mv constraints.txt.new constraints.txt
echo "constraints.txt refreshed: review 'git diff constraints.txt', run 'make test', commit"
