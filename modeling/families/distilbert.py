"""DistilBERT (model_type "distilbert"): layers at transformer.layer, attention q_lin/k_lin/v_lin/out_lin, FFN
ffn.lin1/ffn.lin2; no token types (its model takes input_ids and attention_mask only); no pooler.

The toolkit's task head is DistilBertForSequenceClassification's own: pre_classifier, ReLU, dropout, classifier
on the [CLS] state."""
from modeling.families.base import Family, PrunedClasses
from pruners.anatomy import Anatomy

ATTENTION = ("attention.q_lin", "attention.k_lin", "attention.v_lin")
ANATOMY = Anatomy("distilbert", layers="transformer.layer", head_row_projections=ATTENTION,
                  head_column_projection="attention.out_lin", ffn_row_projection="ffn.lin1",
                  ffn_column_projection="ffn.lin2", ffn_activation="ffn.activation", heads="attention.n_heads",
                  prunable_substrings=(*ATTENTION, "attention.out_lin", "ffn.lin1", "ffn.lin2"))

FAMILY = Family("distilbert", ANATOMY, "DistilBertForSequenceClassification", "distilbert",
                head_activation="relu", head_dense_key="pre_classifier", head_proj_key="classifier",
                classifier_dropout_keys=("seq_classif_dropout",), input_names=("input_ids", "attention_mask"),
                dropout_keys=("dropout", "attention_dropout"),
                pruned=PrunedClasses("pruned-distilbert", "PrunedDistilBertConfig", "PrunedDistilBertModel",
                                     "PrunedDistilBertForSequenceClassification"))
