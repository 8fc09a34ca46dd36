"""Movement pruning: the score −Σ w·∂L/∂w by hand, the shared schedule and masking, state, and a real run."""
import json

import pytest
import torch
from torch import nn

import train
from pruners import MovementPruner
from pruners.kernels import numba_available
from tests.conftest import run_main

KERNELS = ["torch", pytest.param("numba", marks=pytest.mark.skipif(not numba_available(), reason="numba not installed"))]


class OneLayer(nn.Module):
    """A module whose single weight is selected by the default target substrings (…output.dense…)."""

    def __init__(self, weight):
        super().__init__()
        self.output = nn.Module()
        self.output.dense = nn.Linear(weight.shape[1], weight.shape[0], bias=False)
        with torch.no_grad():
            self.output.dense.weight.copy_(weight)


SCHEDULE = dict(initial_threshold=1.0, final_threshold=0.5, warmup_steps=1, initial_warmup=1, final_warmup=1,
                deltaT=1)


@pytest.mark.parametrize("kernels", KERNELS)
def test_scores_accumulate_minus_weight_times_gradient(kernels):
    w1 = torch.tensor([[1.0, -2.0, 3.0], [0.5, 4.0, -1.0]])
    model = OneLayer(w1)
    pruner = MovementPruner(model, 3, kernels=kernels, **SCHEDULE)      # t = 2 ends the ramp: r = 0.5
    weight = model.output.dense.weight
    g1 = torch.tensor([[0.5, 0.5, -1.0], [2.0, 0.0, 1.0]])
    weight.grad = g1.clone()
    assert pruner.step(1) == (1.0, None), "t = 1 is inside the initial warm-up: no masking"
    expected = -(w1 * g1)
    torch.testing.assert_close(pruner.scores()["output.dense.weight"], expected, rtol=0, atol=0,
                               msg="S = −w·g after one update")
    w2 = torch.tensor([[1.5, -2.0, 2.0], [0.5, 3.0, -1.5]])
    g2 = torch.tensor([[-1.0, 1.0, 0.5], [0.0, -1.0, 1.0]])
    with torch.no_grad():
        weight.copy_(w2)
    weight.grad = g2.clone()
    ratio, threshold = pruner.step(2)
    expected = expected - w2 * g2          # [[1, 3, 2], [-1, 3, 2.5]]
    torch.testing.assert_close(pruner.scores()["output.dense.weight"], expected, rtol=0, atol=0,
                               msg="S accumulates over the updates")
    k = int(6 * (1 - ratio))
    assert (ratio, k) == (0.5, 3), f"the schedule reaches 50 % at t = 2: {ratio}"
    assert threshold == sorted(expected.flatten().tolist())[k - 1], f"τ is the k-th smallest score (k={k})"
    kept = expected >= threshold
    assert torch.equal(weight != 0, kept & (w2 != 0)), f"the lowest scores are masked, strictly below τ: {weight}"
    assert weight[1, 0] == 0, "the entry with the negative score (pulled towards zero) is masked first"


def test_state_round_trip_continues_identically():
    torch.manual_seed(0)
    base = torch.randn(8, 16)
    models = [OneLayer(base), OneLayer(base)]
    pruners = [MovementPruner(m, 12, kernels="torch", **dict(SCHEDULE, final_threshold=0.25)) for m in models]
    gradients = [torch.randn(8, 16) for _ in range(12)]
    for t in range(1, 7):
        for model, pruner in zip(models, pruners):
            model.output.dense.weight.grad = gradients[t - 1].clone()
            pruner.step(t)
    state = pruners[0].state_dict()
    assert set(state["tensors"]) == {"movement_score/output.dense.weight"}, f"the statistic: {set(state['tensors'])}"
    fresh = MovementPruner(models[1], 12, kernels="torch", **dict(SCHEDULE, final_threshold=0.25))
    fresh.load_state_dict(state)
    assert fresh.last_step == 6, "the state remembers its last step"
    for t in range(7, 13):
        for model, pruner in ((models[0], pruners[0]), (models[1], fresh)):
            model.output.dense.weight.grad = gradients[t - 1].clone()
            pruner.step(t)
    assert torch.equal(models[0].output.dense.weight, models[1].output.dense.weight), "same weights after resume"
    weight, scores = models[0].output.dense.weight, pruners[0].scores()["output.dense.weight"]
    below = scores < pruners[0].last_step_stats.mask_threshold
    assert int(below.sum()) == int(128 * 0.75) - 1, "k − 1 = 95 entries strictly below the k-th smallest score"
    assert not weight[below].any(), "all of them are zero (and entries masked earlier stay zero without an optimizer)"


def test_movement_run_reaches_its_target(canonical_dir, tiny_model_dir, tmp_path):
    args = ["--data_dir", canonical_dir, "--init_checkpoint", tiny_model_dir, "--train_datasets", "rte,stsb",
            "--test_datasets", "rte", "--epochs", "3", "--batch_size", "8", "--max_seq_len", "64",
            "--learning_rate", "1e-3", "--log_per_updates", "0", "--seed", "5", "--output_dir", str(tmp_path),
            "--pruner", "movement", "--initial_threshold", "1", "--final_threshold", "0.2", "--warmup_steps", "8",
            "--initial_warmup", "1", "--final_warmup", "1", "--deltaT", "2"]
    assert run_main(train.main, args) == 0, "--pruner movement runs"
    report = json.load(open(tmp_path / "sparsity_report.json"))
    remaining = report["overall"]["remaining_ratio"]
    assert 0.19 <= remaining <= 0.201, f"movement pruning reaches 20 % remaining: {remaining}"
    log = open(tmp_path / "log.log").read()
    assert "pruner movement" in log, "the start-up summary names the method"
