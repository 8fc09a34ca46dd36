"""The numba loops behind pruners.kernels' rule-agnostic passes, counting and masking (imported only when numba is
installed and wanted; a scoring rule's own loops live beside it: pruners.platon_loops).

Arguments are 1-D float32 numpy arrays. A score is the product of two factors
(`first`, `second`); a score that is one array comes with `second` all ones
(x · 1 = x exactly, NaN included), which keeps one vectorised counting loop.
Loops are module-level functions so that numba's on-disk cache finds them again
in the next process (closures get a new cache key each time).
"""
import numpy as np
from numba import njit, prange

ZERO = np.float32(0.0)
RUN = 32                  # entries per run of the counting loop (see count_block)


@njit(cache=True)
def count_block(first, second, lo, above_lo, hi, out):
    """(# scores < lo, # < above_lo, # in [above_lo, hi)) over one block, those last copied to
    out[:found] in order. Runs of RUN entries are counted by a loop without branches, which LLVM
    vectorises, and only a run holding a candidate is read again to copy them: the comparisons
    are unpredictable, and a branch on each would cost more than the second reading. Two details
    keep the loop vectorised (about 10x faster): indices start at 0 (blocks come as slices, so
    numba drops its negative-index test) and a run's length is the constant RUN (the last
    entries get a loop of their own)."""
    n = first.size
    whole_runs = n - n % RUN
    below = 0
    below_candidates = 0
    found = 0
    for run in range(0, whole_runs, RUN):
        run_below = 0
        run_below_candidates = 0
        run_below_hi = 0
        for i in range(run, run + RUN):
            score = first[i] * second[i]
            run_below += np.int32(score < lo)
            run_below_candidates += np.int32(score < above_lo)
            run_below_hi += np.int32(score < hi)
        below += run_below
        below_candidates += run_below_candidates
        if run_below_hi != run_below_candidates:
            for i in range(run, run + RUN):
                score = first[i] * second[i]
                out[found] = score              # kept only if a candidate: found moves on by 0 or 1
                found += np.int32((score >= above_lo) & (score < hi))
    for i in range(whole_runs, n):
        score = first[i] * second[i]
        below += np.int32(score < lo)
        below_candidates += np.int32(score < above_lo)
        out[found] = score
        found += np.int32((score >= above_lo) & (score < hi))
    return below, below_candidates, found


@njit(parallel=True, cache=True)
def count(first, second, lo, above_lo, hi, out, block):
    """`count_block` over blocks of `block` entries shared out among the threads; the candidates
    end up at out[:total], in order. Returns (# < lo, # < above_lo, total)."""
    n = first.size
    blocks = max(1, (n + block - 1) // block)
    below = np.zeros(blocks, np.int64)
    below_candidates = np.zeros(blocks, np.int64)
    found = np.zeros(blocks, np.int64)
    for b in prange(blocks):
        start, stop = b * block, min(n, b * block + block)
        below[b], below_candidates[b], found[b] = count_block(
            first[start:stop], second[start:stop], lo, above_lo, hi, out[start:stop])
    total = 0
    for b in range(blocks):                 # gather the candidates to the front, in order
        start = b * block
        for j in range(found[b]):
            out[total + j] = out[start + j]
        total += found[b]
    return below.sum(), below_candidates.sum(), total


@njit(parallel=True, cache=True)
def mask(weight, first, second, threshold):
    """weight ← 0 where the score is < threshold (or NaN, as in the torch path), by multiplying by 0."""
    for i in prange(weight.size):
        if not first[i] * second[i] >= threshold:
            weight[i] = weight[i] * ZERO
