"""Metrics against hand-computed values; the multi-task sampler's order, coverage and determinism."""
import math

import numpy as np
import pytest

from data_utils.batcher import MultiTaskBatchSampler, multi_task_batch_order
from data_utils.metrics import calc_metrics


def test_classification_metrics_by_hand():
    golds = [1, 1, 0, 0, 1, 0]
    preds = [1, 0, 0, 1, 1, 0]
    # tp=2 fp=1 fn=1 tn=2: acc 4/6, precision 2/3, recall 2/3, F1 2/3, MCC (4-1)/sqrt(3*3*3*3)=1/3
    metrics = calc_metrics(("ACC", "F1", "MCC"), preds, golds)
    assert metrics["ACC"] == pytest.approx(100 * 4 / 6), f"accuracy {metrics['ACC']}"
    assert metrics["F1"] == pytest.approx(100 * 2 / 3), f"F1 {metrics['F1']}"
    assert metrics["MCC"] == pytest.approx(100 / 3), f"MCC {metrics['MCC']}"


def test_correlation_metrics_by_hand():
    golds = [0.0, 1.0, 2.0, 3.0]
    preds = [0.0, 2.0, 1.0, 3.0]
    # Pearson: mean 1.5 both; cov = (2.25+(-0.5*0.5)+(0.5*-0.5)+2.25)/n; var = 5/n -> r = 4/5
    # Spearman on ranks (same values as ranks here) -> 0.8 too
    metrics = calc_metrics(("Pearson", "Spearman"), preds, golds)
    assert metrics["Pearson"] == pytest.approx(80.0), f"Pearson {metrics['Pearson']}"
    assert metrics["Spearman"] == pytest.approx(80.0), f"Spearman {metrics['Spearman']}"
    constant = calc_metrics(("Pearson",), [1.0, 1.0, 1.0], [0.0, 1.0, 2.0])
    assert constant["Pearson"] == 0.0 and not math.isnan(constant["Pearson"]), "constant predictions: 0, not NaN"


def test_every_example_once_per_epoch_and_one_task_per_batch():
    sampler = MultiTaskBatchSampler([10, 7, 3], batch_size=4, seed=1)
    batches = sampler.epoch(0)
    assert len(batches) == len(sampler) == 3 + 2 + 1, f"ceil(n/bs) batches per task: {len(batches)}"
    seen = {0: [], 1: [], 2: []}
    for task, indices in batches:
        seen[task] += indices
        assert len(indices) <= 4, f"batch larger than batch_size: {indices}"
    for task, size in enumerate([10, 7, 3]):
        assert sorted(seen[task]) == list(range(size)), f"task {task}: every example exactly once"
    assert batches == sampler.epoch(0), "same seed and epoch -> same batches"
    assert batches != sampler.epoch(1), "a new epoch reshuffles"
    assert batches != MultiTaskBatchSampler([10, 7, 3], 4, seed=2).epoch(0), "the seed changes the order"


def test_mix_opt_puts_main_task_last_and_ratio_subsamples_auxiliary():
    rng = np.random.default_rng(0)
    order = multi_task_batch_order([3, 4, 5], mix_opt=1, ratio=0.0, rng=rng)
    assert order[-3:] == [0, 0, 0] and 0 not in order[:-3], f"mix_opt>0: main task last: {order}"
    order = multi_task_batch_order([4, 10, 10], mix_opt=0, ratio=1.5, rng=np.random.default_rng(0))
    assert order.count(0) == 4 and len(order) == 4 + 6, f"ratio 1.5 -> 6 auxiliary batches: {order}"
    assert len(MultiTaskBatchSampler([16, 40, 40], 4, ratio=1.5).epoch(0)) == 4 + 6, "sampler length with ratio"
    mixed = multi_task_batch_order([20, 20], mix_opt=0, ratio=0.0, rng=np.random.default_rng(3))
    assert mixed != sorted(mixed), f"mix_opt 0 shuffles tasks together: {mixed}"


def test_shards_partition_each_global_batch():
    shards = [MultiTaskBatchSampler([8, 4], 2, seed=4, rank=r, world_size=2).epoch(0) for r in range(2)]
    assert [t for t, _ in shards[0]] == [t for t, _ in shards[1]], "every rank works on the same task per update"
    for (task, a), (_, b) in zip(*shards):
        assert len(a) == len(b) == 2 and not set(a) & set(b), f"full global batches split evenly: {a} {b}"
    short = [MultiTaskBatchSampler([5], 2, seed=4, rank=r, world_size=2).epoch(0) for r in range(2)]
    last = [batches[-1][1] for batches in short]
    assert all(len(part) == 1 for part in last), f"a one-example last batch still gives every rank a row: {last}"
