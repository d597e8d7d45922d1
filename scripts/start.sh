#!/usr/bin/env bash
# Installs Dockyard and starts the browser app on http://127.0.0.1:8501 (localhost only).
# Works on a fresh clone: the example pipelines are in saved_pipelines/ and their sample data is
# regenerated on first use if missing. Extra arguments go to 'dockyard ui' (e.g. --port 8502).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q -e .
python3 -c "from builder.sample_data import ensure_sample_data; ensure_sample_data()"
exec dockyard ui "$@"
