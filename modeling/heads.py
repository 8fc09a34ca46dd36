"""Task heads on the pooled vector: dropout then a linear layer, after the family's own dense layer and
activation where its stock classification head has one (modeling.families: ELECTRA, DistilBERT, DeBERTa)."""
from torch import nn


class TaskHead(nn.Module):
    """n_class logits for classification, one score for regression.

    activation None: proj(dropout(pooled)) on the encoder's pooler output (BERT, RoBERTa).
    activation 'gelu' etc. (a transformers ACT2FN name): proj(dropout(act(dense(dropout(cls))))) on the [CLS]
    state, the stock head of the families without a pooler."""

    def __init__(self, hidden_size: int, n_class: int, dropout_p: float, activation: str | None = None):
        super().__init__()
        self.dropout = nn.Dropout(dropout_p)
        self.activation_name = activation
        if activation is not None:
            from transformers.activations import ACT2FN

            self.dense = nn.Linear(hidden_size, hidden_size)
            self.activation = ACT2FN[activation]
        else:
            self.dense = None
        self.proj = nn.Linear(hidden_size, n_class)

    def forward(self, pooled):
        if self.dense is not None:
            pooled = self.activation(self.dense(self.dropout(pooled)))
        return self.proj(self.dropout(pooled))   # (batch, n_class)
