#!/bin/sh
# The test command: install what is missing, then run the whole suite on CPU.
set -e
root=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
sh "$root/scripts/setup.sh"
"$PYTHON" -c "import pytest" 2>/dev/null || "$PYTHON" -m pip install -q --disable-pip-version-check -r "$root/requirements-test.txt"
cd "$root"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
exec "$PYTHON" -m pytest -q tests "$@"
