"""PrunedBertConfig: BertConfig plus the heads and FFN neurons each layer keeps (and the same for the families
of BERT's layout: PrunedRobertaConfig, PrunedElectraConfig; and PrunedDistilBertConfig, PrunedDebertaV2Config).

Self-contained (imports only transformers): this file is copied next to every exported
structurally pruned model, whose config.json names it in `auto_map`, so that
`AutoModel.from_pretrained(directory, trust_remote_code=True)` works without the toolkit.
"""
from transformers import BertConfig, DebertaV2Config, DistilBertConfig, ElectraConfig, RobertaConfig

MODEL_TYPE = "pruned-bert"


class PerLayerSizes:
    """The per-layer kept heads and FFN sizes of a pruned config. `num_attention_heads` stays the
    original count so that the head size is still hidden_size / num_attention_heads;
    None for a per-layer list means unpruned (num_attention_heads / intermediate_size).

        layer_heads: list[int]               heads kept per layer
        layer_intermediate_sizes: list[int]  FFN neurons kept per layer
        add_pooling_layer: bool              whether the pooler exists
    """

    ffn_size_key = "intermediate_size"     # the config key of the unpruned FFN width

    def heads_per_layer(self) -> list[int]:
        """Kept heads of each layer, validated."""
        return self._per_layer("layer_heads", self.layer_heads, self.num_attention_heads)

    def intermediate_sizes(self) -> list[int]:
        """Kept FFN neurons of each layer, validated."""
        return self._per_layer("layer_intermediate_sizes", self.layer_intermediate_sizes,
                               getattr(self, self.ffn_size_key))

    def _per_layer(self, name: str, values: list[int] | None, full: int) -> list[int]:
        if values is None:
            return [full] * self.num_hidden_layers
        values = [int(v) for v in values]
        if len(values) != self.num_hidden_layers or any(not 0 <= v <= full for v in values):
            raise ValueError(f"{name} must list {self.num_hidden_layers} integers in 0..{full}, got {values}")
        return values


class PrunedBertConfig(PerLayerSizes, BertConfig):
    """BertConfig plus per-layer kept heads and FFN sizes (PerLayerSizes)."""

    model_type = MODEL_TYPE
    layer_heads: list[int] | None = None
    layer_intermediate_sizes: list[int] | None = None
    add_pooling_layer: bool = True


class PrunedRobertaConfig(PerLayerSizes, RobertaConfig):
    """RobertaConfig plus per-layer kept heads and FFN sizes (PerLayerSizes)."""

    model_type = "pruned-roberta"
    layer_heads: list[int] | None = None
    layer_intermediate_sizes: list[int] | None = None
    add_pooling_layer: bool = True


class PrunedElectraConfig(PerLayerSizes, ElectraConfig):
    """ElectraConfig plus per-layer kept heads and FFN sizes (PerLayerSizes); ELECTRA has no pooler."""

    model_type = "pruned-electra"
    layer_heads: list[int] | None = None
    layer_intermediate_sizes: list[int] | None = None
    add_pooling_layer: bool = False


class PrunedDistilBertConfig(PerLayerSizes, DistilBertConfig):
    """DistilBertConfig plus per-layer kept heads and FFN sizes (PerLayerSizes); DistilBERT has no pooler."""

    model_type = "pruned-distilbert"
    ffn_size_key = "hidden_dim"
    layer_heads: list[int] | None = None
    layer_intermediate_sizes: list[int] | None = None
    add_pooling_layer: bool = False


class PrunedDebertaV2Config(PerLayerSizes, DebertaV2Config):
    """DebertaV2Config plus per-layer kept heads and FFN sizes (PerLayerSizes); DeBERTa has no pooler."""

    model_type = "pruned-deberta-v2"
    layer_heads: list[int] | None = None
    layer_intermediate_sizes: list[int] | None = None
    add_pooling_layer: bool = False
