"""PLATON's statistics update as fused numba loops (pruners.platon.NumbaPlatonUpdate; imported only when numba
is installed and wanted).

One loop per case of the update (pruners.platon, the rule): a window closes, or
the running mean inside a window goes on. Each does every operation of its case
in one sweep over a parameter part, reading each input once. The bits are
torch's: products in float32 as `torch.mul`, and the moving averages as torch's
CPU `lerp` (a + w·(b − a) for w < 0.5, else b − (b − a)·(1 − w)) with the
multiply-add fused where the CPU has FMA, as torch's CPU kernels do
(tests/test_kernels.py checks it on this CPU).

Arguments are 1-D float32 numpy arrays; `uncertainty` and `grad` may be None,
which numba compiles as its own specialisation with the branch removed. Loops
are module-level functions so that numba's on-disk cache finds them again in the
next process.
"""
import numpy as np
from numba import njit, prange

ONE = np.float32(1.0)
ZERO = np.float32(0.0)
EXACT_AS_TORCH = {"contract"}     # fuse a multiply-add where the CPU has FMA, as torch's CPU lerp does


@njit(inline="always", fastmath=EXACT_AS_TORCH)
def lerp(start, end, weight, rest):
    """torch.lerp for float32 (rest = 1 − weight, computed by the caller in float32)."""
    if weight < 0.5:
        return start + weight * (end - start)
    return end - (end - start) * rest


@njit(inline="always")
def importance(weight, grad, i):
    """|p ⊙ g| at i (0 without a gradient)."""
    if grad is None:
        return ZERO
    return abs(weight[i] * grad[i])


@njit(parallel=True, cache=True, fastmath=EXACT_AS_TORCH)
def close_window(sensitivity, average, uncertainty, weight, grad, w1, w2):
    """A window closes: Ī ← lerp(Ī, I, w1); U ← lerp(U, |I − Ī|, w2) with the new Ī (no U: skipped);
    I ← |p ⊙ g|."""
    rest1, rest2 = ONE - w1, ONE - w2
    for i in prange(sensitivity.size):
        old = sensitivity[i]
        new_average = lerp(average[i], old, w1, rest1)
        average[i] = new_average
        if uncertainty is not None:
            uncertainty[i] = lerp(uncertainty[i], abs(old - new_average), w2, rest2)
        sensitivity[i] = importance(weight, grad, i)


@njit(parallel=True, cache=True, fastmath=EXACT_AS_TORCH)
def inside_window(sensitivity, weight, grad, w):
    """Inside a window: I ← lerp(I, |p ⊙ g|, w)."""
    rest = ONE - w
    for i in prange(sensitivity.size):
        sensitivity[i] = lerp(sensitivity[i], importance(weight, grad, i), w, rest)
