"""What the toolkit knows of one encoder family: a `Family`, one per module of this package.

A family is keyed by `config.model_type` and says
- `anatomy`: where its layers, heads and FFN neurons are (a pruners.anatomy.Anatomy, handed to the pruners);
- `input_names`: which of the toolkit's (input_ids, token_type_ids, attention_mask) its model takes;
- `dropout_keys`: the config keys of its hidden and attention dropout (--dropout_p sets them);
- its stock sequence-classification class (`classification_class`, its base model's attribute
  `key_prefix`) and how the toolkit's task head maps onto that class's head (`head_*` below), so that
  `hf/<task>/` gives the toolkit's logits exactly;
- the classes of its physically smaller export (`pruned`), when it has one.

How the toolkit classifies (modeling.heads.TaskHead), per family:
- `uses_pooler`: the task head reads the encoder's pooler output (BERT: tanh(dense([CLS]))), and the
  stock head's dense layer, if it has one (`head_dense_key`, RoBERTa's classifier.dense), is that pooler;
- otherwise the task head is the stock head itself: dense, `head_activation`, linear on the [CLS] state
  (ELECTRA, DistilBERT, DeBERTa), its dense written to `head_dense_key`;
- the task head's last linear layer is written to `head_proj_key`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from pruners.anatomy import Anatomy

INPUT_NAMES = ("input_ids", "token_type_ids", "attention_mask")    # what the toolkit's batches hold


class PrunedClasses(NamedTuple):
    """The structurally pruned export of a family: its model_type and the class names in the self-contained
    files modeling/configuration_pruned_bert.py and modeling/modeling_pruned_bert.py."""
    model_type: str
    config_class: str
    model_class: str
    classification_class: str


@dataclass(frozen=True)
class Family:
    model_type: str
    anatomy: Anatomy
    classification_class: str                   # transformers' stock *ForSequenceClassification
    key_prefix: str                             # its base model's attribute ("bert" -> keys bert.*)
    uses_pooler: bool = False
    head_activation: str | None = None          # the task head's activation after its own dense layer
    head_activation_key: str | None = None      # ... or the config key naming it (DeBERTa's pooler_hidden_act)
    head_dense_key: str | None = None           # the stock head's dense layer
    head_proj_key: str = "classifier"           # the stock head's output layer
    classifier_dropout_keys: tuple = ("classifier_dropout",)
    input_names: tuple = INPUT_NAMES
    dropout_keys: tuple = ("hidden_dropout_prob", "attention_probs_dropout_prob")
    pruned: PrunedClasses | None = None
    positions_after_padding: bool = False       # RoBERTa: position ids start after pad_token_id

    def max_positions(self, config) -> int | None:
        """The longest row the model embeds: its position table, less RoBERTa's pad_token_id + 1 leading
        entries (roberta-base's 514 positions take 512 tokens)."""
        table = getattr(config, "max_position_embeddings", None)
        if table and self.positions_after_padding:
            return table - (getattr(config, "pad_token_id", None) or 0) - 1
        return table

    def task_head_activation(self, config) -> str | None:
        """The activation of the task head's own dense layer (None: the head is dropout + linear only)."""
        if self.head_activation_key is not None:
            return getattr(config, self.head_activation_key)
        return self.head_activation

    def encoder_inputs(self, input_ids, token_type_ids, attention_mask) -> dict:
        """The toolkit's input triple as keyword arguments of this family's model."""
        given = {"input_ids": input_ids, "token_type_ids": token_type_ids, "attention_mask": attention_mask}
        return {name: given[name] for name in self.input_names}
