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

    import mt_dnn.structured                      # registers "pruned-bert" with AutoConfig/AutoModel
    from transformers import AutoModel
    model = AutoModel.from_pretrained(directory)  # -> PrunedBertModel

or `mt_dnn.structured.load(directory)`. Importing this module calls `register()`
(idempotent): that import is all a user of the exported model needs from the
toolkit, which is the usual pattern for custom transformers models.

A layer with every head removed keeps an empty context: its attention block adds
only the output projection's bias before the residual LayerNorm. A layer with
every FFN neuron removed likewise adds only output.dense's bias. Indicator
values other than 0 and 1 (an export before pruning finished) are folded into
the output projections' columns, so the export equals the masked model for any
indicator; units are removed only where the indicator is exactly 0.
"""
from __future__ import annotations

import warnings

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, BertConfig, BertModel

from pruners.anatomy import (FFN_COLUMN_PROJECTION, FFN_ROW_PROJECTION, HEAD_COLUMN_PROJECTION, HEAD_ROW_PROJECTIONS,
                             bert_shape, find_bert_model, head_rows)

MODEL_TYPE = "pruned-bert"


class PrunedBertConfig(BertConfig):
    """BertConfig plus per-layer kept heads and FFN sizes. `num_attention_heads` stays the
    original count so that the head size is still hidden_size / num_attention_heads;
    None for a per-layer list means unpruned (num_attention_heads / intermediate_size)."""

    model_type = MODEL_TYPE
    layer_heads: list[int] | None = None
    layer_intermediate_sizes: list[int] | None = None
    add_pooling_layer: bool = True

    def heads_per_layer(self) -> list[int]:
        """Kept heads of each layer, validated."""
        return self._per_layer("layer_heads", self.layer_heads, self.num_attention_heads)

    def intermediate_sizes(self) -> list[int]:
        """Kept FFN neurons of each layer, validated."""
        return self._per_layer("layer_intermediate_sizes", self.layer_intermediate_sizes, self.intermediate_size)

    def _per_layer(self, name: str, values: list[int] | None, full: int) -> list[int]:
        if values is None:
            return [full] * self.num_hidden_layers
        values = [int(v) for v in values]
        if len(values) != self.num_hidden_layers or any(not 0 <= v <= full for v in values):
            raise ValueError(f"{name} must list {self.num_hidden_layers} integers in 0..{full}, got {values}")
        return values


class HeadlessSelfAttention(nn.Module):
    """Self-attention of a layer whose heads were all removed: the context is empty,
    (batch, seq, 0), so attention.output.dense (0 inputs) contributes only its bias."""

    def __init__(self, head_size: int):
        super().__init__()
        self.num_attention_heads = 0
        self.attention_head_size = head_size
        self.all_head_size = 0

    def forward(self, hidden_states: torch.Tensor, *args, **kwargs):
        return hidden_states.new_zeros(*hidden_states.shape[:-1], 0), None


def _linear(in_features: int, out_features: int) -> nn.Linear:
    with warnings.catch_warnings():  # an emptied layer has zero-element weights; their init is a no-op
        warnings.filterwarnings("ignore", message="Initializing zero-element tensors is a no-op")
        return nn.Linear(in_features, out_features)


def _resize_layer(layer: nn.Module, heads: int, intermediate: int, hidden: int, head_size: int) -> None:
    """Replace the projections of one BertLayer by ones of the kept sizes (initialised by
    post_init; loading or export overwrites them)."""
    width = heads * head_size
    attention = layer.attention.self
    if heads == 0:
        layer.attention.self = HeadlessSelfAttention(head_size)
    else:
        for projection in HEAD_ROW_PROJECTIONS:
            layer.set_submodule(projection, _linear(hidden, width))
        attention.num_attention_heads = heads
        attention.all_head_size = width
    layer.set_submodule(HEAD_COLUMN_PROJECTION, _linear(width, hidden))
    layer.set_submodule(FFN_ROW_PROJECTION, _linear(hidden, intermediate))
    layer.set_submodule(FFN_COLUMN_PROJECTION, _linear(intermediate, hidden))


class PrunedBertModel(BertModel):
    """A BertModel whose layers keep `config.layer_heads[l]` heads and
    `config.layer_intermediate_sizes[l]` FFN neurons. Same forward and outputs as BertModel."""

    config_class = PrunedBertConfig
    config: PrunedBertConfig

    def __init__(self, config: PrunedBertConfig, add_pooling_layer: bool | None = None):
        if add_pooling_layer is None:
            add_pooling_layer = config.add_pooling_layer
        super().__init__(config, add_pooling_layer=add_pooling_layer)
        head_size = config.hidden_size // config.num_attention_heads
        for layer, heads, intermediate in zip(self.encoder.layer, config.heads_per_layer(),
                                              config.intermediate_sizes()):
            _resize_layer(layer, heads, intermediate, config.hidden_size, head_size)
        # the resized projections are new modules: give them the model's initialisation too
        self.post_init()


def register() -> None:
    """Register PrunedBertConfig/PrunedBertModel under model_type 'pruned-bert' with
    AutoConfig and AutoModel (idempotent; called when this module is imported)."""
    AutoConfig.register(MODEL_TYPE, PrunedBertConfig, exist_ok=True)
    AutoModel.register(PrunedBertConfig, PrunedBertModel, exist_ok=True)


register()


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
    """Write config.json + model.safetensors loadable by `load` or AutoModel (after import)."""
    model.save_pretrained(directory)


def load(directory: str, **kwargs) -> PrunedBertModel:
    """Load an exported model; kwargs go to `from_pretrained` (e.g. dtype, device_map)."""
    register()
    return PrunedBertModel.from_pretrained(directory, **kwargs)


def count_parameters(module: nn.Module) -> int:
    """Number of parameter entries (shared parameters counted once)."""
    return sum(p.numel() for p in module.parameters())
