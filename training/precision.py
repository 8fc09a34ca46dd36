"""Mixed precision for train.py: `--precision fp32|bf16|fp16`.

    fp32   no autocast (the default; what every published recipe of the toolkit ran with)
    bf16   the forward pass and the loss under torch.autocast(bfloat16); weights, gradients, the
           optimizer's state and the pruners' statistics stay fp32 (autocast casts per operation, the
           parameters are never converted)
    auto   bf16 where the device multiplies bf16 natively (a CPU with AVX-512 BF16 or AMX, a CUDA GPU that
           supports bf16), fp32 elsewhere (an AVX2-only CPU emulates bf16 and would run slower); resolved at
           start-up (resolve_precision) and recorded in config.json as what ran, so a resume repeats it
    fp16   the same in float16, with dynamic loss scaling: the loss is multiplied by a scale before
           backward; before clipping, every gradient (the model's and the tensors a method trains itself,
           movement's scores) is divided by it and checked. An update whose gradients overflowed is
           skipped: no optimizer step, gradients dropped, so the pruners' step of that update sees none and
           adds nothing (as for a skipped non-finite loss); the scale is halved. After 2000 updates
           without overflow it doubles (torch.amp.GradScaler's defaults: 2^16, 0.5, 2, 2000). GPP's
           indicator gradients are divided by the same scale as they are summed (pruners.gpp).

The scale and its count of good updates live in the loop state, so a checkpoint resumes them exactly.
"""
import contextlib

import torch

PRECISIONS = ("fp32", "bf16", "fp16")
CHOICES = (*PRECISIONS, "auto")
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
INITIAL_SCALE, BACKOFF, GROWTH, GROWTH_INTERVAL = 2.0 ** 16, 0.5, 2.0, 2000


def native_bf16(device: torch.device) -> bool:
    """Whether `device` multiplies bf16 matrices in hardware (not by emulation)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        checks = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
        return any(check() for check in checks if check is not None)
    return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """--precision as it runs: `auto` becomes bf16 where native_bf16(device), fp32 elsewhere."""
    if precision != "auto":
        return precision
    return "bf16" if native_bf16(device) else "fp32"


class Precision:
    """The autocast context and the loss scaling of one run (module docstring)."""

    def __init__(self, precision: str, device: torch.device):
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        self.precision, self.device = precision, device
        self.scaling = precision == "fp16"
        self.current_scale = 1.0           # the scale of the last backward pass (what GPP divides its sums by)

    def autocast(self):
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=DTYPES[self.precision])

    def scale(self, state) -> float:
        """The factor the loss is multiplied by before backward (1 unless fp16)."""
        if not self.scaling:
            return 1.0
        if state.loss_scale is None:
            state.loss_scale = INITIAL_SCALE
        self.current_scale = state.loss_scale
        return state.loss_scale

    @torch.no_grad()
    def unscale(self, state, tensors) -> bool:
        """Divide the gradients of `tensors` by the loss scale; whether they are all finite (always True
        without scaling)."""
        if not self.scaling:
            return True
        inverse = 1.0 / self.scale(state)
        finite = True
        for tensor in tensors:
            if tensor.grad is not None:
                tensor.grad.mul_(inverse)
                finite = finite and bool(torch.isfinite(tensor.grad).all())
        return finite

    def update(self, state, finite: bool) -> None:
        """Back off after an overflow, grow after GROWTH_INTERVAL good updates."""
        if not self.scaling:
            return
        if not finite:
            state.loss_scale = max(self.scale(state) * BACKOFF, 2.0 ** -24)
            state.loss_scale_good_updates = 0
            return
        state.loss_scale_good_updates += 1
        if state.loss_scale_good_updates >= GROWTH_INTERVAL:
            state.loss_scale = min(self.scale(state) * GROWTH, 2.0 ** 24)
            state.loss_scale_good_updates = 0

    def describe(self, state) -> str:
        if self.precision == "fp32":
            return "fp32"
        text = f"{self.precision} autocast on {self.device.type} (weights, optimizer and pruner state in fp32)"
        return text + (f"; dynamic loss scale {self.scale(state):g}" if self.scaling else "")
