"""ELECTRA's discriminator (model_type "electra"): BERT's layout (plus `embeddings_project` when embedding_size
differs from hidden_size, never pruned); no pooler.

The toolkit's task head is ElectraForSequenceClassification's own: dense, GELU, dropout, linear on the [CLS]
state (classifier.dense, classifier.out_proj)."""
from modeling.families.base import Family, PrunedClasses
from pruners.anatomy import BERT

FAMILY = Family("electra", BERT._replace(name="electra"), "ElectraForSequenceClassification", "electra",
                head_activation="gelu", head_dense_key="classifier.dense", head_proj_key="classifier.out_proj",
                pruned=PrunedClasses("pruned-electra", "PrunedElectraConfig", "PrunedElectraModel",
                                     "PrunedElectraForSequenceClassification"))
