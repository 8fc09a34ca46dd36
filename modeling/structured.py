"""Exporting a structurally pruned encoder (GPP) as a smaller model that loads with AutoModel.

BERT is described below; RoBERTa and ELECTRA share its layout and get the same export as
PrunedRobertaConfig/PrunedRobertaModel ("pruned-roberta") and PrunedElectraConfig/PrunedElectraModel
("pruned-electra"); DistilBERT ("pruned-distilbert") and DeBERTa-v2/v3 ("pruned-deberta-v2") resize their
own projections; all in the same two files. A family names its pruned classes in modeling.families
(`Family.pruned`); a family without them has no structured export: the masked model (with its pruned units
folded into the weights as zeros) is what it keeps.

Heads whose indicator is 0 are removed (their rows of query/key/value and columns
of attention.output.dense), and so are FFN neurons whose indicator is 0 (rows of
intermediate.dense, columns of output.dense) (docs/METHODS.md §2). Every layer
may keep a different number of heads and neurons, which BertConfig cannot
describe, hence a small registered config and model class:

    PrunedBertConfig(BertConfig)   model_type "pruned-bert", plus
                                   layer_heads: list[int]               heads kept per layer
                                   layer_intermediate_sizes: list[int]  FFN neurons kept per layer
                                   add_pooling_layer: bool              whether the pooler exists
    PrunedBertModel(BertModel)     BertModel with its layers resized at construction, so its
                                   state-dict keys are BertModel's and from_pretrained loads the
                                   sliced safetensors directly

Loading an exported directory:

    import modeling.structured                      # registers "pruned-bert" with AutoConfig/AutoModel
    from transformers import AutoModel
    model = AutoModel.from_pretrained(directory)  # -> PrunedBertModel

or `modeling.structured.load(directory)`. Importing this module calls `register()`
(idempotent). Without the toolkit, the directory carries its own modeling code
(configuration_pruned_bert.py and modeling_pruned_bert.py, which import only torch
and transformers, named in config.json's `auto_map`: transformers' convention for
custom models):

    AutoModel.from_pretrained(directory, trust_remote_code=True)

The classes themselves live in those two files of this package; this module
re-exports them and holds the export.

A layer with every head removed keeps an empty context: its attention block adds
only the output projection's bias before the residual LayerNorm. A layer with
every FFN neuron removed likewise adds only output.dense's bias. Indicator
values other than 0 and 1 (an export before pruning finished) are folded into
the output projections' columns, so the export equals the masked model for any
indicator; units are removed only where the indicator is exactly 0.
"""
from __future__ import annotations

import json
import os
import shutil

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification

from data_utils.errors import UserError
from modeling import configuration_pruned_bert, modeling_pruned_bert
from modeling.configuration_pruned_bert import MODEL_TYPE, PrunedBertConfig
from modeling.families import PRUNED, family_of, is_pruned_export
from modeling.modeling_pruned_bert import (FirstTokenPooler, HeadlessSelfAttention, PrunedBertForSequenceClassification,
                                         PrunedBertModel)
from pruners.anatomy import encoder_shape, find_encoder, head_rows

__all__ = ["MODEL_TYPE", "PrunedBertConfig", "PrunedBertModel", "PrunedBertForSequenceClassification",
           "HeadlessSelfAttention", "FirstTokenPooler", "register", "add_remote_code", "export_pruned_encoder",
           "save", "load", "count_parameters", "parameter_counts"]

# The self-contained files (torch + transformers only) copied next to an exported model, and the
# Auto classes its config.json's `auto_map` points at them (transformers' convention for custom code).
REMOTE_CODE_FILES = ("configuration_pruned_bert.py", "modeling_pruned_bert.py")


def auto_map(model_type: str) -> dict:
    """config.json's `auto_map` of a pruned export of this model_type ('pruned-bert', ...)."""
    pruned = PRUNED[model_type].pruned
    return {"AutoConfig": f"configuration_pruned_bert.{pruned.config_class}",
            "AutoModel": f"modeling_pruned_bert.{pruned.model_class}",
            "AutoModelForSequenceClassification": f"modeling_pruned_bert.{pruned.classification_class}"}


AUTO_MAP = auto_map(MODEL_TYPE)


def register() -> None:
    """Register every family's pruned config, model and sequence-classification model ('pruned-bert':
    PrunedBertConfig, PrunedBertModel, PrunedBertForSequenceClassification, ...) with AutoConfig, AutoModel
    and AutoModelForSequenceClassification (idempotent; called when this module is imported)."""
    for model_type, family in PRUNED.items():
        config_class = getattr(configuration_pruned_bert, family.pruned.config_class)
        AutoConfig.register(model_type, config_class, exist_ok=True)
        AutoModel.register(config_class, getattr(modeling_pruned_bert, family.pruned.model_class), exist_ok=True)
        AutoModelForSequenceClassification.register(
            config_class, getattr(modeling_pruned_bert, family.pruned.classification_class), exist_ok=True)


register()


def add_remote_code(directory: str) -> None:
    """Make a saved pruned-bert directory loadable without the toolkit: copy the modeling code into it
    and point config.json's `auto_map` at it (`trust_remote_code=True` then loads it anywhere)."""
    here = os.path.dirname(os.path.abspath(__file__))
    for name in REMOTE_CODE_FILES:
        shutil.copyfile(os.path.join(here, name), os.path.join(directory, name))
    path = os.path.join(directory, "config.json")
    with open(path, encoding="utf-8") as handle:
        config = json.load(handle)
    config["auto_map"] = auto_map(config["model_type"])
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(config, handle, indent=2, sort_keys=True)
        handle.write("\n")


# ---------------------------------------------------------------------------
# Export


def _kept(indicator_row: torch.Tensor) -> torch.Tensor:
    return torch.nonzero(indicator_row != 0, as_tuple=False).flatten()


def _check_indicator(name: str, indicator: torch.Tensor | None, shape: tuple[int, int]) -> torch.Tensor:
    if indicator is None:
        return torch.ones(shape)
    indicator = indicator.detach().float().cpu()
    if tuple(indicator.shape) != shape:
        raise ValueError(f"{name} must have shape {shape} (layers, units), got {tuple(indicator.shape)}")
    return indicator


@torch.no_grad()
def pruned_classes(encoder: nn.Module):
    """(config class, model class) of the structured export of `encoder`'s family; a one-line UserError
    for an export, an unsupported family or a family without a structured export."""
    config = getattr(encoder, "config", None)
    family = family_of(config, f"the {type(encoder).__name__} encoder")
    if is_pruned_export(config):
        raise UserError(f"the {type(encoder).__name__} encoder is already a structured export; export the masked "
                        "model it came from")
    if getattr(config, "relative_attention", False) and not getattr(config, "share_att_key", True):
        raise UserError(f"model type {family.model_type!r} with share_att_key false has relative-position "
                        "projections of its own per head, which the structured export does not slice yet; its masked "
                        "model, with the pruned units as zeros in the weights, is the result")
    if family.pruned is None:
        with_export = ", ".join(model_type.removeprefix("pruned-") for model_type in PRUNED)
        raise UserError(f"model type {family.model_type!r} has no structured export yet (families with one: "
                        f"{with_export}); its masked model, with the pruned units as zeros in the weights, is the "
                        "result")
    return (getattr(configuration_pruned_bert, family.pruned.config_class),
            getattr(modeling_pruned_bert, family.pruned.model_class))


@torch.no_grad()
def export_pruned_encoder(encoder: nn.Module, head_indicator: torch.Tensor | None = None,
                          ffn_indicator: torch.Tensor | None = None) -> nn.Module:
    """A new PrunedBertModel (PrunedRobertaModel, ...: the encoder family's) computing what `encoder`
    computes with heads masked by `head_indicator` (L × H) and FFN neurons by `ffn_indicator` (L × I);
    None keeps all.

    `encoder` is a transformers model of a family with a structured export (modeling.families; BertModel,
    RobertaModel, ElectraModel), or an MTDNNModel holding one; it is not modified. The result is on the
    encoder's device and dtype, in eval mode. Units with indicator exactly 0 are removed; other values are
    folded into the output projections' columns (exact for the 0/1 indicators of a finished GPP run).
    """
    inner = getattr(encoder, "encoder", None)
    model = encoder if hasattr(encoder, "config") or not isinstance(inner, nn.Module) else inner
    config_class, model_class = pruned_classes(model)
    anatomy = family_of(model.config).anatomy
    bert = find_encoder(model, anatomy)
    num_layers, num_heads, head_size, intermediate = encoder_shape(bert, anatomy)
    heads = _check_indicator("head_indicator", head_indicator, (num_layers, num_heads))
    neurons = _check_indicator("ffn_indicator", ffn_indicator, (num_layers, intermediate))
    kept_heads = [_kept(row) for row in heads]
    kept_neurons = [_kept(row) for row in neurons]

    settings = bert.config.to_dict()
    for key in ("model_type", "architectures", "transformers_version", "_name_or_path", "dtype", "torch_dtype"):
        settings.pop(key, None)
    config = config_class(**settings, layer_heads=[len(k) for k in kept_heads],
                          layer_intermediate_sizes=[len(k) for k in kept_neurons],
                          add_pooling_layer=getattr(bert, "pooler", None) is not None)
    config._attn_implementation = bert.config._attn_implementation
    pruned = model_class(config)

    state = {key: value.detach().float().cpu() for key, value in bert.state_dict().items()}
    for index in range(num_layers):
        prefix = f"{anatomy.layers}.{index}."
        rows = head_rows(kept_heads[index], head_size)  # of the kept heads in q/k/v
        for projection in anatomy.head_row_projections:
            for kind in ("weight", "bias"):
                key = f"{prefix}{projection}.{kind}"
                if len(rows) == 0:
                    del state[key]  # HeadlessSelfAttention has no projections
                else:
                    state[key] = state[key][rows]
        head_scale = heads[index][kept_heads[index]].repeat_interleave(head_size)  # (kept·d,)
        key = f"{prefix}{anatomy.head_column_projection}.weight"
        state[key] = state[key][:, rows] * head_scale
        kept = kept_neurons[index]
        for kind in ("weight", "bias"):
            key = f"{prefix}{anatomy.ffn_row_projection}.{kind}"
            state[key] = state[key][kept]
        key = f"{prefix}{anatomy.ffn_column_projection}.weight"
        state[key] = state[key][:, kept] * neurons[index][kept]
    pruned.load_state_dict(state, strict=True)
    reference = next(bert.parameters())
    return pruned.to(device=reference.device, dtype=reference.dtype).eval()


def save(model: nn.Module, directory: str) -> None:
    """Write config.json + model.safetensors, with the modeling code (`add_remote_code`): loadable by
    `load`, by AutoModel after `import modeling.structured`, or anywhere with trust_remote_code=True."""
    model.save_pretrained(directory)
    add_remote_code(directory)


def load(directory: str, **kwargs) -> nn.Module:
    """Load an exported model (PrunedBertModel, PrunedRobertaModel, ...); kwargs go to `from_pretrained`
    (e.g. dtype, device_map)."""
    register()
    return AutoModel.from_pretrained(directory, **kwargs)


def count_parameters(module: nn.Module) -> int:
    """Number of parameter entries (shared parameters counted once)."""
    return sum(p.numel() for p in module.parameters())


def parameter_counts(module: nn.Module) -> dict:
    """Parameter entries of an encoder by part: `total`, `encoder_layers` (the transformer layers:
    attention and FFN, what pruning removes), `embeddings` and `pooler` (never pruned)."""
    inner = getattr(module, "encoder", None)
    config = getattr(module, "config", None) or getattr(inner, "config", None)
    anatomy = family_of(config).anatomy
    bert = find_encoder(module, anatomy)
    pooler = getattr(bert, "pooler", None)
    return {"total": count_parameters(module),
            "encoder_layers": count_parameters(bert.get_submodule(anatomy.layers)),
            "embeddings": count_parameters(bert.embeddings),
            "pooler": count_parameters(pooler) if pooler is not None else 0}
