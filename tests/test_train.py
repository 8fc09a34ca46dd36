"""train.py end to end on a tiny 2-layer BERT over the generated sample, and what every flag changes."""
import json
import os
import subprocess
import sys

import pytest
import torch
import yaml
from safetensors.torch import load_file

import train
from training import inference
from tests.conftest import ROOT, run_main


@pytest.fixture(scope="module")
def base_args(canonical_dir, tiny_model_dir):
    def make(output_dir, *extra):
        return ["--data_dir", canonical_dir, "--init_checkpoint", tiny_model_dir,
                "--train_datasets", "rte,stsb", "--test_datasets", "rte,stsb", "--pruner", "none",
                "--epochs", "1", "--batch_size", "8", "--batch_size_eval", "16", "--max_seq_len", "64",
                "--learning_rate", "1e-3", "--log_per_updates", "1", "--seed", "3",
                "--output_dir", str(output_dir), *extra]
    return make


def weights(output_dir):
    return load_file(os.path.join(output_dir, "model", "model.safetensors"))


@pytest.fixture(scope="module")
def baseline(base_args, tmp_path_factory):
    out = tmp_path_factory.mktemp("baseline")
    assert run_main(train.main, base_args(out)) == 0, "baseline run should succeed"
    return out


def test_end_to_end_writes_scores_model_and_logs(baseline, canonical_dir):
    dev_rows = sum(1 for _ in open(os.path.join(canonical_dir, "rte_dev.json")))
    scores = json.load(open(baseline / "rte_dev_scores_epoch_000.json"))
    assert set(scores) == {"metrics", "predictions", "uids", "scores"}, f"score file keys: {set(scores)}"
    assert set(scores["metrics"]) == {"ACC"}, f"rte reports ACC: {scores['metrics']}"
    assert 0 <= scores["metrics"]["ACC"] <= 100, "accuracy in percent"
    assert len(scores["predictions"]) == len(scores["uids"]) == len(scores["scores"]) == dev_rows, \
        "one prediction per dev row"
    assert all(abs(sum(p) - 1) < 1e-4 for p in scores["scores"]), "classification scores are probabilities"
    stsb = json.load(open(baseline / "stsb_dev_scores_epoch_000.json"))
    assert set(stsb["metrics"]) == {"Pearson", "Spearman"}, f"stsb metrics: {stsb['metrics']}"
    test = json.load(open(baseline / "rte_test_scores_epoch_000.json"))
    assert test["metrics"] == {} and len(test["predictions"]) > 0, "unlabelled test split: predictions only"
    config = json.load(open(baseline / "config.json"))
    assert config["train_datasets"] == "rte,stsb" and config["total_steps"] > 0, "resolved config is saved"
    log = open(baseline / "log.log").read()
    assert "effective batch 8" in log and "train rte_train" in log, "start-up summary in the log"
    assert "final dev metrics" in log, "the run ends with the dev metrics"
    assert json.load(open(baseline / "dev_metrics.json"))["rte"] == scores["metrics"], "final metrics file"


@pytest.mark.parametrize("every_eval", [False, True], ids=["final-only", "every-evaluation"])
def test_test_splits_are_predicted_with_the_final_model_unless_asked(base_args, tmp_path, every_eval):
    extra = ["--epochs", "2"] + (["--eval_test_during_training"] if every_eval else [])
    assert run_main(train.main, base_args(tmp_path, *extra)) == 0, "a two-epoch run"
    assert os.path.exists(tmp_path / "rte_dev_scores_epoch_000.json"), "dev splits are scored at every evaluation"
    assert os.path.exists(tmp_path / "rte_test_scores_epoch_001.json"), "the final model's test predictions"
    assert os.path.exists(tmp_path / "rte_test_scores_epoch_000.json") == every_eval, \
        "test splits at earlier evaluations only with --eval_test_during_training"


def test_saved_model_loads_with_auto_classes_and_as_init_checkpoint(baseline, base_args, tmp_path):
    from transformers import AutoModel

    encoder = AutoModel.from_pretrained(baseline / "model")
    saved = weights(baseline)
    assert torch.equal(encoder.embeddings.word_embeddings.weight, saved["embeddings.word_embeddings.weight"]), \
        "AutoModel reads the saved encoder"
    out = tmp_path / "again"
    args = base_args(out, "--init_checkpoint", str(baseline / "model"), "--learning_rate", "1e-12")
    assert run_main(train.main, args) == 0
    again = json.load(open(out / "rte_dev_scores_epoch_000.json"))
    first = json.load(open(baseline / "rte_dev_scores_epoch_000.json"))
    assert again["predictions"] == first["predictions"], \
        "a saved run used as --init_checkpoint (heads included) predicts the same at a negligible LR"


def test_same_seed_same_weights(baseline, base_args, tmp_path):
    assert run_main(train.main, base_args(tmp_path)) == 0
    for name, tensor in weights(baseline).items():
        assert torch.equal(tensor, weights(tmp_path)[name]), f"run is not deterministic at {name}"


def test_same_platon_command_twice_gives_the_same_bits(base_args, tmp_path):
    """Item 5 of the speed issue: two processes running the same short PLATON command (a new threshold at
    every update, numba's parallel loops and torch's thread pool both in play) write the same weights."""
    flags = ["--pruner", "platon", "--train_datasets", "rte", "--test_datasets", "rte", "--epochs", "2",
             "--warmup_steps", "4", "--initial_warmup", "1", "--final_warmup", "1", "--deltaT", "1",
             "--initial_threshold", "1", "--final_threshold", "0.3", "--num_threads", "2"]
    runs = []
    for name in ("first", "second"):
        args = base_args(tmp_path / name, *flags)
        done = cli(*args)
        assert done.returncode == 0, f"PLATON run {name} failed: {done.stderr[-800:]}"
        runs.append(weights(tmp_path / name))
    log = open(tmp_path / "first" / "log.log").read()
    assert "threads: torch 2" in log and "CPU kernels:" in log, "the log says the threads and CPU kernels a run used"
    zeros = sum(int((t == 0).sum()) for name, t in runs[0].items() if "encoder.layer" in name)
    assert zeros > 0, "the PLATON run pruned something (otherwise the check is weak)"
    for name, tensor in runs[0].items():
        assert torch.equal(tensor, runs[1][name]), f"same command, same thread count: {name} differs"


def learning_rates(output_dir) -> list:
    """The learning rate of every update, from the log lines (--log_per_updates 1)."""
    return [float(line.split(" lr ")[1].split()[0]) for line in open(os.path.join(output_dir, "log.log"))
            if " lr " in line and " update " in line]


def total_steps(output_dir) -> int:
    return json.load(open(os.path.join(output_dir, "config.json")))["total_steps"]


def mean_step(output_dir, init_dir) -> float:
    """Mean |trained - initial| over the encoder's matrices: how far training moved the weights."""
    start = load_file(os.path.join(init_dir, "model.safetensors"))
    end = weights(output_dir)
    moved = [(end[k] - start[k]).abs().mean() for k in end if k in start and end[k].dim() == 2
             and "embeddings" not in k]
    return float(torch.stack(moved).mean())


def encoder_norm(output_dir) -> float:
    return float(sum(t.norm() ** 2 for k, t in weights(output_dir).items() if t.dim() == 2 and "embeddings" not in k))


# What each flag must do, checked against the baseline run in a direction (or an exact value) that a mere
# change of seed would not give.
def _lr_scaled(base, out, init, spy=None):
    ratios = [b / a for a, b in zip(learning_rates(base), learning_rates(out)) if a > 0]
    return ratios and all(abs(r - 0.1) < 0.02 for r in ratios), f"lr 10x lower at every update: {ratios[:5]}"


def _peak_at(fraction):
    def check(base, out, init, spy=None):
        rates = learning_rates(out)
        peak = max(range(len(rates)), key=rates.__getitem__) + 1
        return abs(peak - fraction * len(rates)) <= 1.5, f"LR peaks at update {peak} of {len(rates)}"
    return check


def _constant_after_warmup(base, out, init, spy=None):
    rates = learning_rates(out)
    peak = max(rates)
    tail = rates[rates.index(peak):]
    return all(abs(r - peak) < 1e-9 for r in tail), f"constant after the warm-up: {tail}"


def _cosine(base, out, init, spy=None):
    linear, cosine = learning_rates(base), learning_rates(out)
    middle = len(cosine) * 3 // 4
    return cosine[middle] < linear[middle] or cosine[len(cosine) // 3] > linear[len(linear) // 3], \
        f"cosine differs from linear decay in shape: {cosine} vs {linear}"


def _steps(expected):
    """The run's update count, against `expected(baseline's)`, give or take the rounding of each task's last batch."""
    def check(base, out, init, spy=None):
        return abs(total_steps(out) - expected(total_steps(base))) <= 2, \
            f"total updates {total_steps(out)} for baseline's {total_steps(base)}"
    return check


def _moves_less(base, out, init, spy=None):
    return mean_step(out, init) < mean_step(base, init), \
        f"weights move less: {mean_step(out, init):.3g} vs baseline {mean_step(base, init):.3g}"


def _smaller_norm(base, out, init, spy=None):
    return encoder_norm(out) < encoder_norm(base), f"stronger decay gives smaller weights: {encoder_norm(out):.4g}"


def _encoder_config(key, value):
    def check(base, out, init, spy=None):
        found = json.load(open(os.path.join(out, "model", "config.json")))[key]
        return found == value, f"model/config.json {key} = {found}"
    return check


def _heads(expected):
    def check(base, out, init, spy=None):
        found = sorted(json.load(open(os.path.join(out, "model", "heads.json"))))
        return found == expected, f"heads {found}"
    return check


def _spied(key, predicate, what):
    """An effect read from what the spies (install_spies) recorded during the run."""
    def check(base, out, init, spy):
        return predicate(spy[key]), f"{what}: recorded {sorted(set(map(str, spy[key])))[:6]}"
    return check


def install_spies(monkeypatch) -> dict:
    """Record what reaches the code that uses each flag: the optimizer built, every clip_grad_norm_ call
    (per-tensor: one tensor; global: all of them), the fused optimizer step's per-tensor clip (its
    coefficients, training.fused_optim), the global clip's coefficient as train.py forms it
    (training.optim.global_clip_scale, folded into the fused step), the sampler's settings, the longest
    batch."""
    import training.run_state as run_state
    from training import fused_optim, optim

    spy = {"optimizer": [], "clip_one": [], "clip_all": [], "sampler": [], "tokens": []}
    build = run_state.build_optimizer

    def build_optimizer(*args, **kwargs):
        optimizer = build(*args, **kwargs)
        spy["optimizer"].append(type(optimizer).__name__)
        return optimizer

    clip = torch.nn.utils.clip_grad_norm_

    def clip_grad_norm_(parameters, max_norm, *args, **kwargs):
        parameters = list(parameters)
        spy["clip_one" if len(parameters) == 1 else "clip_all"].append(max_norm)
        return clip(parameters, max_norm, *args, **kwargs)

    coefficients = fused_optim.clip_coefficients

    def clip_coefficients(grads, max_grad_norm):
        spy["clip_one"].append(max_grad_norm)
        return coefficients(grads, max_grad_norm)

    global_scale = optim.global_clip_scale

    def global_clip_scale(grads, max_norm):
        spy["clip_all"].append(max_norm)
        return global_scale(grads, max_norm)

    sampler_class = train.MultiTaskBatchSampler

    def sampler(*args, **kwargs):
        spy["sampler"].append((kwargs.get("mix_opt"), kwargs.get("ratio")))
        return sampler_class(*args, **kwargs)

    collate = train.collate

    def spy_collate(rows, task):
        batch = collate(rows, task)
        spy["tokens"].append(batch["input_ids"].shape[1])
        return batch

    monkeypatch.setattr(run_state, "build_optimizer", build_optimizer)
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", clip_grad_norm_)
    monkeypatch.setattr(fused_optim, "clip_coefficients", clip_coefficients)
    monkeypatch.setattr(optim, "global_clip_scale", global_clip_scale)
    monkeypatch.setattr(train, "MultiTaskBatchSampler", sampler)
    monkeypatch.setattr(train, "collate", spy_collate)
    return spy


WEIGHT_FLAGS = [
    ("--batch_size", "4", _steps(lambda t: 2 * t)),
    ("--optimizer", "adam", _spied("optimizer", lambda v: v == ["BertAdam"], "MT-DNN's Adam is built")),
    ("--optimizer", "adamw", _spied("optimizer", lambda v: v == ["AdamW"], "torch's AdamW is built")),
    ("--optimizer", "sgd", _moves_less),
    ("--learning_rate", "1e-4", _lr_scaled),
    ("--epochs", "2", _steps(lambda t: 2 * t)),
    ("--seed", "4", lambda *_: (True, "a seed's whole effect is the different weights checked first")),
    ("--warmup", "0.5", _peak_at(0.5)),
    ("--warmup_schedule", "warmup_constant", _constant_after_warmup),
    ("--warmup_schedule", "warmup_cosine", _cosine),
    ("--weight_decay", "0.5", _smaller_norm),
    ("--grad_clipping", "0.01", _spied("clip_one", lambda v: len(v) > 0 and set(v) == {0.01},
                                       "each tensor is clipped to 0.01")),
    ("--global_grad_clipping", "0.01", _spied("clip_all", lambda v: len(v) > 0 and set(v) == {0.01},
                                              "all gradients together are clipped to 0.01")),
    ("--grad_accumulation_step", "2", _steps(lambda t: t // 2)),
    ("--dropout_p", "0.3", _encoder_config("hidden_dropout_prob", 0.3)),
    ("--mix_opt", "1", _spied("sampler", lambda v: v[0][0] == 1, "the sampler gets mix_opt 1")),
    ("--ratio", "0.5", _steps(lambda t: t * 0.75)),
    ("--max_seq_len", "16", _spied("tokens", lambda v: max(v) == 16, "no batch is longer than 16 tokens")),
    ("--train_datasets", "rte", _heads(["rte"])),
]


@pytest.mark.parametrize("flag,value,effect", WEIGHT_FLAGS, ids=[f"{f}={v}" for f, v, _ in WEIGHT_FLAGS])
def test_flag_changes_training(baseline, base_args, tiny_model_dir, tmp_path, monkeypatch, flag, value, effect):
    spy = install_spies(monkeypatch)
    extra = [flag, value]
    if flag == "--train_datasets":
        extra += ["--test_datasets", "rte"]
    assert run_main(train.main, base_args(tmp_path, *extra)) == 0, f"{flag} {value} should run"
    base, changed = weights(baseline), weights(tmp_path)
    assert any(not torch.equal(base[k], changed[k]) for k in base), f"{flag} {value} left every trained weight unchanged"
    holds, what = effect(baseline, tmp_path, tiny_model_dir, spy)
    assert holds, f"{flag} {value} should have its effect: {what}"


def test_task_def_flag_changes_the_task(baseline, base_args, tmp_path):
    from data_utils.task_def import DEFAULT_TASK_DEF

    spec = yaml.safe_load(open(DEFAULT_TASK_DEF))
    spec["rte"]["metric_meta"] = ["ACC", "F1"]
    path = tmp_path / "tasks.yml"
    path.write_text(yaml.safe_dump(spec))
    assert run_main(train.main, base_args(tmp_path / "out", "--task_def", str(path))) == 0
    metrics = json.load(open(tmp_path / "out" / "rte_dev_scores_epoch_000.json"))["metrics"]
    assert set(metrics) == {"ACC", "F1"}, f"--task_def decides the metrics: {metrics}"


def test_init_checkpoint_flag_changes_the_start(baseline, base_args, tmp_path):
    from transformers import BertModel

    from tests.conftest import tiny_bert_config
    other = tmp_path / "other"
    torch.manual_seed(99)
    BertModel(tiny_bert_config()).save_pretrained(other)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json"):
        source = os.path.join(json.load(open(baseline / "config.json"))["init_checkpoint"], name)
        if os.path.exists(source):
            (other / name).write_bytes(open(source, "rb").read())
    assert run_main(train.main, base_args(tmp_path / "out", "--init_checkpoint", str(other))) == 0
    assert not torch.equal(weights(baseline)["pooler.dense.weight"], weights(tmp_path / "out")["pooler.dense.weight"]), \
        "--init_checkpoint decides the starting weights"


def test_logging_and_output_flags(baseline, base_args, tmp_path):
    out = tmp_path / "out"
    assert run_main(train.main, base_args(out, "--log_per_updates", "3", "--eval_per_updates", "2", "--tensorboard",
                                          "--glue_format_on", "--log_file", "custom.log",
                                          "--test_datasets", "rte")) == 0
    base_updates = open(baseline / "log.log").read().count(" update ")
    updates = open(out / "custom.log").read().count(" update ")
    assert 0 < updates < base_updates, f"--log_per_updates 3 logs fewer lines ({updates} vs {base_updates})"
    assert os.path.exists(out / "rte_dev_scores_updates_000002.json"), "--eval_per_updates writes updates_N scores"
    assert not os.path.exists(out / "stsb_dev_scores_epoch_000.json"), "--test_datasets rte leaves stsb out"
    events = [f for _, _, files in os.walk(out / "tensorboard_logdir") for f in files if "tfevents" in f]
    assert events, "--tensorboard writes event files"
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    accumulator = EventAccumulator(str(out / "tensorboard_logdir"))
    accumulator.Reload()
    tags = set(accumulator.Tags()["scalars"])
    assert {"train/loss", "train/lr", "dev/rte/ACC"} <= tags, f"TensorBoard scalars: {tags}"
    lines = open(out / "rte_test_predictions_epoch_000.tsv").read().splitlines()
    assert lines[0] == "index\tprediction", f"GLUE submission header: {lines[0]!r}"
    assert {line.split("\t")[1] for line in lines[1:]} <= {"entailment", "not_entailment"}, "label names"
    assert not os.path.exists(baseline / "rte_test_predictions_epoch_000.tsv"), "no TSV without --glue_format_on"
    assert open(out / "glue_submission" / "RTE.tsv").read().splitlines() == lines, \
        "the latest predictions also go to glue_submission/ under GLUE's file name (the task definition's)"


def test_batch_size_eval_changes_eval_batches(base_args, tmp_path, monkeypatch):
    calls = []
    original = inference.collate
    monkeypatch.setattr(inference, "collate", lambda examples, task, pad_to=None: (
        calls.append(len(examples)), original(examples, task, pad_to))[1])
    assert run_main(train.main, base_args(tmp_path / "a", "--batch_size_eval", "4")) == 0
    small = len(calls)
    calls.clear()
    assert run_main(train.main, base_args(tmp_path / "b", "--batch_size_eval", "64")) == 0
    assert small > len(calls) > 0 and max(calls) > 4, f"eval batches: {small} at 4 vs {len(calls)} at 64"


def cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


@pytest.mark.parametrize("extra,needle", [
    (["--train_datasets", "nosuch"], "--train_datasets: unknown task 'nosuch'"),
    (["--test_datasets", "mnli_matched"],
     "--test_datasets: 'mnli_matched' belongs to task 'mnli', which is not in --train_datasets"),
    (["--test_datasets", "rte_matched"], "unknown dataset 'rte_matched'"),
    (["--batch_size", "0"], "--batch_size 0 must be a positive integer"),
    (["--learning_rate", "-1"], "--learning_rate -1.0 must be > 0"),
    (["--warmup", "1.5"], "--warmup 1.5 must be a fraction"),
    (["--num_threads", "-1"], "--num_threads -1 must be >= 0"),
    (["--optimizer", "lamb"], "argument --optimizer: invalid choice: 'lamb'"),
    (["--device", "cuda"], "--device cuda: no CUDA device is visible") if not torch.cuda.is_available()
    else (["--epochs", "-1"], "--epochs -1 must be a positive integer"),
])
def test_bad_flags_are_one_line_exit_2(base_args, tmp_path, capsys, extra, needle):
    code = run_main(train.main, base_args(tmp_path, *extra))
    stderr = capsys.readouterr().err
    assert code == 2, f"{extra}: exit 2 expected, got {code}: {stderr[-500:]}"
    assert "Traceback" not in stderr, f"{extra}: no traceback: {stderr[-500:]}"
    assert needle in stderr, f"{extra}: message should contain {needle!r}: {stderr}"
    assert stderr.strip().count("\n") == 0, f"{extra}: one line: {stderr!r}"


def test_missing_data_names_the_file_from_the_real_cli(base_args, tmp_path):
    result = cli(*base_args(tmp_path, "--data_dir", str(tmp_path / "nothing")))
    assert result.returncode == 2, f"exit 2 expected: {result.returncode} {result.stderr[-300:]}"
    assert "rte_train.json: file not found" in result.stderr, f"names the file: {result.stderr}"
    assert "Traceback" not in result.stderr and result.stderr.strip().count("\n") == 0, f"one line: {result.stderr}"


def test_every_flag_has_help():
    parser = train.build_parser()
    for action in parser._actions:
        assert action.help, f"flag {action.option_strings} has no help text"


def test_resume_training_flags_come_from_the_core_groups_and_the_methods():
    from training.options import NOT_TRAINING

    flags = set(train.build_parser().resume_flags)
    assert {"learning_rate", "weight_decay", "pruner", "deltaT", "beta1", "target_sparsity", "dfd_fusion",
            "dfd_weight"} <= flags, f"flags that decide training must be restored on resume: {sorted(flags)}"
    assert not flags & {*NOT_TRAINING, "pruner_kernels"}, "evaluation and placement flags follow the command line"
    assert not flags & {"output_dir", "resume", "save_per_updates", "log_per_updates"}, \
        "logging and output flags are never taken from the checkpoint"
