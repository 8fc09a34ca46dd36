"""The numba loop behind mt_dnn.sparse_linear (imported only when the sparse engine is used).

A module-level function, so that numba's on-disk cache finds it again in the next process. The layout
and why it is fast are in mt_dnn/sparse_linear.py's docstring.
"""
from numba import njit, prange

ROWS = 16           # output rows per work item


# "contract": a multiply-add may be fused (FMA); no other fast-math licence, so NaN and inf propagate
@njit(parallel=True, cache=True, nogil=True, fastmath={"contract"})
def sparse_linear(xt, indptr, indices, values, bias, out):
    """out = W x + b tile by tile, W in CSR form (indptr, indices, values); xt (tiles, in, tokens of a tile) and
    out (tiles, out, tokens of a tile), float32."""
    n_tiles, n_out, length = out.shape
    n_blocks = (n_out + ROWS - 1) // ROWS
    for item in prange(n_tiles * n_blocks):        # tile-major: the cores share one tile of inputs at a time
        tile, block = item // n_blocks, item % n_blocks
        source, target = xt[tile], out[tile]
        for o in range(block * ROWS, min(block * ROWS + ROWS, n_out)):
            row = target[o]                     # stays in L1 while the row's kept weights are added
            b = bias[o]
            for t in range(length):
                row[t] = b
            j, stop = indptr[o], indptr[o + 1]
            while j + 4 <= stop:                # four kept weights per pass over the row
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
