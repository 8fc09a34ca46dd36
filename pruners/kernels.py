"""Fused CPU loops for the passes of the unstructured pruners (numba), beside the torch path.

Each pass of a pruner step (PLATON's statistics update, the threshold's
counting pass, the masking pass) is a handful of elementwise operations over
the same entries. In torch each operation is its own sweep with its own
parallel region; on a CPU the operations, not the memory traffic, set the
time. The loops below do all the operations of a pass in one sweep, on the
CPU's cores (numba `prange`), reading every input once:

    platon_close(I, A, U, P, G, w1, w2)     a window closes: Ī ← lerp(Ī, I, w1),
                                            U ← lerp(U, |I − Ī|, w2) (U None: β2 = 1), I ← |P ⊙ G|
    platon_running(I, P, G, w)              inside a window: I ← lerp(I, |P ⊙ G|, w)
    count(factors, lo, above_lo, hi, out)   over the scores ∏ factors: how many are < lo, how
                                            many < above_lo, and the ones in [above_lo, hi)
                                            written to out[:n] (pruners.threshold.BracketCount)
    mask(P, factors, threshold)             P ← 0 where ∏ factors < threshold (strict)

Arguments are flat, contiguous float32 CPU tensors (views into the pruner's
buffers and the parameters; G None: the parameter has no gradient, |P ⊙ G| = 0).
Scores are products of one or two factors (PLATON: Ī ⊙ U, or Ī when β2 = 1;
magnitude: |p|) computed in float32 exactly as `torch.mul` does, so counts and
masks equal the torch path's on the same statistics. The moving averages follow
torch's `lerp` (a + w·(b − a) for w < 0.5, else b − (b − a)·(1 − w)), with the
multiply-add fused where the CPU has FMA, as torch's CPU kernels do: both paths
give bit-identical statistics (tests/test_kernels.py checks it on this CPU).

`load("auto")` gives these kernels when numba is installed and None otherwise
(the pruners then use torch operations); `load("numba")` insists, `load("torch")`
declines. The loops are compiled when first loaded in a process (several
seconds; numba caches them on disk, so later processes load them in about a
second), never inside a pruner step.
"""
from typing import Optional, Sequence, Tuple

import numpy as np
import torch

KINDS = ("auto", "numba", "torch")
BLOCK = 1 << 14          # entries per block of the counting pass (blocks are shared out among threads)


def array(tensor: torch.Tensor) -> np.ndarray:
    """The numpy view of a flat contiguous float32 CPU tensor (no copy)."""
    return tensor.detach().numpy()


def optional(tensor: Optional[torch.Tensor]) -> Optional[np.ndarray]:
    return None if tensor is None else array(tensor)


class NumbaKernels:
    """The loops above behind torch-tensor signatures."""

    name = "numba"

    def __init__(self):
        import numba
        from pruners import numba_loops
        self._numba, self._loops = numba, numba_loops
        self._ones = torch.ones(0)      # the second factor of one-array scores
        self._warm_up()

    def _warm_up(self) -> None:
        """Compile (or load from numba's cache) every loop now, on a few entries, so that no
        pruner step pays for it."""
        values = [torch.linspace(0.1, 0.9, 3) + i for i in range(5)]      # no random draw: training's RNG stays put
        for uncertainty, grad in ((values[2], values[4]), (None, None)):
            self.platon_close(values[0], values[1], uncertainty, values[3], grad, 0.15, 0.05)
            self.platon_running(values[0], values[3], grad, 0.5)
        for factors in (values[:2], values[:1]):
            self.count(factors, torch.tensor(0.2), torch.tensor(0.2), torch.tensor(0.8), torch.empty(3))
            self.mask(values[3], factors, torch.tensor(0.5))

    @staticmethod
    def accepts(tensor: torch.Tensor) -> bool:
        return tensor.device.type == "cpu" and tensor.dtype == torch.float32

    def set_threads(self, threads: int) -> None:
        """Run the loops on `threads` threads (at most numba's pool size)."""
        self._numba.set_num_threads(max(1, min(threads, self._numba.config.NUMBA_NUM_THREADS)))

    def platon_close(self, sensitivity, average, uncertainty, weight, grad, w1: float, w2: float) -> None:
        self._loops.platon_close(array(sensitivity), array(average), optional(uncertainty), array(weight),
                                 optional(grad), np.float32(w1), np.float32(w2))

    def platon_running(self, sensitivity, weight, grad, w: float) -> None:
        self._loops.platon_running(array(sensitivity), array(weight), optional(grad), np.float32(w))

    def count(self, factors: Sequence[torch.Tensor], lo: torch.Tensor, above_lo: torch.Tensor, hi: torch.Tensor,
              out: torch.Tensor) -> Tuple[int, int, int]:
        """(# scores < lo, # scores < above_lo, # candidates in [above_lo, hi) now at out[:#])."""
        below, below_candidates, found = self._loops.count(*self._two(factors), np.float32(lo), np.float32(above_lo),
                                                           np.float32(hi), array(out), BLOCK)
        return int(below), int(below_candidates), int(found)

    def mask(self, weight: torch.Tensor, factors: Sequence[torch.Tensor], threshold: torch.Tensor) -> None:
        self._loops.mask(array(weight), *self._two(factors), np.float32(threshold))

    def _two(self, factors: Sequence[torch.Tensor]) -> Tuple[np.ndarray, np.ndarray]:
        """The two factors of the scores as arrays (a lone factor gets a second of ones)."""
        if len(factors) == 2:
            return array(factors[0]), array(factors[1])
        if self._ones.numel() < factors[0].numel():
            self._ones = torch.ones(factors[0].numel())
        return array(factors[0]), array(self._ones[:factors[0].numel()])


_LOADED: Optional[NumbaKernels] = None


def numba_available() -> bool:
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def load(kind: str) -> Optional[NumbaKernels]:
    """The fused loops for `kind` "numba" (an error without numba), "auto" (None without numba) or
    "torch" (None: the pruners use torch operations)."""
    global _LOADED
    if kind not in KINDS:
        raise ValueError(f"kernels={kind!r} must be one of {KINDS}")
    if kind == "torch" or (kind == "auto" and not numba_available()):
        return None
    if not numba_available():
        raise ValueError("kernels='numba' (--pruner_kernels numba) needs the numba package: pip install numba, "
                         "or use 'auto' or 'torch'")
    if _LOADED is None:
        _LOADED = NumbaKernels()
    return _LOADED
