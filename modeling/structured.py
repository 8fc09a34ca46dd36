"""Exporting a structurally pruned BERT (GPP) as a smaller model that loads with AutoModel.

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
from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification, BertModel

from modeling.configuration_pruned_bert import MODEL_TYPE, PrunedBertConfig
from modeling.modeling_pruned_bert import (FirstTokenPooler, HeadlessSelfAttention, PrunedBertForSequenceClassification,
                                         PrunedBertModel)
from pruners.anatomy import (FFN_COLUMN_PROJECTION, FFN_ROW_PROJECTION, HEAD_COLUMN_PROJECTION, HEAD_ROW_PROJECTIONS,
                             bert_shape, find_bert_model, head_rows)

__all__ = ["MODEL_TYPE", "PrunedBertConfig", "PrunedBertModel", "PrunedBertForSequenceClassification",
           "HeadlessSelfAttention", "FirstTokenPooler", "register", "add_remote_code", "export_pruned_encoder",
           "save", "load", "count_parameters", "parameter_counts"]

# The self-contained files (torch + transformers only) copied next to an exported model, and the
# Auto classes its config.json's `auto_map` points at them (transformers' convention for custom code).
REMOTE_CODE_FILES = ("configuration_pruned_bert.py", "modeling_pruned_bert.py")
AUTO_MAP = {"AutoConfig": "configuration_pruned_bert.PrunedBertConfig",
            "AutoModel": "modeling_pruned_bert.PrunedBertModel",
            "AutoModelForSequenceClassification": "modeling_pruned_bert.PrunedBertForSequenceClassification"}


def register() -> None:
    """Register PrunedBertConfig/PrunedBertModel/PrunedBertForSequenceClassification under model_type
    'pruned-bert' with AutoConfig, AutoModel and AutoModelForSequenceClassification (idempotent; called
    when this module is imported)."""
    AutoConfig.register(MODEL_TYPE, PrunedBertConfig, exist_ok=True)
    AutoModel.register(PrunedBertConfig, PrunedBertModel, exist_ok=True)
    AutoModelForSequenceClassification.register(PrunedBertConfig, PrunedBertForSequenceClassification,
                                                exist_ok=True)


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
    config["auto_map"] = dict(AUTO_MAP)
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
def export_pruned_encoder(encoder: nn.Module, head_indicator: torch.Tensor | None = None,
                          ffn_indicator: torch.Tensor | None = None) -> PrunedBertModel:
    """A new PrunedBertModel computing what `encoder` computes with heads masked by
    `head_indicator` (L × H) and FFN neurons by `ffn_indicator` (L × I); None keeps all.

    `encoder` is a transformers BertModel or a module containing one (e.g. the toolkit's
    MTDNNModel); it is not modified. The result is on the encoder's device and dtype, in
    eval mode. Units with indicator exactly 0 are removed; other values are folded into
    the output projections' columns (exact for the 0/1 indicators of a finished GPP run).
    """
    bert = find_bert_model(encoder)
    if not isinstance(bert, BertModel) or isinstance(bert, PrunedBertModel):
        raise ValueError(f"export needs an unpruned transformers BertModel, got {type(bert).__name__}")
    num_layers, num_heads, head_size, intermediate = bert_shape(bert)
    heads = _check_indicator("head_indicator", head_indicator, (num_layers, num_heads))
    neurons = _check_indicator("ffn_indicator", ffn_indicator, (num_layers, intermediate))
    kept_heads = [_kept(row) for row in heads]
    kept_neurons = [_kept(row) for row in neurons]

    settings = bert.config.to_dict()
    for key in ("model_type", "architectures", "transformers_version", "_name_or_path", "dtype", "torch_dtype"):
        settings.pop(key, None)
    config = PrunedBertConfig(**settings, layer_heads=[len(k) for k in kept_heads],
                              layer_intermediate_sizes=[len(k) for k in kept_neurons],
                              add_pooling_layer=bert.pooler is not None)
    config._attn_implementation = bert.config._attn_implementation
    pruned = PrunedBertModel(config)

    state = {key: value.detach().float().cpu() for key, value in bert.state_dict().items()}
    for index in range(num_layers):
        prefix = f"encoder.layer.{index}."
        rows = head_rows(kept_heads[index], head_size)  # of the kept heads in q/k/v
        for projection in HEAD_ROW_PROJECTIONS:
            for kind in ("weight", "bias"):
                key = f"{prefix}{projection}.{kind}"
                if len(rows) == 0:
                    del state[key]  # HeadlessSelfAttention has no projections
                else:
                    state[key] = state[key][rows]
        head_scale = heads[index][kept_heads[index]].repeat_interleave(head_size)  # (kept·d,)
        key = f"{prefix}{HEAD_COLUMN_PROJECTION}.weight"
        state[key] = state[key][:, rows] * head_scale
        kept = kept_neurons[index]
        for kind in ("weight", "bias"):
            key = f"{prefix}{FFN_ROW_PROJECTION}.{kind}"
            state[key] = state[key][kept]
        key = f"{prefix}{FFN_COLUMN_PROJECTION}.weight"
        state[key] = state[key][:, kept] * neurons[index][kept]
    pruned.load_state_dict(state, strict=True)
    reference = next(bert.parameters())
    return pruned.to(device=reference.device, dtype=reference.dtype).eval()


def save(model: PrunedBertModel, directory: str) -> None:
    """Write config.json + model.safetensors, with the modeling code (`add_remote_code`): loadable by
    `load`, by AutoModel after `import modeling.structured`, or anywhere with trust_remote_code=True."""
    model.save_pretrained(directory)
    add_remote_code(directory)


def load(directory: str, **kwargs) -> PrunedBertModel:
    """Load an exported model; kwargs go to `from_pretrained` (e.g. dtype, device_map)."""
    register()
    return PrunedBertModel.from_pretrained(directory, **kwargs)


def count_parameters(module: nn.Module) -> int:
    """Number of parameter entries (shared parameters counted once)."""
    return sum(p.numel() for p in module.parameters())


def parameter_counts(module: nn.Module) -> dict:
    """Parameter entries of a BERT encoder by part: `total`, `encoder_layers` (the transformer layers:
    attention and FFN, what pruning removes), `embeddings` and `pooler` (never pruned)."""
    bert = find_bert_model(module)
    pooler = getattr(bert, "pooler", None)
    return {"total": count_parameters(module),
            "encoder_layers": count_parameters(bert.encoder),
            "embeddings": count_parameters(bert.embeddings),
            "pooler": count_parameters(pooler) if pooler is not None else 0}
