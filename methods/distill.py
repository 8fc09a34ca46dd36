"""DFD (dual feature distillation) and flooding, the distillation losses of GPP-DFD (Neural Networks 2024).

The math (docs/METHODS.md §3). Inputs are hidden states as transformers returns
them with `output_hidden_states=True`; the embedding outputs are dropped, leaving
T_1..T_L (teacher) and S_1..S_L (student). Σx is the sum of all entries of x.

    fusion weights   a_j = Σx_j / Σ_{x∈W} Σx            over a group W of tensors
    teacher (global) for i = L−1 down to 1:  T_i ← a·T_i + b·T_{i+1}   (weights of {T_i, T_{i+1}},
                                                                         T_{i+1} already fused)
    student (local)  S_{L+1..L+w−1} = S_L;  W_i = [S_i .. S_{i+w−1}];  F_i = Σ_{j∈W_i} a_j·S_j
    dfd_loss         Σ_i mean((T_i − F_i)²)
    flooding         ℓ' = |ℓ − b| + b

Deviations from the public code (deliberate, per the spec): the window is
`window_size` (public: always 3); the number of layers is the models' (public: 12).

Fusion weights (deviation, default `fusion="magnitude"`): a_j = |Σx_j| / Σ_{x∈W} |Σx|.
The published weights Σx_j / Σ_{x∈W} Σx (`fusion="signed"`) are a convex combination
only while every Σx_j of a group has the same sign. Real hidden states do not keep
one sign: on the bundled MiniLM the layer sums of a batch go from +17,000 (layer 1)
to -13,000 (layer 5), so a pair's denominator nearly cancels, the weights reach
1.2 and -0.2 for one pair and grow further through the teacher's recursion, and the
fused teacher layers 1-3 end up ~100x the hidden states' own mean square. DFD
between a model and itself was then 256 on an RTE batch (14.7 on SST-2), against a
task loss of 0.7: the student was pulled towards targets no model produces. With
|Σx_j| the weights are the same whenever a group's sums share a sign (the case the
published formula assumes), and otherwise stay in [0, 1] and sum to 1; DFD between
a model and itself drops to 0.03 on the same batch.

Near-zero guard: hidden states can sum to almost zero, and then a_j = Σx_j / Σ Σx
explodes or is NaN. With d = Σ_{x∈W} Σx (Σ_{x∈W} |Σx| for magnitude weights) and the mass m = Σ_{x∈W} Σ|x| (sum of the
absolute entries), when |d| <= eps·m (eps = 1e-6; this includes all-zero inputs,
where 0 <= 0) the weights fall back to equal weights 1/|W|. Otherwise
|a_j| <= |Σx_j| / (eps·m) <= 1/eps, so the weights are always finite. The sums
are taken in float64; a denominator below 1e-6 of the entries' mass is at the
level of float32 rounding noise of the entries, so the guard only replaces
weights that carry no information (real hidden states sit orders of magnitude
above it). Gradients stay finite too: the denominator of the unused branch is
replaced by 1 before dividing.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

FUSION_EPS = 1e-6
FUSIONS = ("magnitude", "signed")


def fusion_weights(tensors: Sequence[torch.Tensor], eps: float = FUSION_EPS,
                   fusion: str = "magnitude") -> list[torch.Tensor]:
    """a_j = |Σx_j| / Σ_{x∈W} |Σx| (magnitude) or Σx_j / Σ_{x∈W} Σx (signed, as published) for the
    group W = `tensors` (0-dim tensors in the inputs' dtype); equal weights 1/|W| when the
    denominator is at most eps · Σ_{x∈W} Σ|x| (see the module docstring)."""
    if fusion not in FUSIONS:
        raise ValueError(f"fusion must be one of {', '.join(FUSIONS)}, got {fusion!r}")
    sums = torch.stack([x.sum(dtype=torch.float64) for x in tensors])  # (|W|,)
    if fusion == "magnitude":
        sums = sums.abs()
    with torch.no_grad():
        mass = sum(x.abs().sum(dtype=torch.float64) for x in tensors)
    denominator = sums.sum()
    degenerate = denominator.abs() <= eps * mass
    safe_denominator = torch.where(degenerate, torch.ones_like(denominator), denominator)
    weights = torch.where(degenerate, torch.full_like(sums, 1.0 / len(tensors)), sums / safe_denominator)
    return [w.to(x.dtype) for w, x in zip(weights, tensors)]


def _fuse(tensors: Sequence[torch.Tensor], eps: float, fusion: str) -> torch.Tensor:
    weights = fusion_weights(tensors, eps, fusion)
    fused = weights[0] * tensors[0]
    for weight, x in zip(weights[1:], tensors[1:]):
        fused = fused + weight * x
    return fused


def teacher_global_fusion(layers: Sequence[torch.Tensor], eps: float = FUSION_EPS,
                          fusion: str = "magnitude") -> list[torch.Tensor]:
    """T_i ← fuse(T_i, T_{i+1}) for i = L−1 down to 1, T_{i+1} already fused; T_L unchanged."""
    fused = list(layers)
    for i in range(len(fused) - 2, -1, -1):
        fused[i] = _fuse([fused[i], fused[i + 1]], eps, fusion)
    return fused


def student_local_fusion(layers: Sequence[torch.Tensor], window_size: int,
                         eps: float = FUSION_EPS, fusion: str = "magnitude") -> list[torch.Tensor]:
    """F_i = Σ_{j∈W_i} a_j·S_j over W_i = [S_i .. S_{i+w−1}], with w−1 copies of S_L appended."""
    padded = list(layers) + [layers[-1]] * (window_size - 1)
    return [_fuse(padded[i:i + window_size], eps, fusion) for i in range(len(layers))]


def dfd_loss(teacher_hidden_states: Sequence[torch.Tensor], student_hidden_states: Sequence[torch.Tensor],
             window_size: int, fusion: str = "magnitude") -> torch.Tensor:
    """Σ_i mean((T_i − F_i)²) over layers i = 1..L (the embedding outputs, element 0, are dropped);
    `fusion` chooses the fusion weights (module docstring: magnitude by default, signed as published).

    The teacher states are detached (the teacher is never trained). Raises ValueError when
    the layer counts differ, when there is no layer, when shapes differ or window_size < 1.
    """
    if isinstance(window_size, bool) or int(window_size) != window_size or window_size < 1:
        raise ValueError(f"window_size must be an integer >= 1, got {window_size!r}")
    teacher_layers = [t.detach() for t in teacher_hidden_states[1:]]
    student_layers = list(student_hidden_states[1:])
    if len(teacher_layers) != len(student_layers):
        raise ValueError(f"DFD needs as many teacher layers as student layers: the teacher has "
                         f"{len(teacher_layers)} and the student {len(student_layers)} (embedding outputs excluded)")
    if not student_layers:
        raise ValueError("DFD needs at least one layer besides the embedding output in the hidden states")
    for index, (t, s) in enumerate(zip(teacher_layers, student_layers), start=1):
        if t.shape != s.shape:
            raise ValueError(f"layer {index}: teacher hidden state {tuple(t.shape)} and student "
                             f"{tuple(s.shape)} differ in shape (both models must see the same batch)")
    teacher = teacher_global_fusion(teacher_layers, fusion=fusion)
    student = student_local_fusion(student_layers, int(window_size), fusion=fusion)
    loss = F.mse_loss(student[0], teacher[0])
    for t, f in zip(teacher[1:], student[1:]):
        loss = loss + F.mse_loss(f, t)
    return loss


def flooded(loss: torch.Tensor, b: float = 0.01) -> torch.Tensor:
    """Flooding: ℓ' = |ℓ − b| + b (b = flooding_b). Equal to ℓ above b; below b its gradient
    is reversed, pushing the training loss back up towards b."""
    return (loss - b).abs() + b
