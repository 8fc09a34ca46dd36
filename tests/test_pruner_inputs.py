"""The pruner library's inputs (pruners/, used from any PyTorch loop): every bad model, setting, step or
state is refused with one ValueError/TypeError sentence naming the argument and what to do, before anything
changes; frozen parameters are left alone; float16/bfloat16 parameters prune like float32 ones.
docs/ERRORS.md, "The pruner library (pruners/)", lists each case."""
import math
import warnings

import pytest
import torch
from torch import nn
from transformers import BertModel

from pruners import (MagnitudePruner, PlatonPruner, PrunerSettingError, PrunerSettingTypeError,
                     sparsity_report)
from tests.conftest import tiny_bert_config
from tests.test_errors import fail, succeed, train_args  # noqa: F401 - train_args is a fixture

# T = 8: warm-up 1..2 (no masking), cubic phase 3..6 (masking every second update), final phase 7..8
SCHEDULE = dict(initial_threshold=1.0, final_threshold=0.5, warmup_steps=2, initial_warmup=1, final_warmup=1,
                deltaT=2)
TOTAL = 8
BETAS = dict(beta1=0.85, beta2=0.95)
# the pruners of the shared base (pruners.base); movement's published form has its own API (tests/test_movement.py)
PRUNERS = {"platon": (PlatonPruner, BETAS), "magnitude": (MagnitudePruner, {})}
GRADIENT_SCORED = ["platon"]


def tiny_bert(seed=0):
    """A 2-layer BertModel (no dropout) with small, non-zero biases, so every selected entry has a score."""
    torch.manual_seed(seed)
    model = BertModel(tiny_bert_config(vocab_size=100, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("bias"):
                param.normal_(0, 0.02)
    return model


def build(method, model, total_steps=TOTAL, **changes):
    cls, extra = PRUNERS[method]
    return cls(model, total_steps, **{**SCHEDULE, **extra, **changes})


def give_gradients(model, t, scale=1.0):
    """Gradients of update t (the same for the same t), where a backward pass would put them."""
    generator = torch.Generator().manual_seed(1000 + t)
    for param in model.parameters():
        if param.requires_grad:
            param.grad = (torch.randn(param.shape, generator=generator) * scale).to(param.dtype)


def refusal(error_type, call, *needles):
    """Run `call`, which must raise `error_type` with a one-line message containing every needle."""
    with pytest.raises(error_type) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message, f"one line: {message!r}"
    for needle in needles:
        assert needle in message, f"the message should contain {needle!r}: {message!r}"
    return caught.value


# ---- frozen parameters

@pytest.mark.parametrize("method", list(PRUNERS))
def test_frozen_parameters_are_left_alone_with_a_warning(method):
    model = tiny_bert()
    frozen = {name: param.detach().clone() for name, param in model.named_parameters() if "layer.0." in name}
    for name, param in model.named_parameters():
        param.requires_grad_(name not in frozen)
    with pytest.warns(UserWarning, match="frozen parameter") as caught:
        pruner = build(method, model)
    warning = str(caught[0].message)
    assert "encoder.layer.0.attention.self.query.weight" in warning and "unfreeze them" in warning, \
        f"the warning names the frozen parameters and what to do: {warning!r}"
    assert not any(name in frozen for name in pruner.parameter_names), \
        f"{method}: no frozen parameter is selected: {pruner.parameter_names}"
    for t in range(1, TOTAL + 1):
        give_gradients(model, t)
        pruner.step(t)
    for name, param in model.named_parameters():
        if name in frozen:
            assert torch.equal(param, frozen[name]), f"{method}: frozen {name} must be untouched"
    assert_masked_below_threshold(pruner, method)


def assert_masked_below_threshold(pruner, what):
    """After a masking step at ratio 0.5: τ is the k-th smallest score and every entry scored below it
    is zero (entries tied with τ are kept, so up to the ties fewer than k − 1 may be)."""
    threshold = pruner.last_step_stats.mask_threshold
    scores = torch.cat([score.flatten() for score in pruner.scores().values()])
    weights = torch.cat([param.detach().flatten() for param in pruner.params])
    k = int(pruner.total_numel * 0.5)
    below, at_most = int((scores < threshold).sum()), int((scores <= threshold).sum())
    assert below <= k - 1 < at_most, f"{what}: τ={threshold} is the k-th smallest score ({below}, {at_most}, k={k})"
    assert not weights[scores < threshold].any(), f"{what}: every entry scored below τ={threshold} is zero"


def test_every_selected_parameter_frozen_is_refused():
    model = tiny_bert()
    model.requires_grad_(False)
    refusal(ValueError, lambda: build("platon", model), "every parameter target_substrings",
            "is frozen (requires_grad=False)", "unfreeze the ones to prune")


# ---- float16 and bfloat16 parameters

@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("method", list(PRUNERS))
def test_half_precision_parameters_prune_to_the_target(method, dtype):
    model = tiny_bert().to(dtype)
    pruner = build(method, model)
    returned = []
    for t in range(1, TOTAL + 1):
        give_gradients(model, t)
        returned.append(pruner.step(t))
    ratio, threshold = returned[-1]
    assert ratio == 0.5 and threshold is not None, f"{method} {dtype}: the last update masks at 0.5: {returned}"
    assert all(param.dtype == dtype for param in pruner.params), f"{method}: the parameters keep their dtype"
    scores = torch.cat([score.flatten() for score in pruner.scores().values()])
    assert scores.dtype == torch.float32, f"{method} {dtype}: scores are float32, got {scores.dtype}"
    assert_masked_below_threshold(pruner, f"{method} {dtype}")


def test_half_precision_importance_is_computed_in_float32():
    # |p·g| = 1e-8 lies below float16's smallest subnormal (6e-8): in float16 it would be 0
    model = nn.Module()
    model.intermediate = nn.Module()
    model.intermediate.dense = nn.Module()
    model.intermediate.dense.weight = nn.Parameter(torch.tensor([1e-3, 2e-3], dtype=torch.float16))
    pruner = PlatonPruner(model, 4, initial_threshold=1.0, final_threshold=1.0, warmup_steps=0, initial_warmup=0,
                          final_warmup=0, beta1=0.5, beta2=0.5, deltaT=1)
    model.intermediate.dense.weight.grad = torch.tensor([1e-5, 1e-5], dtype=torch.float16)
    pruner.step(1)
    sensitivity = pruner.state_dict()["tensors"]["sensitivity/intermediate.dense.weight"]
    weight, grad = model.intermediate.dense.weight.detach().float(), torch.tensor([1e-5, 1e-5]).half().float()
    assert sensitivity.tolist() == pytest.approx((weight * grad).abs().tolist(), rel=1e-6), \
        f"|p·g| of float16 weights in float32, not flushed to 0: {sensitivity}"


# ---- steps

@pytest.mark.parametrize("method", GRADIENT_SCORED)
def test_masking_before_any_gradient_is_refused(method):
    model = tiny_bert()
    pruner = build(method, model)
    before = {name: param.detach().clone() for name, param in model.named_parameters()}
    for t in (1, 2, 3):     # warm-up and a cubic update that does not mask: nothing to refuse yet
        pruner.step(t)
    err = refusal(ValueError, lambda: pruner.step(4), "step(4) would mask by scores no gradient has reached",
                  "e.g. encoder.layer.0.attention.self.query.weight", "so every score is 0",
                  "call step(t) after loss.backward() and optimizer.step() and before optimizer.zero_grad()")
    assert type(err) is ValueError, f"a plain ValueError: {type(err)}"
    assert pruner.last_step == 3, f"the refused step changed nothing: last_step {pruner.last_step}"
    assert all(torch.equal(param, before[name]) for name, param in model.named_parameters()), "no weight masked"
    give_gradients(model, 4)
    assert pruner.step(4)[1] is not None, f"{method}: with gradients the same step masks"


def test_magnitude_needs_no_gradient():
    model = tiny_bert()
    pruner = build("magnitude", model)
    returned = [pruner.step(t) for t in range(1, TOTAL + 1)]
    assert returned[-1][0] == 0.5 and returned[-1][1] is not None, f"magnitude masks without gradients: {returned}"


@pytest.mark.parametrize("method", GRADIENT_SCORED)
def test_an_update_without_gradients_after_others_is_accepted(method):
    """train.py --skip_nan_batches: a skipped batch leaves no gradient, and the update still steps the pruner."""
    model = tiny_bert()
    pruner = build(method, model)
    for t in range(1, TOTAL + 1):
        if t in (1, 4):     # the first update and a masking one skipped
            model.zero_grad(set_to_none=True)
        else:
            give_gradients(model, t)
        pruner.step(t)
    assert pruner.gradient_steps == TOTAL - 2, f"the steps with gradients are counted: {pruner.gradient_steps}"
    assert pruner.last_step_stats.masked, f"{method}: the run masks as usual"


@pytest.mark.parametrize("method", list(PRUNERS))
def test_a_repeated_or_earlier_step_is_refused(method):
    model = tiny_bert()
    pruner = build(method, model)
    for t in (1, 2, 3):
        give_gradients(model, t)
        pruner.step(t)
    before = pruner.state_dict()
    for t in (3, 2):
        refusal(ValueError, lambda: pruner.step(t), f"step({t}) came after step(3)",
                "stepped once, in increasing order", "the next is 4")
    assert pruner.last_step == 3 and pruner.gradient_steps == before["gradient_steps"], "the refusals changed nothing"
    for key, tensor in pruner.state_dict()["tensors"].items():
        assert torch.equal(tensor, before["tensors"][key]), f"{method}: {key} unchanged by the refused steps"
    give_gradients(model, 4)
    pruner.step(4)
    assert pruner.last_step == 4, "the next update is accepted"


@pytest.mark.parametrize("value", [1.5, "1", None, True, torch.tensor(1)])
def test_a_step_that_is_not_an_integer_is_refused(value):
    pruner = build("magnitude", tiny_bert())
    refusal(TypeError, lambda: pruner.step(value), f"global_step={value!r} must be an integer",
            "the optimizer update just made")


def test_a_resumed_pruner_continues_at_the_next_update():
    model = tiny_bert()
    pruner = build("platon", model)
    for t in range(1, 4):
        give_gradients(model, t)
        pruner.step(t)
    resumed = build("platon", model)
    resumed.load_state_dict(pruner.state_dict())
    refusal(ValueError, lambda: resumed.step(1), "step(1) came after step(3)", "a state loaded at update 3",
            "the next is 4")
    give_gradients(model, 4)
    resumed.step(4)
    assert resumed.last_step == 4 and resumed.gradient_steps == 4, "the resumed pruner goes on at t + 1"


def test_a_state_without_gradient_steps_loads_as_if_every_step_had_gradients():
    model = tiny_bert()
    pruner = build("platon", model)
    pruner.step(1)
    pruner.step(2)
    state = {key: value for key, value in pruner.state_dict().items() if key != "gradient_steps"}
    resumed = build("platon", model)
    resumed.load_state_dict(state)          # a state written before gradient_steps existed
    assert resumed.gradient_steps == 2, "older states count every step as one with gradients: no false refusal"
    resumed.step(3)


@pytest.mark.parametrize("method", GRADIENT_SCORED)
def test_train_py_skip_nan_batches_still_steps_the_pruner(method, train_args, tmp_path, capsys, monkeypatch):
    """train.py's own pattern: a skipped update (non-finite loss, --skip_nan_batches) steps the pruner
    without gradients; here the first update (before any masking) and a masking one."""
    import json

    import train

    calls, original = [], train.task_loss

    def loss(logits, labels, task):
        calls.append(1)
        value = original(logits, labels, task)
        return value * float("nan") if len(calls) in (1, 4) else value
    monkeypatch.setattr(train, "task_loss", loss)
    succeed(train.main, train_args(tmp_path, "--pruner", method, "--skip_nan_batches", "--initial_threshold", "1",
                                   "--final_threshold", "0.5", "--warmup_steps", "1", "--initial_warmup", "1",
                                   "--final_warmup", "1", "--deltaT", "1"), capsys)
    log = (tmp_path / "log.log").read_text()
    assert "skipped batch 0 of epoch 0" in log and "skipped batch 3 of epoch 0" in log, "both batches were skipped"
    remaining = json.loads((tmp_path / "sparsity_report.json").read_text())["overall"]["remaining_ratio"]
    assert remaining == pytest.approx(0.5, abs=0.01), f"{method}: the run still reaches its target: {remaining}"


@pytest.mark.parametrize("method", ["platon"])
def test_train_py_with_every_loss_before_masking_skipped_is_a_user_error(method, train_args, tmp_path, capsys,
                                                                          monkeypatch):
    """No finite loss before the first masking step leaves the scores empty: one line, exit 2."""
    import train

    monkeypatch.setattr(train, "task_loss", lambda logits, labels, task: logits.sum() * float("nan"))
    fail(train.main, train_args(tmp_path, "--pruner", method, "--skip_nan_batches", "--initial_threshold", "1",
                                "--final_threshold", "0.5", "--warmup_steps", "1", "--initial_warmup", "1",
                                "--final_warmup", "1", "--deltaT", "1"), capsys,
         f"--pruner {method} could not prune at update", "lower --learning_rate")


# ---- target_substrings and the model

def test_a_plain_string_of_substrings_is_refused():
    refusal(TypeError, lambda: build("magnitude", tiny_bert(), target_substrings="query"),
            "target_substrings='query' is a single string", "read character by character", "e.g. ['query']")
    refusal(TypeError, lambda: build("magnitude", tiny_bert(), target_substrings=b"query"), "a single string")
    refusal(TypeError, lambda: sparsity_report(tiny_bert(), "query"), "target_substrings='query' is a single string")
    refusal(TypeError, lambda: sparsity_report({"weight": torch.zeros(2)}),
            "model must be a torch.nn.Module, not a dict")


@pytest.mark.parametrize("substrings,error_type,needles", [
    ([], ValueError, ["target_substrings=[] is empty", "pass substrings of the names"]),
    (["query", ""], ValueError, ["holds an empty string, which matches every parameter"]),
    (["query", 3], TypeError, ["target_substrings holds 3, a int", "(a str)"]),
    (42, TypeError, ["target_substrings=42 must be a list of substrings"]),
    (["query", "kee"], ValueError, ["target_substrings ['kee'] match no parameter of BertModel",
                                    "encoder.layer.0.attention.self.key.weight", "pass substrings of those names"]),
    (["nothing"], ValueError, ["target_substrings ['nothing'] match no parameter", "whose 39 parameters"]),
])
def test_bad_target_substrings_are_refused(substrings, error_type, needles):
    refusal(error_type, lambda: build("platon", tiny_bert(), target_substrings=substrings), *needles)


def test_the_default_substrings_need_only_one_match():
    model = nn.Module()
    model.output = nn.Module()
    model.output.dense = nn.Linear(4, 4)      # no attention.self, no intermediate.dense
    pruner = build("magnitude", model)
    assert pruner.parameter_names == ["output.dense.weight", "output.dense.bias"], pruner.parameter_names


@pytest.mark.parametrize("model,error_type,needles", [
    ({"weight": 1}, TypeError, ["model must be a torch.nn.Module, not a dict"]),
    (nn.Module(), ValueError, ["Module has no parameters to prune"]),
])
def test_a_model_that_is_not_one_is_refused(model, error_type, needles):
    refusal(error_type, lambda: build("magnitude", model), *needles)


def test_parameters_on_the_meta_device_are_refused():
    with torch.device("meta"):
        model = BertModel(tiny_bert_config(vocab_size=100))
    refusal(ValueError, lambda: build("platon", model), "encoder.layer.0.attention.self.query.weight is on the meta "
            "device", "load or materialize the weights before building the pruner")


def test_parameters_sharing_memory_are_refused():
    model = tiny_bert()
    layers = model.encoder.layer
    layers[1].intermediate.dense.weight = nn.Parameter(layers[0].intermediate.dense.weight.detach())  # same memory
    refusal(ValueError, lambda: build("magnitude", model), "encoder.layer.0.intermediate.dense.weight and "
            "encoder.layer.1.intermediate.dense.weight share memory", "select only one of them")
    flat = torch.zeros(8)
    halves = nn.Module()
    halves.output = nn.Module()
    halves.output.dense = nn.Module()
    halves.output.dense.weight, halves.output.dense.bias = nn.Parameter(flat[:4]), nn.Parameter(flat[4:])
    assert build("magnitude", halves).total_numel == 8, "disjoint views of one buffer are fine"


def test_substrings_given_as_an_iterator_are_read_once():
    pruner = build("magnitude", tiny_bert(), target_substrings=iter(["layer.1.intermediate.dense"]))
    assert pruner.hyperparameters()["target_substrings"] == ["layer.1.intermediate.dense"], \
        f"the state records the substrings, not an exhausted iterator: {pruner.hyperparameters()}"
    report = sparsity_report(tiny_bert(), (name for name in ["intermediate.dense"]))
    assert report["target_substrings"] == ["intermediate.dense"] and len(report["rows"]) == 4, \
        f"the report records the substrings it used: {report['target_substrings']}"


@pytest.mark.parametrize("change,needles", [
    (lambda model: model.half(), ["is now float16 [32, 32] on cpu, it was float32 [32, 32] on cpu when the"]),
    (lambda model: setattr(model.encoder.layer[0].attention.self.query.weight, "data",
                           model.encoder.layer[0].attention.self.query.weight.data.t().contiguous().t()),
     ["is now float32 [32, 32] on cpu, non-contiguous, it was float32 [32, 32] on cpu when"]),
])
@pytest.mark.parametrize("method", list(PRUNERS))
def test_parameters_cast_or_relaid_after_building_are_refused(method, change, needles):
    model = tiny_bert()
    pruner = build(method, model)
    change(model)
    give_gradients(model, 1)
    refusal(ValueError, lambda: pruner.step(1), "encoder.layer.0.attention.self.query.weight", *needles,
            "build the pruner after moving or casting the model (model.to(...), .half())")
    assert pruner.last_step is None, "the refused step changed nothing"


# ---- hyperparameters

SETTINGS = ["initial_threshold", "final_threshold", "warmup_steps", "initial_warmup", "final_warmup", "deltaT",
            "beta1", "beta2"]


@pytest.mark.parametrize("value", ["0.5", None, True])
@pytest.mark.parametrize("setting", SETTINGS + ["total_steps"])
def test_a_setting_that_is_not_a_number_is_refused(setting, value):
    def call():
        if setting == "total_steps":
            return build("platon", tiny_bert(), total_steps=value)
        return build("platon", tiny_bert(), **{setting: value})
    err = refusal(PrunerSettingTypeError, call, f"{setting}={value!r} is invalid: it must be a number, not a "
                  f"{type(value).__name__};")
    assert isinstance(err, TypeError) and isinstance(err, PrunerSettingError), "a TypeError and a PrunerSettingError"
    assert err.with_names({setting: f"--{setting}"}).startswith(f"--{setting}="), "a front end renders its flag"


@pytest.mark.parametrize("setting,value", [
    (setting, value) for setting in SETTINGS for value in (math.nan, math.inf, -math.inf)
] + [("final_threshold", 0.0), ("final_threshold", 1.01), ("initial_threshold", 0.4), ("beta1", -0.1),
     ("beta2", 1.5), ("deltaT", -1), ("deltaT", 0), ("warmup_steps", -1), ("initial_warmup", -0.5),
     ("final_warmup", -2), ("total_steps", 0), ("total_steps", 8.0)])
def test_a_setting_out_of_range_is_refused(setting, value):
    def call():
        if setting == "total_steps":
            return build("platon", tiny_bert(), total_steps=value)
        return build("platon", tiny_bert(), **{setting: value})
    err = refusal(PrunerSettingError, call, f"{setting}={value} is invalid: it must be")
    assert not isinstance(err, TypeError), f"a number out of range is a ValueError only: {err!r}"


def test_num_threads_must_be_a_positive_integer():
    for value in (0, True, 1.0, "2"):
        refusal(ValueError, lambda: build("magnitude", tiny_bert(), num_threads=value),
                f"num_threads={value!r} must be None (torch's setting) or an integer >= 1")


# ---- load_state_dict

def stepped(method, model=None, steps=3, **changes):
    model = model if model is not None else tiny_bert()
    pruner = build(method, model, **changes)
    for t in range(1, steps + 1):
        give_gradients(model, t)
        pruner.step(t)
    return pruner


def tensors_as_lists(state):
    """A state whose statistics are plain lists instead of tensors."""
    return dict(state, tensors={key: tensor.tolist() for key, tensor in state["tensors"].items()})


def wider_bert():
    torch.manual_seed(0)
    return BertModel(tiny_bert_config(vocab_size=100, hidden_size=64))


@pytest.mark.parametrize("case,method,state,error_type,needles", [
    ("not a dict", "platon", lambda: [1, 2], TypeError,
     ["state must be the dict PlatonPruner.state_dict() returned, not a list"]),
    ("another method", "magnitude", lambda: stepped("platon").state_dict(), ValueError,
     ["cannot load a pruner state of format 1 and method 'platon' into a magnitude pruner"]),
    ("a key missing", "platon", lambda: {k: v for k, v in stepped("platon").state_dict().items() if k != "tensors"},
     ValueError, ["the pruner state lacks ['tensors']; pass the whole dict"]),
    ("another model's shapes", "platon", lambda: stepped("platon", model=wider_bert()).state_dict(), ValueError,
     ["has shape (64, 64), the parameter has (32, 32) (a state saved over another model)"]),
    ("other parameters", "platon", lambda: stepped("platon", target_substrings=["query"]).state_dict(), ValueError,
     ["the pruner state selects other parameters than this model"]),
    ("another schedule", "platon", lambda: stepped("platon", final_threshold=0.3).state_dict(), ValueError,
     ["saved with final_threshold=0.3, this pruner has final_threshold=0.5", "settings of the run that saved it"]),
    ("beta2 = 1 state into beta2 < 1", "platon", lambda: stepped("platon", beta2=1.0).state_dict(), ValueError,
     ["saved with beta2=1.0, this pruner has beta2=0.95"]),
    ("a tensor missing", "platon", lambda: dict(stepped("platon").state_dict(), tensors={}), ValueError,
     ["lacks ['sensitivity/encoder.layer.0.attention.output.dense.bias'"]),
    ("a tensor that is not one", "platon", lambda: tensors_as_lists(stepped("platon").state_dict()), ValueError,
     ["is a list, not a floating-point tensor"]),
    ("a bad last_step", "magnitude", lambda: dict(stepped("magnitude").state_dict(), last_step="3"), ValueError,
     ["last_step='3' is not an update"]),
])
def test_a_state_that_does_not_fit_is_refused_and_changes_nothing(case, method, state, error_type, needles):
    model = tiny_bert()
    pruner = stepped(method, model, steps=2)
    before = pruner.state_dict()
    weights = {name: param.detach().clone() for name, param in model.named_parameters()}
    refusal(error_type, lambda: pruner.load_state_dict(state()), *needles)
    after = pruner.state_dict()
    assert {k: v for k, v in after.items() if k != "tensors"} == {k: v for k, v in before.items() if k != "tensors"}, \
        f"{case}: the pruner's scalars are unchanged"
    for key, tensor in after["tensors"].items():
        assert torch.equal(tensor, before["tensors"][key]), f"{case}: {key} unchanged"
    assert all(torch.equal(param, weights[name]) for name, param in model.named_parameters()), f"{case}: weights"


def test_no_warning_for_a_plain_model():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build("platon", tiny_bert())


# ---- GPP (pruners/gpp.py, pruners/structured_mask.py)

BOTH = "structured_heads+structured_mlp"


def gpp(model=None, **changes):
    from pruners.gpp import GPPPruner

    return GPPPruner(model if model is not None else tiny_bert(),
                     **{**dict(pruning_type=BOTH, target_sparsity=0.5, prune_steps=4), **changes})


def gpp_update(model, pruner, s, accumulate=True):
    """One pruning update: a backward pass through the masked encoder, G accumulated unless told not to."""
    ids = torch.randint(0, 100, (2, 7), generator=torch.Generator().manual_seed(s))
    loss = model(ids).last_hidden_state.pow(2).mean() + pruner.indicator_loss()
    loss.backward()
    if accumulate:
        pruner.accumulate_gradients()
    model.zero_grad(set_to_none=True)
    return pruner.step(s)


def test_gpp_marking_units_before_any_gradient_is_refused():
    model = tiny_bert()
    pruner = gpp(model)      # s = 1 already marks one FFN neuron: floor(128 · c(1)) = 1
    refusal(ValueError, lambda: gpp_update(model, pruner, 1, accumulate=False),
            "GPPPruner.step(1) would pick units to prune by scores no gradient has reached", "G",
            "is still 0", "call pruner.accumulate_gradients() after every loss.backward()")
    assert pruner.last_step == 0 and bool((pruner.z_ffn == 1).all()), "the refused step changed nothing"
    assert gpp_update(model, pruner, 1) > 0, "with G accumulated the same update goes through"


def test_gpp_an_early_update_without_gradients_is_accepted():
    """train.py --skip_nan_batches: a skipped first pruning update leaves G at 0 while nothing is marked yet."""
    model = tiny_bert()
    pruner = gpp(model, prune_steps=20)     # c(1) ≈ 2e-5: no unit marked at s = 1
    pruner.step(1)
    for s in range(2, 21):
        gpp_update(model, pruner, s)
    assert pruner.is_done and sum(pruner.pruned_counts()["heads"]) == 4, "the run prunes as usual"


def test_gpp_a_repeated_earlier_or_fractional_step_is_refused():
    model = tiny_bert()
    pruner = gpp(model)
    gpp_update(model, pruner, 1)
    gpp_update(model, pruner, 2)
    z = pruner.z_ffn.detach().clone()
    for s in (2, 1):
        refusal(ValueError, lambda: pruner.step(s), f"pruning step {s} came after step 2",
                "stepped once, in increasing order", "the next is 3")
    refusal(TypeError, lambda: pruner.step(2.5), "pruning step must be an integer", "not 2.5")
    assert pruner.last_step == 2 and torch.equal(pruner.z_ffn, z), "the refusals changed nothing"
    for s in (3, 4):
        gpp_update(model, pruner, s)
    assert pruner.is_done and pruner.step(4) == 0.5, "a finished pruner still returns the target, as documented"


@pytest.mark.parametrize("changes,error_type,needles", [
    (dict(target_sparsity="0.5"), TypeError, ["target sparsity must be a number in (0, 1), not '0.5'"]),
    (dict(target_sparsity=math.nan), ValueError, ["target sparsity must be in (0, 1), got nan"]),
    (dict(prune_steps="4"), TypeError, ["prune_steps (Tp, pruning updates) must be an integer >= 1, not '4'"]),
    (dict(prune_steps=math.nan), ValueError, ["prune_steps (Tp, pruning updates) must be an integer >= 1, got nan"]),
    (dict(prune_steps=math.inf), ValueError, ["must be an integer >= 1, got inf"]),
    (dict(prune_steps=2.5), ValueError, ["must be an integer >= 1, got 2.5"]),
    (dict(l1_lambda=None), TypeError, ["l1_lambda must be a number >= 0 (0.5 in the paper), not None"]),
    (dict(l1_lambda=math.nan), ValueError, ["l1_lambda must be a finite number >= 0 (0.5 in the paper), got nan"]),
    (dict(l1_lambda=math.inf), ValueError, ["got inf"]),
    (dict(l1_lambda=-1), ValueError, ["got -1"]),
    (dict(model={"encoder": 1}), TypeError,
     ["model must be a torch.nn.Module holding a BERT-family encoder, not a dict"]),
])
def test_gpp_bad_settings_are_refused(changes, error_type, needles):
    refusal(error_type, lambda: gpp(**changes), *needles)


def test_gpp_parameters_on_the_meta_device_are_refused():
    with torch.device("meta"):
        model = BertModel(tiny_bert_config(vocab_size=100))
    refusal(ValueError, lambda: gpp(model), "the encoder's parameters are on the meta device",
            "load or materialize the weights")


@pytest.mark.parametrize("grad_scale", [0, -1.0, math.nan, math.inf, "1"])
def test_gpp_a_grad_scale_that_is_not_a_positive_number_is_refused(grad_scale):
    model = tiny_bert()
    pruner = gpp(model)
    model(torch.ones(1, 4, dtype=torch.long)).last_hidden_state.sum().backward()
    refusal(ValueError, lambda: pruner.accumulate_gradients(grad_scale=grad_scale),
            f"grad_scale={grad_scale!r} must be a finite number > 0", "scaler.get_scale()")
    assert all(not g.any() for g in pruner.grad_sum.values()), "G untouched"


@pytest.mark.parametrize("case,broken,error_type,needles", [
    ("not a dict", lambda state: list(state), TypeError, ["state must be the dict GPPPruner.state_dict() returned"]),
    ("a scalar missing", lambda state: {k: v for k, v in state.items() if k != "last_step"}, ValueError,
     ["GPP state last_step=None is missing or of the wrong type"]),
    ("done not a bool", lambda state: dict(state, done="no"), ValueError, ["GPP state done='no'"]),
    ("a tensor that is not one", tensors_as_lists, ValueError, ["is a list, not a floating-point tensor"]),
])
def test_gpp_a_state_that_does_not_fit_is_refused_and_changes_nothing(case, broken, error_type, needles):
    model = tiny_bert()
    source = gpp(model)
    gpp_update(model, source, 1)
    target = gpp()
    refusal(error_type, lambda: target.load_state_dict(broken(source.state_dict())), *needles)
    assert target.last_step == 0 and all(not g.any() for g in target.grad_sum.values()), f"{case}: nothing changed"
    assert all(bool((z == 1).all()) for z in target.indicators().values()), f"{case}: indicators untouched"


def test_structured_mask_refuses_non_finite_indicators():
    from pruners.structured_mask import StructuredMask

    head = torch.ones(2, 4)
    head[1, 2] = math.nan
    refusal(ValueError, lambda: StructuredMask(tiny_bert(), head=head), "head indicators hold non-finite values",
            "1 keeps a unit and 0 removes it")


@pytest.mark.parametrize("pruner_class", ["PlatonPruner", "MagnitudePruner", "MovementPruner", "SoftMovementPruner"])
def test_swapped_arguments_and_unknown_keywords_are_named(pruner_class):
    """A schedule given where the model belongs was reported as missing schedule settings, and an unknown
    keyword beside a schedule as a schedule setting."""
    import pruners
    from pruners import CubicSchedule

    cls = getattr(pruners, pruner_class)
    schedule = CubicSchedule(total_steps=20, initial_threshold=1.0, final_threshold=0.3, warmup_steps=2,
                             initial_warmup=1, final_warmup=1, deltaT=2)
    model = torch.nn.Sequential(torch.nn.Linear(4, 4))
    extra = dict(beta1=0.85, beta2=0.95) if pruner_class == "PlatonPruner" else {}
    with pytest.raises(TypeError, match=r"model must be a torch.nn.Module, not a CubicSchedule "
                                        r"\(arguments swapped\?"):
        cls(schedule, model, **extra)
    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) \['bogus'\]"):
        cls(model, schedule, bogus=1, **extra)
