"""Movement pruning: keep the weights that move away from zero (Sanh, Wolf and Rush, NeurIPS 2020).

Hard movement pruning scores every selected entry by how much training pushes
it away from zero, accumulated over the updates:

    S ← S − p ⊙ g          at every update t (S = 0 at the start)

so S = −Σ_t p_t·g_t: a weight whose gradient points towards zero (p·g > 0, the
loss falls as |p| shrinks) loses score, one pushed outwards gains it. The
lowest scores are masked, on the same cubic schedule, exact global threshold
and strict masking as PLATON and magnitude (`pruners.base`, docs/METHODS.md §6).
Scores may be negative; entries with S < τ (the k-th smallest) are set to 0.

Convention: the step runs after `optimizer.step()`, so p is the weight just
updated and g the gradient of that update (the public PLATON code computes its
|p·g| the same way); the paper's straight-through estimator uses the weight
before the update, a difference of one learning-rate step. A masked weight has
p = 0 and so keeps its score until the optimizer moves it again. A parameter
without a gradient at some update adds nothing.

In the state dict (format in `pruners.base`) the statistic is the tensor
"movement_score/<parameter>" (S).
"""
from typing import Dict

import torch

from pruners.base import UnstructuredPruner
from pruners.kernels import split
from pruners.layout import take
from pruners.schedule import NOT_GIVEN, CubicSchedule


def accumulate_movement(scores: torch.Tensor, weights, grads) -> None:
    """S ← S − P ⊙ G over a slab's parameter parts (nothing where a part has no gradient): one fused
    torch operation per part, which no loop would make faster, so the same whatever the kernels."""
    for here, weight, grad in zip(split(scores, weights), weights, grads):
        if grad is not None:
            here.addcmul_(weight, grad, value=-1)


class MovementPruner(UnstructuredPruner):
    """Hard movement pruning over any nn.Module, shaped like an optimizer (see `pruners.base`). Frozen
    parameters are skipped with a warning and a step that would mask before any gradient was seen is
    refused, as for PLATON: the scores come from the gradients."""

    method = "movement"
    needs_gradients = True

    def __init__(self, model: torch.nn.Module, schedule: CubicSchedule = NOT_GIVEN, **options):
        super().__init__(model, schedule, **options)     # the schedule, target_substrings, num_threads, kernels
        self.movement_score = self.layout.new_flat_buffers()       # S

    def _statistics(self) -> Dict[str, Dict[torch.device, torch.Tensor]]:
        return {"movement_score": self.movement_score}

    def _update_statistics(self, t: int) -> bool:
        layout = self.layout
        for slab in self.slabs:
            accumulate_movement(layout.slab_of(self.movement_score, slab), layout.weights(slab), layout.grads(slab))
        return True     # every update moves the scores

    def _slab_factors(self, slab, kernels, out: torch.Tensor):
        return (self.layout.slab_of(self.movement_score, slab),)

    def _flat_scores_at(self, device: torch.device, positions: torch.Tensor) -> torch.Tensor:
        return take(self.movement_score[device], positions)

    def _scores_at(self, index: int, positions: torch.Tensor) -> torch.Tensor:
        return take(self.layout.view_of(self.movement_score, index), positions)
