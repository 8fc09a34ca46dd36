"""The bundled model learns: a short real fine-tuning run on the generated sample must end far above
chance and above a bag-of-words baseline. This is the test that would have caught an optimizer that
erases the pretrained weights (torch's coupled-decay Adamax ended this run near the majority class)."""
import json
import os

import pytest

import prepro
import train
from experiments.glue.sample_data import generate
from tests.conftest import run_main

# Bag-of-words logistic regression reaches about 76 % on the sample's sst dev split. This run reaches
# 92.0 (87.5 with seed 2, 90-94 at lr 5e-4); with torch's coupled-decay Adamax it ends at 80.0.
SST_DEV_FLOOR = 86.0


@pytest.fixture(scope="module")
def sst_canonical(tmp_path_factory):
    glue = str(tmp_path_factory.mktemp("glue_learning"))
    generate(glue, seed=7, scale=0.4, tasks=["SST-2"])
    out = str(tmp_path_factory.mktemp("canonical_learning"))
    assert prepro.main(["--data_dir", glue, "--tasks", "sst", "--max_seq_len", "32", "--output_dir", out]) == 0, \
        "prepro failed on the generated SST-2 sample"
    return out


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_bundled_model_learns_sst(sst_canonical, tmp_path, precision):
    out = tmp_path / "run"
    args = ["--data_dir", sst_canonical, "--train_datasets", "sst", "--test_datasets", "sst", "--pruner", "none",
            "--epochs", "1", "--batch_size", "16", "--batch_size_eval", "128", "--max_seq_len", "32",
            "--learning_rate", "3e-4", "--seed", "1", "--log_per_updates", "10", "--output_dir", str(out),
            "--precision", precision]
    assert run_main(train.main, args) == 0, "the learning run must finish"
    rows = sum(1 for _ in open(os.path.join(sst_canonical, "sst_dev.json")))
    labels = [json.loads(line)["label"] for line in open(os.path.join(sst_canonical, "sst_dev.json"))]
    majority = 100.0 * max(labels.count(0), labels.count(1)) / rows
    accuracy = json.load(open(out / "dev_metrics.json"))["sst"]["ACC"]
    assert accuracy >= SST_DEV_FLOOR, \
        f"{precision}: sst dev accuracy {accuracy:.1f} after one epoch (majority class {majority:.1f}, bag-of-words ~76): " \
        "the bundled model did not learn; check the optimizer and the learning rate"
    log = open(out / "log.log").read()
    losses = [float(line.split(" loss ")[1].split()[0]) for line in log.splitlines() if " loss " in line]
    assert len(losses) >= 3 and losses[-1] < 0.75 * losses[0], f"training loss must fall clearly: {losses}"
