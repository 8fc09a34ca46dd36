"""RoBERTa (model_type "roberta"): BERT's layout (type_vocab_size 1: its token types are all 0; its position ids
start after pad_token_id, so roberta-base's 514 positions take rows of 512 tokens).

The toolkit classifies linear(pooler output) = linear(tanh(pooler.dense([CLS]))); RobertaForSequenceClassification
has no pooler but computes out_proj(tanh(dense([CLS]))) in its `classifier`: the encoder's pooler.dense becomes
classifier.dense and the task's linear layer classifier.out_proj (the same function; the stock head has one more
dropout, before dense, which only training applies)."""
from modeling.families.base import Family, PrunedClasses
from pruners.anatomy import BERT

FAMILY = Family("roberta", BERT._replace(name="roberta"), "RobertaForSequenceClassification", "roberta",
                uses_pooler=True, head_dense_key="classifier.dense", head_proj_key="classifier.out_proj",
                positions_after_padding=True,
                pruned=PrunedClasses("pruned-roberta", "PrunedRobertaConfig", "PrunedRobertaModel",
                                     "PrunedRobertaForSequenceClassification"))
