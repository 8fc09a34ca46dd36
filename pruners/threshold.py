"""Exact k-th smallest of many score tensors, without sorting or selecting over all of them.

The masking threshold of unstructured pruning (ALGORITHMS.md §1.6) is the k-th
smallest (1-based) of the scores of all selected weights pooled together, N of
them (85 M for BERT-base). `torch.kthvalue` over the concatenation is exact but
costs a 4·N-byte copy and a full selection (seconds on a CPU) at every masking.

Floyd–Rivest style selection instead:
1. from a small strided sample (m scores) take two sample order statistics
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
A bracket that is one value wide (a tie mass in the sample) is resolved by
counting alone: the k-th smallest is that value.

`kth_smallest(...)` returns exactly `torch.kthvalue(torch.cat([c.flatten() for c
in chunks]), k).values` (a 0-d tensor), including ties, zeros, k = 1 and k = N.
"""
import math
from typing import Callable, Iterable, Optional, Sequence

import torch

SAMPLE_SIZE = 1 << 17      # sample scores drawn to place the bracket
BRACKET_SIGMAS = 4.0       # half-width of the bracket, in binomial standard deviations of the sample rank


def sample_stride(total: int, sample_size: int = SAMPLE_SIZE) -> int:
    """Every how many scores one is sampled so that about `sample_size` are drawn."""
    return max(1, total // sample_size)


def bracket_from_sample(sample: torch.Tensor, k: int, total: int, sigmas: float = BRACKET_SIGMAS):
    """(lo, hi), 0-d tensors of the sample's dtype, such that the k-th smallest of the full set of
    `total` scores lies in [lo, hi) with high probability; lo = −inf or hi = +inf at the ends."""
    ordered = torch.sort(sample.flatten()).values
    m = ordered.numel()
    share = k / total
    spread = sigmas * math.sqrt(m * share * (1 - share)) + 1
    low_rank, high_rank = math.floor(share * m - spread) - 1, math.ceil(share * m + spread)
    minus_inf = torch.full((), -math.inf, dtype=ordered.dtype, device=ordered.device)
    plus_inf = torch.full((), math.inf, dtype=ordered.dtype, device=ordered.device)
    lo = ordered[low_rank] if low_rank >= 0 else minus_inf
    hi = ordered[high_rank] if high_rank < m else plus_inf
    if bool(lo == hi):   # a tie mass in the sample: the bracket holds just that value
        hi = torch.nextafter(hi, plus_inf)
    return lo, hi


class BracketCount:
    """One pass of the bracketed selection: feed every score chunk to `add`, then ask `kth`.

    Counts the scores below `lo` exactly and keeps copies of those in [lo, hi). When the bracket
    is one value wide (hi is the next float after lo) nothing is kept: counting decides."""

    def __init__(self, lo: torch.Tensor, hi: torch.Tensor):
        self.lo, self.hi = lo, hi
        self.single_value = bool(torch.nextafter(lo, hi) == hi)
        self._below, self._below_hi, self._candidates = [], [], []

    def add(self, scores: torch.Tensor) -> None:
        """Account for one chunk of scores (any shape; may be reused by the caller afterwards)."""
        below = torch.lt(scores, self.lo)
        self._below.append(torch.count_nonzero(below))
        if self.single_value:
            self._below_hi.append(torch.count_nonzero(torch.lt(scores, self.hi)))
            return
        inside = torch.lt(scores, self.hi)
        inside.logical_xor_(below)             # lo ≤ s < hi, since s < lo implies s < hi
        self._candidates.append(scores[inside])

    def kth(self, k: int) -> Optional[torch.Tensor]:
        """The k-th smallest of everything added, or None when it is not in [lo, hi)."""
        below = int(torch.stack(self._below).sum()) if self._below else 0
        if self.single_value:
            below_hi = int(torch.stack(self._below_hi).sum()) if self._below_hi else 0
            return self.lo.clone() if below < k <= below_hi else None
        candidates = torch.cat(self._candidates) if self._candidates else self.lo.new_empty(0)
        if not below < k <= below + candidates.numel():
            return None
        return torch.kthvalue(candidates, k - below).values


def kth_smallest(score_chunks: Callable[[], Iterable[torch.Tensor]], k: int, total: int,
                 sample: torch.Tensor) -> torch.Tensor:
    """Exact k-th smallest (1 ≤ k ≤ total) of all scores yielded by `score_chunks()`.

    `score_chunks` is called once (twice in the rare fallback); it may reuse one buffer for every
    chunk, each is consumed before the next is requested. `sample` is a few scores drawn from the
    same set, used only to place the bracket: a poor sample costs time, never exactness."""
    if not 1 <= k <= total:
        raise ValueError(f"k={k} must be in [1, {total}] (the number of scores)")
    count = BracketCount(*bracket_from_sample(sample, k, total))
    for chunk in score_chunks():
        count.add(chunk)
    found = count.kth(k)
    if found is not None:
        return found
    everything = torch.cat([chunk.flatten().clone() for chunk in score_chunks()])
    return torch.kthvalue(everything, k).values


def kth_smallest_of(tensors: Sequence[torch.Tensor], k: int, sample_size: int = SAMPLE_SIZE) -> torch.Tensor:
    """`kth_smallest` over a list of score tensors held in memory, with a strided sample."""
    total = sum(t.numel() for t in tensors)
    stride = sample_stride(total, sample_size)
    sample = torch.cat([t.flatten()[::stride] for t in tensors])
    return kth_smallest(lambda: iter(tensors), k, total, sample)
