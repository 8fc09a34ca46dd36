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
run wherever the scores are.
"""
import math
from typing import Callable, Iterable, List, Optional, Sequence

import torch

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


class BracketCount:
    """One pass of the bracketed selection: feed every score chunk to `add`, then ask `kth`.

    Counts the scores below `lo` exactly and keeps copies of those in [lo, hi). With `lo_tied`
    (many scores may equal lo: zeros, a saturated value) the scores equal to lo are counted, not
    kept, and only those in (lo, hi) are candidates; if the k-th smallest is lo itself, counting
    alone finds it.

    Per chunk the full-size work is two comparisons into 0/1 float buffers and two column sums
    (float ops are several times cheaper than boolean masks on a CPU): the chunk is viewed as
    (GROUP, n / GROUP); per column, the number of scores below lo and below hi. Their total
    is the count; columns where they differ hold a candidate (about GROUP × the candidate share
    of the columns), and only those are gathered and filtered. Sums of 0/1 floats are exact."""

    GROUP = 16

    def __init__(self, lo: torch.Tensor, hi: torch.Tensor, lo_tied: bool = False, kernels=None):
        self.lo, self.hi, self.lo_tied = lo, hi, lo_tied
        self.kernels = kernels          # pruners.kernels loops, for chunks given as factors
        self.above_lo = torch.nextafter(lo, hi) if lo_tied else lo    # candidates are in [above_lo, hi)
        self.collects = bool(self.above_lo < hi)
        self._below, self._below_candidates, self._candidates = [], [], []
        self._work = None

    def _buffers(self, numel: int, device: torch.device):
        if self._work is None or self._work.shape[1] < numel or self._work.device != device:
            self._work = torch.empty(2, numel, device=device)
        return self._work[0, :numel], self._work[1, :numel]

    def add(self, scores) -> None:
        """Account for one chunk of scores (any shape; may be reused by the caller afterwards), or of
        the scores that are the product of a tuple of flat factors (counted by one fused loop when
        the counter has kernels that accept them)."""
        if isinstance(scores, tuple):
            if self.kernels is not None and all(self.kernels.accepts(f) for f in scores):
                return self._add_fused(scores)
            scores = product(scores)
        flat = scores.reshape(-1)
        below, under_hi = self._buffers(flat.numel(), flat.device)
        torch.lt(flat, self.lo, out=below)
        if self.lo_tied:
            self._below.append(below.sum(dtype=torch.float64))
            torch.lt(flat, self.above_lo, out=below)      # from here on: below the candidates
        columns = flat.numel() // self.GROUP
        split = columns * self.GROUP

        def by_column(indicator):               # (GROUP, columns) view of the whole columns
            return indicator[:split].view(self.GROUP, columns)

        below_per_column = by_column(below).sum(0)
        count = below_per_column.sum(dtype=torch.float64)
        if split < flat.numel():                # a tail shorter than a column, counted on its own
            count = count + below[split:].sum(dtype=torch.float64)
        (self._below_candidates if self.lo_tied else self._below).append(count)
        if not self.collects:
            return
        torch.lt(flat, self.hi, out=under_hi)
        hit = torch.ne(by_column(under_hi).sum(0), below_per_column).nonzero().squeeze(1)   # with a candidate
        picked = [by_column(flat).index_select(1, hit)] + ([flat[split:]] if split < flat.numel() else [])
        for values in picked:
            self._candidates.append(values[(values >= self.above_lo) & (values < self.hi)].cpu())

    def _add_fused(self, factors) -> None:
        out, _ = self._buffers(factors[0].numel(), factors[0].device)
        below, below_candidates, found = self.kernels.count(factors, self.lo, self.above_lo, self.hi, out)
        self._below.append(below)
        if self.lo_tied:
            self._below_candidates.append(below_candidates)
        if found:
            self._candidates.append(out[:found].clone())

    def kth(self, k: int) -> Optional[torch.Tensor]:
        """The k-th smallest of everything added, or None when it is not in [lo, hi)."""
        below = total_of(self._below)
        below_candidates = total_of(self._below_candidates) if self.lo_tied else below
        if below < k <= below_candidates:       # the k-th smallest equals lo
            return self.lo.clone()
        candidates = torch.cat(self._candidates) if self._candidates else self.lo.new_empty(0)
        if not below_candidates < k <= below_candidates + candidates.numel():
            return None
        return torch.kthvalue(candidates, k - below_candidates).values


def total_of(counts) -> int:
    """The sum of exact per-chunk counts (0-d tensors, possibly on several devices)."""
    return sum(int(count) for count in counts)


def product(factors) -> torch.Tensor:
    """The elementwise product of a tuple of one or two flat factors (a new tensor)."""
    return factors[0].clone() if len(factors) == 1 else torch.mul(*factors)


def kth_smallest(score_chunks: Callable[[], Iterable], k: int, total: int,
                 sample: torch.Tensor, kernels=None) -> torch.Tensor:
    """Exact k-th smallest (1 ≤ k ≤ total) of all scores yielded by `score_chunks()`.

    `score_chunks` is called once (twice in the rare fallback); it may reuse one buffer for every
    chunk, each is consumed before the next is requested. A chunk is a tensor of scores or a tuple
    of flat factors whose product is the scores (see `BracketCount.add`; `kernels` count those).
    `sample` is a few scores drawn from the same set, used only to place the bracket: a poor
    sample costs time, never exactness."""
    if not 1 <= k <= total:
        raise ValueError(f"k={k} must be in [1, {total}] (the number of scores)")
    count = BracketCount(*bracket_from_sample(sample, k, total), kernels=kernels)
    for chunk in score_chunks():
        count.add(chunk)
    found = count.kth(k)
    return found if found is not None else kthvalue_of_chunks(score_chunks, k)


def kthvalue_of_chunks(score_chunks: Callable[[], Iterable[torch.Tensor]], k: int) -> torch.Tensor:
    """The fallback: `torch.kthvalue` over a CPU copy of all scores (4 bytes each, one full selection)."""
    return torch.kthvalue(torch.cat([(product(chunk) if isinstance(chunk, tuple) else chunk).flatten().cpu()
                                     for chunk in score_chunks()]), k).values


def kth_smallest_of(tensors: Sequence[torch.Tensor], k: int, sample_size: int = SAMPLE_SIZE) -> torch.Tensor:
    """`kth_smallest` over a list of score tensors held in memory, with a random sample."""
    total = sum(t.numel() for t in tensors)
    positions = sample_positions([t.numel() for t in tensors], seed=k, sample_size=sample_size)
    sample = torch.cat([t.flatten()[where.to(t.device)] for t, where in zip(tensors, positions)])
    return kth_smallest(lambda: iter(tensors), k, total, sample)
