"""Per-slab kernels of the unstructured pruners: eager PyTorch, or fused by torch.compile.

In eager mode every elementwise operation of a pass is its own sweep over the
slab with its own parallel region; `torch.compile` (inductor: C++/OpenMP on a
CPU, Triton on a GPU) fuses each function below into one loop that reads its
inputs once. On 2 CPU cores that makes PLATON's statistics update about 3x
and the threshold's counting pass about 10x faster (bench/pruner_overhead.py).

    kernels = load("compiled")      # or "eager"
    kernels.platon_close(I, A, U, W, w1, w2)

Both kinds compute the same formulas; they may differ in the last bit of a
`lerp` (the fused loop may contract a multiply-add), which the method
docstrings already allow ("equal to the formulas up to float rounding").
Counts are exact in both. A compiled kernel that cannot be built here (no
C++ compiler, an old torch) falls back to its eager twin with one warning.
Compilation takes tens of seconds the first time in a process; inductor
caches the generated code on disk for later processes.
"""
import warnings

import torch

KINDS = ("eager", "compiled")


def platon_close(sensitivity, average, uncertainty, product, w1, w2):
    """A window closes: Ī ← lerp(Ī, I, w1); U ← lerp(U, |I − Ī|, w2) with the new Ī; I ← |product|."""
    average.lerp_(sensitivity, w1)
    uncertainty.lerp_((sensitivity - average).abs(), w2)
    sensitivity.copy_(product.abs())


def platon_close_without_uncertainty(sensitivity, average, product, w1):
    """A window closes when β2 = 1: Ī ← lerp(Ī, I, w1); I ← |product|."""
    average.lerp_(sensitivity, w1)
    sensitivity.copy_(product.abs())


def platon_running(sensitivity, product, weight):
    """Inside a window: I ← lerp(I, |product|, weight), weight = 1/(j + 1) (a 0-d tensor)."""
    sensitivity.lerp_(product.abs(), weight)


def column_counts(columns, lo, above_lo, hi):
    """Over a (GROUP, C) view of scores: how many are < lo, how many < above_lo, and per column how
    many lie in [above_lo, hi) (bounds are 0-d tensors)."""
    below = (columns < lo).sum(dtype=torch.int64)
    below_candidates = (columns < above_lo).sum(dtype=torch.int64)
    candidates = ((columns >= above_lo) & (columns < hi)).sum(0, dtype=torch.int32)
    return below, below_candidates, candidates


NAMES = ("platon_close", "platon_close_without_uncertainty", "platon_running", "column_counts")


class _Compiled:
    """A torch.compile'd kernel that falls back to the eager function if it cannot be built."""

    def __init__(self, function):
        self.function = function
        self.compiled = torch.compile(function, dynamic=None)
        self.failed = False

    def __call__(self, *args):
        if not self.failed:
            try:
                return self.compiled(*args)
            except Exception as error:   # compilation happens at the first call; nothing ran yet
                self.failed = True
                warnings.warn(f"pruner kernel {self.function.__name__} could not be compiled "
                              f"({type(error).__name__}: {str(error).splitlines()[0][:200] if str(error) else ''}); "
                              "using eager PyTorch")
        return self.function(*args)


class Kernels:
    """The kernels of one kind, as attributes named like the functions above."""

    def __init__(self, kind: str):
        if kind not in KINDS:
            raise ValueError(f"kernels={kind!r} must be one of {KINDS}")
        self.kind = kind
        for name in NAMES:
            function = globals()[name]
            setattr(self, name, _Compiled(function) if kind == "compiled" else function)


_LOADED = {}


def load(kind: str) -> Kernels:
    """The shared `Kernels` of `kind` ("eager" or "compiled"; compiled ones are built at first use)."""
    if kind not in _LOADED:
        _LOADED[kind] = Kernels(kind)
    return _LOADED[kind]
