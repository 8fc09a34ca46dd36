"""Masking attention heads and FFN neurons of an encoder, and the indicator file that records it.

    mask = StructuredMask(model, head=z_head, ffn=z_ffn)   # masks from now on, through forward hooks
                             (anatomy=pruners.anatomy.Anatomy(...) for another family than BERT)
    mask.indicators()        {'head': (L, H), 'ffn': (L, I)}   active unit types only
    mask.save(directory)     writes directory/INDICATOR_FILE
    mask.remove()            the model is dense again
    mask.fold_into_weights() 0/1 indicators written into the weights: pruned units become exact zeros
    StructuredMask.load(model, directory_or_file, anatomy)  masks with a saved file's indicators
    read_indicators(path)    {'head': ..., 'ffn': ...} from a file, validated

Masking (docs/METHODS.md §2): in layer l the context vector of head h is
multiplied by head[l, h] at the input of attention.output.dense, and the
activation of FFN neuron j by ffn[l, j] at the output of intermediate (after the
activation function); the anatomy names those modules for each family. The indicators are
held by reference and read at every forward pass, so changing them in place
changes the masking; an nn.Parameter (GPP's trainable z) keeps receiving its
gradient through the hooks. None for a unit type leaves those units alone.

The indicator file, INDICATOR_FILE in a model directory, is safetensors with the
keys `z_head` (L × H) and `z_ffn` (L × I), floating point, active types only;
train.py writes it beside a GPP run's dense model and mt_dnn.export reads it.

Errors are ValueError (wrong shapes, an unreadable or malformed file) and
FileNotFoundError, with messages that name the file and what is wrong; a command
line front end adds its own flag and advice.
"""
from __future__ import annotations

import os

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from pruners.anatomy import (BERT, Anatomy, EncoderShape, encoder_layers, encoder_shape, ffn_activation_module,
                             find_encoder, head_context_module, head_rows)
from pruners.files import replace_file

INDICATOR_FILE = "gpp_indicators.safetensors"
FILE_KEYS = {"head": "z_head", "ffn": "z_ffn"}      # unit type -> key in INDICATOR_FILE


def indicator_shapes(shape: EncoderShape) -> dict[str, tuple[int, int]]:
    """The indicator shape of each unit type for an encoder of this shape: head (L, H), ffn (L, I)."""
    return {"head": (shape.layers, shape.heads), "ffn": (shape.layers, shape.intermediate)}


def _check_shapes(indicators: dict, shape: EncoderShape, where: str) -> None:
    for unit, expected in indicator_shapes(shape).items():
        z = indicators.get(unit)
        if z is not None and tuple(z.shape) != expected:
            raise ValueError(f"{where}{FILE_KEYS[unit]} has shape {tuple(z.shape)}, the encoder needs {expected} "
                             "(layers, units)")


def read_indicators(path: str) -> dict[str, torch.Tensor]:
    """The indicators stored in INDICATOR_FILE `path`, as {'head': (L, H), 'ffn': (L, I)} float32 CPU
    tensors (types present in the file only). Raises FileNotFoundError when there is no such file, and
    ValueError when it is not safetensors, holds other keys or none of z_head/z_ffn, or holds a tensor
    that is not a 2-D finite floating-point one."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")
    try:
        tensors = load_file(path)
    except Exception as err:  # noqa: BLE001 - safetensors reports a corrupt file with its own error type
        raise ValueError(f"{path}: unreadable ({type(err).__name__})") from None
    unexpected = sorted(set(tensors) - set(FILE_KEYS.values()))
    if unexpected or not tensors:
        raise ValueError(f"{path}: holds {sorted(tensors)}, expected z_head and/or z_ffn only")
    indicators = {}
    for unit, key in FILE_KEYS.items():
        if key not in tensors:
            continue
        z = tensors[key]
        if not z.is_floating_point() or z.dim() != 2:
            raise ValueError(f"{path}: {key} is a {z.dim()}-D {z.dtype} tensor, expected a 2-D floating-point one")
        if not bool(torch.isfinite(z).all()):
            raise ValueError(f"{path}: {key} holds non-finite values")
        indicators[unit] = z.float()
    return indicators


class StructuredMask:
    """Masks the heads and FFN neurons of the encoder inside `model` through forward hooks.

    Args:
        model: an encoder or a module containing one (pruners.anatomy.find_encoder).
        head: (L, H) indicators of the heads, or None to leave the heads alone.
        ffn: (L, I) indicators of the FFN neurons, or None to leave the FFN alone.
        anatomy: the encoder's layout (pruners.anatomy.Anatomy; BERT's by default).

    Tensors and nn.Parameters are kept by reference (not copied) and cast to the activations'
    device and dtype at each forward pass. Raises ValueError when no encoder is found, when both
    are None, when a shape does not fit the encoder, or when an indicator is NaN or infinite.

    Attributes: `bert` (the encoder), `anatomy`, `shape` (its EncoderShape), `head`, `ffn`.
    """

    def __init__(self, model: nn.Module, head: torch.Tensor | None = None, ffn: torch.Tensor | None = None,
                 anatomy: Anatomy = BERT):
        if head is None and ffn is None:
            raise ValueError("a StructuredMask needs head and/or ffn indicators, got neither")
        self.bert = find_encoder(model, anatomy)
        self.anatomy = anatomy
        self.shape = encoder_shape(self.bert, anatomy)
        for unit, z in (("head", head), ("ffn", ffn)):
            if z is not None and not (isinstance(z, torch.Tensor) and z.is_floating_point()):
                raise ValueError(f"{unit} indicators must be a floating-point tensor, got "
                                 f"{getattr(z, 'dtype', type(z).__name__)}")
        _check_shapes({"head": head, "ffn": ffn}, self.shape, "")
        for unit, z in (("head", head), ("ffn", ffn)):      # a NaN would spread to every output of the model
            if z is not None and not bool(torch.isfinite(z.detach()).all()):
                raise ValueError(f"{unit} indicators hold non-finite values (NaN or inf); pass finite ones, 1 keeps a "
                                 "unit and 0 removes it")
        self.head = head
        self.ffn = ffn
        self._handles = []
        for index, layer in enumerate(encoder_layers(self.bert, anatomy)):
            if head is not None:
                target = head_context_module(layer, anatomy)
                self._handles.append(target.register_forward_pre_hook(self._head_hook(index, target)))
            if ffn is not None:
                target = ffn_activation_module(layer, anatomy)
                self._handles.append(target.register_forward_hook(self._ffn_hook(index, target)))

    # Closures, not bound methods or partials: copy.deepcopy of a hooked model copies the
    # modules' hook dicts, but a function is copied by reference, so the copy's modules would
    # call these very closures with themselves as `module`. Each closure knows the module it
    # was registered on and does nothing for any other, so a deep copy (or anything else that
    # copies the hooks) comes out unmasked rather than masked by indicators it does not own.
    def _head_hook(self, index: int, owner: nn.Module):
        def hook(module, args):
            if module is not owner:
                return None
            context = args[0]  # (batch, seq, H·d)
            z = self.head[index].to(device=context.device, dtype=context.dtype)
            per_head = context.unflatten(-1, (self.shape.heads, self.shape.head_size))  # (batch, seq, H, d)
            return ((per_head * z[:, None]).flatten(-2),) + tuple(args[1:])
        return hook

    def _ffn_hook(self, index: int, owner: nn.Module):
        def hook(module, args, output):
            if module is not owner:
                return None
            return output * self.ffn[index].to(device=output.device, dtype=output.dtype)  # (batch, seq, I) × (I,)
        return hook

    def indicators(self) -> dict[str, torch.Tensor]:
        """The indicators by unit type, {'head': head, 'ffn': ffn}, active types only (the objects
        given, not copies)."""
        return {unit: z for unit, z in (("head", self.head), ("ffn", self.ffn)) if z is not None}

    def remove(self) -> None:
        """Stop masking: remove the hooks (the model is dense again). Idempotent."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    @torch.no_grad()
    def fold_into_weights(self) -> None:
        """Write binary (0/1) indicators into the weights, so that the encoder computes without the
        hooks what it computes with them: for every unit whose indicator is 0, the rows (weights
        and biases) that produce it and the columns that read it become exact zeros (a head: its
        d rows of query, key and value and its d columns of the attention output; an FFN neuron:
        its row of the FFN's first projection and its column of the second; BERT: attention.self.*,
        attention.output.dense, intermediate.dense, output.dense). A zero column reads a zero
        input either way, so the outputs are unchanged; the hooks may stay (masking a zero by 0 is
        a no-op). Raises ValueError for indicators other than 0 and 1 (a run still pruning)."""
        for unit, z in self.indicators().items():
            if not bool(((z == 0) | (z == 1)).all()):
                raise ValueError(f"{unit} indicators hold values other than 0 and 1; only a finished pruning "
                                 "(frozen indicators) can be folded into the weights")
        anatomy = self.anatomy
        for index, layer in enumerate(encoder_layers(self.bert, anatomy)):
            if self.head is not None:
                rows = head_rows(torch.nonzero(self.head[index] == 0).flatten().cpu(), self.shape.head_size)
                _zero(layer, anatomy.head_row_projections, anatomy.head_column_projection, rows)
            if self.ffn is not None:
                _zero(layer, (anatomy.ffn_row_projection,), anatomy.ffn_column_projection,
                      torch.nonzero(self.ffn[index] == 0).flatten())

    def save(self, directory: str) -> str:
        """Write the indicators to `directory`/INDICATOR_FILE (detached float32 CPU copies) through a
        temporary file renamed into place, so that an earlier file is replaced whole or not at all.
        Returns the file's path. The directory must exist."""
        path = os.path.join(directory, INDICATOR_FILE)
        tensors = {FILE_KEYS[unit]: z.detach().to(device="cpu", dtype=torch.float32).contiguous()
                   for unit, z in self.indicators().items()}
        replace_file(path, lambda tmp: save_file(tensors, tmp))
        return path

    @classmethod
    def load(cls, model: nn.Module, directory_or_file: str, anatomy: Anatomy = BERT) -> "StructuredMask":
        """A StructuredMask over `model` with the indicators of an INDICATOR_FILE (given itself or
        the directory holding it), as plain tensors without gradient on the encoder's device.
        Raises FileNotFoundError or ValueError (see `read_indicators`), and ValueError naming the
        file when its shapes do not fit the encoder."""
        path = (os.path.join(directory_or_file, INDICATOR_FILE) if os.path.isdir(directory_or_file)
                else directory_or_file)
        indicators = read_indicators(path)
        bert = find_encoder(model, anatomy)
        _check_shapes(indicators, encoder_shape(bert, anatomy), f"{path}: ")
        device = next(bert.parameters()).device
        return cls(bert, **{unit: z.to(device) for unit, z in indicators.items()}, anatomy=anatomy)


def _zero(layer: nn.Module, row_projections, column_projection: str, units: torch.Tensor) -> None:
    """Zero rows `units` (weight and bias) of each row projection and columns `units` of the column one."""
    if units.numel() == 0:
        return
    for name in row_projections:
        linear = layer.get_submodule(name)
        linear.weight[units.to(linear.weight.device)] = 0
        if linear.bias is not None:
            linear.bias[units.to(linear.bias.device)] = 0
    linear = layer.get_submodule(column_projection)
    linear.weight[:, units.to(linear.weight.device)] = 0
