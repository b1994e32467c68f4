#!/usr/bin/env bash
# Runs bindings/SPEC.md against the Python binding, straight from the source tree (no install).
#   EMBER_LIBRARY      path of libember.so.1 (else the package's own copy, else the system's search path)
#   EMBER_TEST_MODEL   the test model (default: tests/data/models/stories260K.gguf)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export EMBER_TEST_MODEL=${EMBER_TEST_MODEL:-$here/../../tests/data/models/stories260K.gguf}
export PYTHONPATH="$here/src${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1
exec ${PYTHON:-python3} -m unittest discover -s "$here/tests" -t "$here/tests" -p 'test_*.py' "$@"
