"""DeBERTa-v2 and v3 (model_type "deberta-v2"; v3 checkpoints have type_vocab_size 0, so token types are
ignored): attention.self.query_proj/key_proj/value_proj with relative-position attention (v3 shares the
relative position projections with key_proj/query_proj: pruning a head removes its part of both), attention
output and FFN as BERT's; no pooler.

The toolkit's task head is DebertaV2ForSequenceClassification's own: its ContextPooler (dense and
config.pooler_hidden_act on the [CLS] state: pooler.dense), dropout, classifier. The structured export
(pruned-deberta-v2) needs share_att_key (every v3 checkpoint), so that the relative-position projections
are the kept heads' key_proj/query_proj rows."""
from modeling.families.base import Family, PrunedClasses
from pruners.anatomy import Anatomy

ATTENTION = ("attention.self.query_proj", "attention.self.key_proj", "attention.self.value_proj")
ANATOMY = Anatomy("deberta-v2", head_row_projections=ATTENTION,
                  prunable_substrings=(*ATTENTION, "attention.output.dense", "intermediate.dense", "output.dense"))

FAMILY = Family("deberta-v2", ANATOMY, "DebertaV2ForSequenceClassification", "deberta",
                head_activation_key="pooler_hidden_act", head_dense_key="pooler.dense", head_proj_key="classifier",
                classifier_dropout_keys=("cls_dropout", "pooler_dropout"),
                pruned=PrunedClasses("pruned-deberta-v2", "PrunedDebertaV2Config", "PrunedDebertaV2Model",
                                     "PrunedDebertaV2ForSequenceClassification"))
