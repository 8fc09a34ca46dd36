"""Canonical-JSON datasets, per-batch padding, and MT-DNN's multi-task batch order.

Every batch holds examples of one task. Within an epoch the order of the
batches across tasks follows MT-DNN's `--mix_opt` / `--ratio` rules
(`multi_task_batch_order`), drawn from an RNG seeded by (seed, epoch) so any
position of a run can be reproduced exactly (this is what makes resume exact).
"""
import math
import os
from dataclasses import dataclass, field

import numpy as np
import torch

from data_utils.errors import UserError
from data_utils.files import why_not_a_file
from data_utils.jsonio import json_type, parse_json_line
from data_utils.task_def import TaskDef


@dataclass
class TaskDataset:
    """One canonical JSON file: `name` is its dataset name (mnli_matched_dev...)."""
    name: str
    task: TaskDef
    path: str
    examples: list
    line_numbers: list = field(default_factory=list)     # the file's line of each example (for errors)

    def __len__(self):
        return len(self.examples)

    @property
    def has_labels(self) -> bool:
        return not self.name.endswith("test")


def load_canonical(path: str, name: str, task: TaskDef, max_seq_len: int | None = None) -> TaskDataset:
    """Read a canonical JSON-lines file; truncate sequences longer than max_seq_len (keeping the last token)."""
    if not os.path.isfile(path):
        raise UserError(f"{path}: {why_not_a_file(path)}; run `sh experiments/glue/prepro.sh` "
                        "for this model, or check --data_dir")
    examples, line_numbers = [], []
    try:
        with open(path, "rb") as handle:
            for line_no, raw in enumerate(handle, start=1):
                if not raw.strip():
                    continue
                example = _canonical_row(raw, path, line_no, task)
                if max_seq_len and len(example["token_id"]) > max_seq_len:
                    for key in ("token_id", "type_id"):
                        seq = example[key]
                        example[key] = seq[:max_seq_len - 1] + seq[-1:]
                examples.append(example)
                line_numbers.append(line_no)
    except OSError as err:
        raise UserError(f"{path}: cannot read it ({err.strerror or err}); check its permissions, or rerun prepro") \
            from None
    if not examples:
        raise UserError(f"{path}: holds no rows; rerun prepro")
    return TaskDataset(name=name, task=task, path=path, examples=examples, line_numbers=line_numbers)


def _canonical_row(raw: bytes, path: str, line_no: int, task: TaskDef) -> dict:
    """One line of a canonical file as an example (uid, label, token_id, type_id); a line that is not one
    (bad or deeply nested JSON, not an object, a field missing or wrong) is a UserError naming path:line."""
    row = parse_json_line(raw, path, line_no, "a canonical JSON row", "rerun prepro")
    if not isinstance(row, dict):
        raise UserError(f"{path}:{line_no}: not a canonical JSON row ({json_type(row)}, not an object); rerun prepro")
    missing = [key for key in ("uid", "label", "token_id", "type_id") if key not in row]
    if missing:
        raise UserError(f"{path}:{line_no}: not a canonical JSON row (KeyError: {missing[0]!r}); rerun prepro")
    example = {"uid": row["uid"], "label": row["label"], "token_id": row["token_id"], "type_id": row["type_id"]}
    problem = _row_problem(example, task)
    if problem:
        raise UserError(f"{path}:{line_no}: {problem}")
    return example


def check_fits_model(datasets: list, config, init_checkpoint: str, flag: str = "--init_checkpoint",
                     data_flag: str = "--data_dir", max_positions: int | None = None) -> None:
    """Refuse rows the encoder cannot embed (longer than its position table, ids outside its vocabularies),
    which would otherwise fail deep inside the forward pass. `flag` and `data_flag` name the model and the
    data as the command's flags do; `max_positions` is the longest row the model takes when its family says
    it is less than max_position_embeddings (RoBERTa's)."""
    limits = {"positions": max_positions or getattr(config, "max_position_embeddings", None),
              "token ids": getattr(config, "vocab_size", None), "type ids": getattr(config, "type_vocab_size", None)}
    for dataset in datasets:
        found = {"positions": max(len(e["token_id"]) for e in dataset.examples),
                 "token ids": 1 + max(max(e["token_id"]) for e in dataset.examples),
                 "type ids": 1 + max(max(e["type_id"]) for e in dataset.examples)}
        if limits["positions"] and found["positions"] > limits["positions"]:
            raise UserError(f"{dataset.path}: rows of {found['positions']} tokens, but {flag} "
                            f"{init_checkpoint} embeds at most {limits['positions']} positions; "
                            f"pass --max_seq_len {limits['positions']} or less")
        for kind, key in (("token ids", "token_id"), ("type ids", "type_id")):
            if limits[kind] and found[kind] > limits[kind]:
                where = _first_line(dataset, lambda e: max(e[key]) >= limits[kind])
                raise UserError(f"{where}: {kind} up to {found[kind] - 1}, but {flag} "
                                f"{init_checkpoint} has only {limits[kind]}; this data was preprocessed for another "
                                f"model: rerun prepro with --model {init_checkpoint} or fix {data_flag}")


def _row_problem(example: dict, task: TaskDef) -> str | None:
    """What is wrong with one canonical row (uid, label, token and type ids), with the fix; None when it is
    fine. Cheap: the id checks run in C (map(type), min, max)."""
    uid, label = example["uid"], example["label"]
    if isinstance(uid, bool) or not isinstance(uid, (str, int)):
        return f"uid {uid!r} is not a string or an integer; rerun prepro"
    if task.is_regression:
        if isinstance(label, bool) or not isinstance(label, (int, float)) or not math.isfinite(label):
            return (f"label {label!r} is not a finite number for the regression task {task.name}; "
                    "rerun prepro with the same --task_def")
    elif isinstance(label, bool) or not (isinstance(label, int) and 0 <= label < task.n_class):
        return (f"label {label!r} is not a class id of {task.name} (0..{task.n_class - 1}); "
                "rerun prepro with the same --task_def")
    tokens, types = example["token_id"], example["type_id"]
    if not (isinstance(tokens, list) and isinstance(types, list) and 0 < len(tokens) == len(types)
            and {*map(type, tokens)} == {int} and {*map(type, types)} == {int}):     # no float, bool or str
        return "token_id and type_id must be non-empty lists of integers of the same length; rerun prepro"
    if min(tokens) < 0:
        return f"token id {min(tokens)} is negative; token ids are vocabulary indices >= 0: rerun prepro"
    if min(types) < 0 or max(types) > 1:
        bad = min(types) if min(types) < 0 else max(types)
        return f"type id {bad} is not 0 or 1 (first or second segment); rerun prepro"
    return None


def _first_line(dataset: TaskDataset, bad) -> str:
    """`path:line` of the first example for which `bad(example)` holds (just `path` without line numbers)."""
    for position, example in enumerate(dataset.examples):
        if bad(example):
            if position < len(dataset.line_numbers):
                return f"{dataset.path}:{dataset.line_numbers[position]}"
            break
    return dataset.path


def collate(examples: list, task: TaskDef, pad_to: int | None = None) -> dict:
    """Pad a batch to its own longest sequence (or to `pad_to`) and build tensors."""
    length = pad_to or max(len(e["token_id"]) for e in examples)
    input_ids = torch.zeros(len(examples), length, dtype=torch.long)
    token_type_ids = torch.zeros(len(examples), length, dtype=torch.long)
    attention_mask = torch.zeros(len(examples), length, dtype=torch.long)
    for row, example in enumerate(examples):
        n = len(example["token_id"])
        input_ids[row, :n] = torch.tensor(example["token_id"])
        token_type_ids[row, :n] = torch.tensor(example["type_id"])
        attention_mask[row, :n] = 1
    dtype = torch.float32 if task.is_regression else torch.long
    return {
        "input_ids": input_ids,             # (batch, seq)
        "token_type_ids": token_type_ids,   # (batch, seq)
        "attention_mask": attention_mask,   # (batch, seq)
        "labels": torch.tensor([e["label"] for e in examples], dtype=dtype),
        "uids": [e["uid"] for e in examples],
    }


def multi_task_batch_order(batches_per_task: list, mix_opt: int, ratio: float, rng: np.random.Generator) -> list:
    """The task index of every batch of one epoch, as MT-DNN orders them.

    Task 0 is the main task (the first of --train_datasets).
    - ratio > 0 (several tasks): all main-task batches plus a random draw of
      floor(ratio * main batches) auxiliary batches (at most all of them);
    - mix_opt > 0: auxiliary batches first, shuffled among themselves, then the
      main task's; mix_opt == 0: the whole order is shuffled.
    """
    main = [0] * batches_per_task[0]
    extra = [i for i, n in enumerate(batches_per_task) if i > 0 for _ in range(n)]
    if len(batches_per_task) > 1 and ratio > 0:
        picks = int(min(len(main) * ratio, len(extra)))
        extra = [extra[i] for i in sorted(rng.choice(len(extra), size=picks, replace=False))]
    if mix_opt > 0:
        extra = [extra[i] for i in rng.permutation(len(extra))]
        order = extra + main
    else:
        order = main + extra
        order = [order[i] for i in rng.permutation(len(order))]
    return order


class MultiTaskBatchSampler:
    """Batches of (dataset index, example indices) for an epoch, same on every rank.

    With `world_size` > 1 every global batch of `batch_size * world_size`
    examples is cut into one shard per rank, so all ranks work on the same task
    at the same update and the all-reduced gradient is the global batch's.
    """

    def __init__(self, dataset_sizes: list, batch_size: int, mix_opt: int = 0, ratio: float = 0.0,
                 seed: int = 0, rank: int = 0, world_size: int = 1):
        self.dataset_sizes = list(dataset_sizes)
        self.batch_size, self.mix_opt, self.ratio, self.seed = batch_size, mix_opt, ratio, seed
        self.rank, self.world_size = rank, world_size
        self.global_batch = batch_size * world_size

    def batches_per_task(self) -> list:
        return [-(-n // self.global_batch) for n in self.dataset_sizes]

    def __len__(self) -> int:
        """Batches per epoch (deterministic even when --ratio draws auxiliary batches)."""
        counts = self.batches_per_task()
        if len(counts) > 1 and self.ratio > 0:
            return counts[0] + int(min(counts[0] * self.ratio, sum(counts[1:])))
        return sum(counts)

    def epoch(self, epoch: int) -> list:
        rng = np.random.default_rng([self.seed, epoch])
        per_task = []
        for size in self.dataset_sizes:
            order = rng.permutation(size).tolist()
            per_task.append([order[i:i + self.global_batch] for i in range(0, size, self.global_batch)])
        task_order = multi_task_batch_order([len(b) for b in per_task], self.mix_opt, self.ratio, rng)
        cursors = [0] * len(per_task)
        batches = []
        for task_index in task_order:
            indices = per_task[task_index][cursors[task_index]]
            cursors[task_index] += 1
            if self.world_size > 1:
                # pad cyclically so that no rank gets an empty shard (as DistributedSampler does)
                padded = (indices * self.world_size)[:-(-len(indices) // self.world_size) * self.world_size]
                indices = padded[self.rank::self.world_size]
            batches.append((task_index, indices))
        return batches
