"""What every unstructured pruner shares: parameter selection, schedule, threshold, masking, state.

A pruner is shaped like an optimizer (torch.ao.pruning's BaseSparsifier): built
over a model, `step(t)` once per optimizer update (after `optimizer.step()`,
before the gradients are zeroed, t from 1), `state_dict()`/`load_state_dict()`.
A method only writes its scoring rule, as hooks:

    _update_statistics(t) -> bool    accumulate what the scores need; True when the
                                     scores changed
    _slab_factors(slab, out)         one or two flat tensors whose product is the scores
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

Layout. The selected parameters of one device are laid end to end in one flat
index space; a method's statistics are flat float32 buffers over it (one per
statistic and device), seen per parameter through views. Work goes by slabs:
consecutive runs of about SLAB_NUMEL entries of that space, cutting large
parameters into pieces and gathering small ones (a non-contiguous parameter
is one piece, whole). A pass does every operation of a step on one slab before
moving to the next, so a slab's statistics, weights, gradients and work buffers
(a few MB) are read from memory once and stay in cache for the rest: a PLATON
step at a window close reads and writes the model-sized buffers once for the
update and once more for the threshold's counting pass, instead of once per
elementwise operation. Slabs are
large enough that per-operation overhead stays small (a few hundred slabs for
BERT-base). Work buffers are one slab in size; nothing of the model's size is
allocated per step (short of the rare fallback of the threshold search);
scores are computed when needed, never stored.

State dict (plain Python values plus tensors, as torch optimizers do):

    {"format": 1, "method": "platon" | "magnitude",
     "last_step": int | None, "remaining_ratio": float | None, "mask_threshold": float | None,
     "parameter_names": [name, ...],                 # the selected parameters, in order
     "hyperparameters": {...},                       # as constructed, for the record
     "tensors": {"<statistic>/<parameter name>": Tensor}}   # e.g. "uncertainty/encoder.layer.0.output.dense.bias"

Everything but "tensors" is JSON; "tensors" is a flat str → Tensor dict of
copies, one per statistic and parameter with the parameter's shape, that
`safetensors.torch.save_file` takes as is.

Kernels. On a CPU each pass can run as one fused loop per slab or piece
(pruners.kernels, numba: `kernels="auto"`, the default, when numba is installed
and every selected parameter is a CPU float32 tensor; "numba" insists, "torch"
declines). A fused loop reads each input once and never writes the scores out;
it gives the same bits as the torch operations (the statistics, the counts, the
threshold and the masked weights), about twice as fast for a whole PLATON step.
A slab holding a non-contiguous parameter runs on torch operations either way.

Threads: the passes gain little from many threads, and on a CPU shared with other processes each parallel region can wait for a
descheduled thread (OpenMP threads spin at barriers). `num_threads` runs
`step()` with that many intra-op threads (restoring torch's setting after; the
fused loops take the same number); None, the default, leaves torch's setting alone. On the 2-core machine of
bench/pruner_overhead.py, busy with other jobs, num_threads=1 made the pruner
about 3× faster than the 2 threads training used.
"""
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from pruners import kernels as fused
from pruners.anatomy import PRUNABLE_SUBSTRINGS, select_parameters
from pruners.schedule import is_masking_step, remaining_ratio, validate_schedule
from pruners.threshold import kth_smallest, sample_positions

DEFAULT_TARGET_SUBSTRINGS = PRUNABLE_SUBSTRINGS
SLAB_NUMEL = 1 << 19      # entries per slab (2 MB of float32 per buffer; a step's working set fits in cache)
STATE_FORMAT = 1


def take(tensor: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """A copy of the entries of `tensor` at flat `positions`."""
    return tensor.reshape(-1).index_select(0, positions.to(tensor.device))


@contextmanager
def torch_threads(num_threads: Optional[int]):
    """Run the body with `num_threads` intra-op threads (None: leave torch's setting alone)."""
    if num_threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@dataclass(frozen=True)
class Piece:
    """Entries [start, stop) of parameter `index`, in its flattened order (`whole`: all of it, kept
    in its own shape, the case of a non-contiguous parameter)."""
    index: int
    start: int
    stop: int
    whole: bool = False

    @property
    def numel(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class Slab:
    """Consecutive selected entries of one device, [start, stop) of its flat space, as pieces of parameters."""
    device: torch.device
    start: int
    stop: int
    pieces: Tuple[Piece, ...]

    @property
    def numel(self) -> int:
        return self.stop - self.start


def plan_slabs(params: Sequence[torch.Tensor], offsets: Sequence[int], slab_numel: int) -> List[Slab]:
    """Cut the flat spaces into slabs of at most `slab_numel` entries (a non-contiguous parameter
    larger than that is a slab of its own), in parameter order."""
    slabs: List[Slab] = []
    pending: List[Piece] = []

    def close():
        if pending:
            first, last = pending[0], pending[-1]
            device = params[first.index].device
            slabs.append(Slab(device, offsets[first.index] + first.start, offsets[last.index] + last.stop,
                              tuple(pending)))
            pending.clear()

    for index, param in enumerate(params):
        if pending and params[pending[-1].index].device != param.device:
            close()
        used = sum(piece.numel for piece in pending)
        if not param.is_contiguous():
            if used + param.numel() > slab_numel:
                close()
            pending.append(Piece(index, 0, param.numel(), whole=True))
            continue
        start = 0
        while start < param.numel():
            if used >= slab_numel:
                close()
                used = 0
            stop = min(param.numel(), start + slab_numel - used)
            pending.append(Piece(index, start, stop))
            used += stop - start
            start = stop
    close()
    return slabs


@dataclass
class PruneStepStats:
    """What one `step` did, for logging."""
    step: int
    remaining_ratio: float
    mask_threshold: Optional[float]     # τ when this step masked, else None
    masked: bool                        # whether weights were set to zero
    threshold_searched: bool            # τ was selected anew (False: reused, scores unchanged)
    seconds: float                      # host time spent in `step`


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
        self.params = [param for _, param in selected]
        self.total_numel = sum(param.numel() for param in self.params)
        self.offsets: List[int] = []                          # of each parameter in its device's flat space
        self.device_numel: Dict[torch.device, int] = {}
        for param in self.params:
            self.offsets.append(self.device_numel.get(param.device, 0))
            self.device_numel[param.device] = self.offsets[-1] + param.numel()
        self.slabs = plan_slabs(self.params, self.offsets, SLAB_NUMEL)
        self.kernels = self._load_kernels(kernels)
        self.kernel_name = self.kernels.name if self.kernels is not None else "torch"
        # slabs whose passes run as fused loops: every piece a flat view of a CPU float32 parameter
        self.fused_slabs = [self.kernels is not None and not any(piece.whole for piece in slab.pieces)
                            for slab in self.slabs]
        self._work = {device: torch.empty(max(slab.numel for slab in self.slabs if slab.device == device),
                                          device=device) for device in self.device_numel}
        self._threshold_key = None      # (scores version, k) that `_threshold` belongs to
        self._threshold: Optional[torch.Tensor] = None
        self._scores_version = 0
        self.last_step: Optional[int] = None
        self.last_remaining_ratio: Optional[float] = None
        self.last_mask_threshold: Optional[float] = None
        self.last_step_stats: Optional[PruneStepStats] = None

    def _load_kernels(self, kind: str):
        """The fused CPU loops (pruners.kernels) when `kind` allows and every selected parameter is a
        CPU float32 tensor, else None (torch operations)."""
        loops = fused.load(kind)
        if loops is None:
            return None
        unfit = [(name, param) for name, param in zip(self.parameter_names, self.params) if not loops.accepts(param)]
        if unfit and kind == "numba":
            name, param = unfit[0]
            raise ValueError(f"kernels='numba' (--pruner_kernels numba) runs on CPU float32 parameters only; "
                             f"{name} is {param.dtype} on {param.device}; use 'auto' or 'torch'")
        return None if unfit else loops

    # ---- the flat layout
    def new_flat_buffers(self) -> Dict[torch.device, torch.Tensor]:
        """One zero float32 buffer per device over its flat space."""
        return {device: torch.zeros(numel, device=device) for device, numel in self.device_numel.items()}

    def view_of(self, buffers: Dict[torch.device, torch.Tensor], index: int) -> torch.Tensor:
        """Parameter `index`'s part of a flat buffer, shaped like the parameter."""
        param = self.params[index]
        start = self.offsets[index]
        return buffers[param.device][start:start + param.numel()].view(param.shape)

    def slab_of(self, buffers: Dict[torch.device, torch.Tensor], slab: Slab) -> torch.Tensor:
        return buffers[slab.device][slab.start:slab.stop]

    def work(self, slab: Slab) -> torch.Tensor:
        """The slab-sized work buffer of the slab's device."""
        return self._work[slab.device][:slab.numel]

    def members(self, slab: Slab, *flats: torch.Tensor):
        """(piece, its part of each slab-sized flat tensor in `flats`, ...), each part shaped like
        `part(..., piece)`."""
        for piece in slab.pieces:
            start = self.offsets[piece.index] + piece.start - slab.start
            parts = [flat[start:start + piece.numel] for flat in flats]
            if piece.whole:
                parts = [here.view(self.params[piece.index].shape) for here in parts]
            yield (piece, *parts)

    @staticmethod
    def part(tensor: torch.Tensor, piece: Piece) -> torch.Tensor:
        """The piece of a parameter-shaped tensor (the parameter, its gradient): a flat view, or the
        tensor itself for a whole piece (a gradient laid out unlike its parameter is copied)."""
        if piece.whole:
            return tensor
        return tensor.reshape(-1)[piece.start:piece.stop]

    # ---- the scoring rule, written by each method
    def _update_statistics(self, t: int) -> bool:
        raise NotImplementedError

    def _slab_factors(self, slab: Slab, out: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """One or two flat slab-sized tensors whose (elementwise) product is the slab's scores
        (`out`, a work buffer, may hold one of them)."""
        raise NotImplementedError

    def _scores_at(self, index: int, positions: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _flat_scores_at(self, device: torch.device, positions: torch.Tensor) -> torch.Tensor:
        """Scores at increasing `positions` of `device`'s flat space, parameter by parameter."""
        indices = [index for index, param in enumerate(self.params) if param.device == device]
        starts = torch.tensor([self.offsets[index] for index in indices] + [self.device_numel[device]])
        bounds = torch.searchsorted(positions, starts).tolist()
        return torch.cat([self._scores_at(index, positions[bounds[i]:bounds[i + 1]] - self.offsets[index])
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

    def _slab_scores(self, slab: Slab, out: torch.Tensor) -> torch.Tensor:
        """The slab's scores as one flat tensor (in `out`, or a statistic itself: read only)."""
        factors = self._slab_factors(slab, out)
        return factors[0] if len(factors) == 1 else torch.mul(*factors, out=out)

    def slab_scores(self):
        """The scores slab by slab (each one may live in a work buffer reused by the next)."""
        for slab in self.slabs:
            yield self._slab_scores(slab, out=self.work(slab))

    def slab_chunks(self):
        """What the threshold's counting pass reads, slab by slab: the scores, or their factors
        (a tuple) where a fused loop multiplies them itself."""
        for slab, fused_slab in zip(self.slabs, self.fused_slabs):
            out = self.work(slab)
            yield tuple(self._slab_factors(slab, out)) if fused_slab else self._slab_scores(slab, out)

    @torch.no_grad()
    def scores(self) -> Dict[str, torch.Tensor]:
        """A copy of the current score of every selected entry, by parameter name (for inspection)."""
        flat = self.new_flat_buffers()
        for slab, scores in zip(self.slabs, self.slab_scores()):
            self.slab_of(flat, slab).copy_(scores)
        return {name: self.view_of(flat, index) for index, name in enumerate(self.parameter_names)}

    def search_threshold(self, k: int, seed: int) -> torch.Tensor:
        """The exact k-th smallest score (threshold.kth_smallest: one counting pass over the slabs,
        bracketed by a random sample drawn with `seed`)."""
        devices = list(self.device_numel)
        positions = sample_positions([self.device_numel[device] for device in devices], seed=seed)
        sample = torch.cat([self._flat_scores_at(device, where).float().cpu() for device, where in zip(devices, positions)])
        return kth_smallest(self.slab_chunks, k, self.total_numel, sample, kernels=self.kernels)

    def apply_mask(self, threshold: torch.Tensor) -> None:
        """Set every selected entry whose score is < threshold to 0, in place."""
        for slab, fused_slab in zip(self.slabs, self.fused_slabs):
            if fused_slab:
                factors = self._slab_factors(slab, out=self.work(slab))
                for piece, *factor_parts in self.members(slab, *factors):
                    self.kernels.mask(self.part(self.params[piece.index], piece), factor_parts, threshold)
                continue
            scores = self._slab_scores(slab, out=self.work(slab))
            keep = torch.ge(scores, threshold.to(slab.device), out=self.work(slab))
            for piece, keep_here in self.members(slab, keep):
                self.part(self.params[piece.index], piece).mul_(keep_here)   # × 0.0 zeroes (−0.0 is == 0 too)

    @torch.no_grad()
    def step(self, global_step: int):
        """One call per optimizer update t = global_step (1-based), after `optimizer.step()` and
        before the gradients are zeroed. Returns (remaining_ratio, mask_threshold or None)."""
        if global_step < 1:
            raise ValueError(f"global_step={global_step}: pruner steps count optimizer updates from 1")
        started, t = time.perf_counter(), global_step
        with torch_threads(self.num_threads):
            if self.kernels is not None:
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
        self.last_step, self.last_remaining_ratio, self.last_mask_threshold = t, ratio, threshold
        self.last_step_stats = PruneStepStats(t, ratio, threshold, masking, searched, time.perf_counter() - started)
        return ratio, threshold

    def state_dict(self) -> dict:
        """The resumable state; see the module docstring for its format."""
        return {"format": STATE_FORMAT, "method": self.method, "last_step": self.last_step,
                "remaining_ratio": self.last_remaining_ratio, "mask_threshold": self.last_mask_threshold,
                "parameter_names": list(self.parameter_names), "hyperparameters": self.hyperparameters(),
                "tensors": {f"{statistic}/{name}": self.view_of(buffers, index).clone()
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
                saved, mine = tensors[f"{statistic}/{name}"], self.view_of(buffers, index)
                if saved.shape != mine.shape:
                    raise ValueError(f"pruner state {statistic}/{name} has shape {tuple(saved.shape)}, "
                                     f"the parameter has {tuple(mine.shape)}")
                mine.copy_(saved)
        self.last_step, self.last_remaining_ratio = state["last_step"], state["remaining_ratio"]
        self.last_mask_threshold = state["mask_threshold"]
        self._scores_version += 1       # the loaded statistics invalidate any remembered threshold
