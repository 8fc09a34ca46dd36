"""Cubic schedule of the remaining ratio for unstructured pruning, and its validation.

The schedule of PLATON (Zhang et al., "PLATON: Pruning Large Transformer Models
with Upper Confidence Bound of Weight Importance", ICML 2022, Sec. 3.3), which
follows the cubic sparsity schedule of Zhu & Gupta (2017). docs/METHODS.md §1:

    ti = initial_warmup · warmup_steps,   tf = final_warmup · warmup_steps
    t ≤ ti       : r = r0                                   no masking
    t > T − tf   : r = rT                                   mask at every update
    otherwise    : r = rT + (r0 − rT)·(1 − (t − ti)/(T − ti − tf))³
                                                            mask when t mod ΔT == 0

with r0 = initial_threshold, rT = final_threshold, T = total_steps and t the
1-based optimizer update (the settings keep the names of PLATON's code and of
train.py's flags: the "thresholds" are remaining ratios). The formulas are pure
functions of their arguments (`remaining_ratio`, `is_masking_step`);
`CubicSchedule` holds one validated set of settings and answers them for
update t, the object every unstructured pruner and the training method share
(as torch.ao.pruning's schedulers hold theirs).

Invalid settings raise `PrunerSettingError`, a `ValueError` in the library's own
words: it names the parameter (as the constructors spell it), the value, the
valid range and a fix, and carries its message as a template so that a front
end can render the parameter names its own way (`err.with_names({...})`, e.g.
command-line flags). A value of the wrong type (a string, None, a bool where a
number goes) raises `PrunerSettingTypeError`, both a `PrunerSettingError` and a
`TypeError`.
"""
import math
import numbers
import string
from dataclasses import asdict, dataclass, fields
from typing import Mapping


class PrunerSettingError(ValueError):
    """A pruning setting outside its valid range, in the library's words.

    `template` is a `str.format` template in which every mention of a pruner parameter is a
    placeholder `{name}` (literal braces doubled); `parameter` is the refused parameter's name.
    `str(err)` renders the placeholders as the bare names, `err.with_names(names)` as
    `names.get(name, name)`; `err.names` is the set of placeholders the template uses."""

    def __init__(self, template: str, parameter: str):
        super().__init__(template, parameter)       # args: what pickling needs to rebuild it
        self.template, self.parameter = template, parameter
        self.names = {field for _, field, _, _ in string.Formatter().parse(template) if field}

    def with_names(self, names: Mapping[str, str]) -> str:
        """The message with each parameter placeholder rendered as `names.get(name, name)`."""
        return self.template.format(**{name: names.get(name, name) for name in self.names})

    def __str__(self) -> str:
        return self.with_names({})


class PrunerSettingTypeError(PrunerSettingError, TypeError):
    """A pruning setting of the wrong type (a string, None, a bool where a number goes): a
    PrunerSettingError like any other (a front end renders it the same way) that is also a TypeError."""


def is_number(value) -> bool:
    """Whether `value` is a real number (a Python or NumPy int or float; a bool is not one)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def is_integer(value) -> bool:
    """Whether `value` is an integer (a Python or NumPy int; a bool or an integral float is not one)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def literal(value) -> str:
    """`value` as text for a template (braces doubled)."""
    return str(value).replace("{", "{{").replace("}", "}}")


def refuse(parameter: str, value, valid: str, fix: str):
    """Raise the one-line error "<parameter>=<value> is invalid: it must be <valid>; <fix>"
    (`valid` and `fix` are templates: parameters as placeholders, literal braces doubled)."""
    raise PrunerSettingError(f"{{{parameter}}}={literal(value)} is invalid: it must be {valid}; {fix}", parameter)


def require_number(parameter: str, value, fix: str) -> None:
    """Raise PrunerSettingTypeError ("<parameter>='0.5' is invalid: it must be a number, not a str; <fix>")
    unless `value` is a number: the range checks that follow compare it, and a string or None would
    fail there in Python's words instead."""
    if not is_number(value):
        raise PrunerSettingTypeError(f"{{{parameter}}}={literal(repr(value))} is invalid: it must be a number, "
                                     f"not a {literal(type(value).__name__)}; {fix}", parameter)


def warmup_bounds(warmup_steps: float, initial_warmup: float, final_warmup: float):
    """(ti, tf): updates at r0 before the cubic decay starts, and updates at rT at the end."""
    return initial_warmup * warmup_steps, final_warmup * warmup_steps


def remaining_ratio(t: int, total_steps: int, initial_threshold: float, final_threshold: float,
                    warmup_steps: float, initial_warmup: float, final_warmup: float) -> float:
    """Fraction of the selected weights kept after update `t` (PLATON's cubic schedule).

        t ≤ ti      : r0
        t > T − tf  : rT
        otherwise   : rT + (r0 − rT)·(1 − (t − ti)/(T − ti − tf))³

    with ti = initial_warmup·warmup_steps, tf = final_warmup·warmup_steps,
    r0 = initial_threshold, rT = final_threshold, T = total_steps.
    """
    ti, tf = warmup_bounds(warmup_steps, initial_warmup, final_warmup)
    if t <= ti:
        return initial_threshold
    if t > total_steps - tf:
        return final_threshold
    progress = (t - ti) / (total_steps - ti - tf)
    return final_threshold + (initial_threshold - final_threshold) * (1 - progress) ** 3


def is_masking_step(t: int, total_steps: int, warmup_steps: float, initial_warmup: float,
                    final_warmup: float, deltaT: int) -> bool:
    """Whether update `t` masks: never while t ≤ ti, every ΔT-th update in the cubic phase
    (t mod ΔT == 0), at every update in the final phase t > T − tf."""
    ti, tf = warmup_bounds(warmup_steps, initial_warmup, final_warmup)
    if t <= ti:
        return False
    if t > total_steps - tf:
        return True
    return t % deltaT == 0


def validate_schedule(total_steps: int, initial_threshold: float, final_threshold: float,
                      warmup_steps: float, initial_warmup: float, final_warmup: float, deltaT: int) -> None:
    """Refuse, with one clear `PrunerSettingError`, any setting the schedule cannot run with (a
    `PrunerSettingTypeError` for a value that is not a number at all)."""
    require_number("total_steps", total_steps, "pass the number of optimizer updates")
    if not (is_integer(total_steps) and total_steps >= 1):
        refuse("total_steps", total_steps, "an integer ≥ 1 (the number of optimizer updates)",
               "train for at least one update")
    require_number("final_threshold", final_threshold, "e.g. {final_threshold} 0.1 keeps 10 %")
    require_number("initial_threshold", initial_threshold, "use {initial_threshold} 1")
    if not 0 < final_threshold <= 1:
        refuse("final_threshold", final_threshold, "in (0, 1] (the fraction of weights kept at the end)",
               "e.g. {final_threshold} 0.1 keeps 10 %")
    if not final_threshold <= initial_threshold <= 1:
        refuse("initial_threshold", initial_threshold,
               f"in [{{final_threshold}}, 1] = [{literal(final_threshold)}, 1] (the fraction kept before pruning starts)",
               "use {initial_threshold} 1")
    for parameter, value in (("warmup_steps", warmup_steps), ("initial_warmup", initial_warmup),
                             ("final_warmup", final_warmup)):
        example = f"e.g. {{{parameter}}} {dict(warmup_steps=200).get(parameter, 1)}"
        require_number(parameter, value, example)
        if not (math.isfinite(value) and value >= 0):
            refuse(parameter, value, "a finite number ≥ 0", example)
    require_number("deltaT", deltaT, "the published recipes use {deltaT} 10")
    if not (is_integer(deltaT) and deltaT >= 1):
        refuse("deltaT", deltaT, "an integer ≥ 1 (updates per sensitivity window and between maskings)",
               "the published recipes use {deltaT} 10")
    ti, tf = warmup_bounds(warmup_steps, initial_warmup, final_warmup)
    if ti + tf >= total_steps:
        fitting = math.floor(0.7 * total_steps / (initial_warmup + final_warmup))
        refuse("warmup_steps", warmup_steps,
               f"small enough that ti + tf < T, but T={total_steps} updates while "
               f"ti=initial_warmup×warmup_steps={ti:g} and tf=final_warmup×warmup_steps={tf:g} "
               f"(ti + tf = {ti + tf:g}) leave no updates for the cubic decay",
               f"use {{warmup_steps}} {max(fitting, 0)} (ti + tf ≈ 0.7·T), smaller {{initial_warmup}}/{{final_warmup}}, "
               f"or more updates ({{total_steps}})")


@dataclass(frozen=True)
class CubicSchedule:
    """One validated set of the cubic schedule's settings (the module docstring's formulas), for any
    unstructured pruner: `PlatonPruner(model, CubicSchedule(...), beta1=..., beta2=...)`.

    Validated once, when built (`validate_schedule`: PrunerSettingError naming the setting).
    `final_phase_start` is the first update of the final phase (t > T − tf: the final ratio,
    masking at every update)."""

    total_steps: int
    initial_threshold: float
    final_threshold: float
    warmup_steps: float
    initial_warmup: float
    final_warmup: float
    deltaT: int

    def __post_init__(self):
        validate_schedule(self.total_steps, self.initial_threshold, self.final_threshold, self.warmup_steps,
                          self.initial_warmup, self.final_warmup, self.deltaT)

    @property
    def final_phase_start(self) -> int:
        """The first update t with t > T − tf."""
        _, tf = warmup_bounds(self.warmup_steps, self.initial_warmup, self.final_warmup)
        return math.floor(self.total_steps - tf) + 1

    def remaining_ratio(self, t: int) -> float:
        """The fraction of the selected weights kept after update t."""
        return remaining_ratio(t, self.total_steps, self.initial_threshold, self.final_threshold,
                               self.warmup_steps, self.initial_warmup, self.final_warmup)

    def is_masking_step(self, t: int) -> bool:
        """Whether update t masks."""
        return is_masking_step(t, self.total_steps, self.warmup_steps, self.initial_warmup, self.final_warmup,
                               self.deltaT)

    def phase(self, t: int) -> str:
        """'warmup' (t ≤ ti), 'cubic' or 'final' (t ≥ final_phase_start)."""
        ti, _ = warmup_bounds(self.warmup_steps, self.initial_warmup, self.final_warmup)
        return "warmup" if t <= ti else ("final" if t >= self.final_phase_start else "cubic")

    def as_dict(self) -> dict:
        """The settings by name (the pruners' `hyperparameters()` record them)."""
        return asdict(self)


SCHEDULE_SETTINGS = tuple(field.name for field in fields(CubicSchedule))


NOT_GIVEN = object()     # a pruner's schedule argument when only keywords were passed (total_steps=...)


def check_model(model, owner: str) -> None:
    """TypeError unless `model` is an nn.Module (a pruner's first argument; a schedule there is the usual
    slip: arguments swapped)."""
    from torch import nn

    if not isinstance(model, nn.Module):
        hint = f" (arguments swapped? {owner}(model, schedule, ...))" if isinstance(model, CubicSchedule) else ""
        raise TypeError(f"{owner}: model must be a torch.nn.Module, not a {type(model).__name__}{hint}")


def as_schedule(schedule, settings: Mapping, owner: str) -> CubicSchedule:
    """The schedule a pruner is built with: `schedule` itself when it is a CubicSchedule (then no other
    schedule setting may be given), else the schedule of the settings given the older way, as keywords
    (`total_steps` positional or not): `owner(model, total_steps, initial_threshold=..., ..., deltaT=...)`.
    TypeError for a missing or unknown setting, as a Python call would raise."""
    settings = dict(settings)
    if isinstance(schedule, CubicSchedule):
        unknown = sorted(set(settings) - set(SCHEDULE_SETTINGS))
        if unknown:
            raise TypeError(f"{owner} got unexpected keyword argument(s) {unknown}")
        if settings:
            raise TypeError(f"{owner} got a CubicSchedule and the schedule settings {sorted(settings)} as well; "
                            "pass the schedule alone")
        return schedule
    if schedule is not NOT_GIVEN:
        if "total_steps" in settings:
            raise TypeError(f"{owner} got total_steps twice (positional and keyword)")
        settings["total_steps"] = schedule
    unknown = sorted(set(settings) - set(SCHEDULE_SETTINGS))
    if unknown:
        raise TypeError(f"{owner} got unexpected keyword argument(s) {unknown}")
    missing = [name for name in SCHEDULE_SETTINGS if name not in settings]
    if missing:
        raise TypeError(f"{owner} needs a CubicSchedule, or every setting of one as keywords; missing {missing}")
    return CubicSchedule(**settings)
