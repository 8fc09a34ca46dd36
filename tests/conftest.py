"""Shared test setup: the repository root on sys.path, offline Hugging Face."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import shutil  # noqa: E402

import pytest  # noqa: E402

GLUE_FORMAT_SAMPLES = os.path.join(ROOT, "tests", "fixtures", "glue-format-samples")  # official-layout rows
SAMPLE_SCALE = 0.02          # ~40 train rows per task: enough for a few updates


def run_main(main, args) -> int:
    """Run a CLI `main` (train.main, export's main, ...) through `run_cli`; return its exit status."""
    from data_utils.errors import run_cli

    with pytest.raises(SystemExit) as info:
        run_cli(main, args)
    return info.value.code


def tiny_bert_config(**overrides):
    """A 2-layer BERT small enough to train in a second, with the bundled model's vocabulary."""
    from transformers import BertConfig

    values = dict(num_hidden_layers=2, hidden_size=32, num_attention_heads=4, intermediate_size=64,
                  vocab_size=30522, max_position_embeddings=128, hidden_dropout_prob=0.1,
                  attention_probs_dropout_prob=0.1)
    values.update(overrides)
    return BertConfig(**values)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A locally built 2-layer BertModel saved as a Hugging Face directory with the bundled tokenizer."""
    import torch
    from transformers import BertModel

    from modeling.pretrained import bundled_model_path

    directory = str(tmp_path_factory.mktemp("tiny_bert"))
    torch.manual_seed(0)
    BertModel(tiny_bert_config()).save_pretrained(directory)
    source = bundled_model_path()
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if os.path.exists(os.path.join(source, name)):
            shutil.copy(os.path.join(source, name), directory)
    return directory


@pytest.fixture(scope="session")
def sample_glue(tmp_path_factory):
    """The built-in GLUE sample, small scale, in the official layout."""
    from experiments.glue.sample_data import generate

    directory = str(tmp_path_factory.mktemp("glue"))
    generate(directory, seed=7, scale=SAMPLE_SCALE)
    return directory


@pytest.fixture(scope="session")
def canonical_dir(sample_glue, tmp_path_factory):
    """The sample preprocessed into canonical JSON with the bundled tokenizer (max_seq_len 64)."""
    import prepro

    out = str(tmp_path_factory.mktemp("canonical"))
    assert prepro.main(["--data_dir", sample_glue, "--max_seq_len", "64", "--output_dir", out]) == 0, \
        "prepro failed on the generated sample"
    return out


@pytest.fixture(scope="session")
def gpp_model_dir(tiny_model_dir, tmp_path_factory):
    """A directory shaped like the model/ of train.py --pruner gpp (encoder, heads, all-ones indicators)."""
    import torch

    from data_utils.task_def import load_task_defs
    from modeling.model import MTDNNModel, load_encoder, save_model
    from modeling.pretrained import load_tokenizer
    from pruners.anatomy import bert_shape
    from pruners.structured_mask import StructuredMask

    directory = str(tmp_path_factory.mktemp("gpp") / "model")
    model = MTDNNModel(load_encoder(tiny_model_dir), {"rte": load_task_defs()["rte"]})
    shape = bert_shape(model.encoder)
    save_model(model, load_tokenizer(tiny_model_dir), directory)
    StructuredMask(model.encoder, head=torch.ones(shape.layers, shape.heads),
                   ffn=torch.ones(shape.layers, shape.intermediate)).save(directory)
    return directory


def kill_after_checkpoint(command: list, output_dir, kill_at: int, env=None, what: str = "run") -> None:
    """Start `command` (a training run writing a checkpoint after every update into `output_dir`),
    SIGKILL it once checkpoint-<kill_at> is complete, and drop whatever a slow kill let through after
    it (later checkpoints, model/), so that a resume starts from checkpoint-<kill_at>. Half-written
    .tmp directories stay, as a kill mid-save leaves them, and a resume must ignore them."""
    import shutil
    import signal
    import subprocess
    import time

    checkpoint = output_dir / f"checkpoint-{kill_at}" / "state.json"
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 600
    while not checkpoint.exists() and process.poll() is None:
        assert time.time() < deadline, f"{what}: checkpoint-{kill_at} never appeared"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    for path in output_dir.iterdir():
        if path.name.startswith("checkpoint-") and not path.name.endswith(".tmp") \
                and int(path.name.split("-")[1]) > kill_at:
            shutil.rmtree(path)
    shutil.rmtree(output_dir / "model", ignore_errors=True)
    assert checkpoint.exists(), f"{what}: checkpoint-{kill_at} was written"

