"""An encoder's anatomy, in one place: where the heads and FFN neurons are, and which parameters prune.

Everything that needs to know how an encoder is laid out (the pruners, the sparsity report, the
structured export and its benchmark) asks this module, through an `Anatomy`: the path of the layer
list, each layer's per-head and per-neuron projections, the module whose output is the FFN
activation, where the head count is, and the substrings unstructured pruning selects. `BERT` (the
default everywhere) is BERT's; the library knows no other family: an application hands its
pruners the anatomy of its model (the toolkit's modeling.families registry does, keyed by
config.model_type), e.g. DistilBERT's

    Anatomy("distilbert", layers="transformer.layer",
            head_row_projections=("attention.q_lin", "attention.k_lin", "attention.v_lin"),
            head_column_projection="attention.out_lin", ffn_row_projection="ffn.lin1",
            ffn_column_projection="ffn.lin2", ffn_activation="ffn.activation", heads="attention.n_heads",
            prunable_substrings=("attention.q_lin", "attention.k_lin", "attention.v_lin", "attention.out_lin",
                                 "ffn.lin1", "ffn.lin2"))

    find_encoder(model, anatomy)       the encoder inside `model` (the module holding anatomy.layers)
    encoder_shape(encoder, anatomy)    EncoderShape(layers L, heads H, head_size d, intermediate I)
    find_bert_model, bert_shape, BertShape    the same names for BERT's anatomy (older names)
    PRUNABLE_SUBSTRINGS           names of the parameters unstructured pruning selects
    select_parameters(model, substrings)        (check_target_substrings: refuses a plain string, an empty list)
    head_context_module(layer, anatomy)    the module whose *input* is the per-head context (batch, seq, H·d)
    ffn_activation_module(layer, anatomy)  the module whose *output* is the FFN activation (batch, seq, I)
    HEAD_ROW_PROJECTIONS          projections with one block of d rows per head (query, key, value)
    head_rows(heads, head_size)   the rows of those projections (columns of HEAD_COLUMN_PROJECTION) of some heads
    HEAD_COLUMN_PROJECTION        the projection with one block of d columns per head
    FFN_ROW_PROJECTION, FFN_COLUMN_PROJECTION   the FFN's rows (intermediate) and columns (output)
    layer_index(name), module_type(name)        how the report groups parameter names
    (the upper-case names are BERT's; an `Anatomy` holds each of them for its family)

A BERT layer (transformers' BertLayer) is

    attention.self.{query,key,value}   hidden -> H·d      (rows h·d .. (h+1)·d − 1 belong to head h)
    attention.output.dense             H·d -> hidden      (columns of head h likewise)
    intermediate.dense (+ act. fn)     hidden -> I        (row j is FFN neuron j)
    output.dense                       I -> hidden        (column j is FFN neuron j)
"""
import re
from typing import List, NamedTuple, Optional, Sequence, Tuple

import torch
from torch import nn

PRUNABLE_SUBSTRINGS = ("attention.self", "attention.output.dense", "output.dense", "intermediate.dense")
HEAD_ROW_PROJECTIONS = ("attention.self.query", "attention.self.key", "attention.self.value")
HEAD_COLUMN_PROJECTION = "attention.output.dense"
FFN_ROW_PROJECTION = "intermediate.dense"
FFN_COLUMN_PROJECTION = "output.dense"



class Anatomy(NamedTuple):
    """Where an encoder keeps its heads and FFN neurons. Paths are dotted module names: `layers` from the
    encoder module (the one `find_encoder` returns), the others from one layer. Rows h·d .. (h+1)·d − 1
    of each head row projection belong to head h, and so do the same columns of the head column
    projection; row j of the FFN row projection and column j of the FFN column projection are neuron j."""
    name: str = "bert"
    layers: str = "encoder.layer"
    head_row_projections: Tuple[str, ...] = HEAD_ROW_PROJECTIONS
    head_column_projection: str = HEAD_COLUMN_PROJECTION
    ffn_row_projection: str = FFN_ROW_PROJECTION
    ffn_column_projection: str = FFN_COLUMN_PROJECTION
    ffn_activation: str = "intermediate"                # its output is the FFN activation (batch, seq, I)
    heads: str = "attention.self.num_attention_heads"   # the attribute holding a layer's head count
    prunable_substrings: Tuple[str, ...] = PRUNABLE_SUBSTRINGS

    def layer_modules(self) -> Tuple[str, ...]:
        """The modules every layer of this layout has."""
        return (*self.head_row_projections, self.head_column_projection, self.ffn_row_projection,
                self.ffn_column_projection, self.ffn_activation)


BERT = Anatomy()

_LAYER_INDEX = re.compile(r"(?:^|\.)(\d+)(?:\.|$)")
_MODULE_TYPES = (        # first match wins: attention.output.dense also contains output.dense
    ("attention.self.query", "query"), ("attention.self.key", "key"), ("attention.self.value", "value"),
    ("attention.output.dense", "attention.output"), ("intermediate.dense", "intermediate"),
    ("output.dense", "output"),
)


class EncoderShape(NamedTuple):
    """The unit counts of an unpruned encoder."""
    layers: int
    heads: int
    head_size: int
    intermediate: int


BertShape = EncoderShape


def _get(module, path: str):
    """The attribute or submodule at a dotted path, or None."""
    for part in path.split("."):
        module = getattr(module, part, None)
        if module is None:
            return None
    return module


def encoder_layers(encoder: nn.Module, anatomy: Anatomy = BERT) -> nn.ModuleList:
    """The layer list of an encoder `find_encoder` found."""
    return _get(encoder, anatomy.layers)


def is_encoder_layer(layer: nn.Module, anatomy: Anatomy = BERT) -> bool:
    """Whether `layer` has the modules `anatomy` names (of its head row projections, the attention module
    holding them: a structured export's layer without heads has none)."""
    attention = anatomy.head_row_projections[0].rpartition(".")[0]
    needed = (attention, anatomy.head_column_projection, anatomy.ffn_row_projection, anatomy.ffn_column_projection,
              anatomy.ffn_activation)
    return all(isinstance(_get(layer, path), nn.Module) for path in needed)


def is_bert_layer(layer: nn.Module) -> bool:
    return is_encoder_layer(layer, BERT)


def find_encoder(model: nn.Module, anatomy: Anatomy = BERT) -> nn.Module:
    """The encoder inside `model` laid out as `anatomy` says (the module itself or the first submodule
    whose `anatomy.layers` is a non-empty ModuleList of layers that have every module `anatomy` names)."""
    if not isinstance(anatomy, Anatomy):
        raise TypeError(f"anatomy must be a pruners.anatomy.Anatomy, not a {type(anatomy).__name__}")
    require_module(model, " holding a BERT-family encoder")
    for module in model.modules():
        layers = _get(module, anatomy.layers)
        if isinstance(layers, nn.ModuleList) and len(layers) > 0 and \
                all(is_encoder_layer(layer, anatomy) for layer in layers):
            return module
    raise ValueError(f"no BERT-family encoder of the {anatomy.name} layout (with .{anatomy.layers}[i]."
                     f"{', .'.join(anatomy.layer_modules())}) found in {type(model).__name__}; pass the anatomy "
                     "of the model's family (a pruners.anatomy.Anatomy)")


find_bert_model = find_encoder


def require_module(model, holding: str = "") -> None:
    """TypeError unless `model` is an nn.Module (a dict of weights, say, would fail later in torch's words)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module{holding}, not a {type(model).__name__}")


def encoder_shape(encoder: nn.Module, anatomy: Anatomy = BERT) -> EncoderShape:
    """(layers L, heads per layer H, head size d, FFN neurons per layer I) of an unpruned encoder."""
    layers = encoder_layers(encoder, anatomy)
    heads = int(_get(layers[0], anatomy.heads))
    head_size = layers[0].get_submodule(anatomy.head_row_projections[0]).out_features // heads
    intermediate = layers[0].get_submodule(anatomy.ffn_row_projection).out_features
    for index, layer in enumerate(layers):
        if int(_get(layer, anatomy.heads)) != heads or \
                layer.get_submodule(anatomy.ffn_row_projection).out_features != intermediate:
            raise ValueError(f"layer {index} differs in shape from layer 0: an unpruned encoder is needed")
    return EncoderShape(len(layers), heads, head_size, intermediate)


bert_shape = encoder_shape


def head_context_module(layer: nn.Module, anatomy: Anatomy = BERT) -> nn.Module:
    """The module whose input is the attention context of every head, (batch, seq, H·d)."""
    return layer.get_submodule(anatomy.head_column_projection)


def ffn_activation_module(layer: nn.Module, anatomy: Anatomy = BERT) -> nn.Module:
    """The module whose output is the FFN activation after the activation function, (batch, seq, I)."""
    return layer.get_submodule(anatomy.ffn_activation)


def head_rows(heads: torch.Tensor, head_size: int) -> torch.Tensor:
    """The rows of the HEAD_ROW_PROJECTIONS (and columns of HEAD_COLUMN_PROJECTION) that belong to
    `heads` (1-D head indices), in their order: head h -> h·d .. (h+1)·d − 1."""
    return (heads[:, None] * head_size + torch.arange(head_size, device=heads.device)).flatten()


def check_target_substrings(target_substrings) -> Tuple[str, ...]:
    """`target_substrings` as a tuple of non-empty strings. TypeError for a single string (iterated,
    it would select every name containing one of its characters) and for anything but strings;
    ValueError when there are none or one is empty (it would select every parameter)."""
    example = list(PRUNABLE_SUBSTRINGS[:2])
    if isinstance(target_substrings, (str, bytes)):
        raise TypeError(f"target_substrings={target_substrings!r} is a single string, which would be read character "
                        f"by character; pass a list of substrings, e.g. [{target_substrings!r}]")
    try:
        substrings = tuple(target_substrings)
    except TypeError:
        raise TypeError(f"target_substrings={target_substrings!r} must be a list of substrings of parameter names, "
                        f"e.g. {example}") from None
    wrong = [item for item in substrings if not isinstance(item, str)]
    if wrong:
        raise TypeError(f"target_substrings holds {wrong[0]!r}, a {type(wrong[0]).__name__}; every entry must be a "
                        f"substring of parameter names (a str), e.g. {example}")
    if not substrings or "" in substrings:
        problem = "is empty" if not substrings else "holds an empty string, which matches every parameter"
        raise ValueError(f"target_substrings={list(substrings)!r} {problem}; pass substrings of the names of the "
                         f"parameters to prune, e.g. {example}")
    return substrings


def select_parameters(model: nn.Module, target_substrings: Sequence[str]) -> List[Tuple[str, nn.Parameter]]:
    """The named parameters whose name contains any of `target_substrings` (weights and biases);
    the model and `target_substrings` are checked first (`require_module`, `check_target_substrings`)."""
    require_module(model)
    substrings = check_target_substrings(target_substrings)
    return [(name, param) for name, param in model.named_parameters()
            if any(substring in name for substring in substrings)]


def layer_index(name: str) -> Optional[int]:
    """The first numeric component of a parameter name (encoder.layer.3.… -> 3), or None."""
    match = _LAYER_INDEX.search(name)
    return int(match.group(1)) if match else None


def module_type(name: str) -> str:
    """query/key/value/attention.output/intermediate/output for BERT names; otherwise the module
    path after the layer index, without .weight/.bias."""
    for substring, kind in _MODULE_TYPES:
        if substring in name:
            return kind
    module = name.rsplit(".", 1)[0]
    match = _LAYER_INDEX.search(module)
    return module[match.end():] if match and match.end() < len(module) else module
