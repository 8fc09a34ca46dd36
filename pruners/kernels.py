"""The rule-agnostic passes of the unstructured pruners' steps, in torch and numba, and how a rule's own pass is picked.

A pruner step is a few passes over the selected entries, slab by slab
(pruners.layout): the scoring rule's statistics update (written by the rule, in
its own file: pruners.platon, pruners.movement), then the threshold's counting
pass and the masking pass, which are the same whatever the rule. Those shared
passes are the methods of a kernels object, with the same arguments in both
implementations, and work on one slab:

    scores(factors, out)                    the scores ∏ factors (in `out`, or the lone factor itself)
    count(factors, lo, above_lo, hi, out)   over the scores ∏ factors: how many are < lo, how
                                            many < above_lo, and a copy of the ones in
                                            [above_lo, hi) (pruners.threshold.BracketCount)
    mask(P, factors, threshold)             P ← 0 where ∏ factors < threshold (strict) or NaN

The factors and `out` are flat float32 tensors over the slab (its part of the
pruner's buffers); P is the list of the slab's parameter parts, in slab order,
tiling it (pruners.layout: FlatLayout.weights; a part is a flat view, or a
whole non-contiguous parameter in its own shape: `split` cuts a slab-sized flat
tensor the same way). Scores are products of one or two factors (PLATON: Ī ⊙ U,
or Ī when β2 = 1; magnitude: |p|; movement: S).

`TorchKernels` runs each pass as torch operations, on any device, dtype and
layout (a non-contiguous parameter included). `NumbaKernels` runs them as fused
CPU loops (pruners.numba_loops): in torch each operation is its own sweep with
its own parallel region, and on a CPU the operations, not the memory traffic,
set the time; a fused loop does all the operations of a pass in one sweep,
reading every input once and never writing the scores out. It takes flat
contiguous float32 CPU tensors only. Both give the same bits (the counts, the
candidates, the masked weights): products are computed in float32 exactly as
`torch.mul` does (tests/test_kernels.py).

Choosing. `load(kind, parameters)` gives a pruner's kernels: "torch" the torch
ones; "numba" the fused loops (refused without numba, or when a parameter is
not a CPU float32 tensor); "auto", the default, the fused loops when numba is
installed and every parameter fits, else torch's. `per_slab(kernels, slabs)`
then gives each slab its kernels, once, when the pruner is built: the fused
loops take flat views only, so a slab holding a non-contiguous parameter (a
"whole" piece) runs on torch operations either way. A scoring rule registers
its own pass per kind of kernels ({kernels name: class}, torch's required:
pruners.platon.UPDATES) and `pick_variants(variants, slab_kernels)` gives each
slab the variant named like its kernels, also once, when the pruner is built.
Loops are compiled when first loaded in a process (several seconds; numba
caches them on disk, so later processes load them in about a second), never
inside a pruner step.

Threads. The passes gain little from many threads, and on a CPU shared with
other processes each parallel region can wait for a descheduled thread
(OpenMP threads spin at barriers). A pruner's `num_threads` runs its step
inside `torch_threads(num_threads)` (that many intra-op threads, torch's
setting restored after) and the kernels follow with `set_threads` (numba's
loops, the rules' included, take the same number). On the 2-core machine of
bench/pruner_overhead.py, busy with other jobs, one thread made the pruner
about 3× faster than the 2 threads training used.
"""
import importlib
from contextlib import contextmanager
from typing import Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch

from pruners.schedule import PrunerSettingError, literal

KINDS = ("auto", "numba", "torch")
BLOCK = 1 << 14          # entries per block of the numba counting pass (blocks are shared out among threads)
GROUP = 16               # rows of the torch counting pass's (GROUP, n / GROUP) view


@contextmanager
def torch_threads(num_threads: Optional[int]):
    """Run the body with `num_threads` intra-op threads (None: leave torch's setting alone)."""
    if num_threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def split(flat: torch.Tensor, parts: Sequence[torch.Tensor]) -> Iterator[torch.Tensor]:
    """The consecutive pieces of the flat `flat` that match `parts` (a slab's parameter parts), each
    shaped like its part."""
    start = 0
    for part in parts:
        stop = start + part.numel()
        here = flat[start:stop]
        yield here if part.dim() == 1 else here.view(part.shape)
        start = stop


class Kernels:
    """The rule-agnostic passes of a pruner step (see the module docstring); `scores` is one torch
    operation, which no loop would make faster, and is shared."""

    name = "kernels"
    flat_views_only = False     # True: takes flat contiguous tensors only (no whole piece)

    @staticmethod
    def accepts(tensor: torch.Tensor) -> bool:
        """Whether the passes run over entries of `tensor` (its device and dtype)."""
        return True

    def set_threads(self, threads: int) -> None:
        """Run the passes on `threads` threads (torch's own setting needs nothing more)."""

    def scores(self, factors: Sequence[torch.Tensor], out: torch.Tensor) -> torch.Tensor:
        """The scores ∏ factors: the product in `out`, or the lone factor itself (read only)."""
        return factors[0] if len(factors) == 1 else torch.mul(factors[0], factors[1], out=out)

    def count(self, factors: Sequence[torch.Tensor], lo: float, above_lo: float, hi: float,
              out: torch.Tensor) -> Tuple[int, int, int]:
        """(# scores < lo, # scores < above_lo, a new 1-D tensor of the scores in [above_lo, hi), in
        order); `out`, as large as the factors, is work space. The bounds are Python floats (0-d
        tensors work too, a little slower)."""
        raise NotImplementedError

    def mask(self, weights: Sequence[torch.Tensor], factors: Sequence[torch.Tensor], threshold: torch.Tensor) -> None:
        raise NotImplementedError


class TorchKernels(Kernels):
    """The passes as torch operations, on any device, dtype and layout (parameters narrower than
    float32 are compared by float32 scores). Owns two scratch buffers per device, as large as the
    largest call (a slab), allocated once."""

    name = "torch"

    def __init__(self):
        self._scratch: Dict[torch.device, Tuple[torch.Tensor, torch.Tensor]] = {}

    def scratch(self, like: torch.Tensor, row: int) -> torch.Tensor:
        """Scratch buffer `row` (0 or 1) shaped like `like`, on its device (float32)."""
        numel = like.numel()
        rows = self._scratch.get(like.device)
        if rows is None or rows[0].numel() < numel:
            rows = self._scratch[like.device] = tuple(torch.empty(2, numel, device=like.device))
        here = rows[row][:numel]
        return here if like.dim() == 1 else here.view(like.shape)

    def scratch_pair(self, flat: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Both scratch buffers, flat, as long as `flat`."""
        return self.scratch(flat, 0), self._scratch[flat.device][1][:flat.numel()]

    def count(self, factors, lo, above_lo, hi, out):
        """Two comparisons into 0/1 float buffers and two column sums per call (float ops are several
        times cheaper than boolean masks on a CPU): the scores are viewed as (GROUP, n / GROUP); per
        column, the number below above_lo and below hi. Columns where they differ hold a candidate
        (about GROUP × the candidate share of the columns), and only those are gathered and
        filtered. Sums of 0/1 floats are exact."""
        flat = self.scores(factors, out).reshape(-1)
        indicator, under_hi = self.scratch_pair(flat)
        torch.lt(flat, lo, out=indicator)
        tied = bool(above_lo != lo)             # Python floats: no tensor operation
        below = int(indicator.sum(dtype=torch.float64)) if tied else None
        if tied:
            torch.lt(flat, above_lo, out=indicator)       # from here on: below the candidates
        columns = flat.numel() // GROUP
        split = columns * GROUP

        def by_column(values):                  # (GROUP, columns) view of the whole columns
            return values[:split].view(GROUP, columns)

        below_per_column = by_column(indicator).sum(0)
        below_candidates = below_per_column.sum(dtype=torch.float64)
        if split < flat.numel():                # a tail shorter than a column, counted on its own
            below_candidates = below_candidates + indicator[split:].sum(dtype=torch.float64)
        below_candidates = int(below_candidates)
        below = below_candidates if below is None else below
        if not bool(above_lo < hi):
            return below, below_candidates, flat.new_empty(0)
        torch.lt(flat, hi, out=under_hi)
        hit = torch.ne(by_column(under_hi).sum(0), below_per_column).nonzero().squeeze(1)   # with a candidate
        picked = [by_column(flat).index_select(1, hit)] + ([flat[split:]] if split < flat.numel() else [])
        found = [values[(values >= above_lo) & (values < hi)] for values in picked]    # new tensors, in order
        return below, below_candidates, found[0] if len(found) == 1 else torch.cat(found)

    def mask(self, weights, factors, threshold) -> None:
        out = self.scratch(factors[0], 0)
        keep = torch.ge(self.scores(factors, out=out), threshold, out=out)   # in place where the scores are in out
        for here, weight in zip(split(keep, weights), weights):
            weight.mul_(here)       # × 0.0 zeroes (−0.0 is == 0 too); NaN scores are not ≥ τ


def array(tensor: torch.Tensor) -> np.ndarray:
    """The numpy view of a flat contiguous float32 CPU tensor (no copy)."""
    return tensor.detach().numpy()


def optional(tensor: Optional[torch.Tensor]) -> Optional[np.ndarray]:
    """The array of a gradient's piece (made contiguous if it is laid out otherwise), or None."""
    return None if tensor is None else array(tensor.contiguous())


class NumbaKernels(Kernels):
    """The passes as fused CPU loops (pruners.numba_loops) behind torch-tensor signatures; flat
    contiguous float32 CPU tensors only."""

    name = "numba"
    flat_views_only = True

    def __init__(self):
        import numba
        from pruners import numba_loops
        self._numba, self._loops = numba, numba_loops
        self._ones = torch.ones(0)      # the second factor of one-array scores
        self._warm_up()

    def _warm_up(self) -> None:
        """Compile (or load from numba's cache) every loop now, on a few entries, so that no
        pruner step pays for it."""
        values = [torch.linspace(0.1, 0.9, 3) + i for i in range(4)]      # no random draw: training's RNG stays put
        for factors in (values[:2], values[:1]):
            self.count(factors, torch.tensor(0.2), torch.tensor(0.2), torch.tensor(0.8), torch.empty(3))
            self.mask([values[3]], factors, torch.tensor(0.5))

    @staticmethod
    def accepts(tensor: torch.Tensor) -> bool:
        return tensor.device.type == "cpu" and tensor.dtype == torch.float32

    def set_threads(self, threads: int) -> None:
        """Run the loops on `threads` threads (at most numba's pool size)."""
        self._numba.set_num_threads(max(1, min(threads, self._numba.config.NUMBA_NUM_THREADS)))

    def count(self, factors, lo, above_lo, hi, out):
        below, below_candidates, found = self._loops.count(*self._two(factors), np.float32(lo), np.float32(above_lo),
                                                           np.float32(hi), array(out), BLOCK)
        return int(below), int(below_candidates), out[:found].clone()

    def mask(self, weights, factors, threshold) -> None:
        threshold = np.float32(threshold)
        first, second = self._two(factors)
        start = 0
        for weight in weights:
            stop = start + weight.numel()
            self._loops.mask(array(weight), first[start:stop], second[start:stop], threshold)
            start = stop

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
        importlib.import_module("numba")
    except ImportError:
        return False
    return True


def load(kind: str, parameters: Sequence[Tuple[str, torch.Tensor]] = ()) -> Kernels:
    """The kernels for `kind` over the named `parameters`: "torch" (TorchKernels), "numba" (the fused
    loops; refused without numba or when a parameter is not a CPU float32 tensor) or "auto" (the
    fused loops when numba is installed and every parameter fits, else torch's)."""
    global _LOADED
    if kind not in KINDS:
        raise PrunerSettingError(f"{{kernels}}={literal(repr(kind))} is invalid: it must be one of {KINDS}", "kernels")
    if kind == "torch" or (kind == "auto" and not numba_available()):
        return TorchKernels()
    if not numba_available():
        raise PrunerSettingError("{kernels}='numba' needs the numba package: pip install numba, "
                                 "or use {kernels}='auto' or 'torch'", "kernels")
    unfit = [(name, param) for name, param in parameters if not NumbaKernels.accepts(param)]
    if unfit and kind == "numba":
        name, param = unfit[0]
        raise PrunerSettingError(f"{{kernels}}='numba' runs on CPU float32 parameters only; {literal(name)} is "
                                 f"{param.dtype} on {param.device}; use {{kernels}}='auto' or 'torch'", "kernels")
    if unfit:
        return TorchKernels()
    if _LOADED is None:
        _LOADED = NumbaKernels()
    return _LOADED


def per_slab(kernels: Kernels, slabs) -> List[Kernels]:
    """The kernels of each slab (pruners.layout.Slab): `kernels`, or torch's for a slab holding a
    whole piece (a non-contiguous parameter) where `kernels` take flat views only."""
    fallback = None
    chosen = []
    for slab in slabs:
        if kernels.flat_views_only and not slab.is_flat:
            fallback = fallback or TorchKernels()
            chosen.append(fallback)
        else:
            chosen.append(kernels)
    return chosen


_VARIANTS: Dict[type, object] = {}      # the rules' variants built so far in this process, by class


def pick_variants(variants: Mapping[str, type], slab_kernels: Sequence[Kernels]) -> list:
    """Each slab's variant of a scoring rule's own pass: `variants` maps a kernels name to the class
    of the pass written for them ("torch" required, the fallback); a slab gets the one named like its
    kernels. Each class is built once per process, here, when the pruner is built: a numba variant
    compiles (or loads) its loops then, never inside a pruner step."""
    chosen = []
    for kernels in slab_kernels:
        variant = variants.get(kernels.name, variants["torch"])
        if variant not in _VARIANTS:
            _VARIANTS[variant] = variant()
        chosen.append(_VARIANTS[variant])
    return chosen
