"""Fused steps of MT-DNN's Adamax and BERT's Adam (training.optim): the same arithmetic as the per-tensor loop,
in one pass over each parameter (numba, CPU; Adamax only) or in a few multi-tensor ops over all of them
(torch._foreach_*; both).

The loop (training.optim._BertStyle.update_one) runs about 30 torch ops per parameter tensor, each its own sweep
over memory with parameter-sized temporaries; the numba kernel reads w, g, m, u once and writes them once. The
result is bit for bit the loop's because every operation is rounded the way the loop's torch op rounds it:

- scalars are cast to the tensor's dtype as torch casts a Python scalar (1 - b1 is formed in double first);
- `a.add_(b, alpha=s)` is a fused multiply-add in torch's CPU kernels (ATen's `vec::fmadd`, and the scalar
  tail compiled with contraction on): the kernel calls LLVM's fma intrinsic for exactly those operations and
  keeps every other product and sum separate (numba's fastmath stays off, so LLVM contracts nothing itself);
- torch.maximum propagates NaN, and the weight decay is added only when it is > 0 (0 * w is not a no-op for
  w = inf, NaN or -0.0);
- per-tensor clipping takes each tensor's coefficient from torch (its norm reduction's order is torch's own),
  computed with the ops clip_grad_norm_ uses, and multiplies the gradient by it inside the kernel.

BERT's Adam has no numba kernel: torch's vectorised CPU sqrt is not correctly rounded (here it is 1 ulp off IEEE
sqrt on about 20 % of random float32 entries and 1.4 % of float64 ones), so no kernel with its own sqrt can give
the loop's bits.

Whether this torch build rounds that way is not assumed: training.optim checks the kernels against the loop on
a probe before using them (`contract` picks the multiply-add form; a torch built without FMA fails the check
with contraction and passes it without). The kernels run on one thread: the work is one sweep over memory, and
on a shared CPU a second thread costs more than it gains (see pruners.kernels).

Loops are module-level functions so numba's on-disk cache finds them in the next process; without numba they
are None, and training.optim uses them only when pruners.kernels.numba_available() says numba is there.
"""
import numpy as np
import torch

try:
    from numba import njit
    from numba.extending import intrinsic
except ImportError:             # the foreach path and the clip coefficients work without numba
    njit = intrinsic = None


def _jit(**options):
    """numba's njit(**options), or, without numba, a decorator that leaves None in the function's place."""
    return njit(**options) if njit is not None else (lambda function: None)


@(intrinsic if intrinsic is not None else _jit())
def fma(typingctx, a, b, c):
    """a * b + c rounded once (LLVM's llvm.fma): what ATen's vec::fmadd computes."""
    def codegen(context, builder, signature, args):
        return builder.fma(*args)
    return a(a, b, c), codegen


@_jit(cache=True, inline="always")
def _multiply_add(a, b, c, contract):
    return fma(a, b, c) if contract else a * b + c


@_jit(cache=True)
def adamax_kernel(w, g, m, u, scale, rescale, beta1, one_minus_beta1, beta2, eps, weight_decay, decay, neg_lr,
                  contract):
    """One MTDNNAdamax update of one tensor (flat arrays of one dtype; scalars of that dtype):
    g *= scale (when rescale); m = b1 m + (1 - b1) g; u = max(b2 u, |g| + eps); w -= lr (m / (u + eps) + wd w)."""
    for i in range(w.size):
        grad = g[i]
        if rescale:
            grad = grad * scale
            g[i] = grad
        avg = _multiply_add(grad, one_minus_beta1, m[i] * beta1, contract)
        m[i] = avg
        decayed = u[i] * beta2
        floor = abs(grad) + eps
        inf = decayed if (decayed > floor or decayed != decayed) else floor     # torch.maximum: NaN wins
        u[i] = inf
        update = avg / (inf + eps)
        if decay:
            update = _multiply_add(w[i], weight_decay, update, contract)
        w[i] = _multiply_add(update, neg_lr, w[i], contract)


def flat(tensor: torch.Tensor) -> np.ndarray:
    """The tensor's memory as a 1-D numpy array, never a copy (view(-1) refuses a tensor that is not contiguous:
    the kernel's writes must land in the tensor)."""
    return tensor.detach().view(-1).numpy()


def numba_adamax_update(params, grads, exp_avgs, exp_infs, scales, *, beta1: float, beta2: float, eps: float,
                        weight_decay: float, lr: float, contract: bool) -> None:
    """adamax_kernel over each (param, grad, exp_avg, exp_inf) of one group; `scales` the per-tensor clip
    coefficients (None: no clipping). All tensors contiguous CPU tensors of one float dtype per parameter."""
    for index, (param, grad, exp_avg, exp_inf) in enumerate(zip(params, grads, exp_avgs, exp_infs)):
        cast = np.float32 if param.dtype == torch.float32 else np.float64
        adamax_kernel(flat(param), flat(grad), flat(exp_avg), flat(exp_inf),
                      cast(1.0 if scales is None else scales[index]), scales is not None,
                      cast(beta1), cast(1 - beta1), cast(beta2), cast(eps), cast(weight_decay), weight_decay > 0,
                      cast(-lr), contract)


def foreach_update(second_moment: str, params, grads, exp_avgs, seconds, scales, *, beta1: float, beta2: float,
                   eps: float, weight_decay: float, lr: float) -> None:
    """The loop's ops, each over all tensors of one group at once (torch._foreach_*; one device and dtype).
    `scales`: per-tensor clip coefficients as 0-d tensors (None: no clipping)."""
    if scales is not None:
        torch._foreach_mul_(grads, scales)
    torch._foreach_mul_(exp_avgs, beta1)
    torch._foreach_add_(exp_avgs, grads, alpha=1 - beta1)
    if second_moment == "exp_inf":
        torch._foreach_mul_(seconds, beta2)
        floors = torch._foreach_abs(grads)
        torch._foreach_add_(floors, eps)
        torch._foreach_maximum_(seconds, floors)
        denominators = torch._foreach_add(seconds, eps)
    else:
        torch._foreach_mul_(seconds, beta2)
        torch._foreach_addcmul_(seconds, grads, grads, value=1 - beta2)
        denominators = torch._foreach_sqrt(seconds)
        torch._foreach_add_(denominators, eps)
    updates = torch._foreach_div(exp_avgs, denominators)
    if weight_decay > 0:
        torch._foreach_add_(updates, params, alpha=weight_decay)
    torch._foreach_add_(params, updates, alpha=-lr)


def clip_coefficients(grads, max_grad_norm: float) -> torch.Tensor:
    """min(1, max_grad_norm / (||g|| + 1e-6)) of each gradient, as clip_grad_norm_([param]) forms it one tensor
    at a time (a norm per tensor, the norm of that one-entry vector, the same scalar ops), for all at once."""
    norms = torch._foreach_norm(grads, 2.0)
    totals = torch.linalg.vector_norm(torch.stack(norms).unsqueeze(1), 2.0, dim=1)
    return torch.clamp(max_grad_norm / (totals + 1e-6), max=1.0)
