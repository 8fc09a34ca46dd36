"""torchrun with 2 CPU processes (gloo): identical masks on every rank, rank-0-only output, resume."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT

METHODS = {
    "platon": ["--pruner", "platon", "--final_threshold", "0.3", "--warmup_steps", "3", "--initial_warmup", "1",
               "--final_warmup", "1", "--deltaT", "2"],
    "gpp": ["--pruner", "gpp", "--prepruning_finetune_epochs", "0", "--prune_epochs", "1", "--target_sparsity", "0.5"],
}


def torchrun(canonical_dir, model_dir, output_dir, method, *extra):
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               os.path.join(ROOT, "train.py"), "--data_dir", canonical_dir, "--init_checkpoint", model_dir,
               "--train_datasets", "rte,stsb", "--test_datasets", "rte,stsb", "--epochs", "2", "--batch_size", "4",
               "--max_seq_len", "64", "--learning_rate", "1e-3", "--log_per_updates", "0", "--seed", "3",
               "--output_dir", str(output_dir), *METHODS[method], *extra]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_two_ranks_agree_and_only_rank0_writes(canonical_dir, tiny_model_dir, tmp_path, method):
    out = tmp_path / "run"
    result = torchrun(canonical_dir, tiny_model_dir, out, method)
    assert result.returncode == 0, f"torchrun {method} failed: {result.stderr[-1500:]}"
    checksums = json.load(open(out / "rank_checksums.json"))
    assert len(checksums) == 2, f"one entry per rank: {checksums}"
    assert checksums[0] == checksums[1], f"{method}: ranks differ in weights or masks: {checksums}"
    if method == "gpp":
        assert "gpp_indicators" in checksums[0], "GPP indicators are compared too"
    config = json.load(open(out / "config.json"))
    assert config["world_size"] == 2, "the run knows it is distributed"
    log = open(out / "log.log").read()
    assert log.count("effective batch 8 (batch 4 x accumulation 1 x processes 2)") == 1, \
        "one start-up summary, from rank 0 only, with the global batch"
    dev_rows = sum(1 for _ in open(os.path.join(canonical_dir, "rte_dev.json")))
    scores = json.load(open(out / "rte_dev_scores_epoch_001.json"))
    assert len(scores["uids"]) == dev_rows and len(set(scores["uids"])) == dev_rows, \
        "evaluation gathers every dev prediction exactly once"


def test_resume_under_torchrun(canonical_dir, tiny_model_dir, tmp_path):
    straight = tmp_path / "straight"
    assert torchrun(canonical_dir, tiny_model_dir, straight, "platon").returncode == 0, "uninterrupted run"
    partial = tmp_path / "partial"
    result = torchrun(canonical_dir, tiny_model_dir, partial, "platon", "--save_per_updates", "5",
                      "--keep_checkpoints", "0")
    assert result.returncode == 0, result.stderr[-1000:]
    checkpoints = sorted((p for p in partial.iterdir() if p.name.startswith("checkpoint-")),
                         key=lambda p: int(p.name.split("-")[1]))
    assert len(checkpoints) >= 2, f"checkpoints every 5 updates: {checkpoints}"
    for later in checkpoints[1:]:          # pretend the run died right after the first checkpoint
        shutil.rmtree(later)
    shutil.rmtree(partial / "model")
    result = torchrun(canonical_dir, tiny_model_dir, partial, "platon", "--resume")
    assert result.returncode == 0, f"resume under torchrun: {result.stderr[-1000:]}"
    resumed = json.load(open(partial / "rank_checksums.json"))
    expected = json.load(open(straight / "rank_checksums.json"))
    assert resumed[0] == resumed[1], f"ranks agree after resume: {resumed}"
    assert resumed[0]["zero_mask"] == expected[0]["zero_mask"], "the resumed run ends with the same masks"
    assert resumed[0]["weights"] == expected[0]["weights"], "and the same weights as the uninterrupted run"
