"""Exact resume after SIGKILL, of checkpoints of the older layout, checkpoint layout and rotation, config conflicts,
corrupt checkpoints."""
import json
import os
import random
import shutil
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file, save_file

import train
from training.optim import lr_multiplier
from tests.conftest import ROOT, kill_after_checkpoint, run_main
from tests.test_errors import GPP, fail, snapshot, train_args  # noqa: F401 (train_args is a fixture)

RUNS = {
    "platon": ["--pruner", "platon", "--initial_threshold", "1", "--final_threshold", "0.3", "--warmup_steps", "4",
               "--initial_warmup", "1", "--final_warmup", "1", "--deltaT", "2"],
    "movement": ["--pruner", "movement", "--initial_threshold", "1", "--final_threshold", "0.3", "--warmup_steps",
                 "4", "--initial_warmup", "1", "--final_warmup", "1", "--deltaT", "2"],
    "platon_bf16": ["--pruner", "platon", "--initial_threshold", "1", "--final_threshold", "0.3", "--warmup_steps",
                    "4", "--initial_warmup", "1", "--final_warmup", "1", "--deltaT", "2", "--precision", "bf16"],
    "movement_fp16": ["--pruner", "movement", "--initial_threshold", "1", "--final_threshold", "0.3",
                      "--warmup_steps", "4", "--initial_warmup", "1", "--final_warmup", "1", "--precision", "fp16"],
    "soft_movement": ["--pruner", "soft_movement", "--final_lambda", "20", "--warmup_steps", "4", "--initial_warmup",
                      "1", "--final_warmup", "1"],
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


def moved_tensors(skeleton, source: dict, target: dict, prefix: str):
    """`skeleton` (a part of a state.json) with each tensor reference {"__tensor__": key} renamed prefix + key,
    its tensor copied from `source` into `target` under that name."""
    if isinstance(skeleton, list):
        return [moved_tensors(value, source, target, prefix) for value in skeleton]
    if not isinstance(skeleton, dict):
        return skeleton
    if "__tensor__" in skeleton:
        target[prefix + skeleton["__tensor__"]] = source[skeleton["__tensor__"]]
        return {"__tensor__": prefix + skeleton["__tensor__"]}
    return {key: moved_tensors(value, source, target, prefix) for key, value in skeleton.items()}


def as_legacy_checkpoint(source, target, total_steps, stale_optimizer_from=None):
    """A copy of checkpoint `source` in the layout train.py wrote before the LR schedule knew its phases: the
    loop state carries the four schedule_* fields of the LR schedule restarted last, before update s (the
    phase that update g, the checkpoint's, belongs to), and the LR schedule is a LambdaLR counting the g − s + 1
    updates since, its rates those of that phase. `stale_optimizer_from`, the checkpoint of update g − 1 when
    update g + 1 begins a phase: the optimizer state of the phase that ends, as the older code saved it at g
    (it restarted the optimizer only at the first micro-batch of update g + 1)."""
    shutil.copytree(source, target)
    skeleton = json.loads((target / "state.json").read_text())
    tensors = load_file(target / "state.safetensors")
    entries = skeleton["__dict__"]
    loop, schedule = entries["loop"]["__dict__"], entries["lr_schedule"]["__dict__"]
    step = loop["global_step"]
    name, start, rate, warmup, shape = [phase for phase in schedule["phases"] if phase[1] <= step][-1]
    span = total_steps - start + 1
    loop.update(schedule_span=span, schedule_warmup=warmup, schedule_shape=shape, schedule_lr=rate)
    next_rate = rate * lr_multiplier(step - start + 1, span, warmup, shape)
    for key in ("phase_start", "phases"):
        del schedule[key]
    schedule.update(last_epoch=step - start + 1, base_lrs=[rate, rate], _last_lr=[next_rate, next_rate],
                    lr_lambdas=[None, None])
    optimizer = entries["optimizer"]["__dict__"]
    for group in optimizer["param_groups"]:
        group["__dict__"].update(lr=next_rate, initial_lr=rate)
    if stale_optimizer_from is not None:
        earlier = json.loads((stale_optimizer_from / "state.json").read_text())["__dict__"]["optimizer"]["__dict__"]
        earlier_tensors = load_file(stale_optimizer_from / "state.safetensors")
        optimizer["state"] = moved_tensors(earlier["state"], earlier_tensors, tensors, "legacy.")
    (target / "state.json").write_text(json.dumps(skeleton))
    save_file(tensors, target / "state.safetensors")
    return target


def test_a_checkpoint_of_the_older_layout_resumes_exactly(canonical_dir, tiny_model_dir, tmp_path):
    """Checkpoints written before the LR schedule knew its phases (schedule_* fields in the loop state, a LambdaLR
    state) resume to the final weights of the uninterrupted run: in the middle of GPP's pruning phase, and at its
    last prepruning update, where the older code saved the prepruning optimizer state and the resumed run must
    restart the optimizer before the first pruning update."""
    saved = tmp_path / "saved"
    result = subprocess.run(command(canonical_dir, tiny_model_dir, saved, "gpp", "--save_per_updates", "1",
                                    "--keep_checkpoints", "0"), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"the gpp run with checkpoints failed: {result.stderr[-800:]}"
    total = json.load(open(saved / "config.json"))["total_steps"]
    phases = json.load(open(saved / "checkpoint-1" / "state.json"))["__dict__"]["lr_schedule"]["__dict__"]["phases"]
    pruning = [start for name, start, *_ in phases if name == "pruning"][0]
    assert [name for name, *_ in phases] == ["training", "pruning", "retraining"], f"GPP's LR phases: {phases}"
    expected = final_state(saved)
    for at, stale in ((pruning - 1, pruning - 2), (pruning + 3, None)):
        legacy = as_legacy_checkpoint(saved / f"checkpoint-{at}", tmp_path / f"legacy-{at}", total,
                                      None if stale is None else saved / f"checkpoint-{stale}")
        entries = json.loads((legacy / "state.json").read_text())["__dict__"]
        assert "schedule_lr" in entries["loop"]["__dict__"] and "phases" not in entries["lr_schedule"]["__dict__"], \
            "the checkpoint has the older layout"
        if stale is not None:
            assert entries["optimizer"]["__dict__"]["state"]["__items__"], \
                "the older checkpoint before a phase start holds the ending phase's optimizer moments"
        resumed = tmp_path / f"resumed-{at}"
        result = subprocess.run(command(canonical_dir, tiny_model_dir, resumed, "gpp", "--model_ckpt", str(legacy)),
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, f"resuming the older checkpoint of update {at} failed: {result.stderr[-800:]}"
        got = final_state(resumed)
        for name in expected:
            assert torch.equal(expected[name], got[name]), \
                f"resumed from the older checkpoint of update {at}, {name} differs from the uninterrupted run"


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


def edited_checkpoint(source, target, edit):
    """A copy of checkpoint `source` at `target` whose state.json entries (train.py's layout) `edit` changes."""
    shutil.copytree(source, target)
    skeleton = json.loads((target / "state.json").read_text())
    edit(skeleton["__dict__"])
    (target / "state.json").write_text(json.dumps(skeleton))
    return target


def set_phases(entries):
    entries["lr_schedule"]["__dict__"]["phases"][-1][2] = 0.5        # the retraining phase's learning rate


def set_phase_start(entries):
    entries["lr_schedule"]["__dict__"]["phase_start"] = 99


def older_layout(**loop):
    """An edit into the older layout (schedule_* fields, a LambdaLR state) with the given schedule_* fields."""
    def edit(entries):
        schedule = entries["lr_schedule"]["__dict__"]
        del schedule["phases"], schedule["phase_start"]
        schedule["lr_lambdas"] = [None, None]
        entries["loop"]["__dict__"].update(loop)
    return edit


LR_SCHEDULE_CASES = [
    # (case, edit, needles)
    ("LR phases of another run", set_phases,
     ["lr_schedule.phases is [['pruning', 1, 0.001, 0.0, 'warmup_linear'], ['retraining', 8, 0.5, 0.0, "
      "'warmup_linear']], this run's LR phases are"]),
    ("a phase start that is none", set_phase_start, ["lr_schedule.phase_start is 99, not the first update of a phase "
                                                     "begun by update 3 ([1])"]),
    ("older layout, a schedule_* field missing", older_layout(schedule_lr=1e-3),
     ["loop.schedule_span is missing: a loop state with schedule_* fields"]),
    ("older layout, a restart no phase makes", older_layout(schedule_span=14, schedule_warmup=0.0,
                                                           schedule_shape="warmup_linear", schedule_lr=7e-3),
     ["loop.schedule_lr with the other schedule_* fields and lr_schedule.last_epoch describes an LR schedule "
      "restarted before update 1 over 14 updates at 0.007", "which no LR phase of this run matches"]),
]


@pytest.fixture(scope="module")
def gpp_checkpoints(train_args, tmp_path_factory):  # noqa: F811 (the imported fixture)
    """A GPP run pruning from update 1 and retraining from update 8 of 14, with a checkpoint every 2 updates."""
    out = tmp_path_factory.mktemp("gpp_checkpoints")
    code = run_main(train.main, train_args(out, *GPP, "--epochs", "2", "--save_per_updates", "2",
                                           "--keep_checkpoints", "0"))
    assert code == 0 and (out / "checkpoint-2").is_dir(), f"the GPP run with checkpoints failed ({code})"
    return out


@pytest.mark.parametrize("case,edit,needles", LR_SCHEDULE_CASES, ids=[c[0] for c in LR_SCHEDULE_CASES])
def test_an_lr_schedule_this_run_cannot_continue_is_refused(gpp_checkpoints, train_args, tmp_path,  # noqa: F811
                                                            capsys, case, edit, needles):
    """The LR schedule's phases are checked against this run's (their flags come from the checkpoint, so only an
    edited file differs), and an older checkpoint's schedule_* fields must describe where one of them starts."""
    broken = edited_checkpoint(gpp_checkpoints / "checkpoint-2", tmp_path / "checkpoint-2", edit)
    before = snapshot(broken)
    fail(train.main, train_args(tmp_path / "resumed", *GPP, "--epochs", "2", "--model_ckpt", broken), capsys,
         f"checkpoint {broken / 'state.json'}: ", *needles, "resume from an earlier checkpoint-<update>")
    assert snapshot(broken) == before, f"{case}: the checkpoint is only read"
