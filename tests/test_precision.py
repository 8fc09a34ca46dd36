"""--precision bf16|fp16: autocast, dynamic loss scaling, skipped overflowed updates, exact resume."""
import json
import re

import pytest
import torch

import train
import training.precision as precision_module
from tests.conftest import run_main
from training.precision import Precision
from training.run_state import LoopState


def args_for(canonical_dir, tiny_model_dir, out, *extra):
    return ["--data_dir", canonical_dir, "--init_checkpoint", tiny_model_dir, "--train_datasets", "sst",
            "--test_datasets", "sst", "--epochs", "3", "--batch_size", "8", "--max_seq_len", "64",
            "--learning_rate", "2e-3", "--log_per_updates", "1", "--seed", "7", "--output_dir", str(out), *extra]


def logged_losses(out):
    """The running loss of every update's log line ("update t/T epoch e loss x ...")."""
    return [float(match.group(1)) for match in re.finditer(r"update \d+/\d+ epoch \d+ loss (\S+)",
                                                            open(out / "log.log").read())]


def test_loss_scaling_backs_off_and_grows():
    p = Precision("fp16", torch.device("cpu"))
    state = LoopState()
    assert p.scale(state) == 2.0 ** 16, "starts at 2^16 as torch.amp.GradScaler"
    weight = torch.nn.Parameter(torch.ones(3))
    weight.grad = torch.tensor([2.0 ** 16, 2.0 ** 17, 0.0])
    assert p.unscale(state, [weight]) and torch.equal(weight.grad, torch.tensor([1.0, 2.0, 0.0])), "divided by it"
    weight.grad = torch.tensor([float("inf"), 1.0, 0.0])
    assert not p.unscale(state, [weight]), "an overflow is reported"
    p.update(state, False)
    assert state.loss_scale == 2.0 ** 15 and state.loss_scale_good_updates == 0, "halved after an overflow"
    for _ in range(precision_module.GROWTH_INTERVAL):
        p.update(state, True)
    assert state.loss_scale == 2.0 ** 16, "doubled after 2000 good updates"
    bf16 = Precision("bf16", torch.device("cpu"))
    assert bf16.scale(state) == 1.0 and bf16.unscale(state, [weight]), "bf16 scales nothing"


def test_bf16_run_follows_fp32_and_keeps_fp32_weights(canonical_dir, tiny_model_dir, tmp_path):
    """bf16 autocast trains the same run as fp32 to within bf16's rounding (the bundled model learning in bf16
    is tests/test_learning.py's)."""
    platon = ["--pruner", "platon", "--initial_threshold", "1", "--final_threshold", "0.5", "--warmup_steps", "4",
              "--initial_warmup", "1", "--final_warmup", "1"]
    runs = {}
    for precision in ("fp32", "bf16"):
        out = tmp_path / precision
        assert run_main(train.main, args_for(canonical_dir, tiny_model_dir, out, "--precision", precision,
                                             *platon)) == 0, f"a {precision} PLATON run"
        runs[precision] = out
    fp32, bf16 = logged_losses(runs["fp32"]), logged_losses(runs["bf16"])
    assert len(fp32) == len(bf16) > 10, "the same number of updates"
    assert max(abs(a - b) for a, b in zip(fp32, bf16)) < 0.05, f"bf16 follows fp32: {fp32} vs {bf16}"
    assert fp32 != bf16, "bf16 did run in bf16 (the losses differ in their last digits)"
    from safetensors.torch import load_file
    weights = load_file(str(runs["bf16"] / "model" / "model.safetensors"))
    assert all(w.dtype == torch.float32 for w in weights.values()), "the saved weights are fp32 (master weights)"
    report = json.load(open(runs["bf16"] / "sparsity_report.json"))
    assert report["overall"]["remaining_ratio"] == pytest.approx(0.5, abs=0.01), "PLATON reaches its target"
    assert "precision: bf16 autocast" in open(runs["bf16"] / "log.log").read(), "the start-up log names it"


def test_fp16_overflow_skips_updates_and_the_pruner_sees_no_gradient(canonical_dir, tiny_model_dir, tmp_path,
                                                                     monkeypatch):
    monkeypatch.setattr(precision_module, "INITIAL_SCALE", 2.0 ** 120)    # overflows fp32 gradients at once
    out = tmp_path / "fp16"
    assert run_main(train.main, args_for(canonical_dir, tiny_model_dir, out, "--precision", "fp16",
                                         "--pruner", "movement", "--initial_threshold", "1", "--final_threshold",
                                         "0.5", "--warmup_steps", "4", "--initial_warmup", "1",
                                         "--final_warmup", "1")) == 0, "an fp16 movement run"
    log = open(out / "log.log").read()
    skipped = log.count("skipped: fp16 gradients overflowed")
    assert 1 <= skipped < 40, f"the first updates overflow and are skipped, then the scale fits: {skipped}"
    assert "update 1 skipped" in log, "the very first update overflowed"
    losses = logged_losses(out)
    assert all(loss == loss for loss in losses), f"the losses stay finite: {losses}"


def test_a_bad_precision_is_refused(canonical_dir, tiny_model_dir, tmp_path, capsys):
    code = run_main(train.main, args_for(canonical_dir, tiny_model_dir, tmp_path / "x", "--precision", "fp8"))
    err = capsys.readouterr().err
    assert code == 2 and "--precision" in err and "fp8" in err, err


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_is_bf16_only_where_the_cpu_has_bf16_arithmetic(canonical_dir, tiny_model_dir, tmp_path,
                                                                       monkeypatch, capsys, native):
    """--precision auto asks the CPU (AVX-512 BF16 or AMX, torch's own checks) and records what ran in
    config.json, so that a resume on another CPU repeats it."""
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: native, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    assert precision_module.resolve_precision("auto", torch.device("cpu")) == ("bf16" if native else "fp32"), \
        "auto follows the CPU's bf16 support"
    assert precision_module.resolve_precision("fp16", torch.device("cpu")) == "fp16", "an explicit choice stays"
    out = tmp_path / "auto"
    assert run_main(train.main, args_for(canonical_dir, tiny_model_dir, out, "--precision", "auto", "--pruner", "none",
                                         "--epochs", "1")) == 0, f"an auto run: {capsys.readouterr().err}"
    expected = "bf16" if native else "fp32"
    assert json.load(open(out / "config.json"))["precision"] == expected, "config.json records what ran"
    log = open(out / "log.log").read()
    assert f"precision: {'bf16 autocast' if native else 'fp32'}" in log and "(--precision auto)" in log, \
        "the start-up log says what auto chose"
