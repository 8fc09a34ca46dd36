"""What every unstructured pruner shares: the optimizer-shaped API over a method's scoring rule.

A pruner is shaped like an optimizer (torch.ao.pruning's BaseSparsifier): built
over a model, `step(t)` once per optimizer update (after `optimizer.step()`,
before the gradients are zeroed, t from 1), `state_dict()`/`load_state_dict()`.
A method only writes its scoring rule, as hooks:

    _update_statistics(t) -> bool    accumulate what the scores need; True when the
                                     scores changed
    _slab_factors(slab, kernels, out)  one or two flat tensors whose product is the scores
                                     of one slab
    _scores_at(index, positions)     the scores of parameter `index` at flat positions
    _flat_scores_at(device, positions)  the same at positions of a device's flat space (by
                                     default through `_scores_at`, parameter by parameter)
    _statistics()                    its state: statistic name -> flat buffer per device

At a masking step (schedule.is_masking_step) with k = floor(N·(1 − r)) ≥ 1, the
threshold τ is the exact k-th smallest of all N scores (the bracketed search of
pruners.threshold, docs/METHODS.md §1) and every selected entry whose score is
< τ (strict) is set to 0 in place. τ is reused while neither the scores nor k
change (between PLATON's window closes in the final phase): the same selection.

Where the work happens is told by the modules that do it: the flat buffers and
slabs in pruners.layout (`self.layout`), the passes over a slab in
pruners.kernels (each slab's kernels object, chosen once when the pruner is
built: `kernels="auto"`, the default, the fused numba loops where they apply;
"numba" insists, "torch" declines), the threads of a step (`num_threads`) in
pruners.kernels too.

State dict (plain Python values plus tensors, as torch optimizers do):

    {"format": 1, "method": "platon" | "magnitude",
     "last_step": int | None, "remaining_ratio": float | None, "mask_threshold": float | None,
     "parameter_names": [name, ...],                 # the selected parameters, in order
     "hyperparameters": {...},                       # as constructed, for the record
     "tensors": {"<statistic>/<parameter name>": Tensor}}   # e.g. "uncertainty/encoder.layer.0.output.dense.bias"

Everything but "tensors" is JSON; "tensors" is a flat str → Tensor dict of
copies, one per statistic and parameter with the parameter's shape, that
`safetensors.torch.save_file` takes as is.
"""
import time
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

import torch
from torch import nn

from pruners import kernels as kernel_choice
from pruners.anatomy import PRUNABLE_SUBSTRINGS, select_parameters
from pruners.kernels import Kernels, torch_threads
from pruners.layout import FlatLayout, Slab
from pruners.schedule import is_masking_step, remaining_ratio, validate_schedule
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
    """Base of PLATON and magnitude pruning: everything but the scoring rule."""

    method = "unstructured"

    def __init__(self, model: nn.Module, total_steps: int, *, initial_threshold: float, final_threshold: float,
                 warmup_steps: float, initial_warmup: float, final_warmup: float, deltaT: int,
                 target_substrings: Sequence[str] = DEFAULT_TARGET_SUBSTRINGS, num_threads: Optional[int] = None,
                 kernels: str = "auto"):
        validate_schedule(total_steps, initial_threshold, final_threshold, warmup_steps, initial_warmup,
                          final_warmup, deltaT)
        if num_threads is not None and not (isinstance(num_threads, int) and num_threads >= 1):
            raise ValueError(f"num_threads={num_threads!r} must be None (torch's setting) or an integer >= 1")
        self.num_threads = num_threads
        selected = select_parameters(model, target_substrings)
        if not selected:
            raise ValueError(f"no parameter of {type(model).__name__} has a name containing any of "
                             f"{list(target_substrings)}; pass target_substrings that match its named_parameters()")
        self.total_steps, self.deltaT = total_steps, deltaT
        self.initial_threshold, self.final_threshold = initial_threshold, final_threshold
        self.warmup_steps, self.initial_warmup, self.final_warmup = warmup_steps, initial_warmup, final_warmup
        self.target_substrings = tuple(target_substrings)
        self.parameter_names = [name for name, _ in selected]
        self.kernels: Kernels = kernel_choice.load(kernels, selected)
        self.kernel_name = self.kernels.name
        self.layout = FlatLayout([param for _, param in selected])
        self.params, self.slabs, self.total_numel = self.layout.params, self.layout.slabs, self.layout.total_numel
        self.slab_kernels = kernel_choice.per_slab(self.kernels, self.slabs)     # one kernels object per slab
        self._threshold_key = None      # (scores version, k) that `_threshold` belongs to
        self._threshold: Optional[torch.Tensor] = None
        self._scores_version = 0
        self.last_step_stats: Optional[PruneStepStats] = None     # what the last step did (None: no step yet)

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
        return dict(total_steps=self.total_steps, initial_threshold=self.initial_threshold,
                    final_threshold=self.final_threshold, warmup_steps=self.warmup_steps,
                    initial_warmup=self.initial_warmup, final_warmup=self.final_warmup, deltaT=self.deltaT,
                    target_substrings=list(self.target_substrings))

    # ---- shared machinery
    def remaining_ratio(self, t: int) -> float:
        return remaining_ratio(t, self.total_steps, self.initial_threshold, self.final_threshold,
                               self.warmup_steps, self.initial_warmup, self.final_warmup)

    def is_masking_step(self, t: int) -> bool:
        return is_masking_step(t, self.total_steps, self.warmup_steps, self.initial_warmup, self.final_warmup,
                               self.deltaT)

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

    @torch.no_grad()
    def step(self, global_step: int):
        """One call per optimizer update t = global_step (1-based), after `optimizer.step()` and
        before the gradients are zeroed. Returns (remaining_ratio, mask_threshold or None)."""
        if global_step < 1:
            raise ValueError(f"global_step={global_step}: pruner steps count optimizer updates from 1")
        started, t = time.perf_counter(), global_step
        with torch_threads(self.num_threads):
            self.kernels.set_threads(torch.get_num_threads())
            if self._update_statistics(t):
                self._scores_version += 1
            ratio = self.remaining_ratio(t)
            k = int(self.total_numel * (1 - ratio))
            masking = self.is_masking_step(t) and k >= 1
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
                "parameter_names": list(self.parameter_names), "hyperparameters": self.hyperparameters(),
                "tensors": {f"{statistic}/{name}": self.layout.view_of(buffers, index).clone()
                            for statistic, buffers in self._statistics().items()
                            for index, name in enumerate(self.parameter_names)}}

    def load_state_dict(self, state: dict) -> None:
        """Restore a `state_dict()` of the same method over the same selected parameters."""
        if state.get("format") != STATE_FORMAT or state.get("method") != self.method:
            raise ValueError(f"cannot load a pruner state of format {state.get('format')!r} and method "
                             f"{state.get('method')!r} into a {self.method} pruner (format {STATE_FORMAT})")
        if list(state["parameter_names"]) != self.parameter_names:
            missing = sorted(set(self.parameter_names) - set(state["parameter_names"]))
            extra = sorted(set(state["parameter_names"]) - set(self.parameter_names))
            raise ValueError(f"the pruner state selects other parameters than this model: missing {missing[:3]}, "
                             f"unexpected {extra[:3]} (same model and target_substrings needed)")
        tensors = state["tensors"]
        for statistic, buffers in self._statistics().items():
            for index, name in enumerate(self.parameter_names):
                saved, mine = tensors[f"{statistic}/{name}"], self.layout.view_of(buffers, index)
                if saved.shape != mine.shape:
                    raise ValueError(f"pruner state {statistic}/{name} has shape {tuple(saved.shape)}, "
                                     f"the parameter has {tuple(mine.shape)}")
                mine.copy_(saved)
        threshold = state["mask_threshold"]
        self.last_step_stats = None if state["last_step"] is None else PruneStepStats(
            state["last_step"], state["remaining_ratio"], threshold, masked=threshold is not None,
            threshold_searched=False, seconds=0.0)
        self._scores_version += 1       # the loaded statistics invalidate any remembered threshold
