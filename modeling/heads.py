"""Task heads on the pooled [CLS] vector: dropout, then a linear layer."""
from torch import nn


class TaskHead(nn.Module):
    """n_class logits for classification, one score for regression."""

    def __init__(self, hidden_size: int, n_class: int, dropout_p: float):
        super().__init__()
        self.dropout = nn.Dropout(dropout_p)
        self.proj = nn.Linear(hidden_size, n_class)

    def forward(self, pooled):
        return self.proj(self.dropout(pooled))   # (batch, n_class)
