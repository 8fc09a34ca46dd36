"""The numba loops behind mt_dnn.sparse_linear (imported only when the sparse engine is used).

Module-level functions, so that numba's on-disk cache finds them again in the next process. The layout
and why it is fast are in mt_dnn/sparse_linear.py's docstring.
"""
import numpy as np
from numba import njit, prange

ROWS = 16           # output rows per work item
CONTRACT = {"contract"}     # a multiply-add may be fused (FMA); no other fast-math licence: NaN and inf propagate


@njit(inline="always", fastmath=CONTRACT)
def accumulate_row(row, source, indptr, indices, values, bias, o):
    """row[:] = bias[o] + Σ_j values[j] · source[indices[j]] over output row o's kept weights; `row` stays in
    L1 while they are added, four per pass (one read and one write of the row per four weights)."""
    length = row.shape[0]
    b = bias[o]
    for t in range(length):
        row[t] = b
    j, stop = indptr[o], indptr[o + 1]
    while j + 4 <= stop:
        v0, v1, v2, v3 = values[j], values[j + 1], values[j + 2], values[j + 3]
        x0, x1 = source[indices[j]], source[indices[j + 1]]
        x2, x3 = source[indices[j + 2]], source[indices[j + 3]]
        for t in range(length):
            row[t] += (v0 * x0[t] + v1 * x1[t]) + (v2 * x2[t] + v3 * x3[t])
        j += 4
    while j < stop:
        v0, x0 = values[j], source[indices[j]]
        for t in range(length):
            row[t] += v0 * x0[t]
        j += 1


@njit(parallel=True, cache=True, nogil=True, fastmath=CONTRACT)
def sparse_linear_tiles(xt, indptr, indices, values, bias, out):
    """out = W x + b tile by tile, W in CSR form (indptr, indices, values); xt (tiles, in, tokens of a tile)
    and out (tiles, out, tokens of a tile), float32."""
    n_tiles, n_out, _ = out.shape
    n_blocks = (n_out + ROWS - 1) // ROWS
    for item in prange(n_tiles * n_blocks):        # tile-major: the cores share one tile of inputs at a time
        tile, block = item // n_blocks, item % n_blocks
        for o in range(block * ROWS, min(block * ROWS + ROWS, n_out)):
            accumulate_row(out[tile, o], xt[tile], indptr, indices, values, bias, o)


@njit(parallel=True, cache=True, nogil=True, fastmath=CONTRACT)
def sparse_linear_rows(xt, indptr, indices, values, bias, out):
    """As sparse_linear_tiles, but out is (tokens, out) row-major: each work item's block of rows is added up
    in a (ROWS, tokens of a tile) buffer, then written out a token at a time (one 64-byte line per token)."""
    n_tiles, _, length = xt.shape
    tokens, n_out = out.shape
    n_blocks = (n_out + ROWS - 1) // ROWS
    for item in prange(n_tiles * n_blocks):
        tile, block = item // n_blocks, item % n_blocks
        o0, t0 = block * ROWS, tile * length
        rows, kept = min(ROWS, n_out - o0), min(length, tokens - t0)
        acc = np.empty((ROWS, length), dtype=np.float32)
        for r in range(rows):
            accumulate_row(acc[r], xt[tile], indptr, indices, values, bias, o0 + r)
        for t in range(kept):
            for r in range(rows):
                out[t0 + t, o0 + r] = acc[r, t]
