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

The update is written twice, with the same bits (tests/test_kernels.py): as torch
operations (`TorchPlatonUpdate`, any device, dtype and layout) and as fused CPU
loops (`NumbaPlatonUpdate` over pruners.platon_loops, about twice as fast for a
whole step: a window close is a dozen torch sweeps over the statistics, one
loop). `UPDATES` registers both; each slab gets the one named like its kernels
(pruners.kernels.pick_variants), once, when the pruner is built.

In the state dict (format in `pruners.base`) the statistics are the tensors
"sensitivity/<parameter>" (I), "sensitivity_average/<parameter>" (Ī) and
"uncertainty/<parameter>" (U, absent when β2 == 1).

Usage in a plain Hugging Face training loop: see `pruners/__init__.py`.
"""
from typing import Dict

import numpy as np
import torch

from pruners.base import DEFAULT_TARGET_SUBSTRINGS, UnstructuredPruner
from pruners.kernels import array, optional, pick_variants, split
from pruners.layout import take
from pruners.schedule import NOT_GIVEN, CubicSchedule, as_schedule, check_model, refuse, require_number


def validate_betas(beta1: float, beta2: float) -> None:
    """β1 in [0, 1]; β2 in [0, 1) (S = Ī⊙U) or exactly 1 (S = Ī); anything else is refused."""
    require_number("beta1", beta1, "the published recipes use {beta1} 0.85")
    require_number("beta2", beta2, "the published recipes use {beta2} 0.85 to 0.95")
    if not 0 <= beta1 <= 1:
        refuse("beta1", beta1, "in [0, 1] (the moving-average factor of the sensitivity)",
               "the published recipes use {beta1} 0.85")
    if not 0 <= beta2 <= 1:
        refuse("beta2", beta2, "in [0, 1) for scores Ī·U, or exactly 1 for scores Ī without uncertainty",
               "the published recipes use {beta2} 0.85 to 0.95 (the public code's {beta2} = 2 branch is not supported)")


class PlatonPruner(UnstructuredPruner):
    """PLATON over any nn.Module; see the module docstring for the rule and `pruners` for an example.
    Frozen parameters are skipped with a warning and a step that would mask before any gradient was
    seen is refused (`pruners.base`): frozen or gradient-less weights would score 0 and go first."""

    method = "platon"
    needs_gradients = True

    def __init__(self, model: torch.nn.Module, schedule: CubicSchedule = NOT_GIVEN, *, beta1: float,
                 beta2: float, target_substrings=DEFAULT_TARGET_SUBSTRINGS, num_threads=None, kernels="auto",
                 **schedule_settings):
        validate_betas(beta1, beta2)
        check_model(model, type(self).__name__)
        schedule = as_schedule(schedule, schedule_settings, type(self).__name__)
        total_steps, deltaT = schedule.total_steps, schedule.deltaT
        if total_steps < deltaT:
            refuse("deltaT", deltaT, f"at most the number of updates T={total_steps}: PLATON's scores stay 0 "
                   "until the first sensitivity window closes at update {deltaT}, so nothing would ever be pruned",
                   f"use {{deltaT}} {max(1, min(10, total_steps // 10))} or more updates ({{total_steps}})")
        super().__init__(model, schedule, target_substrings=target_substrings, num_threads=num_threads,
                         kernels=kernels)
        self.beta1, self.beta2 = beta1, beta2
        self.uses_uncertainty = beta2 < 1
        self.slab_updates = pick_variants(UPDATES, self.slab_kernels)     # the update in each slab's kernels
        self.sensitivity = self.layout.new_flat_buffers()                                   # I
        self.sensitivity_average = self.layout.new_flat_buffers()                           # Ī
        self.uncertainty = self.layout.new_flat_buffers() if self.uses_uncertainty else {}  # U

    def hyperparameters(self) -> dict:
        return dict(super().hyperparameters(), beta1=self.beta1, beta2=self.beta2)

    def _statistics(self) -> Dict[str, Dict[torch.device, torch.Tensor]]:
        statistics = {"sensitivity": self.sensitivity, "sensitivity_average": self.sensitivity_average}
        if self.uses_uncertainty:
            statistics["uncertainty"] = self.uncertainty
        return statistics

    def _update_statistics(self, t: int) -> bool:
        position = t % self.schedule.deltaT    # j
        layout = self.layout
        statistics = [self.sensitivity, self.sensitivity_average] + ([self.uncertainty] if self.uses_uncertainty else [])
        for slab, update in zip(self.slabs, self.slab_updates):    # every operation on one slab while in cache
            sensitivity, average, *uncertainty = [layout.slab_of(buffers, slab) for buffers in statistics]
            weights, grads = layout.weights(slab), layout.grads(slab)
            if position == 0:                 # a window closes
                update.close_window(sensitivity, average, uncertainty[0] if uncertainty else None, weights, grads,
                                    1 - self.beta1, 1 - self.beta2)
            else:
                update.inside_window(sensitivity, weights, grads, 1 / (position + 1), out=layout.work(slab))
        return position == 0

    def _slab_factors(self, slab, kernels, out: torch.Tensor):
        average = self.layout.slab_of(self.sensitivity_average, slab)
        return (average, self.layout.slab_of(self.uncertainty, slab)) if self.uses_uncertainty else (average,)

    def _flat_scores_at(self, device: torch.device, positions: torch.Tensor) -> torch.Tensor:
        """Straight from the flat statistics: a few gathers however many parameters there are."""
        uncertainty = take(self.uncertainty[device], positions) if self.uses_uncertainty else None
        return score(take(self.sensitivity_average[device], positions), uncertainty)

    def _scores_at(self, index: int, positions: torch.Tensor) -> torch.Tensor:
        view_of = self.layout.view_of
        uncertainty = take(view_of(self.uncertainty, index), positions) if self.uses_uncertainty else None
        return score(take(view_of(self.sensitivity_average, index), positions), uncertainty)


def score(average: torch.Tensor, uncertainty) -> torch.Tensor:
    """S = Ī ⊙ U, or Ī itself when there is no uncertainty term (β2 == 1), at a few gathered entries."""
    return average if uncertainty is None else torch.mul(average, uncertainty)


# ---- the statistics update, in torch and in numba (same arguments, same bits)

def importance(weights, grads, out: torch.Tensor) -> torch.Tensor:
    """out ← |P ⊙ G| over a slab's parameter parts (0 where a part has no gradient). A part narrower
    than float32 (float16, bfloat16) is multiplied in float32: its own precision would round small
    products to 0."""
    for here, weight, grad in zip(split(out, weights), weights, grads):
        if grad is None:
            here.zero_()
        elif weight.element_size() < here.element_size():
            here.copy_(weight).mul_(grad)
        else:
            torch.mul(weight, grad, out=here)
    return out.abs_()


class TorchPlatonUpdate:
    """PLATON's update of one slab as torch operations, on any device, dtype and layout. I, Ī, U and
    `out` are flat float32 tensors over the slab; P and G the lists of its parameter parts and their
    gradients (an entry None: no gradient), as pruners.layout gives them."""

    def close_window(self, sensitivity, average, uncertainty, weights, grads, w1: float, w2: float) -> None:
        """Ī ← lerp(Ī, I, w1); U ← lerp(U, |I − Ī|, w2) with the new Ī (U None: β2 = 1, skipped); I ← |P ⊙ G|."""
        average.lerp_(sensitivity, w1)
        if uncertainty is not None:         # |I − Ī| with the new Ī, in I's place: I is rewritten next
            uncertainty.lerp_(sensitivity.sub_(average).abs_(), w2)
        importance(weights, grads, out=sensitivity)

    def inside_window(self, sensitivity, weights, grads, w: float, out: torch.Tensor) -> None:
        """I ← lerp(I, |P ⊙ G|, w); `out`, as large as I, is work space."""
        sensitivity.lerp_(importance(weights, grads, out=out), w)


class NumbaPlatonUpdate:
    """The same passes as fused CPU loops (pruners.platon_loops) on flat contiguous float32 CPU tensors,
    part by part; `out` is not needed. Built once per process (pick_variants), which compiles the loops."""

    def __init__(self):
        from pruners import platon_loops
        self._loops = platon_loops
        values = [torch.linspace(0.1, 0.9, 3) + i for i in range(5)]      # no random draw: training's RNG stays put
        for uncertainty, grad in ((values[2], values[4]), (None, None)):  # every specialisation, compiled now
            self.close_window(values[0], values[1], uncertainty, [values[3]], [grad], 0.15, 0.05)
            self.inside_window(values[0], [values[3]], [grad], 0.5, out=None)

    def close_window(self, sensitivity, average, uncertainty, weights, grads, w1: float, w2: float) -> None:
        w1, w2 = np.float32(w1), np.float32(w2)
        uncertainties = split(uncertainty, weights) if uncertainty is not None else [None] * len(weights)
        for here, average_here, uncertainty_here, weight, grad in zip(
                split(sensitivity, weights), split(average, weights), uncertainties, weights, grads):
            self._loops.close_window(array(here), array(average_here), optional(uncertainty_here), array(weight),
                                     optional(grad), w1, w2)

    def inside_window(self, sensitivity, weights, grads, w: float, out=None) -> None:
        w = np.float32(w)
        for here, weight, grad in zip(split(sensitivity, weights), weights, grads):
            self._loops.inside_window(array(here), array(weight), optional(grad), w)


UPDATES = {"torch": TorchPlatonUpdate, "numba": NumbaPlatonUpdate}     # by the name of the kernels they go with
