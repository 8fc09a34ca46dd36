"""Exact k-th smallest of many score tensors, without sorting or selecting over all of them.

The masking threshold of unstructured pruning (docs/METHODS.md §1) is the k-th
smallest (1-based) of the scores of all selected weights pooled together, N of
them (85 M for BERT-base). `torch.kthvalue` over the concatenation is exact but
costs a 4·N-byte copy and a full selection (seconds on a CPU) at every masking.

Floyd–Rivest style selection instead:
1. from a small random sample (m scores) take two sample order statistics
   lo ≤ hi around the sample rank k·m/N, z standard deviations apart
   (the rank of τ in the sample is binomial, sd = √(m·p·(1−p)), p = k/N);
2. one streaming pass over the scores, chunk by chunk: count the scores below
   lo exactly (`below`) and keep the few in [lo, hi) (`candidates`);
3. if below < k ≤ below + len(candidates), the k-th smallest of the whole set
   is the (k − below)-th smallest candidate: `torch.kthvalue` on the small
   set. Ties, zeros and repeated values need no special care: the counts are
   exact, so the answer is exact whatever the sample looked like.
4. otherwise (the sample misled us, probability ~1e-4 for z = 4, or NaN/inf
   scores), fall back to `torch.kthvalue` over everything.
A tie mass at lo (the sample holds lo more than once, e.g. a majority of
zeros) is counted, not collected, so the candidates stay few; a bracket one
value wide is resolved by counting alone.

`kth_smallest(...)` returns exactly `torch.kthvalue(torch.cat([c.flatten() for c
in chunks]), k).values` (a 0-d CPU tensor), including ties, zeros, k = 1 and k = N.
The bracket, counts and candidates live on the CPU; the passes over the scores
run wherever the scores are, by the kernels given with each chunk
(pruners.kernels `count`; torch operations for plain tensors).
"""
import math
from typing import Callable, Iterable, List, Optional, Sequence, Tuple

import torch

from pruners.kernels import Kernels, TorchKernels

SAMPLE_SIZE = 1 << 17      # sample scores drawn to place the bracket
BRACKET_SIGMAS = 4.0       # half-width of the bracket, in binomial standard deviations of the sample rank


def sample_positions(numels: Sequence[int], seed: int, sample_size: int = SAMPLE_SIZE) -> List[torch.Tensor]:
    """Random flat positions into tensors of the given sizes, about `sample_size` in all, in
    proportion to their sizes (at least one each): one uniformly random position in each of
    c equal strata of a tensor, so the positions increase (memory is read in order) while no
    lattice of columns is favoured (a plain stride sharing a factor with the row length samples
    only some columns, whose scores can differ systematically). Drawn from a private generator:
    the global RNG, and so training, is untouched."""
    total = sum(numels)
    generator = torch.Generator().manual_seed(seed)
    positions = []
    for numel in numels:
        count = max(1, round(numel * sample_size / total))
        strata = torch.arange(count, dtype=torch.float64) + torch.rand(count, dtype=torch.float64, generator=generator)
        positions.append((strata * (numel / count)).long().clamp_(max=numel - 1))
    return positions


def bracket_from_sample(sample: torch.Tensor, k: int, total: int, sigmas: float = BRACKET_SIGMAS):
    """(lo, hi, lo_tied): 0-d CPU tensors lo ≤ hi of the sample's dtype such that the k-th smallest of
    the full set of `total` scores lies in [lo, hi) with high probability (lo = −inf or hi = +inf
    at the ends), and whether the sample holds lo more than once (a tie mass at lo, e.g. zeros,
    which the search then counts instead of collecting)."""
    values = sample.flatten().cpu()
    m = values.numel()
    share = k / total
    spread = sigmas * math.sqrt(m * share * (1 - share)) + 1
    low_rank, high_rank = math.floor(share * m - spread) - 1, math.ceil(share * m + spread)

    def at_rank(rank):      # the sample's order statistic (0-based): a selection, cheaper than a sort
        return torch.kthvalue(values, rank + 1).values

    minus_inf = torch.full((), -math.inf, dtype=values.dtype)
    plus_inf = torch.full((), math.inf, dtype=values.dtype)
    lo = at_rank(low_rank) if low_rank >= 0 else minus_inf
    hi = at_rank(high_rank) if high_rank < m else plus_inf
    lo_tied = bool(lo == hi) or (0 <= low_rank and low_rank + 1 < m and bool(at_rank(low_rank + 1) == lo))
    if bool(lo == hi):   # the bracket holds one value: [v, next float after v)
        hi = torch.nextafter(hi, plus_inf)
    return lo, hi, lo_tied


def factors_of(chunk) -> Tuple[Tuple[torch.Tensor, ...], Kernels]:
    """(factors, kernels) of a chunk: a tensor of scores (any shape; counted by torch operations), or
    a pair (a tuple of one or two flat factors whose product is the scores, the kernels that count them)."""
    if isinstance(chunk, torch.Tensor):
        return (chunk.reshape(-1),), None
    factors, kernels = chunk
    return tuple(factors), kernels


class BracketCount:
    """One pass of the bracketed selection: feed every chunk of scores to `add`, then ask `kth`.

    Counts the scores below `lo` exactly and keeps copies of those in [lo, hi). With `lo_tied`
    (many scores may equal lo: zeros, a saturated value) the scores equal to lo are counted, not
    kept, and only those in (lo, hi) are candidates; if the k-th smallest is lo itself, counting
    alone finds it. Each chunk is counted by its kernels' `count` (pruners.kernels: torch
    operations or a fused loop, the same counts and candidates)."""

    def __init__(self, lo: torch.Tensor, hi: torch.Tensor, lo_tied: bool = False):
        self.lo, self.hi, self.lo_tied = lo, hi, lo_tied
        self.above_lo = torch.nextafter(lo, hi) if lo_tied else lo    # candidates are in [above_lo, hi)
        self.collects = bool(self.above_lo < hi)
        self._bounds = float(lo), float(self.above_lo), float(hi)     # for the kernels, converted once
        self._below, self._below_candidates, self._candidates = [], [], []
        self._out = None
        self._torch_kernels = None      # for chunks given as plain tensors

    def _buffer(self, numel: int, device: torch.device) -> torch.Tensor:
        if self._out is None or self._out.numel() < numel or self._out.device != device:
            self._out = torch.empty(numel, device=device)
        return self._out[:numel]

    def add(self, chunk) -> None:
        """Account for one chunk (see `factors_of`; the caller may reuse its memory afterwards)."""
        factors, kernels = factors_of(chunk)
        if kernels is None:
            kernels = self._torch_kernels = self._torch_kernels or TorchKernels()
        out = self._buffer(factors[0].numel(), factors[0].device)
        below, below_candidates, candidates = kernels.count(factors, *self._bounds, out)
        self._below.append(below)
        if self.lo_tied:
            self._below_candidates.append(below_candidates)
        if candidates.numel():
            self._candidates.append(candidates.cpu())

    def kth(self, k: int) -> Optional[torch.Tensor]:
        """The k-th smallest of everything added, or None when it is not in [lo, hi)."""
        below = sum(self._below)
        below_candidates = sum(self._below_candidates) if self.lo_tied else below
        if below < k <= below_candidates:       # the k-th smallest equals lo
            return self.lo.clone()
        candidates = torch.cat(self._candidates) if self._candidates else self.lo.new_empty(0)
        if not below_candidates < k <= below_candidates + candidates.numel():
            return None
        return torch.kthvalue(candidates, k - below_candidates).values


def kth_smallest(score_chunks: Callable[[], Iterable], k: int, total: int, sample: torch.Tensor) -> torch.Tensor:
    """Exact k-th smallest (1 ≤ k ≤ total) of all scores yielded by `score_chunks()`.

    `score_chunks` is called once (twice in the rare fallback); it may reuse one buffer for every
    chunk, each is consumed before the next is requested. A chunk is a tensor of scores or a pair
    (factors, kernels) (see `factors_of`). `sample` is a few scores drawn from the same set, used
    only to place the bracket: a poor sample costs time, never exactness."""
    if not 1 <= k <= total:
        raise ValueError(f"k={k} must be in [1, {total}] (the number of scores)")
    count = BracketCount(*bracket_from_sample(sample, k, total))
    for chunk in score_chunks():
        count.add(chunk)
    found = count.kth(k)
    return found if found is not None else kthvalue_of_chunks(score_chunks, k)


def kthvalue_of_chunks(score_chunks: Callable[[], Iterable], k: int) -> torch.Tensor:
    """The fallback: `torch.kthvalue` over a CPU copy of all scores (4 bytes each, one full selection)."""
    copies = []
    for chunk in score_chunks():
        factors, _ = factors_of(chunk)
        scores = factors[0] if len(factors) == 1 else torch.mul(*factors)
        copies.append(scores.to("cpu", copy=True))
    return torch.kthvalue(torch.cat(copies), k).values


def kth_smallest_of(tensors: Sequence[torch.Tensor], k: int, sample_size: int = SAMPLE_SIZE) -> torch.Tensor:
    """`kth_smallest` over a list of score tensors held in memory, with a random sample."""
    total = sum(t.numel() for t in tensors)
    positions = sample_positions([t.numel() for t in tensors], seed=k, sample_size=sample_size)
    sample = torch.cat([t.flatten()[where.to(t.device)] for t, where in zip(tensors, positions)])
    return kth_smallest(lambda: iter(tensors), k, total, sample)
