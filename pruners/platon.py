"""PLATON: unstructured pruning by the upper confidence bound of weight importance.

Zhang et al., "PLATON: Pruning Large Transformer Models with Upper Confidence
Bound of Weight Importance", ICML 2022. ALGORITHMS.md §1, exactly, quirks kept.

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

Usage in a plain Hugging Face training loop: see `pruners/__init__.py`.
"""
from typing import Callable, Dict, List, Optional

import torch

from pruners.base import DEFAULT_TARGET_SUBSTRINGS, UnstructuredPruner, rows, take
from pruners.schedule import refuse


def validate_betas(beta1: float, beta2: float) -> None:
    """β1 in [0, 1]; β2 in [0, 1) (S = Ī⊙U) or exactly 1 (S = Ī); anything else is refused."""
    if not 0 <= beta1 <= 1:
        refuse("beta1", beta1, "in [0, 1] (the moving-average factor of the sensitivity)",
               "the published recipes use --beta1 0.85")
    if not 0 <= beta2 <= 1:
        refuse("beta2", beta2, "in [0, 1) for scores Ī·U, or exactly 1 for scores Ī without uncertainty",
               "the published recipes use --beta2 0.85 to 0.95 (the public code's beta2 = 2 branch is not supported)")


def importance(weights: torch.Tensor, grad: Optional[torch.Tensor], out: torch.Tensor) -> torch.Tensor:
    """|p ⊙ g| written into `out` (0 where the parameter has no gradient)."""
    if grad is None:
        return out.zero_()
    return torch.mul(weights, grad, out=out).abs_()


class PlatonPruner(UnstructuredPruner):
    """PLATON over any nn.Module; see the module docstring for the rule and a usage example."""

    method = "platon"

    def __init__(self, model: torch.nn.Module, total_steps: int, *, initial_threshold: float,
                 final_threshold: float, warmup_steps: float, initial_warmup: float, final_warmup: float,
                 beta1: float, beta2: float, deltaT: int, target_substrings=DEFAULT_TARGET_SUBSTRINGS):
        validate_betas(beta1, beta2)
        super().__init__(model, total_steps, initial_threshold=initial_threshold, final_threshold=final_threshold,
                         warmup_steps=warmup_steps, initial_warmup=initial_warmup, final_warmup=final_warmup,
                         deltaT=deltaT, target_substrings=target_substrings)
        self.beta1, self.beta2 = beta1, beta2
        self.uses_uncertainty = beta2 < 1

        def zeros():
            return [torch.zeros(p.shape, dtype=torch.float32, device=p.device) for p in self.params]
        self.sensitivity = zeros()                                   # I
        self.sensitivity_average = zeros()                           # Ī
        self.uncertainty = zeros() if self.uses_uncertainty else []  # U

    def hyperparameters(self) -> dict:
        return dict(super().hyperparameters(), beta1=self.beta1, beta2=self.beta2)

    def _statistics(self) -> Dict[str, List[torch.Tensor]]:
        statistics = {"sensitivity": self.sensitivity, "sensitivity_average": self.sensitivity_average}
        if self.uses_uncertainty:
            statistics["uncertainty"] = self.uncertainty
        return statistics

    def _scores_change_at(self, t: int) -> bool:
        return t % self.deltaT == 0

    def _close_window(self, sensitivity, average, uncertainty, work) -> None:
        """Ī ← β1·Ī + (1−β1)·I;  U ← β2·U + (1−β2)·|I − Ī| (with the new Ī), in place."""
        average.lerp_(sensitivity, 1 - self.beta1)
        if self.uses_uncertainty:
            deviation = torch.sub(sensitivity, average, out=work).abs_()
            uncertainty.lerp_(deviation, 1 - self.beta2)

    def _update_chunk(self, t, index, piece, work) -> None:
        position = t % self.deltaT            # j
        weights, grad = piece(self.params[index]), self.params[index].grad
        grad = None if grad is None else piece(grad)
        sensitivity = piece(self.sensitivity[index])
        if position == 0:
            uncertainty = piece(self.uncertainty[index]) if self.uses_uncertainty else None
            self._close_window(sensitivity, piece(self.sensitivity_average[index]), uncertainty, work)
            importance(weights, grad, out=sensitivity)
        else:
            sensitivity.lerp_(importance(weights, grad, out=work), 1 / (position + 1))

    def _sample_scores(self, t: int, positions: List[torch.Tensor]) -> List[torch.Tensor]:
        """The new scores where a window closes at t (the same update on copies of the sampled
        statistics), the current ones otherwise."""
        picks = []
        for index, where in enumerate(positions):
            sensitivity, average = take(self.sensitivity[index], where), take(self.sensitivity_average[index], where)
            uncertainty = take(self.uncertainty[index], where) if self.uses_uncertainty else None
            if self._scores_change_at(t):
                self._close_window(sensitivity, average, uncertainty, torch.empty_like(sensitivity))
            picks.append(self._score_of(average, uncertainty))
        return picks

    def _scores(self, index: int, piece: Callable[[torch.Tensor], torch.Tensor],
                out: Optional[torch.Tensor] = None) -> torch.Tensor:
        uncertainty = piece(self.uncertainty[index]) if self.uses_uncertainty else None
        return self._score_of(piece(self.sensitivity_average[index]), uncertainty, out)

    def _score_of(self, average, uncertainty, out=None) -> torch.Tensor:
        """S = Ī ⊙ U, or Ī itself when β2 == 1."""
        return torch.mul(average, uncertainty, out=out) if self.uses_uncertainty else average
