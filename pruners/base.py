"""What every unstructured pruner shares: the optimizer-shaped API over a method's scoring rule.

A pruner is shaped like an optimizer (torch.ao.pruning's BaseSparsifier): built
over a model, `step(t)` once per optimizer update (after `optimizer.step()`,
before the gradients are zeroed, t from 1), `state_dict()`/`load_state_dict()`.
It follows a `pruners.schedule.CubicSchedule` (how many weights remain after
update t, and whether t masks), given when it is built:

    PlatonPruner(model, CubicSchedule(total_steps, initial_threshold, final_threshold, warmup_steps,
                                      initial_warmup, final_warmup, deltaT), beta1=..., beta2=...)

or, the older way, the schedule's settings as keywords, from which the pruner
builds its schedule: `PlatonPruner(model, total_steps, initial_threshold=...,
..., deltaT=..., beta1=..., beta2=...)` (pruners.schedule.as_schedule).

A method only writes its scoring rule, as hooks:

    _update_statistics(t) -> bool    accumulate what the scores need; True when the
                                     scores changed
    _slab_factors(slab, kernels, out)  one or two flat tensors whose product is the scores
                                     of one slab
    _scores_at(index, positions)     the scores of parameter `index` at flat positions
    _flat_scores_at(device, positions)  the same at positions of a device's flat space (by
                                     default through `_scores_at`, parameter by parameter)
    _statistics()                    its state: statistic name -> flat buffer per device

What is selected: the parameters whose name contains one of `target_substrings`
(pruners.anatomy.select_parameters) and that train (`requires_grad`); a frozen
one is left alone, with a warning naming it (PLATON and movement would score it
0 for want of a gradient and zero it first). Each substring given must match a
parameter (the default list, which names BERT's projections, needs one match in
all); a parameter on the meta device or sharing memory with another selected one
is refused (ValueError).

Steps: `step(t)` takes each update once, in increasing order (a resumed pruner
continues at `last_step + 1`); a repeated or earlier t is refused. The methods
that score by gradients (PLATON, movement) count the steps that found a `.grad`
on a selected parameter (`gradient_steps`); a step without any (an update the
loop skipped, e.g. for a non-finite loss) adds nothing, but a step that would
mask while no step so far has seen a gradient is refused: every score would be
0 (step called after `optimizer.zero_grad()`, or with no backward at all).

At a masking step (schedule.is_masking_step) with k = floor(N·(1 − r)) ≥ 1, the
threshold τ is the exact k-th smallest of all N scores (the bracketed search of
pruners.threshold, docs/METHODS.md §1) and every selected entry whose score is
< τ (strict) is set to 0 in place. τ is reused while neither the scores nor k
change (between PLATON's window closes in the final phase): the same selection.

Where the work happens is told by the modules that do it: the flat buffers and
slabs in pruners.layout (`self.layout`), the shared passes over a slab
(counting, masking) in pruners.kernels (each slab's kernels object, chosen once
when the pruner is built: `kernels="auto"`, the default, the fused numba loops
where they apply; "numba" insists, "torch" declines), the rule's own statistics
update in the rule's file (PLATON's in torch and numba, picked per slab to
match its kernels), the threads of a step (`num_threads`) in pruners.kernels.

State dict (plain Python values plus tensors, as torch optimizers do):

    {"format": 1, "method": "platon" | "magnitude" | "movement",
     "last_step": int | None, "remaining_ratio": float | None, "mask_threshold": float | None,
     "gradient_steps": int,                          # steps that found a gradient (absent in older states)
     "parameter_names": [name, ...],                 # the selected parameters, in order
     "hyperparameters": {...},                       # as constructed, for the record
     "tensors": {"<statistic>/<parameter name>": Tensor}}   # e.g. "uncertainty/encoder.layer.0.output.dense.bias"

Everything but "tensors" is JSON; "tensors" is a flat str → Tensor dict of
copies, one per statistic and parameter with the parameter's shape, that
`safetensors.torch.save_file` takes as is. `load_state_dict` checks all of it
(method, parameters, hyperparameters, tensor names and shapes) before it changes
anything.
"""
import json
import time
import warnings
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import torch
from torch import nn

from pruners import kernels as kernel_choice
from pruners.anatomy import PRUNABLE_SUBSTRINGS, check_target_substrings, select_parameters
from pruners.kernels import Kernels, torch_threads
from pruners.layout import FlatLayout, Slab
from pruners.schedule import NOT_GIVEN, CubicSchedule, as_schedule, check_model, is_integer
from pruners.threshold import kth_smallest, sample_positions

DEFAULT_TARGET_SUBSTRINGS = PRUNABLE_SUBSTRINGS
STATE_FORMAT = 1


@dataclass
class PruneStepStats:
    """What one `step` did, for logging."""
    step: int
    remaining_ratio: float
    mask_threshold: Optional[float]     # τ when this step masked, else None
    masked: bool                        # whether weights were set to zero
    threshold_searched: bool            # τ was selected anew (False: reused, scores unchanged)
    seconds: float                      # host time spent in `step` (0 for a loaded state)

    def summary(self) -> str:
        """One line: the step, the remaining ratio and the threshold."""
        masking = (f"masked below {self.mask_threshold:.6g} ({'searched' if self.threshold_searched else 'reused'})"
                   if self.masked else "no masking")
        return f"step {self.step}: remaining ratio {self.remaining_ratio:.4f}, {masking}"


class UnstructuredPruner:
    """Base of PLATON, magnitude and movement pruning: everything but the scoring rule.

    Frozen parameters (`requires_grad=False`) among those `target_substrings` select are not pruned:
    they are skipped with a warning naming them (all of them frozen: ValueError). `step(t)` refuses a
    t not after the last one, and (`needs_gradients`) a masking step when no step has seen a gradient;
    see the module docstring. `schedule` is a CubicSchedule, or total_steps with the other settings
    of one as keywords (`schedule_settings`)."""

    method = "unstructured"
    needs_gradients = False     # True: the scores come from the gradients (PLATON, movement)

    def __init__(self, model: nn.Module, schedule: CubicSchedule = NOT_GIVEN, *,
                 target_substrings: Sequence[str] = DEFAULT_TARGET_SUBSTRINGS, num_threads: Optional[int] = None,
                 kernels: str = "auto", **schedule_settings):
        check_model(model, type(self).__name__)
        self.schedule = as_schedule(schedule, schedule_settings, type(self).__name__)
        if num_threads is not None and not (is_integer(num_threads) and num_threads >= 1):
            raise ValueError(f"num_threads={num_threads!r} must be None (torch's setting) or an integer >= 1")
        self.num_threads = num_threads
        substrings = check_target_substrings(target_substrings)      # once: it may be an iterator
        selected = select_prunable(model, substrings, type(self).__name__)
        self.target_substrings = substrings
        self.parameter_names = [name for name, _ in selected]
        self.kernels: Kernels = kernel_choice.load(kernels, selected)
        self.kernel_name = self.kernels.name
        self.layout = FlatLayout([param for _, param in selected])
        self._built_as = [placement(param) for _, param in selected]    # what the layout and kernels were made for
        self.params, self.slabs, self.total_numel = self.layout.params, self.layout.slabs, self.layout.total_numel
        self.slab_kernels = kernel_choice.per_slab(self.kernels, self.slabs)     # one kernels object per slab
        self._threshold_key = None      # (scores version, k) that `_threshold` belongs to
        self._threshold: Optional[torch.Tensor] = None
        self._scores_version = 0
        self.last_step_stats: Optional[PruneStepStats] = None     # what the last step did (None: no step yet)
        self.gradient_steps = 0         # steps that found a gradient on a selected parameter

    @property
    def last_step(self) -> Optional[int]:
        """The last update stepped (or loaded), None before any."""
        return None if self.last_step_stats is None else self.last_step_stats.step

    def summary(self) -> str:
        """One line on the last step, for logging."""
        return f"{self.method} pruner, {self.kernel_name} kernels: " + (
            "no step yet" if self.last_step_stats is None else self.last_step_stats.summary())

    # ---- the scoring rule, written by each method
    def _update_statistics(self, t: int) -> bool:
        raise NotImplementedError

    def _slab_factors(self, slab: Slab, kernels: Kernels, out: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """One or two flat slab-sized tensors whose (elementwise) product is the slab's scores
        (`out`, the slab's work buffer, may hold one of them; `kernels`, the slab's, compute them)."""
        raise NotImplementedError

    def _scores_at(self, index: int, positions: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _flat_scores_at(self, device: torch.device, positions: torch.Tensor) -> torch.Tensor:
        """Scores at increasing `positions` of `device`'s flat space, parameter by parameter."""
        indices = self.layout.indices_on(device)
        offsets = self.layout.offsets
        starts = torch.tensor([offsets[index] for index in indices] + [self.layout.device_numel[device]])
        bounds = torch.searchsorted(positions, starts).tolist()
        return torch.cat([self._scores_at(index, positions[bounds[i]:bounds[i + 1]] - offsets[index])
                          for i, index in enumerate(indices)])

    def _statistics(self) -> Dict[str, Dict[torch.device, torch.Tensor]]:
        return {}

    def hyperparameters(self) -> dict:
        """The schedule's settings and the selection, as a state records them (the same keys in every
        state format)."""
        return dict(self.schedule.as_dict(), target_substrings=list(self.target_substrings))

    # ---- shared machinery
    def slabs_with_kernels(self):
        """(slab, its kernels), in order."""
        return zip(self.slabs, self.slab_kernels)

    def slab_factors(self):
        """(the factors of a slab's scores, its kernels), slab by slab (factors may live in a work
        buffer reused by the next slab): the chunks of the threshold's counting pass."""
        for slab, kernels in self.slabs_with_kernels():
            yield self._slab_factors(slab, kernels, out=self.layout.work(slab)), kernels

    def slab_scores(self):
        """The scores slab by slab (each one may live in a work buffer reused by the next)."""
        for slab, (factors, kernels) in zip(self.slabs, self.slab_factors()):
            yield kernels.scores(factors, out=self.layout.work(slab))

    @torch.no_grad()
    def scores(self) -> Dict[str, torch.Tensor]:
        """A copy of the current score of every selected entry, by parameter name (for inspection)."""
        flat = self.layout.new_flat_buffers()
        for slab, scores in zip(self.slabs, self.slab_scores()):
            self.layout.slab_of(flat, slab).copy_(scores)
        return {name: self.layout.view_of(flat, index) for index, name in enumerate(self.parameter_names)}

    def search_threshold(self, k: int, seed: int) -> torch.Tensor:
        """The exact k-th smallest score (threshold.kth_smallest: one counting pass over the slabs,
        bracketed by a random sample drawn with `seed`)."""
        devices = list(self.layout.device_numel)
        positions = sample_positions([self.layout.device_numel[device] for device in devices], seed=seed)
        sample = torch.cat([self._flat_scores_at(device, where).float().cpu() for device, where in zip(devices, positions)])
        return kth_smallest(self.slab_factors, k, self.total_numel, sample)

    def apply_mask(self, threshold: torch.Tensor) -> None:
        """Set every selected entry whose score is < threshold to 0, in place."""
        for (factors, kernels), slab in zip(self.slab_factors(), self.slabs):
            kernels.mask(self.layout.weights(slab), factors, threshold)

    def _check_parameters_unchanged(self) -> None:
        """Refuse a step over parameters moved, cast, reshaped or made non-contiguous since the pruner
        was built (model.to(...), .half(), param.data = ...): the statistics, slabs and kernels were laid
        out for them as they were, and would fail deep inside or mask a copy."""
        for name, param, built in zip(self.parameter_names, self.params, self._built_as):
            now = placement(param)
            if now != built:
                raise ValueError(f"{name} is now {describe(now)}, it was {describe(built)} when the "
                                 f"{type(self).__name__} was built; build the pruner after moving or casting the "
                                 "model (model.to(...), .half())")

    def _check_step(self, global_step) -> int:
        """`global_step` as an int, refused unless it is an update after the last one stepped."""
        if not is_integer(global_step):
            raise TypeError(f"global_step={global_step!r} must be an integer, the optimizer update just made "
                            "(1, 2, ...)")
        if global_step < 1:
            raise ValueError(f"global_step={global_step}: pruner steps count optimizer updates from 1")
        last = self.last_step
        if last is not None and global_step <= last:
            raise ValueError(f"step({global_step}) came after step({last}): each optimizer update is stepped once, "
                             f"in increasing order; pass the update just made (after step({last}) or a state "
                             f"loaded at update {last}, the next is {last + 1})")
        return int(global_step)

    def _check_gradients_seen(self, t: int, masking: bool) -> bool:
        """Whether a selected parameter has a gradient now; refuses a masking step of a method that
        scores by gradients when no step, this one included, has seen any (every score would be 0)."""
        found = any(param.grad is not None for param in self.params)
        if masking and self.needs_gradients and not found and self.gradient_steps == 0:
            raise ValueError(f"{type(self).__name__}.step({t}) would mask by scores no gradient has reached: no step "
                             f"so far found a .grad on the {len(self.params)} selected parameters (e.g. "
                             f"{self.parameter_names[0]}), so every score is 0; call step(t) after loss.backward() "
                             "and optimizer.step() and before optimizer.zero_grad()")
        return found

    @torch.no_grad()
    def step(self, global_step: int):
        """One call per optimizer update t = global_step (1-based, increasing), after `optimizer.step()`
        and before the gradients are zeroed. Returns (remaining_ratio, mask_threshold or None).
        Refuses, before changing anything, a t not after the last one (TypeError for a non-integer),
        parameters moved, cast or re-laid out since the pruner was built, and a masking step of a
        gradient-scored method that no gradient has reached yet."""
        started, t = time.perf_counter(), self._check_step(global_step)
        self._check_parameters_unchanged()
        ratio = self.schedule.remaining_ratio(t)
        k = int(self.total_numel * (1 - ratio))
        masking = self.schedule.is_masking_step(t) and k >= 1
        if self._check_gradients_seen(t, masking):
            self.gradient_steps += 1
        with torch_threads(self.num_threads):
            self.kernels.set_threads(torch.get_num_threads())
            if self._update_statistics(t):
                self._scores_version += 1
            threshold, searched = None, False
            if masking:
                searched = self._threshold_key != (self._scores_version, k)
                if searched:
                    self._threshold = self.search_threshold(k, seed=t)
                    self._threshold_key = (self._scores_version, k)
                threshold = float(self._threshold)
                self.apply_mask(self._threshold)
        self.last_step_stats = PruneStepStats(t, ratio, threshold, masking, searched, time.perf_counter() - started)
        return ratio, threshold

    def state_dict(self) -> dict:
        """The resumable state; see the module docstring for its format."""
        stats = self.last_step_stats
        return {"format": STATE_FORMAT, "method": self.method, "last_step": self.last_step,
                "remaining_ratio": None if stats is None else stats.remaining_ratio,
                "mask_threshold": None if stats is None else stats.mask_threshold,
                "gradient_steps": self.gradient_steps,
                "parameter_names": list(self.parameter_names), "hyperparameters": self.hyperparameters(),
                "tensors": {f"{statistic}/{name}": self.layout.view_of(buffers, index).clone()
                            for statistic, buffers in self._statistics().items()
                            for index, name in enumerate(self.parameter_names)}}

    def load_state_dict(self, state: dict) -> None:
        """Restore a `state_dict()` of the same method over the same selected parameters with the same
        hyperparameters. Everything is checked before anything changes: a state that does not fit is
        refused (TypeError when it is not a dict, else ValueError naming what differs) and the pruner
        stays as it was."""
        if not isinstance(state, Mapping):
            raise TypeError(f"state must be the dict {type(self).__name__}.state_dict() returned, not a "
                            f"{type(state).__name__}")
        if state.get("format") != STATE_FORMAT or state.get("method") != self.method:
            raise ValueError(f"cannot load a pruner state of format {state.get('format')!r} and method "
                             f"{state.get('method')!r} into a {self.method} pruner (format {STATE_FORMAT})")
        missing = [key for key in STATE_KEYS if key not in state]
        if missing:
            raise ValueError(f"the pruner state lacks {missing}; pass the whole dict state_dict() returned")
        if list(state["parameter_names"]) != self.parameter_names:
            missing = sorted(set(self.parameter_names) - set(state["parameter_names"]))
            extra = sorted(set(state["parameter_names"]) - set(self.parameter_names))
            raise ValueError(f"the pruner state selects other parameters than this model: missing {missing[:3]}, "
                             f"unexpected {extra[:3]} (same model and target_substrings needed)")
        check_same_hyperparameters(state["hyperparameters"], self.hyperparameters())
        tensors = state["tensors"]
        pairs = [(f"{statistic}/{name}", self.layout.view_of(buffers, index))
                 for statistic, buffers in self._statistics().items()
                 for index, name in enumerate(self.parameter_names)]
        expected = {key for key, _ in pairs}
        if set(tensors) != expected:
            raise ValueError(f"the pruner state holds tensors {sorted(set(tensors) - expected)[:3]} this {self.method} "
                             f"pruner does not keep and lacks {sorted(expected - set(tensors))[:3]}; load a state "
                             "saved by the same pruner")
        for key, mine in pairs:
            saved = tensors[key]
            if not (isinstance(saved, torch.Tensor) and saved.is_floating_point()):
                raise ValueError(f"pruner state {key} is a {getattr(saved, 'dtype', type(saved).__name__)}, "
                                 "not a floating-point tensor")
            if saved.shape != mine.shape:
                raise ValueError(f"pruner state {key} has shape {tuple(saved.shape)}, the parameter has "
                                 f"{tuple(mine.shape)} (a state saved over another model)")
        last_step = state["last_step"]
        if last_step is not None and not (is_integer(last_step) and last_step >= 1):
            raise ValueError(f"the pruner state's last_step={last_step!r} is not an update (None or an integer >= 1)")
        gradient_steps = state.get("gradient_steps", last_step or 0)      # older states: every step had one
        if not (is_integer(gradient_steps) and 0 <= gradient_steps <= (last_step or 0)):
            raise ValueError(f"the pruner state's gradient_steps={gradient_steps!r} is not a count of its "
                             f"{last_step or 0} steps")
        for key, mine in pairs:
            mine.copy_(tensors[key])
        threshold = state["mask_threshold"]
        self.last_step_stats = None if last_step is None else PruneStepStats(
            int(last_step), state["remaining_ratio"], threshold, masked=threshold is not None,
            threshold_searched=False, seconds=0.0)
        self.gradient_steps = int(gradient_steps)
        self._scores_version += 1       # the loaded statistics invalidate any remembered threshold


def placement(param: torch.Tensor) -> tuple:
    """What a pruner's layout depends on: (device, dtype, shape, contiguous)."""
    return param.device, param.dtype, tuple(param.shape), param.is_contiguous()


def describe(placement_: tuple) -> str:
    """A `placement` in words: "float16 [32, 32] on cpu"."""
    device, dtype, shape, contiguous = placement_
    return f"{str(dtype).replace('torch.', '')} {list(shape)} on {device}{'' if contiguous else ', non-contiguous'}"


STATE_KEYS = ("last_step", "remaining_ratio", "mask_threshold", "parameter_names", "hyperparameters", "tensors")


def check_same_hyperparameters(saved, mine: dict) -> None:
    """Refuse a state saved with other hyperparameters (compared as they read back from JSON): its
    statistics and step belong to another schedule."""
    mine = json.loads(json.dumps(mine))
    if not isinstance(saved, Mapping):
        raise ValueError(f"the pruner state's hyperparameters are a {type(saved).__name__}, not a dict")
    saved = json.loads(json.dumps(dict(saved)))
    for name in sorted(set(mine) | set(saved)):
        if mine.get(name) != saved.get(name):
            raise ValueError(f"the pruner state was saved with {name}={saved.get(name)!r}, this pruner has "
                             f"{name}={mine.get(name)!r}; build the pruner with the settings of the run that saved it")


def select_prunable(model: nn.Module, substrings: Tuple[str, ...], owner: str) -> List[Tuple[str, nn.Parameter]]:
    """The (name, parameter) pairs a pruner prunes (module docstring: what is selected), in the
    model's order, for checked `substrings`. `owner` names the pruner in the frozen parameters' warning."""
    selected = select_parameters(model, substrings)
    names = [name for name, _ in model.named_parameters()]
    if not names:
        raise ValueError(f"{type(model).__name__} has no parameters to prune; pass the model itself")
    unmatched = [substring for substring in substrings if not any(substring in name for name, _ in selected)]
    if not selected or (unmatched and substrings != PRUNABLE_SUBSTRINGS):
        sample = names[::max(1, len(names) // 5)][:5]       # a few names from all over the model
        raise ValueError(f"target_substrings {unmatched} match no parameter of {type(model).__name__}, whose "
                         f"{len(names)} parameters are named like {sample}; pass substrings of those names")
    frozen = [name for name, param in selected if not param.requires_grad]
    if len(frozen) == len(selected):
        raise ValueError(f"every parameter target_substrings {list(substrings)} select is frozen "
                         f"(requires_grad=False), e.g. {frozen[0]}; unfreeze the ones to prune")
    if frozen:
        warnings.warn(f"{owner} leaves alone {len(frozen)} frozen parameter(s) (requires_grad=False) that "
                      f"target_substrings select: {', '.join(frozen[:3])}{', ...' if len(frozen) > 3 else ''}; "
                      "unfreeze them to prune them, or narrow target_substrings to silence this", stacklevel=3)
        selected = [(name, param) for name, param in selected if param.requires_grad]
    for name, param in selected:
        if param.is_meta:
            raise ValueError(f"{name} is on the meta device (a model built without its weights); load or "
                             "materialize the weights before building the pruner")
        if not param.is_floating_point():
            raise ValueError(f"{name} is a {param.dtype} parameter; pruners score real floating-point weights only")
    check_no_shared_memory(selected)
    return selected


def check_no_shared_memory(named: Sequence[Tuple[str, torch.Tensor]]) -> None:
    """Refuse two selected parameters whose memory overlaps (views of one tensor, weights tied by
    sharing storage): each would be scored and masked as if it were alone."""
    spans = []
    for name, param in named:
        if param.numel() == 0:
            continue
        extent = 1 + sum((size - 1) * stride for size, stride in zip(param.shape, param.stride()))
        start = param.storage_offset() * param.element_size()
        storage = (param.device, param.untyped_storage().data_ptr())
        spans.append((storage, start, start + extent * param.element_size(), name))
    spans.sort(key=lambda span: (str(span[0][0]), span[0][1], span[1]))
    for before, after in zip(spans, spans[1:]):
        if before[0] == after[0] and after[1] < before[2]:
            raise ValueError(f"{before[3]} and {after[3]} share memory (one is a view of the other, or they are "
                             "tied); select only one of them through target_substrings")
