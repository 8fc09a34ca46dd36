"""A sparse CPU linear layer for unstructurally pruned models (PLATON, magnitude, movement), and the
switch that puts it in place of the dense layers where it is faster (`--engine sparse`).

Dense kernels multiply the zeros a pruned weight keeps; here only the kept entries are stored and
multiplied. The weight is held in CSR form (per output row: the column indices and values of its
non-zero entries, in order); the loops of mt_dnn.sparse_loops compute y = x Wᵀ + b:

    1. the activations are transposed in tiles, xt[tile, k, :] holding input feature k of the tile's tokens
       contiguously, so that one kept weight w[o, k] scales one contiguous row xt[tile, k] (a few vector
       operations). A (batch, seq, in) input with seq up to 128 takes one tile per sequence; anything else
       is cut into tiles of 128 tokens (the last zero-padded);
    2. work items are (token tile, block of 16 output rows), shared out over the CPU cores by numba's
       prange, tile-major so that the cores read one tile of inputs at a time; a row's result (up to 128
       floats) stays in L1 while its kept weights are added four at a time (one read and one write of the
       row per four weights instead of per weight);
    3. the block's 16 rows are written out a token at a time (one 64-byte line each) into a (tokens, out)
       result with contiguous rows, which attention and LayerNorm need (torch's flash attention kernel
       takes only those). The FFN's first layer instead hands its (tiles, out, tokens of a tile) result on
       as a transposed view when its tiles are whole sequences: GELU keeps that layout and the FFN's
       second layer reads it as its transposed input without a copy. (On MiniLM at 32 x 128 tokens, one
       thread, this layout took the forward pass from 0.90 to 0.59 s: the transposing copies and the
       row-wise writes of the FFN had cost a third of it.)

A tile of 128 tokens of the widest input (3072 features, bert-base's FFN output) is 1.5 MB, within L2.
Sums run in a different order from the dense kernel's, so the outputs equal the dense masked layer's to
float32 rounding (tests/test_sparse_linear.py), not bit for bit; a pruned weight times an infinite input
adds nothing here, where the dense layer gives NaN.

Whether a layer pays depends on its shape, its density and the CPU: `sparsify(encoder)` times every
pruned linear layer once, sparse against dense `F.linear` on TOKENS tokens with the current thread count,
keeps the sparse one only where it is faster, and logs what it picked (it returns the Choice of each
layer). Layers keeping more than MAX_DENSITY of their weights are not tried: the dense kernel, which
reuses each loaded input for many outputs, wins there (measured: 0.85x at 50 % on one linear layer).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

logger = logging.getLogger(__name__)

TILE = 128          # tokens per tile: a tile of the widest input (3072 features) is 1.5 MB, within L2
TOKENS = 128        # tokens of the timing that picks sparse or dense (batch 1 x 128, the latency case)
MAX_DENSITY = 0.6   # layers keeping more than this share of their weights stay dense untried


def _loops():
    """The numba loops (mt_dnn.sparse_loops), compiled at first use or loaded from numba's disk cache."""
    try:
        from mt_dnn import sparse_loops
    except ImportError:
        raise RuntimeError("the sparse engine needs numba (pip install numba)") from None
    return sparse_loops


def numba_available() -> bool:
    try:
        _loops()
    except RuntimeError:
        return False
    return True


def to_csr(weight: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(indptr int64 (out + 1), indices int32 (nnz), values float32 (nnz)) of a 2-d weight: its entries that
    are not zero (a -0.0 is dropped: it adds nothing), row by row, columns in order."""
    dense = weight.detach().to(torch.float32).cpu().contiguous().numpy()
    kept = dense != 0
    indptr = np.zeros(dense.shape[0] + 1, dtype=np.int64)
    np.cumsum(kept.sum(axis=1), out=indptr[1:])
    rows, columns = np.nonzero(kept)        # row-major order
    return indptr, columns.astype(np.int32), np.ascontiguousarray(dense[rows, columns], dtype=np.float32)


class SparseLinear(nn.Module):
    """y = x Wᵀ + b for an nn.Linear whose weight is mostly zeros, on CPU, fp32: only the kept entries are
    stored (CSR) and multiplied. Inference only (no gradients); the dense weight is not kept.

    `transposed_out`: hand a batch of one tile on as a transposed view of the (out, tokens) result, for a layer
    whose output reaches the next sparse layer through elementwise layers only (BERT's FFN: first layer, GELU,
    second layer); otherwise the result has contiguous rows, which attention and LayerNorm need."""

    def __init__(self, linear: nn.Linear, transposed_out: bool = False):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.transposed_out = transposed_out
        self.indptr, self.indices, self.values = to_csr(linear.weight)
        bias = linear.bias.detach() if linear.bias is not None else torch.zeros(self.out_features)
        self.bias = np.ascontiguousarray(bias.to(torch.float32).cpu().numpy())

    @property
    def density(self) -> float:
        return self.values.size / max(1, self.in_features * self.out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.float32 or x.device.type != "cpu":
            raise TypeError(f"SparseLinear runs on CPU float32 inputs, got {x.dtype} on {x.device}")
        if torch.is_grad_enabled() and x.requires_grad:
            raise RuntimeError("SparseLinear is for inference: it has no backward pass")
        loops = _loops()
        if x.dim() == 3 and x.numel() and x.shape[1] <= TILE:          # (batch, seq, in): one tile per sequence
            batch, seq = x.shape[0], x.shape[1]
            xt = x.transpose(1, 2).contiguous()         # a no-op on what a transposed_out layer handed on
            if self.transposed_out:
                out = torch.empty(batch, self.out_features, seq, dtype=torch.float32)     # (batch, out, seq)
                loops.sparse_linear_tiles(xt.numpy(), self.indptr, self.indices, self.values, self.bias, out.numpy())
                return out.transpose(1, 2)
            out = torch.empty(batch * seq, self.out_features, dtype=torch.float32)       # (tokens, out)
            loops.sparse_linear_rows(xt.numpy(), self.indptr, self.indices, self.values, self.bias, out.numpy())
            return out.view(batch, seq, self.out_features)
        flat = x.reshape(-1, self.in_features)                                     # (tokens, in)
        tokens = flat.shape[0]
        length = max(1, min(TILE, tokens))
        n_tiles = -(-tokens // length)
        if n_tiles <= 1:
            # a no-op when x is the transposed view a transposed_out layer handed on
            xt = flat.t().contiguous().view(1, self.in_features, tokens)
        else:
            if n_tiles * length != tokens:
                flat = F.pad(flat, (0, 0, 0, n_tiles * length - tokens))
            xt = flat.view(n_tiles, length, self.in_features).transpose(1, 2).contiguous()  # (tiles, in, length)
        if self.transposed_out and n_tiles == 1:
            out = torch.empty(1, self.out_features, tokens, dtype=torch.float32)           # (1, out, tokens)
            loops.sparse_linear_tiles(xt.numpy(), self.indptr, self.indices, self.values, self.bias, out.numpy())
            return out[0].t().view(*x.shape[:-1], self.out_features)
        out = torch.empty(tokens, self.out_features, dtype=torch.float32)                  # (tokens, out)
        if tokens:
            loops.sparse_linear_rows(xt.numpy(), self.indptr, self.indices, self.values, self.bias, out.numpy())
        return out.view(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, density={self.density:.3f}"


@dataclass(frozen=True)
class Choice:
    """What `sparsify` measured for one linear layer and which kernel it kept."""
    name: str
    shape: tuple                 # (out, in)
    density: float
    dense_ms: float | None       # None: not timed (density above MAX_DENSITY)
    sparse_ms: float | None

    @property
    def sparse(self) -> bool:
        return self.sparse_ms is not None and self.sparse_ms < self.dense_ms

    def describe(self) -> str:
        shape = f"{self.shape[0]}x{self.shape[1]}"
        if self.sparse_ms is None:
            return f"{self.name} {shape} density {self.density:.1%}: dense (above {MAX_DENSITY:.0%}, not timed)"
        return (f"{self.name} {shape} density {self.density:.1%}: sparse {self.sparse_ms:.3f} ms, dense "
                f"{self.dense_ms:.3f} ms -> {'sparse' if self.sparse else 'dense'}")


def _best_ms(run, repeats: int) -> float:
    """The fastest of `repeats` calls (a shared machine only ever slows a call down)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return 1000 * best


@torch.inference_mode()
def measure(linear: nn.Linear, sparse: SparseLinear, tokens: int = TOKENS, repeats: int = 5) -> tuple:
    """(dense ms, sparse ms) of one layer on `tokens` random tokens, each the best of `repeats` calls, the
    two timed in alternation after one warm-up call each."""
    x = torch.randn(tokens, linear.in_features, generator=torch.Generator().manual_seed(0))
    dense_run, sparse_run = (lambda: F.linear(x, linear.weight, linear.bias)), (lambda: sparse(x))
    dense_run(), sparse_run()
    dense_ms = sparse_ms = float("inf")
    for _ in range(repeats):
        dense_ms = min(dense_ms, _best_ms(dense_run, 1))
        sparse_ms = min(sparse_ms, _best_ms(sparse_run, 1))
    return dense_ms, sparse_ms


def pruned_linears(encoder: nn.Module) -> dict:
    """{name: nn.Linear} of the encoder's transformer layers (what the unstructured pruners prune: query, key,
    value, attention output, FFN); embeddings, pooler and task heads stay dense."""
    layers = getattr(encoder, "encoder", encoder)
    return {f"encoder.{name}" if layers is not encoder else name: module
            for name, module in layers.named_modules()
            if isinstance(module, nn.Linear) and module.weight.numel() > 0}


def sparsify(encoder: nn.Module, tokens: int = TOKENS, repeats: int = 5) -> list:
    """Replace, in place, each pruned linear layer of `encoder` (fp32, CPU) by a SparseLinear where that is
    faster on this machine with the current numba thread count; returns the Choice of every layer, each
    also logged."""
    _loops()
    choices = []
    for name, linear in pruned_linears(encoder).items():
        if linear.weight.dtype != torch.float32 or linear.weight.device.type != "cpu":
            raise TypeError(f"{name}: the sparse engine runs CPU float32 weights, got {linear.weight.dtype}")
        sparse = SparseLinear(linear, transposed_out=name.endswith("intermediate.dense"))
        if sparse.density > MAX_DENSITY:
            choice = Choice(name, (linear.out_features, linear.in_features), sparse.density, None, None)
        else:
            dense_ms, sparse_ms = measure(linear, sparse, tokens, repeats)
            choice = Choice(name, (linear.out_features, linear.in_features), sparse.density, dense_ms, sparse_ms)
        if choice.sparse:
            parent_name, _, attribute = name.rpartition(".")
            setattr(encoder.get_submodule(parent_name), attribute, sparse)
        logger.info("sparse engine: %s", choice.describe())
        choices.append(choice)
    switched = sum(choice.sparse for choice in choices)
    logger.info("sparse engine: %d of %d linear layers run the sparse kernel", switched, len(choices))
    return choices
