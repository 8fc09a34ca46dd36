"""What every unstructured pruner shares: parameter selection, schedule, threshold, masking, state.

A pruner is shaped like an optimizer (torch.ao.pruning's BaseSparsifier): built
over a model, `step(t)` once per optimizer update (after `optimizer.step()`,
before the gradients are zeroed, t from 1), `state_dict()`/`load_state_dict()`.
A method only writes its scoring rule, as hooks:

    _scores_change_at(t) -> bool     whether update t changes the scores
    _update_chunk(t, index, piece, work)   accumulate what the scores need, for one chunk
    _scores(index, piece, out)       the scores of parameter `index`, restricted by
                                     `piece` (a function applied to the parameter and
                                     to every statistic of the same shape)
    _sample_scores(t, positions)     a sample of the scores after update t

and names its statistic tensors in `_statistics()`. At a masking step
(schedule.is_masking_step) with k = floor(N·(1 − r)) ≥ 1, the threshold τ is the
exact k-th smallest of all N scores (the bracketed search of pruners.threshold, ALGORITHMS.md §1.6)
and every selected entry whose score is < τ (strict) is set to 0 in place. τ is
reused while neither the scores nor k change (between PLATON's window closes in
the final phase), which is exact because it is the same selection.

Work is done per parameter, in chunks of at most about CHUNK_NUMEL entries along
its first dimension (only huge parameters are cut), through two reusable buffers, so no step allocates memory of the
model's size (short of the rare fallback of the threshold search). One pass
over the chunks updates the statistics and, while a chunk is in cache, masks it
(τ known) or counts its new scores for the threshold search (then a second
pass masks): per update the scores are computed once or twice, never stored.

State dict (plain Python values plus tensors, as torch optimizers do):

    {"format": 1, "method": "platon" | "magnitude",
     "last_step": int | None, "remaining_ratio": float | None, "mask_threshold": float | None,
     "parameter_names": [name, ...],                 # the selected parameters, in order
     "hyperparameters": {...},                       # as constructed, for the record
     "tensors": {"<statistic>/<parameter name>": Tensor}}   # e.g. "uncertainty/encoder.layer.0.output.dense.bias"

Everything but "tensors" is JSON; "tensors" is a flat str → Tensor dict that
`safetensors.torch.save_file` takes as is. The tensors are the live state (like
`optimizer.state_dict()`): copy them if you keep them while training goes on.
"""
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from pruners.schedule import is_masking_step, remaining_ratio, validate_schedule
from pruners.threshold import BracketCount, bracket_from_sample, kthvalue_of_chunks, sample_positions

DEFAULT_TARGET_SUBSTRINGS = ("attention.self", "attention.output.dense", "output.dense", "intermediate.dense")
# Entries per chunk. Whole BERT-base matrices (2.4 M entries, 9.4 MB) fit: their operands stay in a
# server CPU's L3 cache between the few elementwise ops of a step, and every op is one large
# parallel region (many small ones stall badly when other processes share the cores).
CHUNK_NUMEL = 1 << 22
STATE_FORMAT = 1


def select_parameters(model: nn.Module, target_substrings: Sequence[str]) -> List[Tuple[str, nn.Parameter]]:
    """The named parameters whose name contains any of `target_substrings` (weights and biases)."""
    return [(name, param) for name, param in model.named_parameters()
            if any(substring in name for substring in target_substrings)]


def rows(tensor: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """Rows start:stop along the first dimension (a 0-d tensor is one row), as a view."""
    return (tensor.view(1) if tensor.dim() == 0 else tensor)[start:stop]


def take(tensor: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """A copy of the entries of `tensor` at flat `positions`."""
    return tensor.reshape(-1).index_select(0, positions.to(tensor.device))


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
                 target_substrings: Sequence[str] = DEFAULT_TARGET_SUBSTRINGS):
        validate_schedule(total_steps, initial_threshold, final_threshold, warmup_steps, initial_warmup,
                          final_warmup, deltaT)
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
        self.chunks = []        # (parameter index, first row, end row)
        for index, param in enumerate(self.params):
            num_rows = param.shape[0] if param.dim() else 1
            row_numel = max(1, param.numel() // max(1, num_rows))
            step = max(1, CHUNK_NUMEL // row_numel)
            self.chunks += [(index, start, min(num_rows, start + step)) for start in range(0, num_rows, step)]
        self._buffers: Dict[torch.device, Tuple[torch.Tensor, torch.Tensor]] = {}
        self._threshold_key = None      # (scores version, k) that `_threshold` belongs to
        self._threshold: Optional[torch.Tensor] = None
        self._scores_version = 0
        self.last_step: Optional[int] = None
        self.last_remaining_ratio: Optional[float] = None
        self.last_mask_threshold: Optional[float] = None
        self.last_step_stats: Optional[PruneStepStats] = None

    # ---- the scoring rule, written by each method
    def _scores_change_at(self, t: int) -> bool:
        """Whether update t changes the scores (PLATON: when a window closes; magnitude: always)."""
        raise NotImplementedError

    def _update_chunk(self, t: int, index: int, piece: Callable[[torch.Tensor], torch.Tensor],
                      work: torch.Tensor) -> None:
        """Accumulate update t's statistics for one chunk (`piece` cuts it out of parameter `index`
        and of every tensor of its shape); `work` is a float32 buffer of the chunk's shape."""

    def _scores(self, index: int, piece: Callable[[torch.Tensor], torch.Tensor],
                out: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The scores of the entries `piece` cuts out of parameter `index` (written into `out` if given)."""
        raise NotImplementedError

    def _sample_scores(self, t: int, positions: List[torch.Tensor]) -> List[torch.Tensor]:
        """Per parameter, the scores at the given flat positions as they will be after update t's
        statistics update (only used to place the threshold search; need not be exact)."""
        return [self._scores(index, lambda tensor: take(tensor, where)) for index, where in enumerate(positions)]

    def _statistics(self) -> Dict[str, List[torch.Tensor]]:
        """Statistic name -> one float32 tensor per selected parameter (the state to save)."""
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

    def scores(self) -> Dict[str, torch.Tensor]:
        """A copy of the current score of every selected entry, by parameter name (for inspection)."""
        return {name: self._scores(index, lambda tensor: tensor).clone()
                for index, name in enumerate(self.parameter_names)}

    def buffers(self, device: torch.device) -> Tuple[torch.Tensor, torch.Tensor]:
        """Two float32 work buffers of one chunk's size on `device`, allocated once."""
        if device not in self._buffers:
            largest = max(rows(self.params[i], a, b).numel() for i, a, b in self.chunks)
            self._buffers[device] = (torch.empty(largest, device=device), torch.empty(largest, device=device))
        return self._buffers[device]

    def chunk_scores(self):
        """Scores chunk by chunk (each one lives in a buffer reused by the next)."""
        for index, start, stop in self.chunks:
            piece = rows(self.params[index], start, stop)
            out = self.buffers(piece.device)[0][:piece.numel()].view(piece.shape)
            yield self._scores(index, lambda tensor: rows(tensor, start, stop), out=out)

    def _mask_chunk(self, index: int, start: int, stop: int, threshold: torch.Tensor) -> None:
        """Rows start:stop of parameter `index`: entries whose score is < threshold become 0."""
        weights = rows(self.params[index], start, stop)
        score_buffer, keep_buffer = self.buffers(weights.device)
        scores = self._scores(index, lambda tensor: rows(tensor, start, stop),
                              out=score_buffer[:weights.numel()].view(weights.shape))
        keep = torch.ge(scores, threshold.to(scores.device), out=keep_buffer[:weights.numel()].view(weights.shape))
        weights.mul_(keep)      # × 1.0 keeps, × 0.0 zeroes (−0.0 for negative weights, still == 0)

    @torch.no_grad()
    def step(self, global_step: int):
        """One call per optimizer update t = global_step (1-based), after `optimizer.step()` and
        before the gradients are zeroed. Returns (remaining_ratio, mask_threshold or None).

        One pass over the chunks updates the statistics and, while each chunk is in cache, either
        masks it (τ already known: scores and k unchanged since the last search) or feeds its new
        scores to the threshold search; after a search a second pass masks."""
        if global_step < 1:
            raise ValueError(f"global_step={global_step}: pruner steps count optimizer updates from 1")
        started, t = time.perf_counter(), global_step
        ratio = self.remaining_ratio(t)
        k = int(self.total_numel * (1 - ratio))
        masking = self.is_masking_step(t) and k >= 1
        if self._scores_change_at(t):
            self._scores_version += 1
        threshold, search = None, None
        if masking and self._threshold_key == (self._scores_version, k):
            threshold = self._threshold
        elif masking:
            positions = sample_positions([p.numel() for p in self.params], seed=t)
            sample = torch.cat([s.float().to(self.params[0].device) for s in self._sample_scores(t, positions)])
            search = BracketCount(*bracket_from_sample(sample, k, self.total_numel))
        for index, start, stop in self.chunks:
            piece = rows(self.params[index], start, stop)
            work = self.buffers(piece.device)[0][:piece.numel()].view(piece.shape)
            self._update_chunk(t, index, lambda tensor: rows(tensor, start, stop), work)
            if search is not None:
                search.add(self._scores(index, lambda tensor: rows(tensor, start, stop), out=work))
            elif threshold is not None:
                self._mask_chunk(index, start, stop, threshold)
        if search is not None:
            threshold = search.kth(k)
            if threshold is None:       # the sample misled the bracket (rare): select over everything
                threshold = kthvalue_of_chunks(self.chunk_scores, k)
            self._threshold, self._threshold_key = threshold, (self._scores_version, k)
            for index, start, stop in self.chunks:
                self._mask_chunk(index, start, stop, threshold)
        mask_threshold = None if threshold is None else float(threshold)
        self.last_step, self.last_remaining_ratio, self.last_mask_threshold = t, ratio, mask_threshold
        self.last_step_stats = PruneStepStats(t, ratio, mask_threshold, masking, search is not None,
                                              time.perf_counter() - started)
        return ratio, mask_threshold

    def state_dict(self) -> dict:
        """The resumable state; see the module docstring for its format."""
        return {"format": STATE_FORMAT, "method": self.method, "last_step": self.last_step,
                "remaining_ratio": self.last_remaining_ratio, "mask_threshold": self.last_mask_threshold,
                "parameter_names": list(self.parameter_names), "hyperparameters": self.hyperparameters(),
                "tensors": {f"{statistic}/{name}": tensor
                            for statistic, tensors in self._statistics().items()
                            for name, tensor in zip(self.parameter_names, tensors)}}

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
        for statistic, mine in self._statistics().items():
            for name, tensor in zip(self.parameter_names, mine):
                saved = tensors[f"{statistic}/{name}"]
                if saved.shape != tensor.shape:
                    raise ValueError(f"pruner state {statistic}/{name} has shape {tuple(saved.shape)}, "
                                     f"the parameter has {tuple(tensor.shape)}")
                tensor.copy_(saved)
        self.last_step, self.last_remaining_ratio = state["last_step"], state["remaining_ratio"]
        self.last_mask_threshold = state["mask_threshold"]
        self._scores_version += 1       # the loaded statistics invalidate any remembered threshold
