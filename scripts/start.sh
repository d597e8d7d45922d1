#!/usr/bin/env bash
# Installs Dockyard and runs the built-in example pipeline on its sample data.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q -e .
dockyard run saved_pipelines/daily_revenue.yaml
dockyard preview saved_pipelines/daily_revenue.yaml revenue_by_country --limit 10
