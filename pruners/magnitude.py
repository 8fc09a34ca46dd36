"""Magnitude pruning: the baseline of PLATON's paper (docs/METHODS.md §1).

The score of every selected entry is its magnitude at the current update,

    S = |p|,

with the same cubic schedule, exact global threshold and strict masking as
PLATON (`pruners.base`): at a masking step, entries with |p| < τ are set to 0,
τ the k-th smallest magnitude, k = floor(N·(1 − r)). No statistics are kept, so
the state is only the step counter; the scores change at every update.
"""
import torch

from pruners.base import DEFAULT_TARGET_SUBSTRINGS, UnstructuredPruner
from pruners.layout import take


class MagnitudePruner(UnstructuredPruner):
    """Global magnitude pruning over any nn.Module, shaped like an optimizer (see `pruners.base`)."""

    method = "magnitude"

    def __init__(self, model: torch.nn.Module, total_steps: int, *, initial_threshold: float,
                 final_threshold: float, warmup_steps: float, initial_warmup: float, final_warmup: float,
                 deltaT: int, target_substrings=DEFAULT_TARGET_SUBSTRINGS, num_threads=None, kernels="auto"):
        super().__init__(model, total_steps, initial_threshold=initial_threshold, final_threshold=final_threshold,
                         warmup_steps=warmup_steps, initial_warmup=initial_warmup, final_warmup=final_warmup,
                         deltaT=deltaT, target_substrings=target_substrings, num_threads=num_threads,
                         kernels=kernels)

    def _update_statistics(self, t: int) -> bool:
        return True     # the weights moved: new scores

    def _slab_factors(self, slab, kernels, out: torch.Tensor):
        return (kernels.magnitude(self.layout.weights(slab), out=out),)

    def _scores_at(self, index: int, positions: torch.Tensor) -> torch.Tensor:
        return take(self.params[index], positions).abs()
