"""Task definitions: frozen dataclasses loaded from `glue_task_def.yml`.

Everything the toolkit knows about a task (file layout, labels, metrics, loss,
head dropout) comes from the YAML file; code never hard-codes a task name.
"""
import os
from dataclasses import dataclass

import yaml

from data_utils.errors import UserError

DEFAULT_TASK_DEF = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "experiments", "glue", "glue_task_def.yml")

TASK_TYPES = ("Classification", "Regression")
METRICS = ("ACC", "F1", "MCC", "Pearson", "Spearman")
# MT-DNN's criterion names -> the task type each one fits (cross-entropy over classes, MSE on a score)
LOSSES = {"CeCriterion": "Classification", "MseCriterion": "Regression"}


@dataclass(frozen=True)
class SplitDef:
    """Where one split of a task lives in the GLUE layout and how to read it."""
    name: str                      # canonical split name: train, dev, matched_dev, ...
    file: str                      # file name inside the task directory
    header: bool
    n_columns: int
    text_columns: tuple
    label_column: int | None       # None for unlabelled (test) splits
    uid_column: int | None         # None: the row's position is its uid
    submission: str | None         # GLUE submission file name for test splits (train.py --glue_format_on)
    skip_short_rows: bool = False  # rows with fewer than n_columns fields are skipped and counted (MT-DNN's QQP)


@dataclass(frozen=True)
class TaskDef:
    name: str
    task_type: str
    n_class: int
    labels: tuple | None           # raw label strings in id order; None for regression
    metric_meta: tuple
    main_metric: str
    loss: str
    dropout_p: float | None
    glue_dir: str
    splits: dict
    label_range: tuple | None = None

    @property
    def is_regression(self) -> bool:
        return self.task_type == "Regression"

    def label_to_id(self, raw: str):
        """Map a raw label string to its id (float for regression); None if invalid."""
        if self.is_regression:
            try:
                value = float(raw)
            except ValueError:
                return None
            lo, hi = self.label_range or (float("-inf"), float("inf"))
            return value if lo <= value <= hi else None
        try:
            return self.labels.index(raw.strip())
        except ValueError:
            return None

    def id_to_label(self, label_id) -> str:
        if self.is_regression:
            return f"{float(label_id):.3f}"
        return self.labels[int(label_id)]

    def split_of(self, dataset_name: str) -> SplitDef:
        """The split a canonical dataset name stands for: 'mnli_matched_test' -> matched_test."""
        return self.splits[dataset_name[len(self.name) + 1:]]

    def dataset_prefixes(self) -> list:
        """Test-dataset names this task provides: 'cola', or 'mnli_matched', 'mnli_mismatched'."""
        names = []
        for split in self.splits:
            if split.endswith("dev"):
                qualifier = split[: -len("dev")].rstrip("_")
                names.append(f"{self.name}_{qualifier}" if qualifier else self.name)
        return names


def _split_def(task: str, name: str, raw: dict, path: str) -> SplitDef:
    try:
        return SplitDef(
            name=name,
            file=str(raw["file"]),
            header=bool(raw.get("header", True)),
            n_columns=int(raw["n_columns"]),
            text_columns=tuple(int(c) for c in raw["text_columns"]),
            label_column=None if raw.get("label_column") is None else int(raw["label_column"]),
            uid_column=None if raw.get("uid_column") is None else int(raw["uid_column"]),
            submission=raw.get("submission"),
            skip_short_rows=bool(raw.get("skip_short_rows", False)),
        )
    except (AttributeError, KeyError, TypeError, ValueError) as err:
        raise UserError(f"{path}: task '{task}' split '{name}' is malformed ({err!r}); "
                        "each split needs file, n_columns and text_columns") from None


def _task_def(name: str, raw: dict, path: str) -> TaskDef:
    if not isinstance(raw, dict):
        raise UserError(f"{path}: task '{name}' is {raw!r}, not a mapping of fields; "
                        "see experiments/glue/glue_task_def.yml for the layout")

    def need(key):
        if key not in raw:
            raise UserError(f"{path}: task '{name}' lacks the field '{key}'; add it "
                            "(see experiments/glue/glue_task_def.yml)")
        return raw[key]

    task_type = need("task_type")
    if task_type not in TASK_TYPES:
        raise UserError(f"{path}: task '{name}' has task_type '{task_type}'; use one of {', '.join(TASK_TYPES)}")
    metrics = tuple(need("metric_meta"))
    for metric in metrics:
        if metric not in METRICS:
            raise UserError(f"{path}: task '{name}' lists unknown metric '{metric}'; known: {', '.join(METRICS)}")
    main_metric = raw.get("main_metric", metrics[0])
    if main_metric not in metrics:
        raise UserError(f"{path}: task '{name}' main_metric '{main_metric}' is not in its metric_meta {list(metrics)}")
    loss = raw.get("loss", "MseCriterion" if task_type == "Regression" else "CeCriterion")
    if loss not in LOSSES:
        raise UserError(f"{path}: task '{name}' has loss '{loss}'; use one of {', '.join(LOSSES)}")
    if LOSSES[loss] != task_type:
        fitting = next(k for k, v in LOSSES.items() if v == task_type)
        raise UserError(f"{path}: task '{name}' is a {task_type} task but has loss '{loss}'; use {fitting}")
    labels = raw.get("labels")
    n_class = int(need("n_class"))
    if task_type == "Classification":
        if not labels or len(labels) != n_class:
            raise UserError(f"{path}: task '{name}' needs 'labels' with n_class={n_class} entries")
        labels = tuple(str(label) for label in labels)
    if not isinstance(need("splits"), dict):
        raise UserError(f"{path}: task '{name}' has 'splits' that is not a mapping of split names to files")
    splits = {split: _split_def(name, split, spec, path) for split, spec in raw["splits"].items()}
    label_range = raw.get("label_range")
    return TaskDef(name=name, task_type=task_type, n_class=n_class, labels=labels if labels else None,
                   metric_meta=metrics, main_metric=main_metric, loss=loss,
                   dropout_p=None if raw.get("dropout_p") is None else float(raw["dropout_p"]),
                   glue_dir=str(need("glue_dir")), splits=splits,
                   label_range=tuple(label_range) if label_range else None)


def load_task_defs(path: str = DEFAULT_TASK_DEF) -> dict:
    """Read the task definition file into {task name: TaskDef}."""
    if not os.path.isfile(path):
        raise UserError(f"--task_def: file not found: {path}")
    try:
        with open(path, encoding="utf-8") as handle:
            raw = yaml.safe_load(handle)
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else path
        problem = getattr(err, "problem", None) or err
        raise UserError(f"--task_def {where}: not valid YAML ({' '.join(str(problem).split())}); fix the file "
                        "or pass another --task_def") from None
    if not isinstance(raw, dict) or not raw:
        raise UserError(f"--task_def: {path} holds no task definitions (expected a mapping of task names)")
    task_defs = {}
    for name, spec in raw.items():
        try:
            task_defs[name] = _task_def(name, spec, path)
        except (TypeError, ValueError) as err:
            raise UserError(f"{path}: task '{name}' has a field of the wrong type ({err}); "
                            "compare it with experiments/glue/glue_task_def.yml") from None
    return task_defs


def resolve_dataset(name: str, task_defs: dict, flag: str = "--test_datasets") -> TaskDef:
    """The task of a dataset name: 'mnli_matched' -> mnli, 'rte' -> rte."""
    task = name.split("_", 1)[0]
    if task not in task_defs:
        raise UserError(f"{flag}: unknown dataset '{name}': its task '{task}' is not in the task definition "
                        f"(known tasks: {', '.join(sorted(task_defs))})")
    return task_defs[task]
