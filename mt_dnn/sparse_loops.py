"""The numba loop behind mt_dnn.sparse_linear (imported only when the sparse engine is used).

A module-level function, so that numba's on-disk cache finds it again in the next process. The layout
and why it is fast are in mt_dnn/sparse_linear.py's docstring.
"""
from numba import njit, prange

TILE = 128          # tokens per tile: a tile of the widest input (3072 features) is 1.5 MB, within L2
ROWS = 16           # output rows per work item


# "contract": a multiply-add may be fused (FMA); no other fast-math licence, so NaN and inf propagate
@njit(parallel=True, cache=True, nogil=True, fastmath={"contract"})
def sparse_linear(xt, indptr, indices, values, bias, out):
    """out = W xt + b (transposed activations in and out), W in CSR form (indptr, indices, values);
    xt (in, tokens), out (out, tokens), float32."""
    tokens = xt.shape[1]
    n_out = out.shape[0]
    n_tiles = (tokens + TILE - 1) // TILE
    n_blocks = (n_out + ROWS - 1) // ROWS
    for item in prange(n_tiles * n_blocks):
        tile, block = item // n_blocks, item % n_blocks
        t0, o0 = tile * TILE, block * ROWS
        t1, o1 = min(t0 + TILE, tokens), min(o0 + ROWS, n_out)
        for o in range(o0, o1):
            row = out[o, t0:t1]                 # stays in L1 while the row's kept weights are added
            b = bias[o]
            for t in range(t1 - t0):
                row[t] = b
            j, stop = indptr[o], indptr[o + 1]
            while j + 4 <= stop:                # four kept weights per pass over the row
                v0, v1, v2, v3 = values[j], values[j + 1], values[j + 2], values[j + 3]
                x0, x1 = xt[indices[j], t0:t1], xt[indices[j + 1], t0:t1]
                x2, x3 = xt[indices[j + 2], t0:t1], xt[indices[j + 3], t0:t1]
                for t in range(t1 - t0):
                    row[t] += (v0 * x0[t] + v1 * x1[t]) + (v2 * x2[t] + v3 * x3[t])
                j += 4
            while j < stop:
                v0, x0 = values[j], xt[indices[j], t0:t1]
                for t in range(t1 - t0):
                    row[t] += v0 * x0[t]
                j += 1
