"""PLATON and magnitude pruning: the update rule, scores, masking, selection, training, resume, errors."""
import copy
import json

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import BertConfig, BertForSequenceClassification

from pruners import MagnitudePruner, PlatonPruner, PrunerSettingError, format_report, sparsity_report
from pruners.kernels import numba_available
from pruners.report import dump_json

NO_MASKING = dict(initial_threshold=1.0, final_threshold=1.0, warmup_steps=0, initial_warmup=0, final_warmup=0)


def one_parameter_model(values):
    """A module whose only parameter is named intermediate.dense.weight (selected by default)."""
    model = nn.Module()
    model.intermediate = nn.Module()
    model.intermediate.dense = nn.Module()
    model.intermediate.dense.weight = nn.Parameter(torch.tensor(values, dtype=torch.float32))
    return model


def drive(pruner, model, steps):
    """Feed update t the weights p = [-1, 2] and gradients g = [x, x/2], so |p⊙g| = [x, x]."""
    param = model.intermediate.dense.weight
    for t, x in enumerate(steps, start=1):
        param.data = torch.tensor([-1.0, 2.0])
        param.grad = torch.tensor([x, x / 2])
        pruner.step(t)


def statistics(pruner):
    """Statistic name -> values of the one parameter, read through the state dict."""
    return {key.split("/")[0]: tensor.tolist() for key, tensor in pruner.state_dict()["tensors"].items()}


KERNELS = ["torch", pytest.param("numba", marks=pytest.mark.skipif(not numba_available(), reason="numba not installed"))]


def platon_one_parameter(deltaT, beta1=0.5, beta2=0.5, total_steps=100, kernels="auto"):
    model = one_parameter_model([0.0, 0.0])
    return model, PlatonPruner(model, total_steps, beta1=beta1, beta2=beta2, deltaT=deltaT, kernels=kernels,
                               **NO_MASKING)


@pytest.mark.parametrize("kernels", KERNELS)
def test_update_rule_across_window_boundaries_deltaT_2(kernels):
    # hand computed, β1 = β2 = 0.5, |p⊙g| = 2, 4, 6, 8
    expected = [dict(I=1.0, A=0.0, U=0.0),          # t=1, j=1: I = (1·0 + 2)/2   (zero I counts as a sample)
                dict(I=4.0, A=0.5, U=0.25),         # t=2, j=0: Ī = .5·0 + .5·1; U = .5·|1 − .5|; I = 4
                dict(I=5.0, A=0.5, U=0.25),         # t=3, j=1: I = (4 + 6)/2
                dict(I=8.0, A=2.75, U=1.25)]        # t=4, j=0: Ī = .5·.5 + .5·5; U = .5·.25 + .5·|5 − 2.75|
    model, pruner = platon_one_parameter(deltaT=2, kernels=kernels)
    for t, (x, want) in enumerate(zip([2.0, 4.0, 6.0, 8.0], expected), start=1):
        drive_one(pruner, model, t, x)
        got = statistics(pruner)
        for short, name in (("I", "sensitivity"), ("A", "sensitivity_average"), ("U", "uncertainty")):
            assert got[name] == pytest.approx([want[short]] * 2, rel=1e-6), \
                f"t={t} {name}: {got[name]} vs {want[short]}"
    score = pruner.scores()["intermediate.dense.weight"]
    assert score.tolist() == pytest.approx([2.75 * 1.25] * 2, rel=1e-6), f"S = Ī⊙U, got {score}"


def drive_one(pruner, model, t, x):
    param = model.intermediate.dense.weight
    param.data = torch.tensor([-1.0, 2.0])
    param.grad = torch.tensor([x, x / 2])
    return pruner.step(t)


@pytest.mark.parametrize("kernels", KERNELS)
def test_update_rule_across_window_boundaries_deltaT_3(kernels):
    # hand computed, β1 = β2 = 0.5, |p⊙g| = 3, 6, 9, 12, 15, 18
    expected = [(1.5, 0.0, 0.0),       # t=1, j=1: (0 + 3)/2
                (3.0, 0.0, 0.0),       # t=2, j=2: (2·1.5 + 6)/3
                (9.0, 1.5, 0.75),      # t=3, j=0: Ī = .5·3; U = .5·|3 − 1.5|; I = 9
                (10.5, 1.5, 0.75),     # t=4, j=1: (9 + 12)/2
                (12.0, 1.5, 0.75),     # t=5, j=2: (2·10.5 + 15)/3
                (18.0, 6.75, 3.0)]     # t=6, j=0: Ī = .5·1.5 + .5·12; U = .5·.75 + .5·|12 − 6.75|
    model, pruner = platon_one_parameter(deltaT=3, kernels=kernels)
    for t, (x, want) in enumerate(zip([3.0, 6.0, 9.0, 12.0, 15.0, 18.0], expected), start=1):
        drive_one(pruner, model, t, x)
        got = statistics(pruner)
        got_triple = (got["sensitivity"][0], got["sensitivity_average"][0], got["uncertainty"][0])
        assert got_triple == pytest.approx(want, rel=1e-6), f"t={t}: (I, Ī, U) = {got_triple}, want {want}"


@pytest.mark.parametrize("kernels", KERNELS)
def test_first_window_quirk(kernels):
    model, pruner = platon_one_parameter(deltaT=2, kernels=kernels)
    drive_one(pruner, model, 1, 6.0)
    assert statistics(pruner)["sensitivity"] == pytest.approx([3.0, 3.0]), "deltaT=2, step 1: I = |p⊙g|/2"


@pytest.mark.parametrize("kernels", KERNELS)
def test_beta2_zero_uses_instant_deviation(kernels):
    model, pruner = platon_one_parameter(deltaT=2, beta1=0.5, beta2=0.0, kernels=kernels)
    drive(pruner, model, [2.0, 4.0])
    got = statistics(pruner)
    assert got["uncertainty"] == pytest.approx([0.5, 0.5]), f"β2 = 0: U = |I − Ī| = |1 − 0.5|, got {got}"
    assert pruner.scores()["intermediate.dense.weight"].tolist() == pytest.approx([0.25, 0.25]), "S = Ī⊙U"


@pytest.mark.parametrize("kernels", KERNELS)
def test_beta2_one_scores_are_the_average_alone(kernels):
    model, pruner = platon_one_parameter(deltaT=2, beta1=0.5, beta2=1.0, kernels=kernels)
    drive(pruner, model, [2.0, 4.0, 6.0, 8.0])
    assert "uncertainty" not in statistics(pruner), "β2 = 1 keeps no uncertainty"
    assert pruner.scores()["intermediate.dense.weight"].tolist() == pytest.approx([2.75, 2.75]), "S = Ī"
    assert not any(key.startswith("uncertainty/") for key in pruner.state_dict()["tensors"]), "nor saves it"


@pytest.mark.parametrize("kernels", KERNELS)
def test_missing_gradient_counts_as_zero_importance(kernels):
    model, pruner = platon_one_parameter(deltaT=1, beta1=0.0, beta2=0.5, kernels=kernels)
    model.intermediate.dense.weight.grad = None
    pruner.step(1)
    assert statistics(pruner)["sensitivity"] == [0.0, 0.0], "no gradient: |p⊙g| = 0"


def reference_platon(xs, deltaT, beta1, beta2):
    """docs/METHODS.md §1 literally, in Python floats."""
    importance = average = uncertainty = 0.0
    for t, x in enumerate(xs, start=1):
        j = t % deltaT
        if j == 0:
            average = beta1 * average + (1 - beta1) * importance
            if beta2 != 1:
                uncertainty = beta2 * uncertainty + (1 - beta2) * abs(importance - average)
            importance = x
        else:
            importance = (j * importance + x) / (j + 1)
    return importance, average, uncertainty


@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("deltaT,beta1,beta2", [(1, 0.85, 0.95), (4, 0.85, 0.85), (5, 0.3, 0.0), (3, 1.0, 1.0)])
def test_long_runs_match_the_literal_formulas(deltaT, beta1, beta2, kernels):
    xs = [float(v) for v in torch.rand(23, generator=torch.Generator().manual_seed(deltaT)) * 10]
    model, pruner = platon_one_parameter(deltaT, beta1, beta2, kernels=kernels)
    drive(pruner, model, xs)
    got = statistics(pruner)
    want = reference_platon(xs, deltaT, beta1, beta2)
    assert got["sensitivity"][0] == pytest.approx(want[0], rel=1e-5), f"I: {got} vs {want}"
    assert got["sensitivity_average"][0] == pytest.approx(want[1], rel=1e-5), f"Ī: {got} vs {want}"
    if beta2 != 1:
        assert got["uncertainty"][0] == pytest.approx(want[2], rel=1e-5, abs=1e-6), f"U: {got} vs {want}"


# ---- masking

def mask_now(values, final_threshold, pruner_class=MagnitudePruner, **extra):
    """A pruner whose first update is a masking step at remaining ratio `final_threshold`."""
    model = one_parameter_model(values)
    pruner = pruner_class(model, 2, initial_threshold=1.0, final_threshold=final_threshold, warmup_steps=1,
                          initial_warmup=0, final_warmup=1, deltaT=1, **extra)
    return model, pruner


def test_magnitude_score_and_strict_masking():
    model, pruner = mask_now([0.3, -0.1, 0.2, -0.2, 0.5, 0.05], final_threshold=0.5)   # k = floor(6·0.5) = 3
    assert pruner.scores()["intermediate.dense.weight"].tolist() == pytest.approx([0.3, 0.1, 0.2, 0.2, 0.5, 0.05]), \
        "magnitude score is |p|"
    ratio, threshold = pruner.step(1)
    assert ratio == 0.5 and threshold == pytest.approx(0.2), f"τ = 3rd smallest |p| = 0.2, got {threshold}"
    kept = model.intermediate.dense.weight.tolist()
    assert kept == pytest.approx([0.3, 0.0, 0.2, -0.2, 0.5, 0.0]), f"only |p| < τ is zeroed (ties at τ kept): {kept}"
    assert pruner.last_step_stats.masked and pruner.last_step_stats.threshold_searched, "stats say it masked"


def test_k_zero_masks_nothing():
    model, pruner = mask_now([0.3, -0.1, 0.2, 0.5, 0.05], final_threshold=0.9)   # k = floor(5·0.1) = 0
    assert pruner.step(1) == (0.9, None), "k = 0: a masking step that masks nothing returns no threshold"
    assert (model.intermediate.dense.weight != 0).all(), "nothing masked when k = 0"


def tiny_bert(seed=0):
    torch.manual_seed(seed)
    config = BertConfig(num_hidden_layers=2, hidden_size=32, num_attention_heads=4, intermediate_size=64,
                        vocab_size=100, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return BertForSequenceClassification(config)   # no dropout: runs are reproducible step by step


def test_only_encoder_projections_are_selected():
    model = tiny_bert()
    pruner = PlatonPruner(model, 10, beta1=0.85, beta2=0.85, deltaT=1, **NO_MASKING)
    names = pruner.parameter_names
    for forbidden in ("embeddings", "LayerNorm", "pooler", "classifier"):
        assert not any(forbidden in name for name in names), f"{forbidden} must never be selected: {names}"
    expected = {f"bert.encoder.layer.{layer}.{module}.{kind}" for layer in range(2) for kind in ("weight", "bias")
                for module in ("attention.self.query", "attention.self.key", "attention.self.value",
                               "attention.output.dense", "intermediate.dense", "output.dense")}
    assert set(names) == expected, f"weights and biases of the six projections per layer: {sorted(names)}"
    custom = PlatonPruner(model, 10, beta1=0.85, beta2=0.85, deltaT=1, target_substrings=("classifier",), **NO_MASKING)
    assert custom.parameter_names == ["classifier.weight", "classifier.bias"], "target_substrings is configurable"


def test_no_matching_parameter_is_an_error():
    with pytest.raises(ValueError, match="target_substrings"):
        MagnitudePruner(nn.Linear(2, 2), 10, deltaT=1, **NO_MASKING)


def train(model, pruner, steps, seed=5, start=1, optimizer=None):
    """A short Adamax run on random batches (the same batch for the same t)."""
    optimizer = optimizer or torch.optim.Adamax(model.parameters(), lr=1e-2)
    returned = []
    for t in range(start, steps + 1):
        generator = torch.Generator().manual_seed(seed * 1000 + t)
        ids = torch.randint(0, 100, (4, 12), generator=generator)
        labels = torch.randint(0, 2, (4,), generator=generator)
        model(input_ids=ids, labels=labels).loss.backward()
        optimizer.step()
        returned.append(pruner.step(t))
        optimizer.zero_grad()
    return returned, optimizer


SCHEDULE = dict(initial_threshold=1.0, final_threshold=0.25, warmup_steps=2, initial_warmup=1, final_warmup=3)
# T = 20: warm-up 1..2, cubic 3..14, final 15..20


@pytest.mark.parametrize("method", ["platon", "magnitude"])
def test_masking_steps_and_exact_target_at_the_end(method):
    model = tiny_bert()
    if method == "platon":
        pruner = PlatonPruner(model, 20, beta1=0.85, beta2=0.95, deltaT=4, **SCHEDULE)
    else:
        pruner = MagnitudePruner(model, 20, deltaT=4, **SCHEDULE)
    returned, _ = train(model, pruner, 20)
    masked_at = [t for t, (_, threshold) in enumerate(returned, start=1) if threshold is not None]
    assert masked_at == [4, 8, 12, 15, 16, 17, 18, 19, 20], \
        f"{method}: cubic phase every 4th update, final phase every update: {masked_at}"
    assert returned[-1][0] == 0.25, "the last ratio is final_threshold"

    threshold = returned[-1][1]
    scores = torch.cat([s.flatten() for s in pruner.scores().values()]) if method == "platon" else None
    weights = torch.cat([p.detach().flatten() for p in pruner.params])
    total = weights.numel()
    k = int(total * (1 - 0.25))
    zeros = int((weights == 0).sum())
    if method == "platon":   # scores are statistics, untouched by masking: τ can be checked afterwards
        assert threshold == torch.kthvalue(scores, k).values.item(), "τ is torch.kthvalue of all scores"
        assert zeros == int((scores < threshold).sum()), "exactly the entries with S < τ are zero"
    ties = 0 if method == "magnitude" else int((scores == threshold).sum()) - 1
    assert k - 1 - ties <= zeros <= k - 1, \
        f"{method}: {zeros} zeros of {total}, want k - 1 = {k - 1} (τ itself is kept), up to {ties} ties"


def test_threshold_is_reused_between_windows_and_still_exact():
    model = tiny_bert()
    pruner = PlatonPruner(model, 20, beta1=0.85, beta2=0.95, deltaT=4, **SCHEDULE)
    optimizer = None
    for t in range(1, 21):
        returned, optimizer = train(model, pruner, t, start=t, optimizer=optimizer)
        if t in (17, 18, 19):
            stats = pruner.last_step_stats
            assert not stats.threshold_searched, f"t={t}: scores and k unchanged since the window close at 16"
            scores = torch.cat([s.flatten() for s in pruner.scores().values()])
            k = int(scores.numel() * 0.75)
            assert stats.mask_threshold == torch.kthvalue(scores, k).values.item(), f"t={t}: reused τ is exact"
        if t in (15, 16, 20):
            assert pruner.last_step_stats.threshold_searched, f"t={t}: k (15) or the scores (16, 20) changed"


def test_step_leaves_the_global_random_state_alone():
    model = tiny_bert()
    pruner = MagnitudePruner(model, 20, deltaT=1, **SCHEDULE)   # searches a threshold at every masking step
    before = torch.get_rng_state()
    train_rng = torch.Generator().manual_seed(0)
    for t in range(1, 8):
        for param in model.parameters():
            param.grad = torch.randn(param.shape, generator=train_rng)
        pruner.step(t)
    assert pruner.last_step_stats.threshold_searched, "the sample for the search was drawn"
    assert torch.equal(before, torch.get_rng_state()), "sampling must not move the global RNG (dropout, data order)"


def test_num_threads_changes_speed_not_results():
    results = {}
    for num_threads in (None, 1):
        model = tiny_bert()
        pruner = PlatonPruner(model, 20, beta1=0.85, beta2=0.95, deltaT=3, num_threads=num_threads, **SCHEDULE)
        before = torch.get_num_threads()
        returned, _ = train(model, pruner, 14)
        assert torch.get_num_threads() == before, f"num_threads={num_threads}: torch's setting is restored"
        results[num_threads] = (returned, [p.detach().clone() for p in pruner.params])
    assert results[None][0] == results[1][0], "same ratios and thresholds with one thread"
    assert all(torch.equal(a, b) for a, b in zip(results[None][1], results[1][1])), "same masked weights"
    with pytest.raises(ValueError, match="num_threads=0"):
        MagnitudePruner(tiny_bert(), 20, deltaT=3, num_threads=0, **SCHEDULE)


def save_and_load(state, directory):
    """Through safetensors (tensors) and JSON (the rest), as a caller would."""
    save_file(state["tensors"], str(directory / "pruner.safetensors"))
    (directory / "pruner.json").write_text(json.dumps({k: v for k, v in state.items() if k != "tensors"}))
    restored = json.loads((directory / "pruner.json").read_text())
    restored["tensors"] = load_file(str(directory / "pruner.safetensors"))
    return restored


@pytest.mark.parametrize("method", ["platon", "magnitude"])
def test_state_dict_round_trip_continues_identically(method, tmp_path):
    def build(model):
        if method == "platon":
            return PlatonPruner(model, 20, beta1=0.85, beta2=0.95, deltaT=3, **SCHEDULE)
        return MagnitudePruner(model, 20, deltaT=3, **SCHEDULE)

    straight_model = tiny_bert()
    straight = build(straight_model)
    straight_returned, _ = train(straight_model, straight, 20)

    model = tiny_bert()
    pruner = build(model)
    first, optimizer = train(model, pruner, 13)
    state = save_and_load(pruner.state_dict(), tmp_path)
    model_state, optimizer_state = copy.deepcopy(model.state_dict()), copy.deepcopy(optimizer.state_dict())

    resumed_model = tiny_bert(seed=123)
    resumed_model.load_state_dict(model_state)
    resumed_optimizer = torch.optim.Adamax(resumed_model.parameters(), lr=1e-2)
    resumed_optimizer.load_state_dict(optimizer_state)
    resumed = build(resumed_model)
    resumed.load_state_dict(state)
    assert resumed.last_step == 13, "the state remembers its last step"
    second, _ = train(resumed_model, resumed, 20, start=14, optimizer=resumed_optimizer)

    assert first + second == straight_returned, f"{method}: same ratios and thresholds as an uninterrupted run"
    for (name, a), b in zip(straight_model.state_dict().items(), resumed_model.state_dict().values()):
        assert torch.equal(a, b), f"{method}: {name} differs after resuming"
    for key, tensor in straight.state_dict()["tensors"].items():
        assert torch.equal(tensor, resumed.state_dict()["tensors"][key]), f"{method}: pruner state {key} differs"


def test_state_dict_format():
    model = tiny_bert()
    pruner = PlatonPruner(model, 20, beta1=0.85, beta2=0.95, deltaT=3, **SCHEDULE)
    state = pruner.state_dict()
    assert state["method"] == "platon" and state["format"] == 1, f"header: {state['method']}, {state['format']}"
    json.dumps({k: v for k, v in state.items() if k != "tensors"})   # everything else is JSON
    assert len(state["tensors"]) == 3 * len(pruner.parameter_names), "I, Ī, U for every selected parameter"
    assert "uncertainty/bert.encoder.layer.0.output.dense.bias" in state["tensors"], sorted(state["tensors"])[:3]
    numel = sum(t.numel() for t in state["tensors"].values())
    assert numel == 3 * pruner.total_numel, "three float32 per selected entry, no more"


def test_loading_into_another_model_or_method_is_refused():
    model = tiny_bert()
    state = PlatonPruner(model, 20, beta1=0.85, beta2=0.95, deltaT=3, **SCHEDULE).state_dict()
    with pytest.raises(ValueError, match="method 'platon'"):
        MagnitudePruner(model, 20, deltaT=3, **SCHEDULE).load_state_dict(state)
    other = PlatonPruner(model, 20, beta1=0.85, beta2=0.95, deltaT=3, target_substrings=("intermediate.dense",),
                         **SCHEDULE)
    with pytest.raises(ValueError, match="other parameters"):
        other.load_state_dict(state)


def refused(**changes):
    values = dict(SCHEDULE, beta1=0.85, beta2=0.85, deltaT=10)
    values.update(changes)
    with pytest.raises(PrunerSettingError) as caught:
        PlatonPruner(tiny_bert(), 100, **values)
    return caught.value


def as_flags(err):
    """The message as the command line renders it: every parameter as its flag."""
    return err.with_names({p: "--" + p for p in err.names})


@pytest.mark.parametrize("flag,value", [("beta1", -0.1), ("beta1", 1.5), ("beta2", -0.5), ("beta2", 2.0),
                                        ("beta2", 1.0001), ("final_threshold", 0.0), ("final_threshold", 1.1),
                                        ("initial_threshold", 0.2), ("initial_threshold", 1.5), ("deltaT", 0)])
def test_every_invalid_hyperparameter_is_refused(flag, value):
    err = refused(**{flag: value})
    message = str(err)
    assert message.startswith(f"{flag}={value} is invalid"), f"names the parameter and value: {message!r}"
    assert err.parameter == flag and "--" not in message, f"the library's own words: {message!r}"
    assert as_flags(err).startswith(f"--{flag}={value} is invalid"), f"names the flag and value: {as_flags(err)!r}"
    assert "must be" in message and ";" in message, f"gives the range and a fix: {message!r}"


def test_impossible_schedule_is_refused_by_both_pruners():
    message = str(refused(warmup_steps=30, initial_warmup=1, final_warmup=3))
    assert "T=100" in message and "ti=" in message and "tf=" in message, message
    with pytest.raises(ValueError, match="T=100"):
        MagnitudePruner(tiny_bert(), 100, **dict(SCHEDULE, warmup_steps=30, deltaT=1))


def test_platon_window_longer_than_the_run_is_refused():
    err = refused(deltaT=101)
    message, flags = str(err), as_flags(err)
    assert message.startswith("deltaT=101 is invalid") and "T=100" in message and "deltaT 10" in message, message
    assert flags.startswith("--deltaT=101 is invalid") and "T=100" in flags and "--deltaT 10" in flags, flags
    PlatonPruner(tiny_bert(), 100, **dict(SCHEDULE, beta1=0.85, beta2=0.85, deltaT=100))   # one window: allowed
    MagnitudePruner(tiny_bert(), 100, **dict(SCHEDULE, deltaT=101))   # magnitude needs no window: final phase masks


def test_beta2_one_and_zero_are_accepted():
    for beta2 in (0.0, 1.0):
        PlatonPruner(tiny_bert(), 100, **dict(SCHEDULE, beta1=0.85, beta2=beta2, deltaT=10))


def test_sparsity_report(tmp_path):
    model = tiny_bert()
    pruner = MagnitudePruner(model, 20, deltaT=4, **SCHEDULE)
    train(model, pruner, 20)
    report = sparsity_report(model)
    assert len(report["rows"]) == 24, "one row per selected parameter"
    row = next(r for r in report["rows"] if r["name"] == "bert.encoder.layer.1.attention.self.key.bias")
    assert (row["layer"], row["module_type"], row["numel"]) == (1, "key", 32), f"parsed row: {row}"
    assert set(report["per_module_type"]) == {"query", "key", "value", "attention.output", "intermediate", "output"}, \
        report["per_module_type"].keys()
    assert set(report["per_layer"]) == {"0", "1"}, report["per_layer"].keys()
    zeros = sum(int((p == 0).sum()) for p in pruner.params)
    assert report["overall"]["zeros"] == zeros, "overall zeros are the selected entries at 0"
    assert report["overall"]["remaining_ratio"] == pytest.approx(0.25, abs=2 / pruner.total_numel), report["overall"]
    assert sum(r["numel"] for r in report["per_layer"].values()) == pruner.total_numel, "layers add up"
    text = format_report(report, per_parameter=True)
    assert "attention.output" in text and "all selected parameters" in text, text
    dump_json(report, str(tmp_path / "report.json"))
    assert json.loads((tmp_path / "report.json").read_text()) == report, "JSON round trip"


def test_plan_slabs_cuts_and_gathers_parameters_in_order():
    from pruners.layout import plan_slabs
    params = [torch.zeros(10), torch.zeros(3), torch.zeros(4, 6).t(), torch.zeros(7)]   # the third is non-contiguous
    offsets = [0, 10, 13, 37]
    slabs = plan_slabs(params, offsets, 8)
    covered = [(slab.start, slab.stop) for slab in slabs]
    assert covered == [(0, 8), (8, 13), (13, 37), (37, 44)], f"slabs tile the flat space in order: {covered}"
    assert [(p.index, p.start, p.stop) for p in slabs[1].pieces] == [(0, 8, 10), (1, 0, 3)], \
        "a parameter is cut where a slab fills up and small ones are gathered"
    assert slabs[2].pieces[0].whole and slabs[2].numel == 24, "a non-contiguous parameter is one whole piece"
    for slab in slabs:
        assert sum(p.numel for p in slab.pieces) == slab.numel, f"pieces fill {slab} exactly"


@pytest.mark.parametrize("method", ["platon", "magnitude"])
def test_slab_size_changes_nothing_but_speed(method, monkeypatch):
    """Slabs that cut every parameter into pieces (and one non-contiguous parameter, a whole piece)
    give the same statistics, thresholds and masked weights as slabs holding whole parameters."""
    import pruners.layout
    results = {}
    for slab_numel in (1 << 19, 100):
        monkeypatch.setattr(pruners.layout, "SLAB_NUMEL", slab_numel)
        model = tiny_bert()
        dense = model.bert.encoder.layer[1].intermediate.dense
        dense.weight = nn.Parameter(dense.weight.detach().t().contiguous().t())
        assert not dense.weight.is_contiguous(), "the test needs a non-contiguous selected parameter"
        if method == "platon":
            pruner = PlatonPruner(model, 20, beta1=0.85, beta2=0.95, deltaT=3, **SCHEDULE)
        else:
            pruner = MagnitudePruner(model, 20, deltaT=3, **SCHEDULE)
        if slab_numel == 100:
            assert len(pruner.slabs) > 2 * len(pruner.params) // 3, "small slabs cut the parameters"
        returned, _ = train(model, pruner, 20)
        results[slab_numel] = (returned, [p.detach().clone() for p in pruner.params], pruner.state_dict()["tensors"])
    big, small = results[1 << 19], results[100]
    assert big[0] == small[0], f"{method}: same ratios and thresholds whatever the slab size"
    assert all(torch.equal(a, b) for a, b in zip(big[1], small[1])), f"{method}: same masked weights"
    assert big[2].keys() == small[2].keys() and all(torch.equal(big[2][k], small[2][k]) for k in big[2]), \
        f"{method}: same statistics"
