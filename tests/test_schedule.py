"""The cubic remaining-ratio schedule and its validation (docs/METHODS.md §1)."""
import math

import pytest

from data_utils.errors import UserError
from pruners.schedule import PrunerSettingError, is_masking_step, remaining_ratio, validate_schedule

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
