"""MT-DNN's Adamax and the other optimizers, checked against steps computed by hand; the fused steps
(training.fused_optim: numba, torch._foreach_*) checked bit for bit against the per-tensor loop."""
import io

import pytest
import torch

from methods.base import LRPhase
from pruners.kernels import numba_available
from training import optim
from training.optim import (BertAdam, MTDNNAdamax, PhasedLR, PhaseSchedule, build_optimizer, build_schedule,
                            parameter_groups)

LR, WD, EPS = 0.1, 0.01, 1e-6


def one_param(values, grad):
    param = torch.nn.Parameter(torch.tensor(values, dtype=torch.float64))
    param.grad = torch.tensor(grad, dtype=torch.float64)
    return param


def test_adamax_first_update_by_hand():
    param = one_param([1.0, -2.0, 3.0], [0.5, 0.0, -1e-7])
    MTDNNAdamax([param], lr=LR, weight_decay=WD).step()
    g = torch.tensor([0.5, 0.0, -1e-7], dtype=torch.float64)
    w = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64)
    m = 0.1 * g                                   # (1 - b1) g, no bias correction
    u = g.abs() + EPS                             # max(b2 * 0, |g| + eps)
    expected = w - LR * (m / (u + EPS) + WD * w)
    torch.testing.assert_close(param.detach(), expected, rtol=0, atol=1e-15,
                               msg="first Adamax update differs from m/(u+eps) + wd*w without bias correction")


def test_adamax_second_update_uses_running_max_and_momentum():
    param = one_param([1.0, -1.0], [1.0, -0.5])
    optimizer = MTDNNAdamax([param], lr=LR, weight_decay=0.0)
    optimizer.step()
    after_first = param.detach().clone()
    param.grad = torch.tensor([0.1, -2.0], dtype=torch.float64)
    optimizer.step()
    g1, g2 = torch.tensor([1.0, -0.5], dtype=torch.float64), torch.tensor([0.1, -2.0], dtype=torch.float64)
    m = 0.9 * (0.1 * g1) + 0.1 * g2
    u = torch.maximum(0.999 * (g1.abs() + EPS), g2.abs() + EPS)
    torch.testing.assert_close(param.detach(), after_first - LR * m / (u + EPS), rtol=0, atol=1e-15,
                               msg="second update must use b1-momentum and the running max of |g| + eps")


def test_eps_sits_inside_the_max():
    param = one_param([1.0], [0.0])
    optimizer = MTDNNAdamax([param], lr=LR, weight_decay=0.0)
    optimizer.step()
    assert optimizer.state[param]["exp_inf"].item() == pytest.approx(EPS, rel=1e-12), \
        "a zero gradient must still leave u = |g| + eps = eps (eps inside the max)"
    assert param.item() == 1.0, "a zero gradient without decay must not move the weight"


def test_zero_gradient_weight_shrinks_by_lr_wd_w_not_by_lr():
    param = one_param([0.5, -0.25], [0.0, 0.0])
    optimizer = MTDNNAdamax([param], lr=LR, weight_decay=WD)
    for _ in range(5):
        param.grad = torch.zeros_like(param)
        optimizer.step()
    expected = torch.tensor([0.5, -0.25], dtype=torch.float64) * (1 - LR * WD) ** 5
    torch.testing.assert_close(param.detach(), expected, rtol=1e-12, atol=0,
                               msg="decoupled decay: each update multiplies a zero-gradient weight by 1 - lr*wd")
    coupled = one_param([0.5, -0.25], [0.0, 0.0])
    torch_adamax = torch.optim.Adamax([coupled], lr=LR, weight_decay=WD)
    torch_adamax.step()
    assert abs(coupled.detach()[0].item() - 0.5) > 0.5 * LR, \
        "this test must tell the two apart: torch's coupled Adamax moves such a weight by about lr"


def test_decay_on_weights_only_never_on_biases_or_layernorm():
    model = torch.nn.Module()
    model.dense = torch.nn.Linear(2, 2)
    model.LayerNorm = torch.nn.LayerNorm(2)
    with torch.no_grad():
        for param in model.parameters():
            param.fill_(1.0)
    optimizer = build_optimizer("adamax", model.named_parameters(), LR, WD)
    for param in model.parameters():
        param.grad = torch.zeros_like(param)
    optimizer.step()
    assert torch.allclose(model.dense.weight, torch.full((2, 2), 1 - LR * WD)), "dense.weight must decay"
    for name in ("dense.bias", "LayerNorm.weight", "LayerNorm.bias"):
        assert torch.equal(model.get_parameter(name), torch.ones_like(model.get_parameter(name))), \
            f"{name} must never decay"
    names = {id(p): n for n, p in model.named_parameters()}
    groups = parameter_groups(model.named_parameters(), WD)
    assert sorted(names[id(p)] for p in groups[0]["params"]) == ["dense.weight"], \
        "only weights go to the decayed group"
    assert [g["weight_decay"] for g in groups] == [WD, 0.0], "groups: (weight_decay, 0)"


def test_weight_decay_flag_value_is_used():
    model = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(1.0)
    optimizer = build_optimizer("adamax", model.named_parameters(), LR, 0.5)
    model.weight.grad = torch.zeros_like(model.weight)
    optimizer.step()
    assert model.weight.item() == pytest.approx(1 - LR * 0.5), "--weight_decay must set the decay (MT-DNN ignores it)"


def test_per_tensor_clip_inside_the_step():
    param = one_param([0.0, 0.0], [3.0, 4.0])                 # norm 5
    other = one_param([0.0], [0.5])                             # already below the limit
    MTDNNAdamax([param, other], lr=LR, weight_decay=0.0, max_grad_norm=1.0).step()
    torch.testing.assert_close(param.grad, torch.tensor([0.6, 0.8], dtype=torch.float64), rtol=1e-6, atol=0,
                               msg="the gradient is clipped in place to norm max_grad_norm (PLATON sees it)")
    torch.testing.assert_close(other.grad, torch.tensor([0.5], dtype=torch.float64),
                               msg="clipping is per tensor: a small gradient is left alone")
    g = torch.tensor([0.6, 0.8], dtype=torch.float64)
    torch.testing.assert_close(param.detach(), -LR * (0.1 * g) / (g + 2 * EPS), rtol=1e-6, atol=0,
                               msg="the moments see the clipped gradient")


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd"])
def test_per_tensor_clip_for_every_optimizer(name):
    param = torch.nn.Parameter(torch.zeros(2))
    optimizer = build_optimizer(name, [("w", param)], LR, 0.0, max_grad_norm=1.0)
    param.grad = torch.tensor([3.0, 4.0])
    optimizer.step()
    assert torch.allclose(param.grad.norm(), torch.tensor(1.0)), f"{name}: --grad_clipping must clip per tensor"


def test_bert_adam_first_update_by_hand():
    param = one_param([1.0, -2.0], [0.5, -0.1])
    BertAdam([param], lr=LR, weight_decay=WD).step()
    g, w = torch.tensor([0.5, -0.1], dtype=torch.float64), torch.tensor([1.0, -2.0], dtype=torch.float64)
    expected = w - LR * ((0.1 * g) / ((0.001 * g * g).sqrt() + EPS) + WD * w)
    torch.testing.assert_close(param.detach(), expected, rtol=0, atol=1e-14,
                               msg="BERT's Adam: no bias correction, decoupled decay")


@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_adam_variants_decay_decoupled(name):
    param = torch.nn.Parameter(torch.tensor([0.5], dtype=torch.float64))
    optimizer = build_optimizer(name, [("w", param)], LR, WD)
    for _ in range(3):
        param.grad = torch.zeros_like(param)
        optimizer.step()
    assert param.item() == pytest.approx(0.5 * (1 - LR * WD) ** 3, rel=1e-9), \
        f"{name}: a zero-gradient weight must shrink by lr*wd*w per update (decoupled), not by ~lr"


def test_sgd_keeps_l2_decay():
    param = torch.nn.Parameter(torch.tensor([0.5], dtype=torch.float64))
    optimizer = build_optimizer("sgd", [("w", param)], LR, WD)
    param.grad = torch.zeros_like(param)
    optimizer.step()
    assert param.item() == pytest.approx(0.5 - LR * WD * 0.5), "sgd adds wd*w to the gradient (first step)"


def test_schedule_sets_the_lr_the_step_uses():
    param = one_param([1.0], [1.0])
    optimizer = MTDNNAdamax([param], lr=LR, weight_decay=0.0)
    schedule = build_schedule(optimizer, total_steps=4, warmup=0.5, schedule="warmup_linear")
    optimizer.step()
    assert param.item() == 1.0, "as in MT-DNN, the first update runs at multiplier 0 (step 0 of the warmup)"
    schedule.step()
    param.grad = torch.tensor([1.0], dtype=torch.float64)
    optimizer.step()
    m, u = 0.9 * 0.1 + 0.1, max(0.999 * (1 + EPS), 1 + EPS)
    assert param.item() == pytest.approx(1.0 - LR * 0.5 * m / (u + EPS), rel=1e-12), \
        "the second update runs at lr * 1/4 / 1/2"


def test_state_dict_round_trip_continues_bitwise():
    torch.manual_seed(0)
    grads = [torch.randn(3, 4) for _ in range(6)]

    def run(split):
        param = torch.nn.Parameter(torch.ones(3, 4))
        optimizer = build_optimizer("adamax", [("w", param)], LR, WD, max_grad_norm=0.5)
        for i, grad in enumerate(grads):
            if i == split:
                saved_param, saved_state = param.detach().clone(), optimizer.state_dict()
                param = torch.nn.Parameter(saved_param)
                optimizer = build_optimizer("adamax", [("w", param)], LR, WD, max_grad_norm=0.5)
                optimizer.load_state_dict(saved_state)
            param.grad = grad.clone()
            optimizer.step()
        return param.detach()

    assert torch.equal(run(split=-1), run(split=3)), "a reloaded optimizer must continue bit for bit"


def test_unknown_optimizer_is_refused():
    with pytest.raises(ValueError, match="unknown optimizer 'lamb'"):
        build_optimizer("lamb", [], LR, WD)


# ---- the fused steps against the loop, bit for bit

needs_numba = pytest.mark.skipif(not numba_available(), reason="numba is not installed")
FUSED = [pytest.param("numba", torch.float32, marks=needs_numba), pytest.param("numba", torch.float64, marks=needs_numba),
         ("foreach", torch.float32)]
STEPS, SPLIT = 6, 3
# (name, shape): both parameter groups (decay on weights, none on biases/LayerNorm), a vocabulary-sized table
# whose gradient is mostly zero rows, sizes that leave a tail after torch's vectorised loop, a transposed
# (non-contiguous) weight that the numba path leaves to the loop, one parameter that never has a gradient and
# one that has one only every other update.
SHAPES = [("embeddings.word_embeddings.weight", (300, 16)), ("layer.0.dense.weight", (16, 16)),
          ("layer.0.dense.bias", (16,)), ("layer.0.LayerNorm.weight", (16,)), ("layer.0.LayerNorm.bias", (16,)),
          ("classifier.weight", (3, 16)), ("pooler.dense.weight", (7, 5)), ("never.weight", (4,)),
          ("sometimes.weight", (33,))]


def named_parameters(dtype):
    generator = torch.Generator().manual_seed(7)
    named = [(name, torch.nn.Parameter(torch.randn(shape, generator=generator, dtype=torch.float64).to(dtype)))
             for name, shape in SHAPES]
    named[5] = (named[5][0], torch.nn.Parameter(named[5][1].detach().t().contiguous().t()))   # non-contiguous
    return named


def gradients(named, step: int):
    """The gradients of update `step` (a private generator: the same for every implementation)."""
    generator = torch.Generator().manual_seed(100 + step)
    for index, (name, param) in enumerate(named):
        grad = torch.randn(param.shape, generator=generator, dtype=torch.float64).to(param.dtype) * (0.5 + index)
        if name.startswith("embeddings"):
            grad[torch.arange(param.shape[0]) % 7 != step % 7] = 0.0       # most rows: no token in the batch
        param.grad = None if name == "never.weight" or (name == "sometimes.weight" and step % 2) else \
            grad.t().contiguous().t() if not param.is_contiguous() else grad


def new_run(named, impl: str, clip: float):
    """build_optimizer's adamax and a two-phase LR schedule (warmup, then a phase that restarts the optimizer)."""
    optimizer = build_optimizer("adamax", named, 1e-2, 0.01, max_grad_norm=clip, impl=impl)
    phases = PhaseSchedule(STEPS, [LRPhase("training", 1, 1e-2, 0.4, "warmup_linear"),
                                   LRPhase("retraining", 5, 5e-3, 0.0, "warmup_linear")])
    return optimizer, PhasedLR(optimizer, phases)


def snapshot(named, optimizer) -> list:
    """Every weight, gradient and state entry, in the order of the parameters."""
    return [(name, key, tensor.clone()) for name, param in named
            for key, tensor in (("weight", param.detach()), ("grad", param.grad),
                                *sorted(optimizer.state[param].items()))
            if tensor is not None]


def run(impl: str, dtype, clip: float, *, resume_as: str = None) -> list:
    """Snapshots after each of STEPS updates; with `resume_as`, the optimizer and schedule are saved (through
    torch.save, as a checkpoint holds them) after SPLIT updates and loaded into new ones of that impl."""
    named = named_parameters(dtype)
    optimizer, schedule = new_run(named, impl, clip)
    snapshots = []
    for step in range(STEPS):
        if resume_as is not None and step == SPLIT:
            buffer = io.BytesIO()
            torch.save({"optimizer": optimizer.state_dict(), "schedule": schedule.state_dict()}, buffer)
            buffer.seek(0)
            saved = torch.load(buffer, weights_only=True)
            named = [(name, torch.nn.Parameter(param.detach().clone())) for name, param in named]
            optimizer, schedule = new_run(named, resume_as, clip)
            optimizer.load_state_dict(saved["optimizer"])
            schedule.load_state_dict(saved["schedule"])
        gradients(named, step)
        optimizer.step()
        schedule.step()
        snapshots.append(snapshot(named, optimizer))
    return snapshots


def assert_same_bits(expected: list, got: list, what: str) -> None:
    for step, (want, have) in enumerate(zip(expected, got), start=1):
        assert [entry[:2] for entry in want] == [entry[:2] for entry in have], \
            f"{what}: after update {step} the state holds other entries than the loop's"
        for name, key, tensor in want:
            other = next(t for n, k, t in have if (n, k) == (name, key))
            assert tensor.dtype == other.dtype and tensor.shape == other.shape and torch.equal(tensor, other), \
                f"{what}: {name} {key} differs from the loop's after update {step} " \
                f"(max |diff| {(tensor.double() - other.double()).abs().max().item():.3g})"
    assert len(expected) == len(got) == STEPS, f"{what}: {STEPS} updates expected"


@pytest.mark.parametrize("kind,dtype", FUSED)
@pytest.mark.parametrize("clip", [0.0, 0.8])
def test_fused_step_gives_the_loops_bits(kind, dtype, clip):
    optimizer, _ = new_run(named_parameters(dtype), kind, clip)
    assert optimizer.impl == "fused" and optimizer.kernels == {("cpu", dtype): kind}, \
        f"impl={kind!r} must run the {kind} kernels (got {optimizer.impl_note!r})"
    assert_same_bits(run("loop", dtype, clip), run(kind, dtype, clip), f"{kind} {dtype} clip {clip}")


@needs_numba
def test_the_equality_is_not_vacuous_the_multiply_add_order_shows():
    loop = run("loop", torch.float32, 0.8)
    original = optim._CHECKED.copy()
    try:            # the kernel with a * b + c rounded twice where torch fuses it: the comparison must catch it
        optim._CHECKED[(MTDNNAdamax, "numba", "cpu", torch.float32)] = False
        unfused = run("numba", torch.float32, 0.8)
    finally:
        optim._CHECKED.clear()
        optim._CHECKED.update(original)
    with pytest.raises(AssertionError, match="differs from the loop's"):
        assert_same_bits(loop, unfused, "numba without fma")


def test_clipping_rescales_the_gradient_in_place_in_every_implementation():
    for impl in ("loop", "foreach", *(["numba"] if numba_available() else [])):
        param = torch.nn.Parameter(torch.zeros(2))
        optimizer = build_optimizer("adamax", [("w", param)], LR, 0.0, max_grad_norm=1.0, impl=impl)
        param.grad = torch.tensor([3.0, 4.0])
        optimizer.step()
        assert torch.allclose(param.grad, torch.tensor([0.6, 0.8])), \
            f"{impl}: the clipped gradient must be left in .grad (PLATON reads it after the step)"


@pytest.mark.parametrize("kind", ["foreach", pytest.param("numba", marks=needs_numba)])
def test_nonfinite_gradients_propagate_as_in_the_loop(kind):
    results = []
    for impl in ("loop", kind):
        param = torch.nn.Parameter(torch.tensor([1.0, -0.0, 2.0, 3.0, 0.5] * 4))
        optimizer = MTDNNAdamax([param], lr=LR, weight_decay=WD, impl=impl)
        for grad in ([float("nan"), 0.0, float("inf"), -1.0, 0.25] * 4, [0.0, 0.0, 1.0, float("-inf"), 0.0] * 4):
            param.grad = torch.tensor(grad)
            optimizer.step()
        state = optimizer.state[param]
        results.append([param.detach().clone(), state["exp_avg"].clone(), state["exp_inf"].clone()])
    for name, want, have in zip(("weight", "exp_avg", "exp_inf"), *results):
        # NaN where the loop has NaN; every other entry to the bit, the sign of zeros included. A NaN's own bits
        # are not compared: torch's loop gives 0x7fc00000 or 0xffffffff for the same torch.maximum depending on
        # where the entry falls in its vectorised blocks (a tensor of 16 entries gets one, of 17 the other).
        finite = ~want.isnan()
        assert torch.equal(want.isnan(), have.isnan()) and torch.equal(want[finite], have[finite]) \
            and torch.equal(want[finite].signbit(), have[finite].signbit()), \
            f"{kind}: {name} with NaN/inf gradients differs from the loop's"


@pytest.mark.parametrize("before,after", [("loop", "numba"), ("numba", "loop"), ("loop", "foreach"),
                                          ("foreach", "loop")])
def test_a_state_saved_by_one_implementation_resumes_bitwise_in_the_other(before, after):
    if "numba" in (before, after) and not numba_available():
        pytest.skip("numba is not installed")
    assert_same_bits(run("loop", torch.float32, 0.8), run(before, torch.float32, 0.8, resume_as=after),
                     f"saved by {before}, resumed by {after}")


def test_fused_state_dict_has_the_loops_format():
    named_loop, named_fused = named_parameters(torch.float32), named_parameters(torch.float32)
    states = []
    for named, impl in ((named_loop, "loop"), (named_fused, "auto")):
        optimizer, _ = new_run(named, impl, 0.8)
        gradients(named, 0)
        optimizer.step()
        states.append(optimizer.state_dict())
    loop_state, fused_state = states
    assert fused_state["param_groups"] == loop_state["param_groups"], "param_groups must be saved as the loop's"
    assert sorted(fused_state["state"]) == sorted(loop_state["state"]), \
        "the same parameters have state (none for a parameter without a gradient)"
    for index, entries in loop_state["state"].items():
        assert sorted(entries) == ["exp_avg", "exp_inf", "step"], "per-parameter exp_avg, exp_inf and step"
        for key, tensor in entries.items():
            other = fused_state["state"][index][key]
            assert (other.dtype, other.shape, other.device) == (tensor.dtype, tensor.shape, tensor.device) \
                and torch.equal(other, tensor), f"parameter {index} {key}: saved as the loop saves it"


def test_auto_says_which_step_runs():
    param = torch.nn.Parameter(torch.zeros(3))
    adamax = build_optimizer("adamax", [("w", param)], LR, WD)
    if numba_available():
        assert adamax.impl == "fused" and "numba on cpu float32" in optim.optimizer_description(adamax), \
            f"auto must pick numba on CPU when numba is installed: {optim.optimizer_description(adamax)}"
    else:
        assert adamax.impl == "loop" and "numba is not installed" in adamax.impl_note, adamax.impl_note
    adam = build_optimizer("adam", [("w", param)], LR, WD)
    assert adam.impl == "loop" and "BertAdam has no numba kernel" in adam.impl_note or not numba_available(), \
        f"adam on CPU stays on the loop (torch's sqrt is not IEEE's): {adam.impl_note}"
    assert build_optimizer("adamax", [("w", param)], LR, WD, impl="loop").impl == "loop", "impl='loop' is the loop"
    with pytest.raises(ValueError, match="no numba kernel"):
        build_optimizer("adam", [("w", param)], LR, WD, impl="numba")
    with pytest.raises(ValueError, match="unknown optimizer implementation 'fast'"):
        build_optimizer("adamax", [("w", param)], LR, WD, impl="fast")


@pytest.mark.parametrize("kind", ["foreach", pytest.param("numba", marks=needs_numba)])
def test_only_what_the_kernels_cannot_take_goes_through_the_loop(kind, monkeypatch):
    looped = []
    original = MTDNNAdamax.update_one
    monkeypatch.setattr(MTDNNAdamax, "update_one", lambda self, param, group: (looped.append(param),
                                                                               original(self, param, group)))
    named = named_parameters(torch.float32)
    optimizer, _ = new_run(named, kind, 0.8)
    looped.clear()                  # the check against the loop at construction ran the loop on its probe
    gradients(named, 0)
    optimizer.step()
    names = {id(param): name for name, param in named}
    expected = ["classifier.weight"] if kind == "numba" else []
    assert [names[id(param)] for param in looped] == expected, \
        f"{kind}: only a non-contiguous tensor (numba) may take the loop's path, not {looped}"


@pytest.mark.parametrize("impl", ["loop", "foreach", pytest.param("numba", marks=needs_numba)])
@pytest.mark.parametrize("clip", [0.0, 0.8])
def test_the_global_clip_folded_into_the_step_gives_clip_grad_norms_bits(impl, clip):
    """optim.step_with_global_clip against train.py's clip_grad_norm_ over all gradients, then the loop's step;
    `extra` is a tensor a method trains itself (movement's scores): clipped with the rest, not stepped."""
    results = []
    for folded in (False, True):
        named = named_parameters(torch.float32)
        model = torch.nn.Module()
        for index, (_, param) in enumerate(named):
            model.register_parameter(f"p{index}", param)
        extra = torch.ones(5, requires_grad=True)
        optimizer, schedule = new_run(named, impl if folded else "loop", clip)
        snapshots = []
        for step in range(STEPS):
            gradients(named, step)
            extra.grad = torch.full((5,), 3.0 + step)
            if folded:
                optim.step_with_global_clip(optimizer, model, 1.0, [extra])
            else:
                torch.nn.utils.clip_grad_norm_([p for p in (*model.parameters(), extra) if p.grad is not None], 1.0)
                optimizer.step()
            schedule.step()
            snapshots.append(snapshot(named, optimizer) + [("extra", "grad", extra.grad.clone())])
        results.append(snapshots)
    assert_same_bits(*results, f"global clip folded into the {impl} step (per-tensor clip {clip})")


@pytest.mark.parametrize("extra,needle", [
    (["--optimizer", "sgd", "--optimizer_impl", "numba"],
     "--optimizer_impl numba: --optimizer sgd runs torch's own step; use --optimizer_impl auto"),
    (["--optimizer", "adam", "--optimizer_impl", "numba"],
     "--optimizer_impl numba: BertAdam has no numba kernel; use auto or loop"),
    (["--optimizer_impl", "fast"], "argument --optimizer_impl: invalid choice: 'fast'"),
])
def test_train_refuses_an_optimizer_impl_it_cannot_run(tmp_path, capsys, extra, needle):
    import train
    from tests.test_errors import fail

    if "numba" in extra and not numba_available():
        needle = "--optimizer_impl numba: the numba optimizer kernels need the numba package: pip install numba"
    fail(train.main, ["--train_datasets", "rte", "--output_dir", tmp_path / "run", *extra], capsys, needle)
    assert not (tmp_path / "run").exists(), "refused before anything is written"


def test_train_checkpoints_resume_bitwise_across_optimizer_impls(canonical_dir, tiny_model_dir, tmp_path):
    """train.py end to end (PLATON, per-tensor and global clipping): a checkpoint written by the loop resumes in
    the fused step and one written by the fused step resumes in the loop, both to the final weights of the
    uninterrupted loop run (and the uninterrupted fused run ends there too)."""
    import train
    from tests.conftest import run_main
    from tests.test_resume import final_state

    def argv(output_dir, impl, *extra):
        return ["--data_dir", canonical_dir, "--init_checkpoint", tiny_model_dir, "--train_datasets", "rte",
                "--test_datasets", "rte", "--epochs", "2", "--batch_size", "8", "--max_seq_len", "64", "--learning_rate", "1e-3",
                "--grad_clipping", "0.05", "--log_per_updates", "0", "--seed", "3", "--pruner", "platon",
                "--initial_threshold", "1", "--final_threshold", "0.3", "--warmup_steps", "2", "--initial_warmup",
                "1", "--final_warmup", "1", "--deltaT", "2", "--output_dir", str(output_dir),
                "--optimizer_impl", impl, *extra]

    finals = {}
    for impl in ("loop", "auto"):
        code = run_main(train.main, argv(tmp_path / impl, impl, "--save_per_updates", "2", "--keep_checkpoints", "0"))
        assert code == 0, f"the uninterrupted {impl} run failed"
        finals[impl] = final_state(tmp_path / impl)
    for saved, resumed in (("loop", "auto"), ("auto", "loop")):
        out = tmp_path / f"{saved}-then-{resumed}"
        code = run_main(train.main, argv(out, resumed, "--model_ckpt", str(tmp_path / saved / "checkpoint-2")))
        assert code == 0, f"resuming the {saved} checkpoint with --optimizer_impl {resumed} failed"
        finals[out.name] = final_state(out)
    expected = finals.pop("loop")
    for run_name, state in finals.items():
        assert sorted(state) == sorted(expected), f"{run_name}: other tensors than the loop run's"
        for name, tensor in expected.items():
            assert torch.equal(state[name], tensor), f"{run_name}: {name} differs from the uninterrupted loop run's"
