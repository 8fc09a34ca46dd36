"""GPP: schedule, cadence, progressive indicator, hooks, gradient sums, phases, a tiny pruning run."""
import copy
import json
import math

import pytest
import torch
from torch import nn
from transformers import BertConfig, BertModel

from pruners.gpp import (GPPPruner, cosine_sparsity, indicator_update_interval, is_indicator_update_step,
                         is_phase_start, phase_of, progressive_indicator)

BOTH = "structured_heads+structured_mlp"


def tiny_bert(seed=0):
    torch.manual_seed(seed)
    config = BertConfig(num_hidden_layers=2, hidden_size=32, num_attention_heads=4, intermediate_size=64,
                        vocab_size=100)
    return BertModel(config).eval()


def tiny_batch(seed=1):
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(0, 100, (3, 9), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[0, 6:] = 0
    return input_ids, attention_mask


# --- schedule ---------------------------------------------------------------

def test_cosine_sparsity_values():
    assert cosine_sparsity(0, 100, 0.5) == 0.0, "c(0) must be the start (0)"
    assert cosine_sparsity(50, 100, 0.5) == pytest.approx(0.125), "c(Tp/2) = target·(1/2)² = target/4"
    assert cosine_sparsity(100, 100, 0.5) == 0.5, "c(Tp) must be exactly the target"
    assert cosine_sparsity(250, 100, 0.5) == 0.5, "after Tp the schedule holds the target"
    expected = 0.1 + (0.7 - 0.1) * ((1 - math.cos(math.pi * 30 / 100)) / 2) ** 2
    assert cosine_sparsity(30, 100, 0.7, start=0.1) == pytest.approx(expected), "formula with a start value"
    assert cosine_sparsity(0, 100, 0.7, start=0.1) == pytest.approx(0.1), "c(0) = start"
    assert cosine_sparsity(50, 100, 0.7, start=0.1) == pytest.approx(0.1 + 0.6 / 4), "c(Tp/2) with start"
    assert cosine_sparsity(100, 100, 0.3, start=0.1) == 0.3, "c(Tp) = target exactly even with a start"
    values = [cosine_sparsity(s, 40, 0.6) for s in range(41)]
    assert all(a <= b for a, b in zip(values, values[1:])), "the schedule must be non-decreasing"


@pytest.mark.parametrize("target", [0.0, 1.0, -0.1, 1.5])
def test_target_outside_open_interval_is_refused(target):
    with pytest.raises(ValueError, match="target sparsity"):
        cosine_sparsity(1, 10, target)
    with pytest.raises(ValueError, match="target sparsity"):
        progressive_indicator(torch.ones(4), 0.1, target)
    with pytest.raises(ValueError, match="target sparsity"):
        GPPPruner(tiny_bert(), pruning_type=BOTH, target_sparsity=target, prune_steps=4)


def test_cadence():
    assert indicator_update_interval(1000, 0.5) == 20, "floor(1000 / (100·0.5)) = 20"
    assert is_indicator_update_step(20, 1000, 0.5), "multiples of the interval recompute"
    assert is_indicator_update_step(40, 1000, 0.5), "multiples of the interval recompute"
    assert not is_indicator_update_step(21, 1000, 0.5), "other steps do not recompute"
    assert is_indicator_update_step(1010, 1010, 0.5), "s == Tp always recomputes (1010 mod 20 != 0)"
    assert not is_indicator_update_step(1009, 1010, 0.5), "s = 1009 is neither a multiple nor Tp"


def test_cadence_deviation_avoids_division_by_zero():
    # public code: s % int(Tp / (100·target)) with Tp < 100·target divides by zero
    assert indicator_update_interval(10, 0.5) == 1, "the interval is at least 1 when Tp < 100·target"
    assert all(is_indicator_update_step(s, 10, 0.5) for s in range(1, 11)), "interval 1 recomputes every step"


# --- progressive indicator ---------------------------------------------------

def test_progressive_indicator_marks_largest_scores():
    scores = torch.tensor([[0.1, 0.5], [0.3, 0.2]])
    z = progressive_indicator(scores, 0.25, 0.5)  # k = floor(4·0.25) = 1, factor 1 − 0.25/0.5 = 0.5
    assert torch.equal(z, torch.tensor([[1.0, 0.5], [1.0, 1.0]])), f"only the largest score shrinks to 0.5: {z}"
    z = progressive_indicator(scores, 0.5, 0.5)  # k = 2, c = target
    assert torch.equal(z, torch.tensor([[1.0, 0.0], [0.0, 1.0]])), f"two largest exactly 0, rest exactly 1: {z}"


def test_progressive_indicator_uses_absolute_scores():
    z = progressive_indicator(torch.tensor([-5.0, 1.0, 2.0, 0.0]), 0.25, 0.5)
    assert torch.equal(z, torch.tensor([0.5, 1.0, 1.0, 1.0])), f"|−5| is the largest score: {z}"


def test_progressive_indicator_ties_at_boundary_stay_unmarked():
    z = progressive_indicator(torch.tensor([3.0, 2.0, 2.0, 1.0]), 0.5, 0.5)  # k = 2, (k+1)-th largest = 2
    assert torch.equal(z, torch.tensor([0.0, 1.0, 1.0, 1.0])), f"strictly greater than the 3rd value only: {z}"
    z = progressive_indicator(torch.full((6,), 7.0), 0.5, 0.5)
    assert torch.equal(z, torch.ones(6)), f"all tied: nothing is strictly greater, nothing marked: {z}"


def test_progressive_indicator_below_one_unit_marks_nothing():
    z = progressive_indicator(torch.tensor([4.0, 3.0, 2.0]), 0.2, 0.5)  # k = floor(0.6) = 0
    assert torch.equal(z, torch.ones(3)), f"k = 0 marks nothing: {z}"


# --- hooks -------------------------------------------------------------------

def manually_masked(model, z_head, z_ffn):
    """A copy whose output projections have their input columns scaled by the indicators."""
    masked = copy.deepcopy(model)
    head_size = model.config.hidden_size // model.config.num_attention_heads
    with torch.no_grad():
        for index, layer in enumerate(masked.encoder.layer):
            layer.attention.output.dense.weight.mul_(z_head[index].repeat_interleave(head_size))
            layer.output.dense.weight.mul_(z_ffn[index])
    return masked


def test_hooks_equal_explicit_masking():
    model = tiny_bert()
    reference = copy.deepcopy(model)
    pruner = GPPPruner(model, pruning_type=BOTH, target_sparsity=0.5, prune_steps=10)
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        pruner.z_head.copy_((torch.rand(2, 4, generator=generator) > 0.5).float())
        pruner.z_head[1, 2] = 0.3  # fractional values are applied as multipliers too
        pruner.z_ffn.copy_(torch.rand(2, 64, generator=generator))
    input_ids, attention_mask = tiny_batch()
    hooked = model(input_ids, attention_mask=attention_mask).last_hidden_state
    explicit = manually_masked(reference, pruner.z_head.detach(), pruner.z_ffn.detach())(
        input_ids, attention_mask=attention_mask).last_hidden_state
    torch.testing.assert_close(hooked, explicit, atol=1e-5, rtol=1e-5,
                               msg="hooked forward must equal zeroing/scaling the projection columns")
    pruner.remove_hooks()
    dense = model(input_ids, attention_mask=attention_mask).last_hidden_state
    torch.testing.assert_close(dense, reference(input_ids, attention_mask=attention_mask).last_hidden_state,
                               msg="after remove_hooks the model is dense again")


def test_deepcopy_of_hooked_model_is_not_masked():
    model = tiny_bert()
    reference = copy.deepcopy(model)
    pruner = GPPPruner(model, pruning_type=BOTH, target_sparsity=0.5, prune_steps=10)
    with torch.no_grad():
        pruner.z_head.zero_()
    teacher = copy.deepcopy(model)  # e.g. a teacher taken after the pruner was built
    input_ids, attention_mask = tiny_batch()
    torch.testing.assert_close(teacher(input_ids, attention_mask=attention_mask).last_hidden_state,
                               reference(input_ids, attention_mask=attention_mask).last_hidden_state,
                               msg="hooks copied by deepcopy must not mask the copy")


def test_finds_encoder_inside_container_and_heads_only_type():
    class Container(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = tiny_bert()
            self.heads = nn.ModuleDict({"cola": nn.Linear(32, 2)})

    container = Container()
    pruner = GPPPruner(container, pruning_type="structured_heads", target_sparsity=0.5, prune_steps=4)
    assert pruner.bert is container.encoder, "the BertModel inside the container must be found"
    assert pruner.z_ffn is None and tuple(pruner.z_head.shape) == (2, 4), "heads only: z_head (L, H), no z_ffn"
    assert pruner.indicator_loss().item() == pytest.approx(0.5 * 8), "λ·‖z_head‖₁ with z = 1"
    with pytest.raises(ValueError, match="pruning_type"):
        GPPPruner(container, pruning_type="heads", target_sparsity=0.5, prune_steps=4)
    with pytest.raises(ValueError, match="no BERT-family encoder"):
        GPPPruner(nn.Linear(2, 2), pruning_type=BOTH, target_sparsity=0.5, prune_steps=4)


# --- gradients ---------------------------------------------------------------

def test_indicators_are_not_model_parameters():
    model = tiny_bert()
    pruner = GPPPruner(model, pruning_type=BOTH, target_sparsity=0.5, prune_steps=4)
    parameter_ids = {id(p) for p in model.parameters()}
    assert id(pruner.z_head) not in parameter_ids and id(pruner.z_ffn) not in parameter_ids, \
        "z is set by the pruner, never by an optimizer built from model.parameters()"
    assert pruner.z_head.requires_grad and pruner.z_ffn.requires_grad, "z needs a gradient to accumulate G"
    assert pruner.indicator_loss().item() == pytest.approx(0.5 * (8 + 128)), "λ·(‖z_head‖₁ + ‖z_ffn‖₁)"


READOUT = torch.randn(32, generator=torch.Generator().manual_seed(7))


def batch_loss(model, pruner, seed):
    """A task-like loss whose gradient separates the units (LayerNorm makes ‖hidden‖² nearly constant)."""
    input_ids, attention_mask = tiny_batch(seed)
    hidden = model(input_ids, attention_mask=attention_mask).last_hidden_state  # (batch, seq, 32)
    return (hidden @ READOUT).pow(2).mean() + pruner.indicator_loss()


def test_gradient_sum_over_backward_passes():
    model = tiny_bert()
    pruner = GPPPruner(model, pruning_type=BOTH, target_sparsity=0.5, prune_steps=4)
    expected = {"head": torch.zeros(2, 4), "ffn": torch.zeros(2, 64)}
    for seed in (1, 2, 3):
        grads = torch.autograd.grad(batch_loss(model, pruner, seed), [pruner.z_head, pruner.z_ffn])
        expected["head"] += grads[0]
        expected["ffn"] += grads[1]

    for seed in (1, 2, 3):  # called after every backward
        batch_loss(model, pruner, seed).backward()
        pruner.accumulate_gradients()
        pruner.accumulate_gradients()  # a second call without backward adds nothing
    for name in expected:
        torch.testing.assert_close(pruner.grad_sum[name], expected[name],
                                   msg=f"G[{name}] must be the sum of the per-pass gradients")

    other = GPPPruner(tiny_bert(), pruning_type=BOTH, target_sparsity=0.5, prune_steps=4)
    for seed in (1, 2, 3):  # gradient accumulation: one call per update after several backwards
        batch_loss(other.bert, other, seed).backward()
    other.accumulate_gradients()
    for name in expected:
        torch.testing.assert_close(other.grad_sum[name], expected[name],
                                   msg=f"G[{name}] must not depend on when accumulate_gradients is called")
    assert pruner.z_head.grad is None, "accumulate_gradients clears z.grad so nothing is counted twice"


def test_grad_scale_and_non_finite_gradients():
    model = tiny_bert()
    pruner = GPPPruner(model, pruning_type=BOTH, target_sparsity=0.5, prune_steps=4)
    (batch_loss(model, pruner, seed=1) * 1024.0).backward()  # as GradScaler.scale(loss).backward()
    scaled = pruner.z_ffn.grad.clone()
    assert pruner.accumulate_gradients(grad_scale=1024.0), "finite gradients are added"
    torch.testing.assert_close(pruner.grad_sum["ffn"], scaled / 1024.0, msg="G is unscaled by grad_scale")
    pruner.z_head.grad = torch.full((2, 4), float("inf"))
    pruner.z_ffn.grad = torch.zeros(2, 64)
    assert not pruner.accumulate_gradients(), "a non-finite gradient (fp16 overflow) is not added"
    assert pruner.skipped_backward_passes == 1, "the dropped pass is counted"
    assert torch.isfinite(pruner.grad_sum["head"]).all(), "G stays finite"
    assert pruner.z_head.grad is None and pruner.z_ffn.grad is None, "dropped gradients are cleared too"


# --- phases ------------------------------------------------------------------

def test_phase_of_and_phase_starts():
    phases = [phase_of(t, 2, 3, 7) for t in range(1, 8)]
    assert [p.name for p in phases] == ["prepruning"] * 2 + ["pruning"] * 3 + ["retraining"] * 2, \
        f"phases of updates 1..7 with P=2, Tp=3: {phases}"
    assert [p.pruning_step for p in phases] == [0, 0, 1, 2, 3, 3, 3], f"pruning steps: {phases}"
    starts = [t for t in range(1, 8) if is_phase_start(t, 2, 3, 7)]
    assert starts == [1, 3, 6], f"optimizer/schedule resets happen at updates 1, P+1, P+Tp+1: {starts}"
    assert phase_of(1, 0, 3, 3) == ("pruning", 1), "no pre-pruning: the first update prunes"
    with pytest.raises(ValueError, match="impossible GPP phases"):
        phase_of(1, 5, 5, 8)
    with pytest.raises(ValueError, match="update must be"):
        phase_of(0, 2, 3, 7)


# --- the LR phases GPP declares: the optimizer restarted at each (training.optim) ----------------------------

T = 7
LR_PHASES = [("training", 1, 1e-2, 0.3, "warmup_cosine"), ("pruning", 3, 5e-3, 0.0, "warmup_linear"),
             ("retraining", 6, 2e-3, 0.0, "warmup_linear")]


def phased_run(updates, restore_after=None):
    """Updates of a small model under LR_PHASES through PhasedLR; with `restore_after`, the optimizer and schedule
    are rebuilt from their state_dicts after that update, as a resume does. Returns (weights, rates) per update."""
    from training.optim import LRPhase, PhasedLR, PhaseSchedule, build_optimizer

    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)

    def build():
        optimizer = build_optimizer("adamax", model.named_parameters(), 1e-2, 0.01)
        return optimizer, PhasedLR(optimizer, PhaseSchedule(T, [LRPhase(*phase) for phase in LR_PHASES]))

    optimizer, schedule = build()
    weights, rates = [], []
    for t in range(1, updates + 1):
        rates.append(optimizer.param_groups[0]["lr"])
        model(torch.randn(8, 4)).pow(2).mean().backward()
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        weights.append(model.weight.detach().clone())
        if t == restore_after:
            saved = copy.deepcopy(optimizer.state_dict()), json.loads(json.dumps(schedule.state_dict()))
            optimizer, schedule = build()
            optimizer.load_state_dict(saved[0])
            schedule.load_state_dict(saved[1])      # as a checkpoint's JSON reads back, after the optimizer's
    return weights, rates


def restarted_run(updates):
    """The same updates the way train.py ran them before the phase schedule: at each phase start a new optimizer
    and a LambdaLR over the updates left (training.optim.lr_multiplier), built from scratch."""
    from training.optim import build_optimizer, lr_multiplier

    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    weights, rates = [], []
    for t in range(1, updates + 1):
        for name, start, rate, warmup, shape in LR_PHASES:
            if t == start:
                optimizer = build_optimizer("adamax", model.named_parameters(), rate, 0.01)
                schedule = torch.optim.lr_scheduler.LambdaLR(
                    optimizer, lambda step, span=T - start + 1, warmup=warmup, shape=shape:
                    lr_multiplier(step, span, warmup, shape))
        rates.append(optimizer.param_groups[0]["lr"])
        model(torch.randn(8, 4)).pow(2).mean().backward()
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        weights.append(model.weight.detach().clone())
    return weights, rates


def test_lr_phases_restart_the_optimizer_as_a_new_one_would():
    weights, rates = phased_run(T)
    want_weights, want_rates = restarted_run(T)
    assert rates == want_rates, f"each update's rate is its phase's, from the phase's start: {rates} vs {want_rates}"
    assert rates[2] == 5e-3 and rates[5] == 2e-3, f"pruning and retraining start at their own rates: {rates}"
    for t, (got, want) in enumerate(zip(weights, want_weights), start=1):
        assert torch.equal(got, want), f"update {t}: the weights differ from a fresh optimizer at each phase start"


@pytest.mark.parametrize("restore_after", [2, 3, 5])
def test_lr_phases_resume_exactly_at_and_between_phase_starts(restore_after):
    weights, rates = phased_run(T, restore_after=restore_after)
    want_weights, want_rates = phased_run(T)
    assert rates == want_rates, f"restored after update {restore_after}: the rates differ: {rates} vs {want_rates}"
    assert all(torch.equal(a, b) for a, b in zip(weights, want_weights)), \
        f"restored after update {restore_after}: the weights differ from the uninterrupted run"


def test_phase_schedule_orders_replaces_and_refuses():
    from training.optim import LRPhase, PhasedLR, PhaseSchedule, build_optimizer

    replaced = PhaseSchedule(5, [LRPhase("training", 1, 1.0, 0.5), LRPhase("pruning", 1, 2.0), LRPhase("late", 6, 3.0)])
    assert [phase.name for phase in replaced.phases] == ["pruning"], \
        f"a phase starting where another does replaces it; one after the last update never begins: {replaced.phases}"
    assert replaced.lr(1) == 2.0 and replaced.lr(5) == pytest.approx(2.0 / 5), \
        f"linear decay from 2.0 over the 5 updates: {[replaced.lr(t) for t in range(1, 6)]}"
    with pytest.raises(ValueError, match="must start at update 1"):
        PhaseSchedule(5, [LRPhase("pruning", 2, 1.0)])
    with pytest.raises(ValueError, match="in order of their first updates"):
        PhaseSchedule(5, [LRPhase("training", 1, 1.0), LRPhase("b", 4, 1.0), LRPhase("a", 3, 1.0)])
    optimizer = build_optimizer("adamax", torch.nn.Linear(2, 2).named_parameters(), 1.0, 0.0)
    schedule = PhasedLR(optimizer, PhaseSchedule(5, [LRPhase("training", 1, 1.0)]))
    other = PhasedLR(optimizer, PhaseSchedule(5, [LRPhase("training", 1, 1.0), LRPhase("pruning", 3, 0.5)]))
    with pytest.raises(ValueError, match="other|phases"):
        other.load_state_dict(schedule.state_dict())


# --- a tiny pruning run -------------------------------------------------------

def run_gpp(model, pruner, pruning_steps, accumulation=2):
    """Pruning updates with gradient accumulation, as the trainer runs them."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    for s in pruning_steps:
        for micro in range(accumulation):
            (batch_loss(model, pruner, seed=10 * s + micro) / accumulation).backward()
            pruner.accumulate_gradients()
        optimizer.step()
        optimizer.zero_grad()
        pruner.step(s)
    model.eval()


def test_pruning_run_reaches_target_and_exports():
    from modeling.structured import export_pruned_encoder

    model = tiny_bert()
    pruner = GPPPruner(model, pruning_type=BOTH, target_sparsity=0.5, prune_steps=4)
    seen = []
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-2)
    for s in range(1, 5):
        batch_loss(model, pruner, seed=s).backward()
        pruner.accumulate_gradients()
        optimizer.step()
        optimizer.zero_grad()
        seen.append(pruner.step(s))
        if s < 4:
            assert not pruner.is_done, f"not done before Tp (s={s})"
        if s == 3:  # c(3) ≈ 0.364: k = 2 heads marked with z = 1 − c/target
            assert 0 < pruner.z_head.min() < 1, f"marked heads shrink gradually before Tp (s={s})"
    assert seen[-1] == 0.5 and pruner.is_done, f"c reaches the target exactly at Tp: {seen}"
    for name, z in pruner.indicators().items():
        assert bool(((z == 0) | (z == 1)).all()), f"frozen {name} indicators are exactly 0 or 1"
        assert not z.requires_grad, f"frozen {name} indicators take no gradient"
    counts = pruner.pruned_counts()
    assert sum(counts["heads"]) == 4 and sum(counts["ffn_neurons"]) == 64, \
        f"floor(n·0.5) units of each type pruned: {counts}"
    frozen = pruner.z_head.clone()
    assert pruner.step(5) == 0.5 and torch.equal(pruner.z_head, frozen), "after the freeze nothing changes"
    assert pruner.indicator_loss().item() == 0.0, "no L1 term after pruning is done"

    input_ids, attention_mask = tiny_batch()
    masked = model(input_ids, attention_mask=attention_mask).last_hidden_state
    exported = export_pruned_encoder(model, pruner.z_head, pruner.z_ffn)
    heads_kept = [4 - n for n in counts["heads"]]
    neurons_kept = [64 - n for n in counts["ffn_neurons"]]
    assert exported.config.layer_heads == heads_kept, "exported heads per layer follow the indicator"
    assert exported.config.layer_intermediate_sizes == neurons_kept, "exported FFN sizes follow the indicator"
    for index, layer in enumerate(exported.encoder.layer):
        assert layer.intermediate.dense.weight.shape == (neurons_kept[index], 32), f"layer {index} FFN rows"
        assert layer.attention.output.dense.weight.shape == (32, 8 * heads_kept[index]), f"layer {index} heads"
    out = exported(input_ids, attention_mask=attention_mask).last_hidden_state
    assert (out - masked).abs().max() <= 1e-4, "exported model equals the masked one"


def test_state_dict_round_trip_resumes_identically():
    model = tiny_bert()
    pruner = GPPPruner(model, pruning_type=BOTH, target_sparsity=0.5, prune_steps=6)
    run_gpp(model, pruner, range(1, 4))
    state = pruner.state_dict()
    plain = {k: v for k, v in state.items() if k != "tensors"}
    json.dumps(plain)  # the non-tensor part must be JSON-able
    assert state["format"] == 1 and state["method"] == "gpp", "shaped like the unstructured pruners' states"
    assert set(state["tensors"]) == {"indicator/head", "indicator/ffn", "grad_sum/head", "grad_sum/ffn"}, \
        "tensors per statistic and active type"

    twin_model = copy.deepcopy(model)
    twin = GPPPruner(twin_model, pruning_type=BOTH, target_sparsity=0.5, prune_steps=6)
    twin.load_state_dict(state)
    assert twin.last_step == 3 and twin.current_sparsity == pruner.current_sparsity, "scalars restored"
    torch.manual_seed(5)
    run_gpp(model, pruner, range(4, 7))
    torch.manual_seed(5)
    run_gpp(twin_model, twin, range(4, 7))
    assert pruner.is_done and twin.is_done, "both runs finish pruning at Tp"
    assert torch.equal(pruner.z_head, twin.z_head) and torch.equal(pruner.z_ffn, twin.z_ffn), \
        "a resumed pruner reaches the same indicators"

    finished = GPPPruner(tiny_bert(), pruning_type=BOTH, target_sparsity=0.5, prune_steps=6)
    finished.load_state_dict(pruner.state_dict())
    assert finished.is_done and not finished.z_head.requires_grad, "a finished state loads frozen"
    wrong = GPPPruner(tiny_bert(), pruning_type=BOTH, target_sparsity=0.4, prune_steps=6)
    with pytest.raises(ValueError, match="target_sparsity"):
        wrong.load_state_dict(state)


def test_state_dict_tensors_save_with_safetensors_and_mismatches_are_refused(tmp_path):
    from safetensors.torch import load_file, save_file

    model = tiny_bert()
    pruner = GPPPruner(model, pruning_type=BOTH, target_sparsity=0.5, prune_steps=6)
    run_gpp(model, pruner, range(1, 3))
    state = pruner.state_dict()
    save_file(state["tensors"], str(tmp_path / "gpp.safetensors"))  # flat str -> Tensor, as the other pruners
    state["tensors"] = load_file(str(tmp_path / "gpp.safetensors"))
    state = json.loads(json.dumps({k: v for k, v in state.items() if k != "tensors"})) | {"tensors": state["tensors"]}
    twin = GPPPruner(tiny_bert(), pruning_type=BOTH, target_sparsity=0.5, prune_steps=6)
    twin.load_state_dict(state)
    assert torch.equal(twin.grad_sum["ffn"], pruner.grad_sum["ffn"]) and torch.equal(twin.z_head, pruner.z_head), \
        "a state through safetensors and JSON restores G and z"
    assert twin.summary() == pruner.summary(), "the restored pruner reports the same step and sparsity"

    with pytest.raises(ValueError, match="method 'platon'"):
        twin.load_state_dict(dict(state, method="platon"))
    heads_only = GPPPruner(tiny_bert(), pruning_type="structured_heads", target_sparsity=0.5, prune_steps=6)
    with pytest.raises(ValueError, match="pruning_type"):
        heads_only.load_state_dict(state)
    with pytest.raises(ValueError, match="grad_sum/ffn"):
        twin.load_state_dict(dict(state, tensors={k: v for k, v in state["tensors"].items() if k != "grad_sum/ffn"}))
    wider = GPPPruner(BertModel(BertConfig(num_hidden_layers=2, hidden_size=32, num_attention_heads=4,
                                           intermediate_size=80, vocab_size=100)),
                      pruning_type=BOTH, target_sparsity=0.5, prune_steps=6)
    with pytest.raises(ValueError, match="shape"):
        wider.load_state_dict(state)


def test_pruner_masks_through_its_structured_mask(tmp_path):
    from pruners.structured_mask import StructuredMask

    model = tiny_bert()
    pruner = GPPPruner(model, pruning_type=BOTH, target_sparsity=0.5, prune_steps=1)
    assert pruner.mask.head is pruner.z_head and pruner.mask.ffn is pruner.z_ffn, "the mask holds z by reference"
    run_gpp(model, pruner, [1])
    pruner.mask.save(str(tmp_path))
    input_ids, attention_mask = tiny_batch()
    with torch.no_grad():
        expected = model(input_ids, attention_mask=attention_mask).last_hidden_state
    pruner.remove_hooks()
    loaded = StructuredMask.load(model, str(tmp_path))
    assert torch.equal(loaded.head, pruner.z_head.detach()), "the saved indicators are the pruner's z"
    with torch.no_grad():
        actual = model(input_ids, attention_mask=attention_mask).last_hidden_state
    torch.testing.assert_close(actual, expected, msg="a loaded mask masks as the pruner did")


def test_step_refuses_step_zero():
    pruner = GPPPruner(tiny_bert(), pruning_type=BOTH, target_sparsity=0.5, prune_steps=4)
    with pytest.raises(ValueError, match="pruning step"):
        pruner.step(0)


def test_the_pruner_library_imports_nothing_of_the_application():
    """pruners/ is usable from any PyTorch loop: importing every module of it loads no module of train.py's
    application (data_utils, mt_dnn, methods, module); it writes its files with its own atomic writer."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    code = ("import importlib, pkgutil, sys, pruners\n"
            "for found in pkgutil.iter_modules(pruners.__path__): importlib.import_module('pruners.' + found.name)\n"
            "print(sorted(name for name in sys.modules if name.split('.')[0] in "
            "('data_utils', 'mt_dnn', 'methods', 'module')))\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"importing pruners failed: {result.stderr[-500:]}"
    assert result.stdout.strip() == "[]", f"the pruner library imports the application: {result.stdout.strip()}"
