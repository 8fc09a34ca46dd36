"""PLATON: unstructured pruning by the upper confidence bound of weight importance.

Zhang et al., "PLATON: Pruning Large Transformer Models with Upper Confidence
Bound of Weight Importance", ICML 2022. docs/METHODS.md §1, exactly, quirks kept.

For every selected parameter p (weights and biases of attention.self,
attention.output.dense, output.dense, intermediate.dense by default) three
float32 tensors of p's shape, zero at the start: the sensitivity I averaged over
the current window, its exponential moving average Ī, and the uncertainty U.
At update t, with g = p.grad (after clipping) and p already updated, j = t mod ΔT:

    j == 0 (a window closes):  Ī ← β1·Ī + (1−β1)·I
                               U ← β2·U + (1−β2)·|I − Ī|     (the new Ī; skipped when β2 == 1)
                               I ← |p ⊙ g|
    otherwise:                 I ← (j·I + |p ⊙ g|)/(j + 1)    (running mean in the window)

Quirk kept: in the first window the zero-initialised I counts as a sample
(ΔT = 2: step 1 gives I = |p⊙g|/2). The score is

    S = Ī ⊙ U   for 0 ≤ β2 < 1,        S = Ī   for β2 == 1,

and the schedule, threshold and masking are those of `pruners.base` (cubic
remaining ratio, τ = exact k-th smallest of all scores, p[S < τ] = 0). Moving
averages are computed as `lerp` (a + w·(b − a)), equal to the formulas above up
to float rounding. A parameter without a gradient at some update contributes
|p ⊙ g| = 0 there.

In the state dict (format in `pruners.base`) the statistics are the tensors
"sensitivity/<parameter>" (I), "sensitivity_average/<parameter>" (Ī) and
"uncertainty/<parameter>" (U, absent when β2 == 1).

Usage in a plain Hugging Face training loop: see `pruners/__init__.py`.
"""
from typing import Dict

import torch

from pruners.base import DEFAULT_TARGET_SUBSTRINGS, UnstructuredPruner, take
from pruners.schedule import refuse


def validate_betas(beta1: float, beta2: float) -> None:
    """β1 in [0, 1]; β2 in [0, 1) (S = Ī⊙U) or exactly 1 (S = Ī); anything else is refused."""
    if not 0 <= beta1 <= 1:
        refuse("beta1", beta1, "in [0, 1] (the moving-average factor of the sensitivity)",
               "the published recipes use --beta1 0.85")
    if not 0 <= beta2 <= 1:
        refuse("beta2", beta2, "in [0, 1) for scores Ī·U, or exactly 1 for scores Ī without uncertainty",
               "the published recipes use --beta2 0.85 to 0.95 (the public code's beta2 = 2 branch is not supported)")


class PlatonPruner(UnstructuredPruner):
    """PLATON over any nn.Module; see the module docstring for the rule and `pruners` for an example."""

    method = "platon"

    def __init__(self, model: torch.nn.Module, total_steps: int, *, initial_threshold: float,
                 final_threshold: float, warmup_steps: float, initial_warmup: float, final_warmup: float,
                 beta1: float, beta2: float, deltaT: int, target_substrings=DEFAULT_TARGET_SUBSTRINGS,
                 num_threads=None, kernels="auto"):
        validate_betas(beta1, beta2)
        if isinstance(deltaT, int) and isinstance(total_steps, int) and 1 <= total_steps < deltaT:
            refuse("deltaT", deltaT, f"at most the number of updates T={total_steps}: PLATON's scores stay 0 "
                   "until the first sensitivity window closes at update deltaT, so nothing would ever be pruned",
                   f"use --deltaT {max(1, min(10, total_steps // 10))} or train for more updates")
        super().__init__(model, total_steps, initial_threshold=initial_threshold, final_threshold=final_threshold,
                         warmup_steps=warmup_steps, initial_warmup=initial_warmup, final_warmup=final_warmup,
                         deltaT=deltaT, target_substrings=target_substrings, num_threads=num_threads,
                         kernels=kernels)
        self.beta1, self.beta2 = beta1, beta2
        self.uses_uncertainty = beta2 < 1
        self.sensitivity = self.new_flat_buffers()                                   # I
        self.sensitivity_average = self.new_flat_buffers()                           # Ī
        self.uncertainty = self.new_flat_buffers() if self.uses_uncertainty else {}  # U

    def hyperparameters(self) -> dict:
        return dict(super().hyperparameters(), beta1=self.beta1, beta2=self.beta2)

    def _statistics(self) -> Dict[str, Dict[torch.device, torch.Tensor]]:
        statistics = {"sensitivity": self.sensitivity, "sensitivity_average": self.sensitivity_average}
        if self.uses_uncertainty:
            statistics["uncertainty"] = self.uncertainty
        return statistics

    def _update_statistics(self, t: int) -> bool:
        position = t % self.deltaT            # j
        for slab, fused_slab in zip(self.slabs, self.fused_slabs):   # every operation on one slab while in cache
            if fused_slab:
                self._update_fused(slab, position)
                continue
            sensitivity = self.slab_of(self.sensitivity, slab)
            if position == 0:                 # a window closes
                average = self.slab_of(self.sensitivity_average, slab)
                average.lerp_(sensitivity, 1 - self.beta1)
                if self.uses_uncertainty:     # |I − Ī| with the new Ī, in I's place: I is rewritten next
                    self.slab_of(self.uncertainty, slab).lerp_(sensitivity.sub_(average).abs_(), 1 - self.beta2)
                self._importance(slab, out=sensitivity)
            else:
                sensitivity.lerp_(self._importance(slab, out=self.work(slab)), 1 / (position + 1))
        return position == 0

    def _update_fused(self, slab, position: int) -> None:
        """The same update of one slab, a fused loop per piece (pruners.kernels)."""
        flats = [self.slab_of(self.sensitivity, slab), self.slab_of(self.sensitivity_average, slab)]
        if self.uses_uncertainty:
            flats.append(self.slab_of(self.uncertainty, slab))
        for piece, sensitivity, average, *uncertainty in self.members(slab, *flats):
            param = self.params[piece.index]
            weight = self.part(param, piece)
            grad = self.part(param.grad, piece).contiguous() if param.grad is not None else None
            if position == 0:
                self.kernels.platon_close(sensitivity, average, uncertainty[0] if uncertainty else None, weight, grad,
                                          1 - self.beta1, 1 - self.beta2)
            else:
                self.kernels.platon_running(sensitivity, weight, grad, 1 / (position + 1))

    def _importance(self, slab, out: torch.Tensor) -> torch.Tensor:
        """|p ⊙ g| of the slab's entries into the flat `out` (0 where a parameter has no gradient)."""
        for piece, here in self.members(slab, out):
            param = self.params[piece.index]
            if param.grad is None:
                here.zero_()
            else:
                torch.mul(self.part(param, piece), self.part(param.grad, piece), out=here)
        return out.abs_()

    def _slab_factors(self, slab, out: torch.Tensor):
        average = self.slab_of(self.sensitivity_average, slab)
        return (average, self.slab_of(self.uncertainty, slab)) if self.uses_uncertainty else (average,)

    def _flat_scores_at(self, device: torch.device, positions: torch.Tensor) -> torch.Tensor:
        """Straight from the flat statistics: a few gathers however many parameters there are."""
        uncertainty = take(self.uncertainty[device], positions) if self.uses_uncertainty else None
        return score(take(self.sensitivity_average[device], positions), uncertainty)

    def _scores_at(self, index: int, positions: torch.Tensor) -> torch.Tensor:
        uncertainty = take(self.view_of(self.uncertainty, index), positions) if self.uses_uncertainty else None
        return score(take(self.view_of(self.sensitivity_average, index), positions), uncertainty)


def score(average: torch.Tensor, uncertainty, out=None) -> torch.Tensor:
    """S = Ī ⊙ U, or Ī itself when there is no uncertainty term (β2 == 1)."""
    return average if uncertainty is None else torch.mul(average, uncertainty, out=out)
