"""The cubic remaining-ratio schedule, its validation, and the CubicSchedule object every unstructured pruner
follows (docs/METHODS.md §1)."""
import math

import pytest

import torch

import pruners.schedule
from data_utils.errors import UserError
from pruners import CubicSchedule, MagnitudePruner, MovementPruner, PlatonPruner
from pruners.schedule import PrunerSettingError, is_masking_step, remaining_ratio, validate_schedule
from tests.test_pruner_inputs import give_gradients, tiny_bert

# T = 100, ti = 1·10 = 10, tf = 3·10 = 30: warm-up 1..10, cubic 11..70, final 71..100
SCHEDULE = dict(total_steps=100, initial_threshold=1.0, final_threshold=0.1, warmup_steps=10, initial_warmup=1,
                final_warmup=3)


def ratio(t):
    return remaining_ratio(t, **SCHEDULE)


def masks(t, deltaT):
    return is_masking_step(t, 100, 10, 1, 3, deltaT)


def test_ratio_at_phase_boundaries():
    assert ratio(1) == 1.0, "warm-up keeps initial_threshold"
    assert ratio(10) == 1.0, "t = ti is still warm-up"
    expected = 0.1 + 0.9 * (1 - 1 / 60) ** 3
    assert math.isclose(ratio(11), expected, rel_tol=1e-12), \
        f"t = ti+1 starts the cubic decay: {ratio(11)} vs {expected}"
    assert math.isclose(ratio(40), 0.1 + 0.9 * 0.5 ** 3, rel_tol=1e-12), \
        "halfway through the cubic phase: rT + (r0-rT)/8"
    assert math.isclose(ratio(70), 0.1, abs_tol=1e-15), f"t = T - tf ends the cubic phase at rT, got {ratio(70)}"
    assert ratio(71) == 0.1, "t = T - tf + 1 is the final phase"
    assert ratio(100) == 0.1, "t = T is the final phase"


def test_ratio_never_increases():
    values = [ratio(t) for t in range(1, 101)]
    assert all(a >= b for a, b in zip(values, values[1:])), "the remaining ratio must not increase"


def test_no_warmup_at_all():
    assert remaining_ratio(1, 10, 1.0, 0.5, 0, 0, 0) == pytest.approx(0.5 + 0.5 * 0.9 ** 3), \
        "with ti = tf = 0 the cubic phase covers 1..T"


def test_masking_only_every_deltaT_in_cubic_phase_and_always_in_final_phase():
    assert not any(masks(t, 1) for t in range(1, 11)), "no masking while t <= ti, even with deltaT = 1"
    cubic = [t for t in range(11, 71) if masks(t, 7)]
    assert cubic == [t for t in range(11, 71) if t % 7 == 0], f"cubic phase masks when t mod deltaT == 0, got {cubic}"
    assert all(masks(t, 7) for t in range(71, 101)), "the final phase masks at every update"
    assert masks(70, 10) and not masks(69, 10), "t = T - tf belongs to the cubic phase (mask only if t mod deltaT == 0)"


def error_of(**changes):
    values = dict(SCHEDULE, deltaT=10)
    values.update(changes)
    with pytest.raises(PrunerSettingError) as caught:
        validate_schedule(**values)
    return caught.value


def as_flags(err):
    """The message as the command line renders it: every parameter as its flag."""
    return err.with_names({p: "--" + p for p in err.names})


@pytest.mark.parametrize("flag,value", [("final_threshold", 0.0), ("final_threshold", 1.5), ("final_threshold", -0.1),
                                        ("final_threshold", float("nan")), ("initial_threshold", 0.05),
                                        ("initial_threshold", 1.2), ("deltaT", 0), ("deltaT", 2.5),
                                        ("total_steps", 0), ("warmup_steps", -1), ("initial_warmup", -1),
                                        ("final_warmup", float("inf"))])
def test_each_invalid_value_names_its_flag(flag, value):
    err = error_of(**{flag: value})
    message = str(err)
    assert message.startswith(f"{flag}={value} is invalid"), f"names the parameter and the value: {message!r}"
    assert err.parameter == flag and flag in err.names, f"carries the refused parameter: {err.parameter!r}"
    assert "--" not in message, f"the library's own words, no command-line flags: {message!r}"
    assert as_flags(err).startswith(f"--{flag}={value} is invalid"), \
        f"the message must name the flag and the value: {as_flags(err)!r}"
    assert "must be" in message and ";" in message, f"the message must give the range and a fix: {message!r}"
    assert "\n" not in message, "one line"


def test_impossible_schedule_names_T_ti_tf_and_suggests_warmup_steps():
    err = error_of(total_steps=100, warmup_steps=30, initial_warmup=1, final_warmup=3)
    message = str(err)
    for part in ("T=100", "ti=initial_warmup×warmup_steps=30", "tf=final_warmup×warmup_steps=90"):
        assert part in message, f"the message must contain {part!r}: {message!r}"
        assert part in as_flags(err), f"the formulas stay literal with flags too: {as_flags(err)!r}"
    assert "use warmup_steps 17" in message, f"suggests floor(0.7·100/4) = 17 warmup steps: {message!r}"
    assert "--warmup_steps 17" in as_flags(err), f"suggests floor(0.7·100/4) = 17 warmup steps: {as_flags(err)!r}"
    assert as_flags(err).startswith("--warmup_steps=30 is invalid"), as_flags(err)
    validate_schedule(100, 1.0, 0.1, 17, 1, 3, 10)   # the suggestion is accepted


def test_exactly_full_warmup_is_refused():
    assert "ti + tf" in str(error_of(total_steps=40, warmup_steps=10, initial_warmup=1, final_warmup=3)), \
        "ti + tf == T leaves no cubic phase: refused"


def test_error_is_a_value_error_of_the_library_not_a_user_error():
    with pytest.raises(ValueError):
        validate_schedule(100, 1.0, 2.0, 10, 1, 3, 10)
    assert issubclass(PrunerSettingError, ValueError), "a plain ValueError of the library"
    assert not issubclass(PrunerSettingError, UserError), "the CLI translates it; the library does not know the CLI"


def test_error_renders_its_parameters_as_the_caller_names_them():
    err = error_of(final_threshold=1.5)
    assert str(err) == ("final_threshold=1.5 is invalid: it must be in (0, 1] (the fraction of weights kept at the "
                        "end); e.g. final_threshold 0.1 keeps 10 %"), str(err)
    assert err.names == {"final_threshold"} and err.parameter == "final_threshold", (err.names, err.parameter)
    assert err.with_names({"final_threshold": "--final_threshold"}) == (
        "--final_threshold=1.5 is invalid: it must be in (0, 1] (the fraction of weights kept at the end); "
        "e.g. --final_threshold 0.1 keeps 10 %"), err.with_names({"final_threshold": "--final_threshold"})
    assert err.with_names({"other": "--other"}) == str(err), "names not given stay bare"
    literal = PrunerSettingError("{deltaT}=3 {{not a parameter}}", "deltaT")
    assert str(literal) == "deltaT=3 {not a parameter}" and literal.names == {"deltaT"}, "doubled braces are literal"


def test_valid_settings_pass():
    validate_schedule(100, 1.0, 1.0, 10, 1, 3, 1)    # final_threshold = 1: no pruning, allowed
    validate_schedule(100, 0.5, 0.5, 0, 0, 0, 1)


# ---- the schedule object

def test_schedule_object_answers_the_formulas():
    schedule = CubicSchedule(deltaT=7, **SCHEDULE)
    for t in range(1, 101):
        assert schedule.remaining_ratio(t) == ratio(t), f"t={t}: the object gives the formula's ratio"
        assert schedule.is_masking_step(t) == masks(t, 7), f"t={t}: the object gives the formula's masking steps"
    assert schedule.final_phase_start == 71, \
        f"T − tf = 70: the final phase starts at 71, not {schedule.final_phase_start}"
    assert [schedule.phase(t) for t in (10, 11, 70, 71)] == ["warmup", "cubic", "cubic", "final"], \
        "phases: t <= ti warm-up, then cubic, final from T − tf + 1"
    assert schedule.as_dict() == dict(SCHEDULE, deltaT=7), f"the settings by name: {schedule.as_dict()}"


@pytest.mark.parametrize("final_warmup", [0, 0.25, 1.5, 3])
def test_final_phase_start_is_the_first_update_at_the_final_ratio_with_masking_every_update(final_warmup):
    schedule = CubicSchedule(100, 1.0, 0.1, 10, 1, final_warmup, 7)
    start = schedule.final_phase_start
    assert all(schedule.remaining_ratio(t) == 0.1 and schedule.is_masking_step(t) for t in range(start, 101)), \
        f"tf = {final_warmup * 10}: every update from {start} on masks at the final ratio"
    assert not (start - 1 > 100 - final_warmup * 10), f"update {start - 1} is still before the final phase"


def test_schedule_is_validated_when_built():
    with pytest.raises(PrunerSettingError) as caught:
        CubicSchedule(100, 1.0, 1.5, 10, 1, 3, 10)
    assert caught.value.parameter == "final_threshold", f"names the refused setting: {caught.value}"
    with pytest.raises(AttributeError):
        CubicSchedule(100, 1.0, 0.1, 10, 1, 3, 10).final_threshold = 2.0   # frozen: stays valid once checked


PRUNERS = [(PlatonPruner, dict(beta1=0.85, beta2=0.95)), (MagnitudePruner, {}), (MovementPruner, {})]
TINY = dict(initial_threshold=1.0, final_threshold=0.5, warmup_steps=2, initial_warmup=1, final_warmup=1, deltaT=2)


@pytest.mark.parametrize("pruner_class,extra", PRUNERS, ids=[c.__name__ for c, _ in PRUNERS])
def test_a_pruner_built_on_a_schedule_equals_one_built_the_older_way(pruner_class, extra, monkeypatch):
    """The schedule object is validated once, when built: a pruner given one does not validate it again; the
    older keywords build the same schedule, the same hyperparameters and the same masks."""
    schedule = CubicSchedule(8, **TINY)
    calls = []
    monkeypatch.setattr(pruners.schedule, "validate_schedule",
                        lambda *args: calls.append(args) or validate_schedule(*args))
    models = [tiny_bert(), tiny_bert()]
    new = pruner_class(models[0], schedule, **extra)
    assert new.schedule is schedule and not calls, f"the given schedule is used as is, not validated again: {calls}"
    old = pruner_class(models[1], 8, **TINY, **extra)
    assert len(calls) == 1 and old.schedule == schedule, "the older keywords build (and validate) an equal schedule"
    assert new.hyperparameters() == old.hyperparameters(), "the same hyperparameters, under the same names"
    for t in range(1, 9):
        for model, pruner in zip(models, (new, old)):
            give_gradients(model, t)
            pruner.step(t)
    for (name, a), b in zip(models[0].named_parameters(), models[1].parameters()):
        assert torch.equal(a, b), f"{name}: the two pruners masked differently"
    old.load_state_dict(new.state_dict())      # the state of one loads into the other: same layout


def test_a_schedule_and_its_settings_together_or_settings_missing_are_refused():
    schedule = CubicSchedule(8, **TINY)
    with pytest.raises(TypeError, match="pass the schedule alone"):
        MagnitudePruner(tiny_bert(), schedule, deltaT=2)
    with pytest.raises(TypeError, match=r"missing \['deltaT'\]"):
        MagnitudePruner(tiny_bert(), 8, **{k: v for k, v in TINY.items() if k != "deltaT"})
    with pytest.raises(TypeError, match="total_steps twice"):
        MagnitudePruner(tiny_bert(), 8, total_steps=8, **TINY)
    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) \['warmup'\]"):
        MagnitudePruner(tiny_bert(), 8, warmup=3, **TINY)
    pruner = MagnitudePruner(tiny_bert(), total_steps=8, **TINY)       # total_steps as a keyword, as documented
    assert pruner.schedule == schedule, "total_steps= builds the same schedule"


def test_platon_refuses_a_schedule_whose_window_outlasts_the_run():
    schedule = CubicSchedule(8, **dict(TINY, deltaT=9))      # a valid schedule: magnitude pruning can follow it
    MagnitudePruner(tiny_bert(), schedule)
    with pytest.raises(PrunerSettingError, match="at most the number of updates T=8") as caught:
        PlatonPruner(tiny_bert(), schedule, beta1=0.85, beta2=0.95)
    assert caught.value.parameter == "deltaT", f"names deltaT: {caught.value}"


def test_the_trainer_callback_takes_a_schedule_of_the_runs_length(tmp_path):
    from tests.test_trainer_callback import MAX_STEPS, SCHEDULE as CALLBACK_SCHEDULE, TARGET, make_trainer
    from pruners import sparsity_report
    from pruners.trainer_callback import PruningCallback

    wrong = PruningCallback(MagnitudePruner, schedule=CubicSchedule(MAX_STEPS + 1, **CALLBACK_SCHEDULE))
    with pytest.raises(ValueError, match=f"total_steps={MAX_STEPS + 1} but the Trainer runs max_steps={MAX_STEPS}"):
        make_trainer(tmp_path / "wrong", [wrong]).train()
    with pytest.raises(TypeError, match="must be a pruners.CubicSchedule"):
        PruningCallback(MagnitudePruner, schedule=dict(CALLBACK_SCHEDULE))
    schedule = CubicSchedule(MAX_STEPS, **CALLBACK_SCHEDULE)
    callback = PruningCallback(MagnitudePruner, schedule=schedule)
    trainer = make_trainer(tmp_path / "run", [callback])
    trainer.train()
    assert callback.pruner.schedule is schedule and callback.pruner.last_step == MAX_STEPS, \
        "the pruner follows the given schedule to the last update"
    remaining = sparsity_report(trainer.model)["overall"]["remaining_ratio"]
    assert abs(remaining - TARGET) < 1e-3, f"the schedule's final ratio {TARGET} is reached: {remaining}"
