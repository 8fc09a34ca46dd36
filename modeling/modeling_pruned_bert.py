"""PrunedBertModel and PrunedBertForSequenceClassification: BERT with per-layer head and FFN sizes, and the
same for the families of BERT's layout (PrunedRobertaModel, PrunedElectraModel and their
*ForSequenceClassification, whose heads are the stock RoBERTa and ELECTRA ones), and for DistilBERT
(PrunedDistilBertModel: q_lin/k_lin/v_lin/out_lin, ffn.lin1/lin2) and DeBERTa-v2/v3 (PrunedDebertaV2Model:
query_proj/key_proj/value_proj, whose relative-position projections are those of the kept heads as long as
share_att_key holds, as in every v3 checkpoint).

Self-contained (imports only torch, transformers and its sibling configuration_pruned_bert.py):
this file is copied next to every exported structurally pruned model, whose config.json names it in
`auto_map`, so that `AutoModel.from_pretrained(directory, trust_remote_code=True)` (and
AutoModelForSequenceClassification, pipeline("text-classification", ..., trust_remote_code=True))
load the model without the toolkit. Inside the toolkit, `modeling.structured` registers the same
classes with the Auto classes, so `import modeling.structured; AutoModel.from_pretrained(directory)`
works without trust_remote_code.

A layer with every head removed keeps an empty context: its attention block adds only the output
projection's bias before the residual LayerNorm. A layer with every FFN neuron removed likewise adds
only output.dense's bias.
"""
import warnings

import torch
from torch import nn
from transformers import (BertForSequenceClassification, BertModel, DebertaV2ForSequenceClassification, DebertaV2Model,
                          DistilBertForSequenceClassification, DistilBertModel, ElectraForSequenceClassification,
                          ElectraModel, RobertaForSequenceClassification, RobertaModel)

from .configuration_pruned_bert import (PrunedBertConfig, PrunedDebertaV2Config, PrunedDistilBertConfig,
                                        PrunedElectraConfig, PrunedRobertaConfig)

# where a BertLayer's per-head and per-neuron projections are (the toolkit's pruners/anatomy.py names them too)
HEAD_ROW_PROJECTIONS = ("attention.self.query", "attention.self.key", "attention.self.value")
HEAD_COLUMN_PROJECTION = "attention.output.dense"
FFN_ROW_PROJECTION = "intermediate.dense"
FFN_COLUMN_PROJECTION = "output.dense"


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


class FirstTokenPooler(nn.Module):
    """The [CLS] hidden state itself: what a model without a pooling layer classifies."""

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return hidden_states[:, 0]


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


def _resize_layers(model, layers=None, resize=_resize_layer) -> None:
    """Resize every layer of a model (BERT's layout unless `layers` and `resize` say otherwise) to its config's
    kept heads and FFN neurons, and give the new projections the model's initialisation (loading or export
    overwrites them)."""
    config = model.config
    head_size = config.hidden_size // config.num_attention_heads
    for layer, heads, intermediate in zip(model.encoder.layer if layers is None else layers,
                                          config.heads_per_layer(), config.intermediate_sizes()):
        resize(layer, heads, intermediate, config.hidden_size, head_size)
    model.post_init()


class PrunedBertModel(BertModel):
    """A BertModel whose layers keep `config.layer_heads[l]` heads and
    `config.layer_intermediate_sizes[l]` FFN neurons. Same forward and outputs as BertModel."""

    config_class = PrunedBertConfig
    config: PrunedBertConfig

    def __init__(self, config: PrunedBertConfig, add_pooling_layer: bool | None = None):
        if add_pooling_layer is None:
            add_pooling_layer = config.add_pooling_layer
        super().__init__(config, add_pooling_layer=add_pooling_layer)
        _resize_layers(self)


class PrunedRobertaModel(RobertaModel):
    """A RobertaModel with per-layer kept heads and FFN neurons (as PrunedBertModel)."""

    config_class = PrunedRobertaConfig
    config: PrunedRobertaConfig

    def __init__(self, config: PrunedRobertaConfig, add_pooling_layer: bool | None = None):
        if add_pooling_layer is None:
            add_pooling_layer = config.add_pooling_layer
        super().__init__(config, add_pooling_layer=add_pooling_layer)
        _resize_layers(self)


class PrunedElectraModel(ElectraModel):
    """An ElectraModel with per-layer kept heads and FFN neurons (as PrunedBertModel)."""

    config_class = PrunedElectraConfig
    config: PrunedElectraConfig

    def __init__(self, config: PrunedElectraConfig):
        super().__init__(config)
        _resize_layers(self)


class PrunedBertForSequenceClassification(BertForSequenceClassification):
    """BertForSequenceClassification on a PrunedBertModel: dropout and a linear classifier on the
    pooler output, or on the [CLS] hidden state when the model has no pooling layer."""

    config_class = PrunedBertConfig
    config: PrunedBertConfig

    def __init__(self, config: PrunedBertConfig):
        super().__init__(config)
        self.bert = PrunedBertModel(config)
        if self.bert.pooler is None:
            self.bert.pooler = FirstTokenPooler()
        self.post_init()


class PrunedRobertaForSequenceClassification(RobertaForSequenceClassification):
    """RobertaForSequenceClassification on a PrunedRobertaModel (without pooler: the stock head's
    classifier.dense and tanh are where the toolkit's model keeps its pooler)."""

    config_class = PrunedRobertaConfig
    config: PrunedRobertaConfig

    def __init__(self, config: PrunedRobertaConfig):
        super().__init__(config)
        self.roberta = PrunedRobertaModel(config, add_pooling_layer=False)
        self.post_init()


class PrunedElectraForSequenceClassification(ElectraForSequenceClassification):
    """ElectraForSequenceClassification on a PrunedElectraModel (the stock head: dense, GELU, out_proj)."""

    config_class = PrunedElectraConfig
    config: PrunedElectraConfig

    def __init__(self, config: PrunedElectraConfig):
        super().__init__(config)
        self.electra = PrunedElectraModel(config)
        self.post_init()


class HeadlessDistilBertAttention(nn.Module):
    """DistilBERT attention without heads: only out_lin's bias (out_lin has 0 inputs)."""

    def __init__(self, dim: int, head_size: int):
        super().__init__()
        self.n_heads = 0
        self.attention_head_size = head_size
        self.out_lin = _linear(0, dim)

    def forward(self, hidden_states: torch.Tensor, *args, **kwargs):
        return self.out_lin(hidden_states.new_zeros(*hidden_states.shape[:-1], 0)), None


def _resize_distilbert_layer(layer: nn.Module, heads: int, intermediate: int, dim: int, head_size: int) -> None:
    """A DistilBERT TransformerBlock with `heads` heads (q_lin/k_lin/v_lin rows, out_lin columns) and
    `intermediate` FFN neurons (ffn.lin1 rows, ffn.lin2 columns)."""
    width = heads * head_size
    if heads == 0:
        layer.attention = HeadlessDistilBertAttention(dim, head_size)
    else:
        for projection in ("q_lin", "k_lin", "v_lin"):
            setattr(layer.attention, projection, _linear(dim, width))
        layer.attention.out_lin = _linear(width, dim)
        layer.attention.n_heads = heads
    layer.ffn.lin1 = _linear(dim, intermediate)
    layer.ffn.lin2 = _linear(intermediate, dim)


def _resize_deberta_layer(layer: nn.Module, heads: int, intermediate: int, hidden: int, head_size: int) -> None:
    """A DeBERTa-v2 layer with `heads` heads (query_proj/key_proj/value_proj rows, attention.output.dense
    columns; share_att_key: the relative-position projections are these) and `intermediate` FFN neurons."""
    width = heads * head_size
    attention = layer.attention.self
    if heads == 0:
        layer.attention.self = HeadlessSelfAttention(head_size)
    else:
        for projection in ("query_proj", "key_proj", "value_proj"):
            setattr(attention, projection, _linear(hidden, width))
        attention.num_attention_heads = heads
        attention.all_head_size = width
    layer.set_submodule("attention.output.dense", _linear(width, hidden))
    layer.set_submodule("intermediate.dense", _linear(hidden, intermediate))
    layer.set_submodule("output.dense", _linear(intermediate, hidden))


class PrunedDistilBertModel(DistilBertModel):
    """A DistilBertModel with per-layer kept heads and FFN neurons (as PrunedBertModel)."""

    config_class = PrunedDistilBertConfig
    config: PrunedDistilBertConfig

    def __init__(self, config: PrunedDistilBertConfig):
        super().__init__(config)
        _resize_layers(self, self.transformer.layer, _resize_distilbert_layer)


class PrunedDebertaV2Model(DebertaV2Model):
    """A DebertaV2Model with per-layer kept heads and FFN neurons (as PrunedBertModel); needs share_att_key
    (or no relative attention) so that the kept heads' relative-position projections are their key/query ones."""

    config_class = PrunedDebertaV2Config
    config: PrunedDebertaV2Config

    def __init__(self, config: PrunedDebertaV2Config):
        if getattr(config, "relative_attention", False) and not getattr(config, "share_att_key", False):
            raise ValueError("a pruned DeBERTa needs share_att_key=True (every DeBERTa-v3 checkpoint has it)")
        super().__init__(config)
        _resize_layers(self, self.encoder.layer, _resize_deberta_layer)


class PrunedDistilBertForSequenceClassification(DistilBertForSequenceClassification):
    """DistilBertForSequenceClassification on a PrunedDistilBertModel (pre_classifier, ReLU, classifier)."""

    config_class = PrunedDistilBertConfig
    config: PrunedDistilBertConfig

    def __init__(self, config: PrunedDistilBertConfig):
        super().__init__(config)
        self.distilbert = PrunedDistilBertModel(config)
        self.post_init()


class PrunedDebertaV2ForSequenceClassification(DebertaV2ForSequenceClassification):
    """DebertaV2ForSequenceClassification on a PrunedDebertaV2Model (its ContextPooler, classifier)."""

    config_class = PrunedDebertaV2Config
    config: PrunedDebertaV2Config

    def __init__(self, config: PrunedDebertaV2Config):
        super().__init__(config)
        self.deberta = PrunedDebertaV2Model(config)
        self.post_init()
