"""Magnitude pruning: the baseline of PLATON's paper (docs/METHODS.md §1).

The score of every selected entry is its magnitude at the current update,

    S = |p|,

with the same cubic schedule, exact global threshold and strict masking as
PLATON (`pruners.base`): at a masking step, entries with |p| < τ are set to 0,
τ the k-th smallest magnitude, k = floor(N·(1 − r)). No statistics are kept, so
the state is only the step counter; the scores change at every update.
"""
import torch

from pruners.base import UnstructuredPruner
from pruners.kernels import split
from pruners.layout import take


def magnitudes(weights, out: torch.Tensor) -> torch.Tensor:
    """out ← |P| over a slab's parameter parts (one copy, nothing a fused loop would speed up, so
    the same torch operations whatever the kernels; a part of another dtype than `out`, e.g.
    float16, is converted first: torch.abs writes only its own dtype)."""
    for here, weight in zip(split(out, weights), weights):
        if weight.dtype == here.dtype:
            torch.abs(weight, out=here)
        else:
            here.copy_(weight).abs_()
    return out


class MagnitudePruner(UnstructuredPruner):
    """Global magnitude pruning over any nn.Module, shaped like an optimizer (see `pruners.base`; the
    constructor is the base's: a schedule, no statistics of its own). Needs no gradient;
    frozen parameters are skipped with a warning all the same (a frozen weight is one not to change).
    Works on float16/bfloat16 parameters too: the magnitudes are compared in float32."""

    method = "magnitude"

    def _update_statistics(self, t: int) -> bool:
        return True     # the weights moved: new scores

    def _slab_factors(self, slab, kernels, out: torch.Tensor):
        return (magnitudes(self.layout.weights(slab), out=out),)

    def _scores_at(self, index: int, positions: torch.Tensor) -> torch.Tensor:
        return take(self.params[index], positions).abs()
