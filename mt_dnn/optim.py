"""Optimizers and learning-rate schedules (pure functions plus thin torch wrappers)."""
import math

import torch

OPTIMIZERS = ("adamax", "adam", "adamw", "sgd")
WARMUP_SCHEDULES = ("warmup_linear", "warmup_constant", "warmup_cosine")
NO_DECAY = ("bias", "LayerNorm.weight", "LayerNorm.bias")


def lr_multiplier(step: int, total_steps: int, warmup: float, schedule: str) -> float:
    """Factor on the base learning rate after `step` updates (BERT-style schedules).

    x = step / total_steps, w = warmup (a fraction of the updates):
      x < w                    : x / w                       (linear warmup, all schedules)
      warmup_linear   otherwise: (1 - x) / (1 - w)           (linear decay to 0 at the end)
      warmup_constant otherwise: 1
      warmup_cosine   otherwise: 0.5 * (1 + cos(pi * (x - w) / (1 - w)))
    """
    x = step / max(1, total_steps)
    if x < warmup:
        return x / warmup
    if schedule == "warmup_constant":
        return 1.0
    progress = (x - warmup) / max(1e-12, 1.0 - warmup)
    if schedule == "warmup_cosine":
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return max(0.0, 1.0 - progress)


def parameter_groups(params, weight_decay: float) -> list:
    """Weight decay on weights only; never on biases and LayerNorm (as BERT and MT-DNN do)."""
    decay, no_decay = [], []
    for name, param in params:
        if param.requires_grad:
            (no_decay if any(nd in name for nd in NO_DECAY) else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(name: str, named_params, learning_rate: float, weight_decay: float):
    groups = parameter_groups(named_params, weight_decay)
    if name == "adamax":
        return torch.optim.Adamax(groups, lr=learning_rate)
    if name == "adam":
        return torch.optim.Adam(groups, lr=learning_rate)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=learning_rate)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=learning_rate, momentum=0.9)
    raise ValueError(f"unknown optimizer {name}")


def build_schedule(optimizer, total_steps: int, warmup: float, schedule: str):
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_multiplier(step, total_steps, warmup, schedule))
