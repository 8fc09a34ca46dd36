"""BERT's anatomy, in one place: where the heads and FFN neurons are, and which parameters prune.

Everything in the toolkit that needs to know how a BERT-family encoder is laid
out (the pruners, the sparsity report, the structured export and its benchmark)
asks this module:

    find_bert_model(model)        the BertModel-like module inside `model`
    bert_shape(bert)              BertShape(layers L, heads H, head_size d, intermediate I)
    PRUNABLE_SUBSTRINGS           names of the parameters unstructured pruning selects
    select_parameters(model, substrings)        (check_target_substrings: refuses a plain string, an empty list)
    head_context_module(layer)    the module whose *input* is the per-head context (batch, seq, H·d)
    ffn_activation_module(layer)  the module whose *output* is the FFN activation (batch, seq, I)
    HEAD_ROW_PROJECTIONS          projections with one block of d rows per head (query, key, value)
    head_rows(heads, head_size)   the rows of those projections (columns of HEAD_COLUMN_PROJECTION) of some heads
    HEAD_COLUMN_PROJECTION        the projection with one block of d columns per head
    FFN_ROW_PROJECTION, FFN_COLUMN_PROJECTION   the FFN's rows (intermediate) and columns (output)
    layer_index(name), module_type(name)        how the report groups parameter names

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

_LAYER_INDEX = re.compile(r"(?:^|\.)(\d+)(?:\.|$)")
_MODULE_TYPES = (        # first match wins: attention.output.dense also contains output.dense
    ("attention.self.query", "query"), ("attention.self.key", "key"), ("attention.self.value", "value"),
    ("attention.output.dense", "attention.output"), ("intermediate.dense", "intermediate"),
    ("output.dense", "output"),
)


class BertShape(NamedTuple):
    """The unit counts of an unpruned BERT encoder."""
    layers: int
    heads: int
    head_size: int
    intermediate: int


def is_bert_layer(layer: nn.Module) -> bool:
    attention = getattr(layer, "attention", None)
    return (hasattr(attention, "self") and hasattr(getattr(attention, "output", None), "dense")
            and hasattr(layer, "intermediate") and hasattr(getattr(layer, "output", None), "dense"))


def find_bert_model(model: nn.Module) -> nn.Module:
    """The BERT-family encoder inside `model` (the module itself or the first submodule
    that has `.encoder.layer[i].attention.self/.attention.output.dense/.intermediate/.output.dense`)."""
    require_module(model, " holding a BERT-family encoder")
    for module in model.modules():
        layers = getattr(getattr(module, "encoder", None), "layer", None)
        if isinstance(layers, nn.ModuleList) and len(layers) > 0 and all(is_bert_layer(layer) for layer in layers):
            return module
    raise ValueError(f"no BERT-family encoder (with .encoder.layer[i].attention.self, .attention.output.dense, "
                     f".intermediate, .output.dense) found in {type(model).__name__}")


def require_module(model, holding: str = "") -> None:
    """TypeError unless `model` is an nn.Module (a dict of weights, say, would fail later in torch's words)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module{holding}, not a {type(model).__name__}")


def bert_shape(bert: nn.Module) -> BertShape:
    """(layers L, heads per layer H, head size d, FFN neurons per layer I) of an unpruned BERT encoder."""
    layers = bert.encoder.layer
    attention = layers[0].attention.self
    heads, head_size = attention.num_attention_heads, attention.attention_head_size
    intermediate = layers[0].intermediate.dense.out_features
    for index, layer in enumerate(layers):
        if layer.attention.self.num_attention_heads != heads or layer.intermediate.dense.out_features != intermediate:
            raise ValueError(f"layer {index} differs in shape from layer 0: an unpruned encoder is needed")
    return BertShape(len(layers), heads, head_size, intermediate)


def head_context_module(layer: nn.Module) -> nn.Module:
    """The module whose input is the attention context of every head, (batch, seq, H·d)."""
    return layer.attention.output.dense


def ffn_activation_module(layer: nn.Module) -> nn.Module:
    """The module whose output is the FFN activation after the activation function, (batch, seq, I)."""
    return layer.intermediate


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
