"""Optimizers and learning-rate schedules.

The default optimizer is MT-DNN's Adamax (the one PLATON trains with), not
`torch.optim.Adamax`: BERT-style, without bias correction, with weight decay
*decoupled* from the gradient. torch's Adamax adds the decay to the gradient
(L2) and then divides by the running max of |g|, so a weight whose gradient is
small moves by about lr * sign(w) at every update and the pretrained weights
are erased within a few hundred updates. Per parameter tensor w with gradient g:

    if max_grad_norm > 0: g <- g * min(1, max_grad_norm / ||g||)   (in place, per tensor)
    m <- b1 * m + (1 - b1) * g
    u <- max(b2 * u, |g| + eps)
    update <- m / (u + eps) + weight_decay * w                     (decay on weights only)
    w <- w - lr_t * update

b1 = 0.9, b2 = 0.999, eps = 1e-6; lr_t is the group's learning rate, which the
LR schedule below (PhasedLR) sets at each update. `adam` is MT-DNN's other choice,
BERT's Adam (same shape, u <- b2 * u + (1 - b2) * g^2, update m / (sqrt(u) + eps));
`adamw` is torch's AdamW (bias-corrected, decay decoupled as w <- w - lr_t * wd * w).
Only `sgd` keeps plain L2 decay.

How Adamax and Adam run their step (`impl`, --optimizer_impl) changes no bit of the result: the per-tensor
loop (`update_one`, the reference), or fused kernels (training.fused_optim: one numba pass per tensor on
CPU, torch._foreach_* elsewhere), each used only where `kernel_matches_loop` found it gives the loop's bits
on this machine. The state_dict is the loop's either way (per-parameter exp_avg, exp_inf or exp_avg_sq, step),
so checkpoints move between them. `step_with_global_clip` is the global clip and the step together, the
clip's multiply folded into the fused pass.

The learning rate follows a `PhaseSchedule`: phases of the run, each from its
first update on, at its own learning rate times `lr_multiplier` over the updates
left in the run. train.py's first phase starts at update 1 (--learning_rate,
--warmup, --warmup_schedule); a training method may declare more (GPP: pruning
and retraining, linear decay from their own rates). `PhasedLR` is the LR
scheduler that applies it, and starts the optimizer afresh (its moments
cleared, as a new optimizer would have them) before the first update of each
later phase; its state_dict records the phases, so a resumed run continues in
the phase it was in, restarting the optimizer where the schedule says.
"""
import math
from dataclasses import astuple
from typing import List, Optional, Sequence

import torch

from methods.base import LRPhase
from pruners.kernels import numba_available

OPTIMIZERS = ("adamax", "adam", "adamw", "sgd")
OPTIMIZER_IMPLS = ("auto", "loop", "numba", "foreach")      # how adamax and adam run their step: choose_kernels
WARMUP_SCHEDULES = ("warmup_linear", "warmup_constant", "warmup_cosine")
# MT-DNN's list: a parameter whose name contains any of these is never decayed.
NO_DECAY = ("bias", "gamma", "beta", "LayerNorm.weight", "LayerNorm.bias")


def lr_multiplier(step: int, total_steps: int, warmup: float, schedule: str) -> float:
    """Factor on the base learning rate after `step` updates (BERT-style schedules).

    x = step / total_steps, w = warmup (a fraction of the updates):
      x < w                    : x / w                       (linear warmup, all schedules)
      warmup_linear   otherwise: (1 - x) / (1 - w)           (linear decay to 0 at the end)
      warmup_constant otherwise: 1
      warmup_cosine   otherwise: 0.5 * (1 + cos(pi * (x - w) / (1 - w)))
    """
    x = step / max(1, total_steps)
    if x < warmup:
        return x / warmup
    if schedule == "warmup_constant":
        return 1.0
    progress = (x - warmup) / max(1e-12, 1.0 - warmup)
    if schedule == "warmup_cosine":
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return max(0.0, 1.0 - progress)


def parameter_groups(named_parameters, weight_decay: float) -> list:
    """MT-DNN's two groups: `weight_decay` on weights, 0 on biases and LayerNorm parameters."""
    decay, no_decay = [], []
    for name, param in named_parameters:
        if param.requires_grad:
            (no_decay if any(nd in name for nd in NO_DECAY) else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def clip_per_tensor_(param: torch.Tensor, max_grad_norm: float) -> None:
    """Scale one tensor's gradient in place to L2 norm at most `max_grad_norm` (MT-DNN's per-tensor clip)."""
    if max_grad_norm > 0:
        torch.nn.utils.clip_grad_norm_([param], max_grad_norm)


def scale_gradients_(grads, scale: torch.Tensor) -> None:
    """grads *= scale in place, per device and dtype, with the op clip_grad_norm_ applies its coefficient by."""
    groups = {}
    for grad in grads:
        groups.setdefault((grad.device, grad.dtype), []).append(grad)
    for (device, _), same in groups.items():
        torch._foreach_mul_(same, scale.to(device))


def global_clip_scale(grads, max_norm: float) -> torch.Tensor:
    """clip_grad_norm_'s coefficient min(1, max_norm / (||all grads|| + 1e-6)), formed as it forms it."""
    total = torch.nn.utils.get_total_norm(grads, 2.0)
    return torch.clamp(max_norm / (total + 1e-6), max=1.0)


def step_with_global_clip(optimizer, model: torch.nn.Module, max_norm: float, extra=()) -> None:
    """train.py's update: clip the norm of all gradients together (the model's parameters and `extra`, tensors
    a method trains itself) to `max_norm` (0: off), then optimizer.step(), bit for bit what
    clip_grad_norm_(...) followed by step() gives. The fused Adamax takes the coefficient into its own pass
    over the gradients instead of a separate multiply over all of them; `extra` and other optimizers' gradients
    are scaled as clip_grad_norm_ scales them."""
    tensors = [tensor for tensor in (*model.parameters(), *extra) if tensor.grad is not None]
    if max_norm <= 0 or not tensors:
        optimizer.step()
        return
    scale = global_clip_scale([tensor.grad for tensor in tensors], max_norm)
    if not isinstance(optimizer, _BertStyle):
        scale_gradients_([tensor.grad for tensor in tensors], scale)
        optimizer.step()
        return
    clipped = {id(tensor) for tensor in tensors}
    stepped = {id(param) for group in optimizer.param_groups for param in group["params"] if param.grad is not None}
    if not stepped <= clipped:          # the step would scale a gradient the clip leaves alone
        scale_gradients_([tensor.grad for tensor in tensors], scale)
        optimizer.step()
        return
    scale_gradients_([tensor.grad for tensor in tensors if id(tensor) not in stepped], scale)
    optimizer.step(grad_scale=scale)


class _BertStyle(torch.optim.Optimizer):
    """Shared body of MT-DNN's Adamax and BERT's Adam: per-tensor clip, two moments, no bias
    correction, decoupled decay. Subclasses say how the second moment and the step are formed."""

    def __init__(self, params, lr: float, betas=(0.9, 0.999), eps: float = 1e-6, weight_decay: float = 0.0,
                 max_grad_norm: float = 0.0, impl: str = "loop"):
        if lr < 0 or eps < 0 or weight_decay < 0 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"{type(self).__name__}: lr, eps and weight_decay must be >= 0 and betas in [0, 1) "
                             f"(got lr={lr}, eps={eps}, weight_decay={weight_decay}, betas={betas})")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      max_grad_norm=max_grad_norm))
        # How step() runs (not part of the state_dict, whose format stays the loop's): see choose_kernels.
        self.impl, self.kernels, self.contract, self.impl_note = "loop", {}, {}, "loop (per-tensor torch ops)"
        if impl != "loop":
            kinds = {(param.device.type, param.dtype) for group in self.param_groups for param in group["params"]}
            self.kernels, self.contract, self.impl_note = choose_kernels(type(self), impl, kinds)
            self.impl = "fused" if self.kernels else "loop"

    @torch.no_grad()
    def step(self, closure=None, grad_scale: Optional[torch.Tensor] = None):
        """One update. `grad_scale` (a 0-d tensor: the global clip's coefficient, step_with_global_clip)
        multiplies every gradient first, in place, as clip_grad_norm_ would have; the numba kernel does
        it in its own pass when the group has no per-tensor clip (whose norms need the scaled gradients)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            live = [param for param in group["params"] if param.grad is not None]
            if any(param.grad.is_sparse for param in live):
                raise RuntimeError(f"{type(self).__name__} does not support sparse gradients")
            folded = grad_scale is not None and self.impl == "fused" and group["max_grad_norm"] <= 0
            if grad_scale is not None and not folded:
                scale_gradients_([param.grad for param in live], grad_scale)
            if self.impl == "loop":
                for param in live:
                    self.update_one(param, group)
            else:
                self._fused_group(group, live, grad_scale if folded else None)
        return loss

    def _state_of(self, param) -> dict:
        """The parameter's state, created as a new optimizer has it at its first update."""
        state = self.state[param]
        if not state:
            state["step"] = torch.zeros((), dtype=torch.float32)
            state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
            state[self.second_moment] = torch.zeros_like(param, memory_format=torch.preserve_format)
        return state

    def update_one(self, param, group) -> None:
        """The loop's update of one parameter tensor (the reference the fused kernels are checked against)."""
        beta1, beta2 = group["betas"]
        clip_per_tensor_(param, group["max_grad_norm"])
        grad = param.grad
        state = self._state_of(param)
        state["step"] += 1
        exp_avg = state["exp_avg"]
        exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
        update = self.direction(exp_avg, state[self.second_moment], grad, beta2, group["eps"])
        if group["weight_decay"] > 0:
            update.add_(param, alpha=group["weight_decay"])
        param.add_(update, alpha=-group["lr"])

    def _fused_group(self, group, live, grad_scale=None) -> None:
        """The group's update with the fused kernels: numba for contiguous CPU float tensors, torch._foreach_*
        per device and dtype for the others when this optimizer was checked with them, the loop for the rest.
        `grad_scale`: the global clip's coefficient, not yet applied (only when the group has no per-tensor clip)."""
        buckets = {}
        for param in live:
            kind = self.kernels.get((param.device.type, param.dtype), "loop")
            if kind == "numba" and not self._numba_fits(param):
                kind = "loop"
            if kind == "loop":
                if grad_scale is not None:
                    scale_gradients_([param.grad], grad_scale)
                self.update_one(param, group)
            else:
                buckets.setdefault((kind, param.device, param.dtype), []).append(param)
        for (kind, device, dtype), params in buckets.items():
            states = [self._state_of(param) for param in params]
            torch._foreach_add_([state["step"] for state in states], 1)
            grads = [param.grad for param in params]
            scales = None
            if grad_scale is not None and kind == "numba":
                scales = [grad_scale.item()] * len(params)          # g * scale inside the kernel's pass
            elif grad_scale is not None:
                scale_gradients_(grads, grad_scale)
            if group["max_grad_norm"] > 0:
                scales = fused_optim.clip_coefficients(grads, group["max_grad_norm"])
                scales = scales.tolist() if kind == "numba" else list(scales.unbind())
            beta1, beta2 = group["betas"]
            settings = dict(beta1=beta1, beta2=beta2, eps=group["eps"], weight_decay=group["weight_decay"],
                            lr=group["lr"])
            moments = ([state["exp_avg"] for state in states], [state[self.second_moment] for state in states])
            if kind == "numba":
                fused_optim.numba_adamax_update(params, grads, *moments, scales,
                                                contract=self.contract[(device.type, dtype)], **settings)
            else:
                fused_optim.foreach_update(self.second_moment, params, grads, *moments, scales, **settings)

    def _numba_fits(self, param) -> bool:
        """The numba kernel works on the memory of the weight, its gradient and both moments as flat arrays:
        contiguous, of one dtype (moments loaded from a checkpoint included)."""
        state = self._state_of(param)
        tensors = (param, param.grad, state["exp_avg"], state[self.second_moment])
        return all(tensor.dtype == param.dtype and tensor.is_contiguous() for tensor in tensors)


_CHECKED = {}      # (optimizer class, kernel, device type, dtype) -> the `contract` that matched the loop, or None


def kernel_matches_loop(cls, kind: str, device_type: str, dtype: torch.dtype):
    """Whether `kind`'s kernels ("numba", "foreach") give the loop's bits on this device and torch build: the
    `contract` setting that does (numba: with the multiply-add fused, then without; foreach: True), or None.

    Checked once per process on a probe that covers what a run does: two groups (weight decay and none),
    per-tensor clipping that bites and one that does not, a gradient of zeros, a parameter without one,
    tensors whose sizes leave a tail after the vectorised part of torch's loops, the learning rate changed
    between steps; weights, gradients and both moments compared bit for bit after each of three steps."""
    key = (cls, kind, device_type, dtype)
    if key not in _CHECKED:
        candidates = (True, False) if kind == "numba" else (True,)
        _CHECKED[key] = next((contract for contract in candidates
                              if _probe_equal(cls, kind, contract, device_type, dtype)), None)
    return _CHECKED[key]


def _probe_equal(cls, kind: str, contract: bool, device_type: str, dtype: torch.dtype) -> bool:
    generator = torch.Generator().manual_seed(23)         # a private generator: training's RNG stays put
    shapes = [(1,), (37,), (33, 65), (1000,), (5, 3), (17,)]

    def draw(shape, scale=1.0):
        return (torch.randn(shape, generator=generator, dtype=torch.float64) * scale).to(dtype).to(device_type)

    weights = [draw(shape) for shape in shapes]
    grads = [[draw(shape, scale) for shape, scale in zip(shapes, (3.0, 0.01, 0.1, 1.0, 0.0, 1.0))]
             for _ in range(3)]
    runs = []
    for fused in (False, True):
        params = [torch.nn.Parameter(weight.clone()) for weight in weights]
        optimizer = cls([{"params": params[:3], "weight_decay": 0.01},
                         {"params": params[3:], "weight_decay": 0.0, "max_grad_norm": 0.0}],
                        lr=1e-3, max_grad_norm=0.5)
        if fused:
            optimizer.impl, optimizer.kernels = "fused", {(device_type, dtype): kind}
            optimizer.contract = {(device_type, dtype): contract}
        snapshots = []
        for step, step_grads in enumerate(grads):
            for group in optimizer.param_groups:
                group["lr"] = 1e-3 / (step + 1)
            for index, (param, grad) in enumerate(zip(params, step_grads)):
                param.grad = None if index == 5 and step == 1 else grad.clone()
            optimizer.step()
            snapshots.append([tensor.clone() for param in params
                              for tensor in (param.detach(), param.grad, *optimizer.state[param].values())
                              if tensor is not None])
        runs.append(snapshots)
    return all(len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b)) for a, b in zip(*runs))


def choose_kernels(cls, impl: str, kinds) -> tuple:
    """(kernels, contracts, note) for an optimizer of class `cls` over parameters of `kinds` ({(device type,
    dtype)}) asked to run `impl`:

      auto     numba on CPU (when numba is installed and the class has a kernel: Adamax), torch._foreach_*
               elsewhere, each only where the check against the loop (kernel_matches_loop) passes; the loop
               for the rest
      numba    numba on CPU, torch._foreach_* elsewhere; ValueError when numba or the class's kernel is
               missing or a check fails
      foreach  torch._foreach_* everywhere (also on CPU, where it is slower than numba); ValueError when the
               check fails

    `kernels` maps (device type, dtype) to "numba" or "foreach", `contracts` to kernel_matches_loop's answer
    (how the numba kernel forms a * b + c); `note` says what was chosen and why (the
    start-up log's line)."""
    if impl not in OPTIMIZER_IMPLS:
        raise ValueError(f"unknown optimizer implementation {impl!r} (known: {', '.join(OPTIMIZER_IMPLS)})")
    have_numba = numba_available()
    if impl == "numba" and not have_numba:
        raise ValueError("the numba optimizer kernels need the numba package: pip install numba, "
                         "or use auto or loop")
    kernels, contracts, notes = {}, {}, []
    for device_type, dtype in sorted(kinds, key=str):
        where = f"{device_type} {str(dtype).replace('torch.', '')}"
        kind = "numba" if device_type == "cpu" and impl != "foreach" else "foreach"
        if kind == "numba":
            missing = ("numba is not installed" if not have_numba
                       else f"{cls.__name__} has no numba kernel" if not cls.has_numba_kernel
                       else f"the numba kernel takes float32 and float64, not {where}"
                       if dtype not in (torch.float32, torch.float64) else None)
            if missing and impl == "numba":
                raise ValueError(f"{missing}; use auto or loop")
            if missing:
                notes.append(f"loop on {where} ({missing})")
                continue
        _load_fused_kernels()
        matched = kernel_matches_loop(cls, kind, device_type, dtype)
        if matched is None:
            if impl != "auto":
                raise ValueError(f"the {kind} optimizer kernels do not reproduce the loop's step bit for bit on "
                                 f"{where} with this torch build; use auto or loop")
            notes.append(f"loop on {where} ({kind} kernels differ from the loop on this torch build)")
            continue
        kernels[(device_type, dtype)], contracts[(device_type, dtype)] = kind, matched
        notes.append(f"{kind} on {where}")
    fused = bool(kernels)
    note = ("fused, checked bit-identical to the loop: " if fused else "") + "; ".join(notes)
    return kernels, contracts, note or "loop (no parameters)"


fused_optim = None          # training.fused_optim, imported when first wanted (numba compiles its kernels)


def _load_fused_kernels() -> None:
    global fused_optim
    if fused_optim is None:
        from training import fused_optim as module
        fused_optim = module


class MTDNNAdamax(_BertStyle):
    """MT-DNN's Adamax (the PLATON default): u <- max(b2 * u, |g| + eps), step m / (u + eps)."""
    second_moment = "exp_inf"
    has_numba_kernel = True

    @staticmethod
    def direction(exp_avg, exp_inf, grad, beta2, eps):
        torch.maximum(exp_inf.mul_(beta2), grad.abs().add_(eps), out=exp_inf)
        return exp_avg / (exp_inf + eps)


class BertAdam(_BertStyle):
    """BERT's Adam (MT-DNN's `adam`): u <- b2 * u + (1 - b2) * g^2, step m / (sqrt(u) + eps)."""
    second_moment = "exp_avg_sq"
    has_numba_kernel = False        # torch's CPU sqrt is not IEEE's (see training.fused_optim): the loop on CPU

    @staticmethod
    def direction(exp_avg, exp_avg_sq, grad, beta2, eps):
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        return exp_avg / (exp_avg_sq.sqrt() + eps)


class _PerTensorClip:
    """Mixin for torch's optimizers: clip each tensor's gradient (`max_grad_norm`) before their step."""

    def __init__(self, params, *, max_grad_norm: float = 0.0, **kwargs):
        super().__init__(params, **kwargs)
        for group in self.param_groups:
            group.setdefault("max_grad_norm", max_grad_norm)

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is not None:
                    clip_per_tensor_(param, group["max_grad_norm"])
        return super().step(closure)


class AdamW(_PerTensorClip, torch.optim.AdamW):
    """torch's AdamW with MT-DNN's per-tensor gradient clip."""


class SGD(_PerTensorClip, torch.optim.SGD):
    """torch's SGD (momentum 0.9, L2 decay added to the gradient) with the per-tensor clip."""


def build_optimizer(name: str, named_parameters, learning_rate: float, weight_decay: float, *,
                    max_grad_norm: float = 0.0, impl: str = "auto") -> torch.optim.Optimizer:
    """The optimizer `name` over MT-DNN's parameter groups (decay on weights only).

    `max_grad_norm` > 0 clips each parameter tensor's gradient to that L2 norm inside the step
    (MT-DNN's --grad_clipping); global clipping over all parameters is the loop's job. `impl` says how
    adamax and adam run their step (choose_kernels; the others are torch's own): the same bits either way,
    and `optimizer_description(optimizer)` says which ran."""
    groups = parameter_groups(named_parameters, weight_decay)
    if name == "adamax":
        return MTDNNAdamax(groups, lr=learning_rate, max_grad_norm=max_grad_norm, impl=impl)
    if name == "adam":
        return BertAdam(groups, lr=learning_rate, max_grad_norm=max_grad_norm, impl=impl)
    if name == "adamw":
        return AdamW(groups, lr=learning_rate, max_grad_norm=max_grad_norm)
    if name == "sgd":
        return SGD(groups, lr=learning_rate, momentum=0.9, max_grad_norm=max_grad_norm)
    raise ValueError(f"unknown optimizer {name!r} (known: {', '.join(OPTIMIZERS)})")


def check_optimizer_impl(name: str, impl: str) -> None:
    """ValueError (one sentence) when optimizer `name` cannot run its step as `impl` on CPU float32 parameters."""
    choose_kernels({"adamax": MTDNNAdamax, "adam": BertAdam}[name], impl, {("cpu", torch.float32)})


def optimizer_description(optimizer) -> str:
    """One line for the start-up log: the optimizer and how its step runs."""
    return f"{type(optimizer).__name__}, step: {getattr(optimizer, 'impl_note', 'torch')}"


class PhaseSchedule:
    """The learning rate of every update t = 1..total_steps, phase by phase (pure: nothing but the phases).

        phase(t)  the last phase with start ≤ t
        lr(t)     phase.learning_rate · lr_multiplier(t − start, total_steps − start + 1, warmup, shape)

    Phases are given in order of their starts, the first at update 1; a phase starting where an earlier one
    does replaces it (a method's phase at update 1 replaces train.py's first), and a phase starting after
    the last update never begins."""

    def __init__(self, total_steps: int, phases: Sequence[LRPhase]):
        if not phases or phases[0].start != 1:
            raise ValueError(f"the first LR phase must start at update 1: {list(phases)[:1]}")
        starts = [phase.start for phase in phases]
        if starts != sorted(starts):
            raise ValueError(f"LR phases must come in order of their first updates: {starts}")
        kept: List[LRPhase] = []
        for phase in phases:
            if phase.start > total_steps:
                continue
            if phase.shape not in WARMUP_SCHEDULES:
                raise ValueError(f"LR phase {phase.name}: unknown shape {phase.shape!r} (known: {WARMUP_SCHEDULES})")
            if kept and kept[-1].start == phase.start:
                kept.pop()
            kept.append(phase)
        self.total_steps, self.phases = total_steps, tuple(kept)

    def phase(self, t: int) -> LRPhase:
        return [phase for phase in self.phases if phase.start <= t][-1]

    def lr(self, t: int) -> float:
        phase = self.phase(t)
        return phase.learning_rate * lr_multiplier(t - phase.start, self.total_steps - phase.start + 1, phase.warmup,
                                                   phase.shape)

    def describe(self) -> list:
        """The phases as JSON lists [name, start, learning_rate, warmup, shape] (what a checkpoint records)."""
        return [list(astuple(phase)) for phase in self.phases]


class PhasedLR(torch.optim.lr_scheduler.LRScheduler):
    """The LR scheduler of a PhaseSchedule: `step()` after each update sets every group's rate for the next
    update, and restarts the optimizer (clears its per-parameter state) when that update begins a later
    phase than the one the state belongs to (`phase_start`). `state_dict()` adds the phases and
    `phase_start`; `load_state_dict` refuses a state of other phases (ValueError) and restarts the
    optimizer if the next update begins a new phase (load the optimizer's state first)."""

    def __init__(self, optimizer: torch.optim.Optimizer, phases: PhaseSchedule):
        self.phases = phases
        self.phase_start = 1            # the first update of the phase the optimizer's state belongs to
        super().__init__(optimizer)

    def get_lr(self) -> list:
        rate = self.phases.lr(self.last_epoch + 1)      # last_epoch: the updates done
        return [rate for _ in self.optimizer.param_groups]

    def step(self, epoch=None) -> None:
        super().step(epoch)
        self._enter_phase()

    def _enter_phase(self) -> None:
        """Before the next update: a fresh optimizer state and that update's rate when it begins a new phase."""
        start = self.phases.phase(self.last_epoch + 1).start
        if start != self.phase_start:
            self.optimizer.state.clear()
            self.phase_start = start
            for group, rate in zip(self.optimizer.param_groups, self.get_lr()):
                group["lr"] = rate
            self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        state = {key: value for key, value in self.__dict__.items() if key not in ("optimizer", "phases")}
        return dict(state, phases=self.phases.describe())

    def load_state_dict(self, state_dict: dict) -> None:
        state = dict(state_dict)
        phases = state.pop("phases", None)
        if phases != self.phases.describe():
            raise ValueError(f"the LR schedule state has phases {phases}, this schedule {self.phases.describe()}")
        self.__dict__.update(state)
        self._enter_phase()


def build_schedule(optimizer, total_steps: int, warmup: float, schedule: str) -> PhasedLR:
    """One phase over the whole run at the optimizer's learning rate (of its first group)."""
    rate = optimizer.param_groups[0]["lr"]
    return PhasedLR(optimizer, PhaseSchedule(total_steps, [LRPhase("training", 1, rate, warmup, schedule)]))
