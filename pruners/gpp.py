"""GPP: gradient progressive pruning of attention heads and FFN neurons (GPP-DFD, Neural Networks 2024).

The math (docs/METHODS.md §2; `s` = pruning step = optimizer updates since
pruning started, 1 for the first pruning update; `Tp` = pruning updates):

    units       heads (L × H) and FFN intermediate neurons (L × I), one indicator z per unit, z = 1 at start
    masking     context vector of head h in layer l  ×= z_head[l, h]   (input of attention.output.dense)
                activation of FFN neuron j in layer l ×= z_ffn[l, j]   (output of intermediate, after the act. fn)
    loss        total = task' + distill + λ·‖z_head‖₁ + λ·‖z_ffn‖₁            (λ = 0.5)
    scores      G = Σ over every backward pass since pruning started of ∂total/∂z   (never zeroed)
                S = |G / s|
    schedule    c(s) = start + (target − start) · ((1 − cos(π·s/Tp)) / 2)²
    cadence     recompute z when  s mod max(1, floor(Tp / (100·target))) == 0  or  s == Tp
    indicator   k = floor(n·c);  B = 1 where |S| > (k+1)-th largest |S|  (ties at the boundary stay unmarked)
                z = (1 − B) + (1 − c/target) · B
    freeze      once c == target: pruned units z = 0 exactly, the rest z = 1 exactly; z never changes again

Decision on "trainable z": z needs a gradient (requires_grad=True) so that G can
be accumulated, but it is *not* updated by the optimizer. Its value is set only
by `progressive_indicator` (§2.6), exactly like the public code that recomputes
the masks from the scores. The indicators therefore live on the pruner, not on
the model: `model.parameters()` does not contain them, so an optimizer built from
the model never touches them and gradient clipping of the model does not clip G.

Training loop contract (see `phase_of` for the three phases):

    pruner = GPPPruner(model, pruning_type=..., target_sparsity=..., prune_steps=Tp)  # at pruning start
    for every micro-batch:
        loss = task_loss' + distill_loss + pruner.indicator_loss()
        (loss / grad_accumulation_step).backward()
        pruner.accumulate_gradients()              # after every backward (or once per update, both exact)
        if this micro-batch completes an update:
            clip; optimizer.step(); optimizer.zero_grad()
            pruner.step(s)                         # s = 1..Tp, from phase_of(t, ...)
            lr_schedule.step()

Phases (§2.2): `phase_of(t, P, Tp, T)` names the phase of update t and its s;
`is_phase_start` marks the updates before which the trainer creates the optimizer
and linear-decay LR schedule afresh (pruning: learning_rate; retraining:
retrain_learning_rate). Build the pruner at the first pruning update; in retraining
keep the pruner's hooks (the frozen z keep pruned units at 0) and stop adding
`indicator_loss`; at the end save the indicators with `pruner.mask.save(directory)`
(pruners.structured_mask.INDICATOR_FILE) or export. The DFD teacher is a
separately fine-tuned model that the trainer loads from disk, not a copy of the
student, so the hooks never see it.

Masking is a pruners.structured_mask.StructuredMask (`pruner.mask`) holding the
trainable z by reference: its forward hooks multiply the head contexts and FFN
activations by z, which is how z gets its gradient. The hooks act only on the
modules they were registered on: copy.deepcopy of a hooked model copies the
hooks too, and the copy comes out unmasked instead of sharing this pruner's z
(nothing in the toolkit deep-copies a hooked model; the check guards any code that does).

State (`state_dict()`), shaped like the unstructured pruners' (pruners.base):

    {"format": 1, "method": "gpp", "last_step": int, "current_sparsity": float, "done": bool,
     "skipped_backward_passes": int,
     "hyperparameters": {"pruning_type", "target_sparsity", "prune_steps", "l1_lambda"},
     "shape": {"layers": L, "heads": H, "intermediate": I},
     "tensors": {"indicator/head": (L, H), "indicator/ffn": (L, I),     # active types only
                 "grad_sum/head": (L, H), "grad_sum/ffn": (L, I)}}      # G, same types

Everything but "tensors" is JSON; "tensors" is a flat str → Tensor dict of
detached CPU copies that `safetensors.torch.save_file` takes as is.

`accumulate_gradients` adds z.grad to G and then clears z.grad, so G is the sum
over every backward pass whether it is called after each backward or once per
update (gradient accumulation); calling it twice without a backward in between
adds nothing.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from pruners.anatomy import BERT, Anatomy, encoder_shape, find_encoder
from pruners.base import STATE_FORMAT
from pruners.schedule import is_integer, is_number
from pruners.structured_mask import StructuredMask

PRUNING_TYPES = ("structured_heads", "structured_mlp", "structured_heads+structured_mlp")


# ---------------------------------------------------------------------------
# Pure functions: schedule, cadence, indicator, phases


def _check_target(target: float) -> None:
    if not is_number(target):
        raise TypeError(f"target sparsity must be a number in (0, 1), not {target!r}; "
                        "e.g. 0.5 prunes half of the units")
    if not 0.0 < float(target) < 1.0:
        raise ValueError(f"target sparsity must be in (0, 1), got {target}; e.g. 0.5 prunes half of the units")


def cosine_sparsity(step: int, total_steps: int, target: float, start: float = 0.0) -> float:
    """Sparsity at pruning step `step` of `total_steps` (GPP-DFD, cosine-squared schedule).

        c(s) = start + (target − start) · ((1 − cos(π·s/Tp)) / 2)²

    c(0) = start, c(Tp/2) = start + (target − start)/4, c(Tp) = target. For
    `step >= total_steps` the value is `target` exactly (the formula's value at
    Tp, returned without float rounding so that `c == target` can be tested).
    Raises ValueError if target is not in (0, 1), total_steps < 1 or step < 0.
    """
    _check_target(target)
    if total_steps < 1:
        raise ValueError(f"total_steps (pruning updates Tp) must be >= 1, got {total_steps}")
    if step < 0:
        raise ValueError(f"pruning step must be >= 0, got {step}")
    if step >= total_steps:
        return float(target)
    progress = (1.0 - math.cos(math.pi * step / total_steps)) / 2.0
    return float(start + (target - start) * progress ** 2)


def indicator_update_interval(total_steps: int, target: float) -> int:
    """Updates between indicator recomputations: max(1, floor(Tp / (100·target))).

    Deviation from the public code: it divides by floor(Tp / (100·target)),
    which is 0 (ZeroDivisionError) when Tp < 100·target; the interval is at least 1.
    """
    _check_target(target)
    return max(1, math.floor(total_steps / (100 * target)))


def is_indicator_update_step(step: int, total_steps: int, target: float) -> bool:
    """True when the indicators are recomputed at pruning step s:
    s mod max(1, floor(Tp / (100·target))) == 0  or  s == Tp."""
    return step % indicator_update_interval(total_steps, target) == 0 or step == total_steps


def progressive_indicator(scores: torch.Tensor, sparsity: float, target: float) -> torch.Tensor:
    """Indicator z for one unit type from its pooled scores (GPP-DFD §2.6).

        k = floor(n · c)
        B = 1 for units with |S| strictly greater than the (k+1)-th largest |S|, else 0
        z = (1 − B) + (1 − c / target) · B

    Ties at the (k+1)-th value are not marked, so fewer than k units may be
    marked. At c == target marked units are exactly 0 and the rest exactly 1.
    `scores` may have any shape (e.g. L × H); z has the same shape and dtype.
    """
    _check_target(target)
    magnitude = scores.detach().abs().flatten()
    n = magnitude.numel()
    k = math.floor(n * sparsity)
    if k >= n:  # only reachable through float rounding of n·c; every unit is marked
        marked = torch.ones_like(magnitude, dtype=torch.bool)
    else:
        threshold = torch.sort(magnitude, descending=True).values[k]  # (k+1)-th largest
        marked = magnitude > threshold
    marked = marked.to(scores.dtype).view_as(scores)
    return (1.0 - marked) + (1.0 - sparsity / target) * marked


class Phase(NamedTuple):
    """Where an optimizer update falls: `name` ('prepruning', 'pruning' or 'retraining') and the pruning step s
    (0 before pruning, 1..Tp during pruning, Tp during retraining)."""
    name: str
    pruning_step: int


def _check_phases(prepruning_updates: int, prune_updates: int, total_updates: int) -> None:
    if prepruning_updates < 0 or prune_updates < 1 or prepruning_updates + prune_updates > total_updates:
        raise ValueError(
            f"impossible GPP phases: prepruning_updates={prepruning_updates}, prune_updates={prune_updates}, "
            f"total_updates={total_updates}; need prepruning >= 0, prune >= 1 and prepruning + prune <= total "
            f"(lower prepruning_finetune_epochs/prune_epochs or raise num_train_epochs)")


def phase_of(update: int, prepruning_updates: int, prune_updates: int, total_updates: int) -> Phase:
    """Phase of optimizer update `update` (1-based) in a GPP run (§2.2).

        1 .. P                 'prepruning'  s = 0          P  = prepruning_updates
        P+1 .. P+Tp            'pruning'     s = t − P      Tp = prune_updates
        P+Tp+1 .. total        'retraining'  s = Tp
    """
    _check_phases(prepruning_updates, prune_updates, total_updates)
    if not 1 <= update <= total_updates:
        raise ValueError(f"update must be in 1..{total_updates}, got {update}")
    if update <= prepruning_updates:
        return Phase("prepruning", 0)
    if update <= prepruning_updates + prune_updates:
        return Phase("pruning", update - prepruning_updates)
    return Phase("retraining", prune_updates)


def is_phase_start(update: int, prepruning_updates: int, prune_updates: int, total_updates: int) -> bool:
    """True for the first update of each phase that occurs (t = 1, P+1, P+Tp+1): the trainer
    creates the optimizer and linear-decay LR schedule afresh before this update (§2.2)."""
    current = phase_of(update, prepruning_updates, prune_updates, total_updates)
    return update == 1 or phase_of(update - 1, prepruning_updates, prune_updates, total_updates).name != current.name


# ---------------------------------------------------------------------------
# The pruner


class GPPPruner:
    """Structured GPP pruner over an encoder (or a module containing one), BERT's layout unless `anatomy` says.

    Args:
        model: the model whose encoder is pruned; hooks are registered on its layers.
        pruning_type: 'structured_heads', 'structured_mlp' or 'structured_heads+structured_mlp'.
        target_sparsity: fraction of units of each active type removed at the end, in (0, 1).
        prune_steps: Tp, the number of optimizer updates of the pruning phase (>= 1).
        l1_lambda: λ of the L1 indicator penalty (0.5 in the paper).
        anatomy: where the encoder's heads and FFN neurons are (pruners.anatomy.Anatomy; BERT's by default).

    Attributes:
        z_head: (L, H) head indicators, or None when heads are not pruned.
        z_ffn: (L, I) FFN-neuron indicators, or None when FFN neurons are not pruned.
        grad_sum: {'head'|'ffn': G}, the gradient sums the scores come from.
        skipped_backward_passes: backward passes whose non-finite z gradient was not added.
        current_sparsity: c of the latest `step`; last_step: the s of the latest `step`.
        mask: the StructuredMask whose hooks apply z_head and z_ffn to the model.
    """

    def __init__(self, model: nn.Module, *, pruning_type: str, target_sparsity: float, prune_steps: int,
                 l1_lambda: float = 0.5, anatomy: Anatomy = BERT):
        if pruning_type not in PRUNING_TYPES:
            raise ValueError(f"pruning_type must be one of {PRUNING_TYPES}, got {pruning_type!r}")
        _check_target(target_sparsity)
        if not is_number(prune_steps):
            raise TypeError(f"prune_steps (Tp, pruning updates) must be an integer >= 1, not {prune_steps!r}")
        if not (math.isfinite(prune_steps) and int(prune_steps) == prune_steps and prune_steps >= 1):
            raise ValueError(f"prune_steps (Tp, pruning updates) must be an integer >= 1, got {prune_steps}")
        if not is_number(l1_lambda):
            raise TypeError(f"l1_lambda must be a number >= 0 (0.5 in the paper), not {l1_lambda!r}")
        if not (math.isfinite(l1_lambda) and l1_lambda >= 0):
            raise ValueError(f"l1_lambda must be a finite number >= 0 (0.5 in the paper), got {l1_lambda}")
        self.pruning_type = pruning_type
        self.target_sparsity = float(target_sparsity)
        self.prune_steps = int(prune_steps)
        self.l1_lambda = float(l1_lambda)

        self.bert = find_encoder(model, anatomy)
        self.anatomy = anatomy
        self.num_layers, self.num_heads, self.head_size, self.intermediate_size = encoder_shape(self.bert, anatomy)
        reference = next(self.bert.parameters())
        if reference.is_meta:
            raise ValueError("the encoder's parameters are on the meta device (a model built without its weights); "
                             "load or materialize the weights before building the GPP pruner")
        factory = dict(device=reference.device, dtype=torch.float32)
        self.z_head = (nn.Parameter(torch.ones(self.num_layers, self.num_heads, **factory))
                       if "structured_heads" in pruning_type else None)
        self.z_ffn = (nn.Parameter(torch.ones(self.num_layers, self.intermediate_size, **factory))
                      if "structured_mlp" in pruning_type else None)
        self.grad_sum = {name: torch.zeros_like(z) for name, z in self.indicators().items()}
        self.last_step = 0
        self.current_sparsity = 0.0
        self.skipped_backward_passes = 0
        self._done = False
        self.mask = StructuredMask(self.bert, head=self.z_head, ffn=self.z_ffn, anatomy=anatomy)

    # -- indicators and hooks -------------------------------------------------

    def indicators(self) -> dict[str, nn.Parameter]:
        """The active indicators by unit type: {'head': z_head, 'ffn': z_ffn} (active types only)."""
        found = {"head": self.z_head, "ffn": self.z_ffn}
        return {name: z for name, z in found.items() if z is not None}

    def remove_hooks(self) -> None:
        """Stop masking the model (e.g. after export, or to evaluate the dense model)."""
        self.mask.remove()

    # -- loss and gradients ---------------------------------------------------

    def indicator_loss(self) -> torch.Tensor:
        """λ·‖z_head‖₁ + λ·‖z_ffn‖₁ over the active types; add it to the loss of every pruning
        micro-batch. Once pruning is done (z frozen) it is 0: the term belongs to the pruning phase."""
        indicators = list(self.indicators().values())
        if self._done:
            return torch.zeros((), device=indicators[0].device)
        return self.l1_lambda * sum(z.abs().sum() for z in indicators)

    @torch.no_grad()
    def accumulate_gradients(self, grad_scale: float = 1.0) -> bool:
        """G += z.grad / grad_scale, then clear z.grad. Call after every `loss.backward()` of the
        pruning phase (or once per update before the next backward: same sum). No-op once done.

        G is the gradient of whatever loss is backpropagated: dividing the loss by
        grad_accumulation_step scales G alike, which changes no ranking. With
        torch.amp.GradScaler pass `grad_scale=scaler.get_scale()`; a non-finite gradient (an
        fp16 overflow, whose optimizer step GradScaler skips) is then dropped and counted in
        `skipped_backward_passes`. Returns True when the gradients were added. A grad_scale that is
        not a finite number > 0 is refused (it would turn G into inf or NaN).
        """
        if not (is_number(grad_scale) and math.isfinite(grad_scale) and grad_scale > 0):
            raise ValueError(f"grad_scale={grad_scale!r} must be a finite number > 0: the factor the loss was "
                             "multiplied by (scaler.get_scale() with torch.amp.GradScaler, else 1)")
        grads = {name: z.grad for name, z in self.indicators().items() if z.grad is not None}
        for z in self.indicators().values():
            z.grad = None
        if not grads:
            return False
        if not all(bool(torch.isfinite(g).all()) for g in grads.values()):
            self.skipped_backward_passes += 1
            return False
        for name, grad in grads.items():
            self.grad_sum[name] += grad / grad_scale
        return True

    # -- schedule -------------------------------------------------------------

    @property
    def is_done(self) -> bool:
        """True once c reached the target and the indicators are frozen at exact 0/1."""
        return self._done

    @torch.no_grad()
    def step(self, pruning_step: int) -> float:
        """Call after `optimizer.step()` of pruning update s (1..Tp). Returns c(s).

        When the cadence says so (or at s >= Tp), z ← progressive_indicator(|G/s|, c, target)
        for each active type. At c == target the indicators freeze (requires_grad off);
        later calls return the target and change nothing.

        Refused before anything changes: an s that is not an integer (TypeError), not after the last
        one (each pruning update once, in order; a resumed pruner continues at last_step + 1), and an
        update that would mark units while G is still all zero (no gradient of the indicators was
        ever accumulated: every unit would score 0, and none would be pruned).
        """
        if self._done:
            return self.current_sparsity
        if not is_integer(pruning_step):
            raise TypeError(f"pruning step must be an integer (updates since pruning started), not {pruning_step!r}")
        if pruning_step < 1:
            raise ValueError(f"pruning step must be >= 1 (updates since pruning started), got {pruning_step}")
        if pruning_step <= self.last_step:
            raise ValueError(f"pruning step {pruning_step} came after step {self.last_step}: each pruning update is "
                             f"stepped once, in increasing order; the next is {self.last_step + 1}")
        sparsity = cosine_sparsity(pruning_step, self.prune_steps, self.target_sparsity)
        recompute = pruning_step >= self.prune_steps or is_indicator_update_step(pruning_step, self.prune_steps,
                                                                                  self.target_sparsity)
        if recompute:
            self._check_gradients_accumulated(pruning_step, sparsity)
            for name, z in self.indicators().items():
                scores = (self.grad_sum[name] / pruning_step).abs()
                z.copy_(progressive_indicator(scores, sparsity, self.target_sparsity))
            if sparsity == self.target_sparsity:
                self._freeze()
        self.last_step = int(pruning_step)
        self.current_sparsity = sparsity
        return sparsity

    def _check_gradients_accumulated(self, pruning_step: int, sparsity: float) -> None:
        """Refuse to mark units (k = floor(n·c) ≥ 1 for a unit type) by a G that no gradient has reached."""
        marks = any(math.floor(z.numel() * sparsity) >= 1 for z in self.indicators().values())
        if marks and not any(bool(g.any()) for g in self.grad_sum.values()):
            raise ValueError(f"GPPPruner.step({pruning_step}) would pick units to prune by scores no gradient has "
                             "reached: G, the sum of the indicators' gradients, is still 0; call "
                             "pruner.accumulate_gradients() after every loss.backward() of the pruning phase (with "
                             "pruner.indicator_loss() added to the loss)")

    def _freeze(self) -> None:
        self._done = True
        for z in self.indicators().values():
            z.requires_grad_(False)
            z.grad = None

    # -- reporting ------------------------------------------------------------

    def pruned_counts(self) -> dict[str, list[int]]:
        """Units whose indicator is exactly 0, per layer: {'heads': [...], 'ffn_neurons': [...]}
        (active types only). Before the freeze, shrinking units (0 < z < 1) are not counted."""
        counts = {}
        if self.z_head is not None:
            counts["heads"] = (self.z_head == 0).sum(dim=1).tolist()
        if self.z_ffn is not None:
            counts["ffn_neurons"] = (self.z_ffn == 0).sum(dim=1).tolist()
        return counts

    def summary(self) -> str:
        """One line for the log: step, sparsity, pruned units per layer."""
        parts = [f"GPP step {self.last_step}/{self.prune_steps} sparsity {self.current_sparsity:.4f}"
                 f"{' (frozen)' if self._done else ''}"]
        for name, per_layer in self.pruned_counts().items():
            parts.append(f"pruned {name} {sum(per_layer)} per layer {per_layer}")
        return "; ".join(parts)

    # -- state ----------------------------------------------------------------

    def hyperparameters(self) -> dict:
        """The constructor's settings, as recorded in (and checked against) the state dict."""
        return {"pruning_type": self.pruning_type, "target_sparsity": self.target_sparsity,
                "prune_steps": self.prune_steps, "l1_lambda": self.l1_lambda}

    def _shape(self) -> dict:
        return {"layers": self.num_layers, "heads": self.num_heads, "intermediate": self.intermediate_size}

    def state_dict(self) -> dict:
        """Everything needed to resume; see the module docstring for its format."""
        tensors = {}
        for statistic, values in (("indicator", self.indicators()), ("grad_sum", self.grad_sum)):
            for name, value in values.items():
                tensors[f"{statistic}/{name}"] = value.detach().cpu().clone()
        return {"format": STATE_FORMAT, "method": "gpp", "last_step": self.last_step,
                "current_sparsity": self.current_sparsity, "done": self._done,
                "skipped_backward_passes": self.skipped_backward_passes,
                "hyperparameters": self.hyperparameters(), "shape": self._shape(), "tensors": tensors}

    @torch.no_grad()
    def load_state_dict(self, state: dict) -> None:
        """Restore a `state_dict()`; format, method, hyperparameters, shape, tensors and scalars must
        fit this pruner (TypeError when it is not a dict, else ValueError naming what differs), all
        checked before anything changes."""
        if not isinstance(state, dict):
            raise TypeError(f"state must be the dict GPPPruner.state_dict() returned, not a {type(state).__name__}")
        if state.get("format") != STATE_FORMAT or state.get("method") != "gpp":
            raise ValueError(f"cannot load a pruner state of format {state.get('format')!r} and method "
                             f"{state.get('method')!r} into a gpp pruner (format {STATE_FORMAT})")
        saved = dict(state.get("hyperparameters") or {}, shape=state.get("shape"))
        for key, value in dict(self.hyperparameters(), shape=self._shape()).items():
            if saved.get(key) != value:
                raise ValueError(f"GPP state does not match this pruner: {key} is {saved.get(key)!r} in the state "
                                 f"and {value!r} here")
        tensors = state.get("tensors") or {}
        expected = {f"{statistic}/{name}": mine for name, z in self.indicators().items()
                    for statistic, mine in (("indicator", z), ("grad_sum", self.grad_sum[name]))}
        if set(tensors) != set(expected):
            raise ValueError(f"GPP state holds tensors {sorted(tensors)}, this pruner needs {sorted(expected)}")
        for key, mine in expected.items():
            if not (isinstance(tensors[key], torch.Tensor) and tensors[key].is_floating_point()):
                raise ValueError(f"GPP state {key} is a {getattr(tensors[key], 'dtype', type(tensors[key]).__name__)}, "
                                 "not a floating-point tensor")
            if tuple(tensors[key].shape) != tuple(mine.shape):
                raise ValueError(f"GPP state {key} has shape {tuple(tensors[key].shape)}, this pruner needs "
                                 f"{tuple(mine.shape)}")
        scalars = {"last_step": is_integer, "current_sparsity": is_number, "done": lambda v: isinstance(v, bool),
                   "skipped_backward_passes": is_integer}
        for key, fits in scalars.items():
            if not fits(state.get(key)):
                raise ValueError(f"GPP state {key}={state.get(key)!r} is missing or of the wrong type; pass the whole "
                                 "dict state_dict() returned")
        for key, mine in expected.items():
            mine.copy_(tensors[key])
        for z in self.indicators().values():
            z.grad = None
            z.requires_grad_(True)
        self.last_step = int(state["last_step"])
        self.current_sparsity = float(state["current_sparsity"])
        self.skipped_backward_passes = int(state["skipped_backward_passes"])
        self._done = False
        if state["done"]:
            self._freeze()
