"""Movement pruning as published (Sanh, Wolf and Rush, NeurIPS 2020): learned scores, a mask at every forward.

Every selected matrix W (the weight of an nn.Linear whose name contains one of
`target_substrings`: BERT's query, key, value, attention output, FFN in and out;
never embeddings, LayerNorms, pooler or task heads) gets a score matrix S of its
shape, a trained tensor that starts at 0. While the pruner is attached, the
module computes

    y = x (W ⊙ M)ᵀ + b,      M = binarize(S)

at every forward pass; W itself is never zeroed, so a weight masked now keeps
its value and comes back when its score rises again. The binarizer's gradient is
the straight-through estimator: ∂L/∂S = ∂L/∂(W ⊙ M) ⊙ W (pruned entries included)
and ∂L/∂W = M ⊙ ∂L/∂(W ⊙ M).

    hard movement (MovementPruner)      M keeps the ⌈r·n⌉ largest scores of each matrix (n its size), r
                                        the remaining ratio of the cubic schedule (pruners.schedule); with
                                        global_topk=True one threshold over all scores instead, recomputed
                                        every global_topk_frequency updates (as the published code does)
    soft movement (SoftMovementPruner)  M = [sigmoid(S) > τ], τ on the cubic schedule from
                                        initial_sigmoid_threshold to final_sigmoid_threshold, at least
                                        int(0.005·n) + 1 entries of each matrix kept (its top scores when fewer
                                        pass); `regularization()` = λ·mean over matrices of mean(sigmoid(S)),
                                        λ = final_lambda·τ/final_sigmoid_threshold, to be added to the loss

The scores train with their own Adam (AdamW without weight decay: β (0.9, 0.999), eps 1e-8, the update
of torch.optim.AdamW), whatever optimizer the weights use: `step(t, lr_scale)` after the weights'
`optimizer.step()` and before the gradients are zeroed, t = 1, 2, ... the optimizer updates,
lr_scale the weights' learning-rate multiplier of that update (warm-up and decay), then sets the
ratio (or τ) of the schedule at t for the next forward passes: the forward passes of update t use
the schedule at t − 1, as the published code does. Clip the scores' gradients with the weights'
(`score_parameters()`), as the published global clipping does.

`step()` also counts how the masks move: the entries whose mask differs between the forward passes of update
t and those of update t + 1 ("changed"), and of those the ones that came back, masked before and kept now
("returned"); `last_flips` holds update t's counts, `mask_flips` their totals per phase of the schedule
(warmup, cubic, final, the phase of t) with the number of updates, `flip_summary()` their shares of the
selected weights. A ranking that carries no signal shows as many changes per update at a constant ratio.

The zeros become permanent only in what is saved for use: inside `with pruner.masks_applied():` the
weights are W ⊙ M (save the model there), restored afterwards; `finalize()` applies the masks for good
and detaches the pruner (the model then computes with plain weights). `remaining_ratios()` gives the
fraction kept per matrix, from the masks.

State dict (JSON plus tensors, no pickle, as pruners.base):

    {"format": 1, "method": "movement" | "soft_movement", "last_step": int | None, "adam_steps": int,
     "global_threshold": float | None, "parameter_names": [...], "hyperparameters": {...},
     "mask_flips": {phase: {"updates": int, "changed": int, "returned": int}} (absent in older states: zeros),
     "tensors": {"mask_scores/<name>": S, "exp_avg/<name>": m, "exp_avg_sq/<name>": v}}
"""
import contextlib
import json
import math
import types
import warnings
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from pruners.anatomy import PRUNABLE_SUBSTRINGS, check_target_substrings
from pruners.base import check_no_shared_memory, check_same_hyperparameters
from pruners.schedule import NOT_GIVEN, CubicSchedule, as_schedule, check_model, refuse, remaining_ratio, require_number

DEFAULT_TARGET_SUBSTRINGS = PRUNABLE_SUBSTRINGS
STATE_FORMAT = 1
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
MIN_KEPT_FRACTION = 0.005          # the threshold binarizer keeps at least int(0.005·n) + 1 entries
PHASES = ("warmup", "cubic", "final")
FLIP_COUNTS = ("updates", "changed", "returned")


class StraightThroughMask(torch.autograd.Function):
    """W ⊙ M forward; backward ∂L/∂W = g ⊙ M and ∂L/∂S = g ⊙ W (the binarizer passes g unchanged)."""

    @staticmethod
    def forward(ctx, weight, scores, mask):
        ctx.save_for_backward(weight, mask)
        return weight * mask

    @staticmethod
    def backward(ctx, grad):
        weight, mask = ctx.saved_tensors
        return grad * mask, (grad * weight).to(torch.float32), None


def top_k_mask(scores: torch.Tensor, ratio: float) -> torch.Tensor:
    """1 at the ⌈ratio·n⌉ largest scores of the matrix, 0 elsewhere (exactly that many: ties broken by
    position, as torch.topk breaks them)."""
    n = scores.numel()
    keep = min(n, math.ceil(ratio * n - 1e-9))
    flat = scores.reshape(-1)
    if keep >= n:
        return torch.ones_like(scores)
    if keep > n // 2:                       # cheaper to find the few dropped
        mask = torch.ones_like(flat)
        mask[torch.topk(flat, n - keep, largest=False, sorted=False).indices] = 0
    else:
        mask = torch.zeros_like(flat)
        mask[torch.topk(flat, keep, sorted=False).indices] = 1
    return mask.view_as(scores)


def threshold_mask(scores: torch.Tensor, threshold: float, sigmoid: bool) -> torch.Tensor:
    """1 where sigmoid(S) > threshold (or S > threshold), at least int(0.005·n) + 1 entries kept: when fewer
    pass, the entries above the (n − that)-th smallest score (the published ThresholdBinarizer)."""
    n = scores.numel()
    minimum = int(MIN_KEPT_FRACTION * n) + 1
    mask = ((torch.sigmoid(scores) if sigmoid else scores) > threshold).to(scores.dtype)
    if mask.sum() < minimum:
        floor = scores.reshape(-1).kthvalue(max(n - minimum, 1)).values
        mask = (scores > floor).to(scores.dtype)
    return mask


class MovementPruner:
    """Hard movement pruning over any nn.Module (module docstring). `schedule` is a CubicSchedule (or its
    settings as keywords, pruners.schedule.as_schedule); its deltaT is not used (the mask is recomputed at
    every forward pass)."""

    method = "movement"

    def __init__(self, model: nn.Module, schedule: CubicSchedule = NOT_GIVEN, *, score_learning_rate: float = 1e-2,
                 global_topk: bool = False, global_topk_frequency: int = 25,
                 target_substrings=DEFAULT_TARGET_SUBSTRINGS, **schedule_settings):
        check_model(model, type(self).__name__)
        self.schedule = as_schedule(schedule, schedule_settings, type(self).__name__)
        require_number("score_learning_rate", score_learning_rate, "the published value is 1e-2")
        if not 0 < score_learning_rate < math.inf:
            refuse("score_learning_rate", score_learning_rate, "a finite number > 0", "the published value is 1e-2")
        if not isinstance(global_topk, bool):
            raise TypeError(f"global_topk must be True or False, got {global_topk!r}")
        if isinstance(global_topk_frequency, bool) or not isinstance(global_topk_frequency, int) \
                or global_topk_frequency < 1:
            refuse("global_topk_frequency", global_topk_frequency, "an integer ≥ 1", "the published value is 25")
        self.score_learning_rate, self.global_topk = score_learning_rate, global_topk
        self.global_topk_frequency = global_topk_frequency
        self.target_substrings = check_target_substrings(target_substrings)
        self.names, self.modules = select_linear_weights(model, self.target_substrings, type(self).__name__)
        self.scores = [torch.zeros(m.weight.shape, device=m.weight.device, dtype=torch.float32, requires_grad=True)
                       for m in self.modules]
        self.exp_avg = [torch.zeros_like(s, requires_grad=False) for s in self.scores]
        self.exp_avg_sq = [torch.zeros_like(s, requires_grad=False) for s in self.scores]
        self.adam_steps = 0
        self.last_step: Optional[int] = None
        self.global_threshold: Optional[float] = None
        self.value = self._scheduled(0)           # the ratio (or τ) the next forward passes use
        self._cache: Dict[int, Tuple[tuple, torch.Tensor]] = {}
        self.total_weights = sum(s.numel() for s in self.scores)
        self.mask_flips = {phase: dict.fromkeys(FLIP_COUNTS, 0) for phase in PHASES}
        self.last_flips = {"changed": 0, "returned": 0}
        for index, module in enumerate(self.modules):
            module.forward = types.MethodType(_masked_forward(self, index), module)
        self.attached = True

    @property
    def parameter_names(self) -> List[str]:
        """The selected weights' names, in the model's order (as the other pruners name theirs)."""
        return list(self.names)

    # ---- the rule
    def _scheduled(self, t: int) -> float:
        return self.schedule.remaining_ratio(t) if t > 0 else self.schedule.initial_threshold

    def _compute_mask(self, index: int) -> torch.Tensor:
        scores = self.scores[index].detach()
        if self.global_topk:
            if self.value >= 1 or self.global_threshold is None:
                return torch.ones_like(scores)
            return threshold_mask(scores, self.global_threshold, sigmoid=False)
        return top_k_mask(scores, self.value)

    def mask(self, index: int) -> torch.Tensor:
        """The mask of matrix `index` now (recomputed only when its scores, the ratio or threshold changed)."""
        key = (self.scores[index]._version, self.value, self.global_threshold)
        cached = self._cache.get(index)
        if cached is None or cached[0] != key:
            # a normal tensor even under torch.inference_mode (evaluation): training reuses the cached mask
            with torch.inference_mode(False), torch.no_grad():
                cached = (key, self._compute_mask(index))
            self._cache[index] = cached
        return cached[1]

    def regularization(self) -> Optional[torch.Tensor]:
        """The loss term the rule adds (None for hard movement)."""
        return None

    # ---- the optimizer-shaped API
    def score_parameters(self) -> List[torch.Tensor]:
        """The score tensors, to clip with the weights' gradients (their optimizer is this pruner)."""
        return list(self.scores)

    def step(self, global_step: int, lr_scale: float = 1.0) -> Tuple[float, Optional[float]]:
        """After update t's optimizer.step(): one Adam step of the scores at score_learning_rate·lr_scale (skipped
        when no score has a gradient), their gradients cleared, then the schedule at t for the next forward
        passes. Returns (remaining ratio or τ, the global or soft threshold or None)."""
        if isinstance(global_step, bool) or not isinstance(global_step, int) or global_step < 1:
            raise ValueError(f"step(t) needs the optimizer update t as an integer ≥ 1, got {global_step!r}")
        expected = 1 if self.last_step is None else self.last_step + 1
        if global_step != expected:
            raise ValueError(f"{type(self).__name__}.step({global_step}) after step({self.last_step}): call it once "
                             f"per optimizer update, in order (expected t = {expected})")
        if isinstance(lr_scale, bool) or not isinstance(lr_scale, (int, float)) or not 0 <= lr_scale < math.inf:
            raise ValueError(f"lr_scale must be a finite number ≥ 0 (the weights' learning-rate multiplier), got "
                             f"{lr_scale!r}")
        before = [self.mask(index) for index in range(len(self.scores))]      # what update t computed with
        if any(s.grad is not None for s in self.scores):
            self._adam_step(self.score_learning_rate * lr_scale)
        self.last_step = global_step
        self.value = self._scheduled(global_step)
        if self.global_topk and (self.global_threshold is None or global_step % self.global_topk_frequency == 0):
            self.global_threshold = self._global_threshold()
        self._count_flips(global_step, before)
        return self.value, self.global_threshold

    def _count_flips(self, global_step: int, before: List[torch.Tensor]) -> None:
        changed = returned = 0
        for index, old in enumerate(before):
            new = self.mask(index)                  # the next forward passes' mask (cached for them)
            if new is not old:
                changed += int((new != old).sum())
                returned += int((new > old).sum())
        self.last_flips = {"changed": changed, "returned": returned}
        totals = self.mask_flips[self.schedule.phase(global_step)]
        totals["updates"] += 1
        totals["changed"] += changed
        totals["returned"] += returned

    def flip_summary(self) -> dict:
        """Per phase: the updates and the mean share of the selected weights whose mask changed (and came
        back) per update; "weights" the number of selected weights."""
        summary = {"weights": self.total_weights}
        for phase, totals in self.mask_flips.items():
            per_update = self.total_weights * max(totals["updates"], 1)
            summary[phase] = {"updates": totals["updates"], "changed_per_update": totals["changed"] / per_update,
                              "returned_per_update": totals["returned"] / per_update}
        return summary

    @torch.no_grad()
    def _adam_step(self, lr: float) -> None:
        self.adam_steps += 1
        beta1, beta2 = ADAM_BETAS
        correction1, correction2 = 1 - beta1 ** self.adam_steps, 1 - beta2 ** self.adam_steps
        for scores, m, v in zip(self.scores, self.exp_avg, self.exp_avg_sq):
            grad = scores.grad
            if grad is None:
                grad = torch.zeros_like(scores)       # Adam's moments still decay, as torch's does for a zero grad
            m.mul_(beta1).add_(grad, alpha=1 - beta1)
            v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            scores.addcdiv_(m, (v.sqrt() / math.sqrt(correction2)).add_(ADAM_EPS), value=-lr / correction1)
            scores.grad = None

    def _global_threshold(self) -> Optional[float]:
        if self.value >= 1:
            return None
        flat = torch.cat([s.detach().reshape(-1).cpu() for s in self.scores])
        n = flat.numel()
        return float(flat.kthvalue(max(n - math.ceil(self.value * n - 1e-9), 1)).values)

    # ---- what the masks make of the model
    def remaining_ratios(self) -> Dict[str, float]:
        """The fraction of each matrix the current masks keep, and "overall"."""
        kept, total, ratios = 0, 0, {}
        for index, name in enumerate(self.names):
            mask = self.mask(index)
            ratios[name] = float(mask.sum()) / mask.numel()
            kept, total = kept + float(mask.sum()), total + mask.numel()
        ratios["overall"] = kept / total
        return ratios

    @contextlib.contextmanager
    def masks_applied(self):
        """Inside: every selected weight is W ⊙ M in place (what a saved model must hold); afterwards W again."""
        saved = []
        with torch.no_grad():
            for index, module in enumerate(self.modules):
                saved.append(module.weight.detach().clone())
                module.weight.mul_(self.mask(index).to(module.weight.dtype))
        try:
            yield self
        finally:
            with torch.no_grad():
                for module, weight in zip(self.modules, saved):
                    module.weight.copy_(weight)

    @torch.no_grad()
    def finalize(self) -> None:
        """Apply the masks to the weights for good and detach: the model's modules compute as plain layers."""
        for index, module in enumerate(self.modules):
            module.weight.mul_(self.mask(index).to(module.weight.dtype))
        self.detach()

    def detach(self) -> None:
        """Give the modules back their own forward (the weights as they are)."""
        for module in self.modules:
            if "forward" in vars(module):
                del module.forward
        self.attached = False

    # ---- state
    def hyperparameters(self) -> dict:
        return {**self.schedule.as_dict(), "score_learning_rate": self.score_learning_rate, "global_topk": self.global_topk,
                "global_topk_frequency": self.global_topk_frequency, "target_substrings": list(self.target_substrings)}

    def state_dict(self) -> dict:
        tensors = {}
        for name, s, m, v in zip(self.names, self.scores, self.exp_avg, self.exp_avg_sq):
            tensors[f"mask_scores/{name}"] = s.detach().clone()
            tensors[f"exp_avg/{name}"] = m.clone()
            tensors[f"exp_avg_sq/{name}"] = v.clone()
        return {"format": STATE_FORMAT, "method": self.method, "last_step": self.last_step,
                "adam_steps": self.adam_steps, "global_threshold": self.global_threshold,
                "parameter_names": list(self.names), "hyperparameters": json.loads(json.dumps(self.hyperparameters())),
                "mask_flips": json.loads(json.dumps(self.mask_flips)), "tensors": tensors}

    def load_state_dict(self, state: dict) -> None:
        """Restore a state of the same method, matrices and settings (checked before anything changes)."""
        if not isinstance(state, dict):
            raise ValueError(f"a {self.method} pruner state is a dict, got {type(state).__name__}")
        if state.get("format") != STATE_FORMAT or state.get("method") != self.method:
            raise ValueError(f"the pruner state is of method {state.get('method')!r} (format {state.get('format')!r}); "
                             f"this is a {self.method} pruner (format {STATE_FORMAT})")
        if list(state.get("parameter_names", [])) != self.names:
            raise ValueError("the pruner state was saved over other matrices than this pruner selects; build it "
                             "over the model and target_substrings of the run that saved it")
        check_same_hyperparameters(state.get("hyperparameters"), self.hyperparameters())
        last, steps = state.get("last_step"), state.get("adam_steps")
        if not (last is None or (isinstance(last, int) and last >= 1)) or not (isinstance(steps, int) and steps >= 0):
            raise ValueError(f"the pruner state's last_step {last!r} or adam_steps {steps!r} is not a step count")
        tensors = state.get("tensors")
        if not isinstance(tensors, dict):
            raise ValueError("the pruner state has no 'tensors' dict")
        for kind in ("mask_scores", "exp_avg", "exp_avg_sq"):
            for name, s in zip(self.names, self.scores):
                got = tensors.get(f"{kind}/{name}")
                if not isinstance(got, torch.Tensor) or tuple(got.shape) != tuple(s.shape):
                    raise ValueError(f"the pruner state's {kind}/{name} is missing or not a tensor of shape "
                                     f"{tuple(s.shape)}")
                if not torch.isfinite(got).all():
                    raise ValueError(f"the pruner state's {kind}/{name} holds non-finite values")
        threshold = state.get("global_threshold")
        if threshold is not None and not isinstance(threshold, (int, float)):
            raise ValueError(f"the pruner state's global_threshold {threshold!r} is not a number")
        flips = state.get("mask_flips", {phase: dict.fromkeys(FLIP_COUNTS, 0) for phase in PHASES})
        if not (isinstance(flips, dict) and set(flips) == set(PHASES)
                and all(isinstance(flips[p], dict) and set(flips[p]) == set(FLIP_COUNTS)
                        and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in flips[p].values())
                        for p in PHASES)):
            raise ValueError(f"the pruner state's mask_flips is not {{phase: {{{', '.join(FLIP_COUNTS)}: count}}}} "
                             f"for the phases {', '.join(PHASES)}")
        with torch.no_grad():
            for name, s, m, v in zip(self.names, self.scores, self.exp_avg, self.exp_avg_sq):
                s.copy_(tensors[f"mask_scores/{name}"])
                m.copy_(tensors[f"exp_avg/{name}"])
                v.copy_(tensors[f"exp_avg_sq/{name}"])
        self.last_step, self.adam_steps = last, steps
        self.global_threshold = None if threshold is None else float(threshold)
        self.mask_flips = {phase: dict(flips[phase]) for phase in PHASES}
        self.value = self._scheduled(last or 0)
        self._cache.clear()


class SoftMovementPruner(MovementPruner):
    """Soft movement pruning (module docstring): τ from initial_sigmoid_threshold to final_sigmoid_threshold on the
    schedule's warm-ups and cubic ramp (its own remaining-ratio settings are not used), an L1 penalty on
    sigmoid(S) ramped with τ; the remaining ratio is an outcome (remaining_ratios())."""

    method = "soft_movement"

    def __init__(self, model: nn.Module, schedule: CubicSchedule = NOT_GIVEN, *,
                 initial_sigmoid_threshold: float = 0.0, final_sigmoid_threshold: float = 0.1,
                 final_lambda: float = 400.0, score_learning_rate: float = 1e-2,
                 target_substrings=DEFAULT_TARGET_SUBSTRINGS, **schedule_settings):
        validate_soft_settings(initial_sigmoid_threshold, final_sigmoid_threshold, final_lambda)
        self.initial_tau, self.final_tau = float(initial_sigmoid_threshold), float(final_sigmoid_threshold)
        self.final_lambda = float(final_lambda)
        super().__init__(model, schedule, score_learning_rate=score_learning_rate,
                         target_substrings=target_substrings, **schedule_settings)

    def _scheduled(self, t: int) -> float:
        s = self.schedule
        return remaining_ratio(max(t, 0), s.total_steps, self.initial_tau, self.final_tau, s.warmup_steps,
                               s.initial_warmup, s.final_warmup)

    def _compute_mask(self, index: int) -> torch.Tensor:
        return threshold_mask(self.scores[index].detach(), self.value, sigmoid=True)

    @property
    def regularization_weight(self) -> float:
        """λ = final_lambda · τ / final_sigmoid_threshold at the current τ."""
        return self.final_lambda * self.value / self.final_tau

    def regularization(self) -> torch.Tensor:
        """λ · mean over matrices of mean(sigmoid(S)) (the published L1 penalty), with its gradient to S."""
        penalty = sum(torch.sigmoid(s).sum() / s.numel() for s in self.scores) / len(self.scores)
        return self.regularization_weight * penalty

    def hyperparameters(self) -> dict:
        hyper = super().hyperparameters()
        for unused in ("initial_threshold", "final_threshold", "global_topk", "global_topk_frequency", "deltaT"):
            hyper.pop(unused)
        return {**hyper, "initial_sigmoid_threshold": self.initial_tau, "final_sigmoid_threshold": self.final_tau,
                "final_lambda": self.final_lambda}


def validate_soft_settings(initial_sigmoid_threshold, final_sigmoid_threshold, final_lambda) -> None:
    """Refuse soft movement settings it cannot run with (PrunerSettingError naming the setting)."""
    for parameter, value, example in (("initial_sigmoid_threshold", initial_sigmoid_threshold, "published: 0"),
                                      ("final_sigmoid_threshold", final_sigmoid_threshold, "published: 0.1"),
                                      ("final_lambda", final_lambda, "published: 400")):
        require_number(parameter, value, f"{{{parameter}}} {example.split()[-1]} is the published value")
    if not 0 < final_sigmoid_threshold < 1:
        refuse("final_sigmoid_threshold", final_sigmoid_threshold, "in (0, 1) (a threshold on sigmoid(score))",
               "the published value is 0.1")
    if not 0 <= initial_sigmoid_threshold <= final_sigmoid_threshold:
        refuse("initial_sigmoid_threshold", initial_sigmoid_threshold,
               f"in [0, {{final_sigmoid_threshold}}] = [0, {final_sigmoid_threshold}]", "the published value is 0")
    if not 0 <= final_lambda < math.inf:
        refuse("final_lambda", final_lambda, "a finite number ≥ 0", "the published value is 400")


def _masked_forward(pruner: MovementPruner, index: int):
    """The forward of a selected nn.Linear while the pruner is attached: x (W ⊙ M)ᵀ + b."""
    scores = pruner.scores[index]

    def forward(module, x):
        weight = StraightThroughMask.apply(module.weight, scores, pruner.mask(index).to(module.weight.dtype))
        return F.linear(x, weight, module.bias)
    return forward


def select_linear_weights(model: nn.Module, substrings: Tuple[str, ...], owner: str):
    """(names, modules): the nn.Linear modules whose weight name contains one of `substrings`, trainable
    ones only (a frozen one left alone with a warning), in the model's order."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"{owner} needs a torch.nn.Module, got {type(model).__name__}")
    found = [(f"{name}.weight", module) for name, module in model.named_modules()
             if isinstance(module, nn.Linear) and any(s in f"{name}.weight" for s in substrings)]
    if not found:
        names = [name for name, _ in model.named_parameters()]
        raise ValueError(f"target_substrings {list(substrings)} match no nn.Linear weight of {type(model).__name__} "
                         f"(parameters named like {names[::max(1, len(names) // 5)][:5]}); pass substrings of those")
    frozen = [name for name, module in found if not module.weight.requires_grad]
    if len(frozen) == len(found):
        raise ValueError(f"every weight target_substrings {list(substrings)} select is frozen, e.g. {frozen[0]}; "
                         "unfreeze the ones to prune")
    if frozen:
        warnings.warn(f"{owner} leaves alone {len(frozen)} frozen parameter(s) (requires_grad=False) that "
                      f"target_substrings select: {', '.join(frozen[:3])}{', ...' if len(frozen) > 3 else ''}; "
                      "unfreeze them to prune them, or narrow target_substrings to silence this", stacklevel=3)
    found = [(name, module) for name, module in found if module.weight.requires_grad]
    for name, module in found:
        if module.weight.is_meta:
            raise ValueError(f"{name} is on the meta device; load the weights before building the pruner")
        if "forward" in vars(module):
            raise ValueError(f"{name}'s module already has its own forward (another movement pruner is attached?); "
                             "detach() the first one")
    check_no_shared_memory([(name, module.weight) for name, module in found])
    return [name for name, _ in found], [module for _, module in found]
