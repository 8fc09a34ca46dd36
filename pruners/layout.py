"""The flat layout of the unstructured pruners: selected parameters end to end, cut into slabs.

The selected parameters of one device are laid end to end in one flat index
space (`FlatLayout.offsets`, `device_numel`); a method's statistics are flat
float32 buffers over it (`new_flat_buffers`: one per statistic and device),
seen per parameter through views (`view_of`).

Work goes by slabs: consecutive runs of about SLAB_NUMEL entries of that space,
cutting large parameters into pieces and gathering small ones (a
non-contiguous parameter is one piece, whole, kept in its own shape). A pass
does every operation of a step on one slab before moving to the next, so a
slab's statistics, weights, gradients and work buffers (a few MB) are read
from memory once and stay in cache for the rest: a PLATON step at a window
close reads and writes the model-sized buffers once for the update and once
more for the threshold's counting pass, instead of once per elementwise
operation. Slabs are large enough that per-operation overhead stays small (a
few hundred slabs for BERT-base). Work buffers are one slab in size (`work`);
nothing of the model's size is allocated per step (short of the rare fallback
of the threshold search); scores are computed when needed, never stored.

The kernels (pruners.kernels) run on one slab at a time: its part of each flat
buffer (`slab_of`) and the list of its parameters' parts (`weights`, `grads`:
`part(tensor, piece)` of each piece, a flat view or a whole parameter).
`members(slab, *flats)` walks a slab's pieces with their parts of slab-sized
flat tensors, shaped like those parameter parts.
"""
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import torch

SLAB_NUMEL = 1 << 19      # entries per slab (2 MB of float32 per buffer; a step's working set fits in cache)


def take(tensor: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """A copy of the entries of `tensor` at flat `positions`."""
    return tensor.reshape(-1).index_select(0, positions.to(tensor.device))


@dataclass(frozen=True)
class Piece:
    """Entries [start, stop) of parameter `index`, in its flattened order (`whole`: all of it, kept
    in its own shape, the case of a non-contiguous parameter)."""
    index: int
    start: int
    stop: int
    whole: bool = False

    @property
    def numel(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class Slab:
    """Consecutive selected entries of one device, [start, stop) of its flat space, as pieces of parameters."""
    device: torch.device
    start: int
    stop: int
    pieces: Tuple[Piece, ...]

    @property
    def numel(self) -> int:
        return self.stop - self.start

    @property
    def is_flat(self) -> bool:
        """Whether every piece is a flat view of its parameter (no whole piece)."""
        return not any(piece.whole for piece in self.pieces)


def plan_slabs(params: Sequence[torch.Tensor], offsets: Sequence[int], slab_numel: int) -> List[Slab]:
    """Cut the flat spaces into slabs of at most `slab_numel` entries (a non-contiguous parameter
    larger than that is a slab of its own), in parameter order."""
    slabs: List[Slab] = []
    pending: List[Piece] = []

    def close():
        if pending:
            first, last = pending[0], pending[-1]
            device = params[first.index].device
            slabs.append(Slab(device, offsets[first.index] + first.start, offsets[last.index] + last.stop,
                              tuple(pending)))
            pending.clear()

    for index, param in enumerate(params):
        if pending and params[pending[-1].index].device != param.device:
            close()
        used = sum(piece.numel for piece in pending)
        if not param.is_contiguous():
            if used + param.numel() > slab_numel:
                close()
            pending.append(Piece(index, 0, param.numel(), whole=True))
            continue
        start = 0
        while start < param.numel():
            if used >= slab_numel:
                close()
                used = 0
            stop = min(param.numel(), start + slab_numel - used)
            pending.append(Piece(index, start, stop))
            used += stop - start
            start = stop
    close()
    return slabs


class FlatLayout:
    """The flat spaces of `params` (per device), their slabs and the slab-sized work buffers."""

    def __init__(self, params: Sequence[torch.Tensor], slab_numel: Optional[int] = None):
        self.params = list(params)
        self.total_numel = sum(param.numel() for param in self.params)
        self.offsets: List[int] = []                          # of each parameter in its device's flat space
        self.device_numel: Dict[torch.device, int] = {}
        for param in self.params:
            self.offsets.append(self.device_numel.get(param.device, 0))
            self.device_numel[param.device] = self.offsets[-1] + param.numel()
        self.slabs = plan_slabs(self.params, self.offsets, SLAB_NUMEL if slab_numel is None else slab_numel)
        self.work_buffers = {device: torch.empty(max(slab.numel for slab in self.slabs if slab.device == device),
                                                 device=device) for device in self.device_numel}

    def new_flat_buffers(self) -> Dict[torch.device, torch.Tensor]:
        """One zero float32 buffer per device over its flat space."""
        return {device: torch.zeros(numel, device=device) for device, numel in self.device_numel.items()}

    def view_of(self, buffers: Dict[torch.device, torch.Tensor], index: int) -> torch.Tensor:
        """Parameter `index`'s part of a flat buffer, shaped like the parameter."""
        param = self.params[index]
        start = self.offsets[index]
        return buffers[param.device][start:start + param.numel()].view(param.shape)

    def slab_of(self, buffers: Dict[torch.device, torch.Tensor], slab: Slab) -> torch.Tensor:
        """The slab's part of a flat buffer (flat)."""
        return buffers[slab.device][slab.start:slab.stop]

    def work(self, slab: Slab) -> torch.Tensor:
        """The slab-sized work buffer of the slab's device."""
        return self.work_buffers[slab.device][:slab.numel]

    def members(self, slab: Slab, *flats: torch.Tensor):
        """(piece, its part of each slab-sized flat tensor in `flats`, ...), each part shaped like
        `part(..., piece)`."""
        for piece in slab.pieces:
            start = self.offsets[piece.index] + piece.start - slab.start
            parts = [flat[start:start + piece.numel] for flat in flats]
            if piece.whole:
                parts = [here.view(self.params[piece.index].shape) for here in parts]
            yield (piece, *parts)

    @staticmethod
    def part(tensor: Optional[torch.Tensor], piece: Piece) -> Optional[torch.Tensor]:
        """The piece of a parameter-shaped tensor (the parameter, its gradient; None stays None): a
        flat view, or the tensor itself for a whole piece (a gradient laid out unlike its
        parameter is copied)."""
        if tensor is None or piece.whole:
            return tensor
        return tensor.reshape(-1)[piece.start:piece.stop]

    def weights(self, slab: Slab) -> List[torch.Tensor]:
        """The slab's parts of the parameters, in order (what the kernels' P is)."""
        return [self.part(self.params[piece.index], piece) for piece in slab.pieces]

    def grads(self, slab: Slab) -> List[Optional[torch.Tensor]]:
        """The slab's parts of the parameters' gradients, in order (None where a parameter has none)."""
        return [self.part(self.params[piece.index].grad, piece) for piece in slab.pieces]

    def indices_on(self, device: torch.device) -> List[int]:
        """The parameters on `device`, in order."""
        return [index for index, param in enumerate(self.params) if param.device == device]
