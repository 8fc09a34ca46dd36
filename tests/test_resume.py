"""Exact resume after SIGKILL, checkpoint layout and rotation, config conflicts, corrupt checkpoints."""
import json
import os
import random
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import ROOT, kill_after_checkpoint

RUNS = {
    "platon": ["--pruner", "platon", "--initial_threshold", "1", "--final_threshold", "0.3", "--warmup_steps", "4",
               "--initial_warmup", "1", "--final_warmup", "1", "--deltaT", "2"],
    "movement": ["--pruner", "movement", "--initial_threshold", "1", "--final_threshold", "0.3", "--warmup_steps",
                 "4", "--initial_warmup", "1", "--final_warmup", "1", "--deltaT", "2"],
    "gpp": ["--pruner", "gpp", "--prepruning_finetune_epochs", "1", "--prune_epochs", "1", "--target_sparsity", "0.5",
            "--retrain_learning_rate", "5e-4"],
}


def command(canonical_dir, tiny_model_dir, output_dir, method, *extra):
    return [sys.executable, os.path.join(ROOT, "train.py"), "--data_dir", canonical_dir,
            "--init_checkpoint", tiny_model_dir, "--train_datasets", "rte,stsb", "--test_datasets", "rte",
            "--epochs", "3", "--batch_size", "8", "--max_seq_len", "64", "--learning_rate", "1e-3",
            "--log_per_updates", "0", "--seed", "11", "--output_dir", str(output_dir), *RUNS[method], *extra]


def final_state(output_dir):
    state = load_file(os.path.join(output_dir, "model", "model.safetensors"))
    state.update({f"head.{k}": v for k, v in load_file(os.path.join(output_dir, "model", "heads.safetensors")).items()})
    indicators = os.path.join(output_dir, "model", "gpp_indicators.safetensors")
    if os.path.exists(indicators):
        state.update({f"gpp.{k}": v for k, v in load_file(indicators).items()})
    return state


@pytest.mark.parametrize("method", sorted(RUNS))
def test_sigkill_then_resume_is_bitwise_identical(canonical_dir, tiny_model_dir, tmp_path, method):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    straight = tmp_path / "straight"
    result = subprocess.run(command(canonical_dir, tiny_model_dir, straight, method), capture_output=True,
                            text=True, timeout=600, env=env)
    assert result.returncode == 0, f"uninterrupted {method} run failed: {result.stderr[-800:]}"
    total = json.load(open(straight / "config.json"))["total_steps"]

    killed = tmp_path / "killed"
    kill_at = random.Random(method).randint(3, total - 3)
    kill_after_checkpoint(command(canonical_dir, tiny_model_dir, killed, method, "--save_per_updates", "1",
                                  "--keep_checkpoints", "0"), killed, kill_at, env=env, what=method)

    result = subprocess.run(command(canonical_dir, tiny_model_dir, killed, method, "--resume"), capture_output=True,
                            text=True, timeout=600, env=env)
    assert result.returncode == 0, f"{method}: resume failed: {result.stderr[-800:]}"
    assert "resumed from" in open(killed / "log.log").read(), f"{method}: the log records the resume"
    expected, got = final_state(straight), final_state(killed)
    assert expected.keys() == got.keys(), f"{method}: different saved tensors"
    for name in expected:
        assert torch.equal(expected[name], got[name]), \
            f"{method}: killed at update {kill_at} and resumed, {name} differs from the uninterrupted run"
    straight_scores = json.load(open(straight / "rte_dev_scores_epoch_002.json"))
    resumed_scores = json.load(open(killed / "rte_dev_scores_epoch_002.json"))
    assert straight_scores == resumed_scores, f"{method}: final dev scores differ after resume"


def test_checkpoint_contents_and_config_conflicts(canonical_dir, tiny_model_dir, tmp_path):
    out = tmp_path / "run"
    cmd = command(canonical_dir, tiny_model_dir, out, "gpp", "--save_per_updates", "10", "--keep_checkpoints", "2")
    assert subprocess.run(cmd, capture_output=True, timeout=600).returncode == 0, "run with checkpoints"
    kept = sorted(p.name for p in out.iterdir() if p.name.startswith("checkpoint-"))
    assert len(kept) == 2 and not any(k.endswith(".tmp") for k in kept), f"the newest two are kept: {kept}"
    newest = max(kept, key=lambda k: int(k.split("-")[1]))
    files = sorted(os.listdir(out / newest))
    assert files == ["state.json", "state.safetensors"], f"only safetensors and JSON in a checkpoint: {files}"
    skeleton = json.load(open(out / newest / "state.json"))["__dict__"]
    for key in ("loop", "config", "model", "optimizer", "lr_schedule", "gpp", "rng"):
        assert key in skeleton, f"checkpoint lacks {key}"
    loop = skeleton["loop"]["__dict__"]
    assert loop["global_step"] == int(newest.split("-")[1]), "the loop position is the checkpoint's update"

    result = subprocess.run(command(canonical_dir, tiny_model_dir, out, "gpp", "--resume", "--seed", "12",
                                    "--log_per_updates", "5"), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-500:]
    log = open(out / "log.log").read()
    assert "--seed: the checkpoint's 11 wins over the command line's 12" in log, "conflict warning names the winner"
    assert "--log_per_updates: the command line's 5 wins" in log, "logging flags follow the command line"


def test_corrupt_or_missing_checkpoint_is_refused(canonical_dir, tiny_model_dir, tmp_path):
    out = tmp_path / "run"
    result = subprocess.run(command(canonical_dir, tiny_model_dir, out, "gpp", "--resume"), capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 2 and "--resume: no checkpoint-<update> directory" in result.stderr, result.stderr
    broken = tmp_path / "checkpoint-3"
    broken.mkdir()
    (broken / "state.json").write_text("{not json")
    (broken / "state.safetensors").write_bytes(b"garbage")
    result = subprocess.run(command(canonical_dir, tiny_model_dir, out, "gpp", "--model_ckpt", str(broken)),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, f"corrupt checkpoint: exit 2: {result.stderr[-300:]}"
    assert f"checkpoint {broken}: corrupt or unreadable" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and result.stderr.strip().count("\n") == 0, result.stderr
