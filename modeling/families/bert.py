"""BERT (model_type "bert"): the layout pruners.anatomy.BERT describes; the task head is a linear layer on the
pooler output, which is BertForSequenceClassification's `classifier` on its own pooler."""
from modeling.families.base import Family, PrunedClasses
from pruners.anatomy import BERT

FAMILY = Family("bert", BERT, "BertForSequenceClassification", "bert", uses_pooler=True,
                pruned=PrunedClasses("pruned-bert", "PrunedBertConfig", "PrunedBertModel",
                                     "PrunedBertForSequenceClassification"))
