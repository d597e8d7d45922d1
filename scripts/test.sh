#!/usr/bin/env bash
# Installs everything the tests need (Python packages, Debian's chromium for the browser test,
# Debian's postgresql server binaries for tests/test_postgres.py, which starts its own server)
# and runs the whole test suite. Extra arguments go to pytest (e.g. -m "not slow").
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" = "0" ] || SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium >/dev/null
fi
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" = "0" ] || SUDO="sudo"
  # The package's own cluster is not used: the tests run initdb in a temp folder.
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq postgresql >/dev/null
fi
python3 -m pip install -q -e '.[test]'
python3 -m pytest "$@"
