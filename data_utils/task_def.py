"""Task definitions: frozen dataclasses loaded from `glue_task_def.yml`, validated once, fully, at load.

Everything the toolkit knows about a task (file layout, labels, metrics, loss,
head dropout) comes from the YAML file; code never hard-codes a task name.
`load_task_defs` refuses, with one UserError naming the file, the line and the
key, anything that would fail later in prepro, train.py, evaluate or predict:
unknown, missing or duplicate keys, values of the wrong type or range, column
indices outside the row, metrics the task type cannot compute, and names that
are not safe as file names. Every command loads the file through it.
"""
import math
import os
import re
from dataclasses import dataclass

import yaml

from data_utils.errors import UserError

DEFAULT_TASK_DEF = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "experiments", "glue", "glue_task_def.yml")

TASK_TYPES = ("Classification", "Regression")
METRICS = ("ACC", "F1", "MCC", "Pearson", "Spearman")
CLASS_METRICS = ("ACC", "F1", "MCC")       # computed on class ids: not for a regression's scores
# MT-DNN's criterion names -> the task type each one fits (cross-entropy over classes, MSE on a score)
LOSSES = {"CeCriterion": "Classification", "MseCriterion": "Regression"}

TASK_FIELDS = ("task_type", "n_class", "labels", "label_range", "metric_meta", "main_metric", "loss", "dropout_p",
               "glue_dir", "splits")
SPLIT_FIELDS = ("file", "header", "n_columns", "text_columns", "label_column", "uid_column", "submission",
                "skip_short_rows")
# Task names name files (<task>_<split>.json), heads and dataset names, which are cut at their first '_'
# ('mnli_matched_dev' is task mnli, split matched_dev), so they are letters and digits only.
TASK_NAME = re.compile(r"[a-z][a-z0-9]*\Z")
# train, dev, test, or a qualified dev split with its test split (matched_dev, matched_test)
SPLIT_NAME = re.compile(r"(train|dev|test|[a-z][a-z0-9]*_(dev|test))\Z")
MAX_BYTES = 1 << 20      # the bundled file is 6 KB; a file this large is the wrong one
MAX_DEPTH = 8            # tasks > task > splits > split > columns > column is 6 levels


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
            return value if math.isfinite(value) and lo <= value <= hi else None     # 'nan', 'inf' are no scores
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


# ---------------------------------------------------------------- reading the YAML

class _Invalid(Exception):
    """A problem of the YAML itself found while reading it, at `line` (load_task_defs adds the file)."""

    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line, self.message = line, message


class _Mapping(dict):
    """A YAML mapping that remembers its own line and the line of each key, for messages."""

    def __init__(self, line: int):
        super().__init__()
        self.line, self.lines = line, {}


class _Loader(yaml.SafeLoader):
    """yaml.SafeLoader, stricter: no aliases (an alias bomb expands exponentially; a task definition needs
    none), no merge keys, no duplicate keys (YAML silently keeps the last), at most MAX_DEPTH levels (the
    composer recurses per level); mappings are _Mappings."""

    depth = 0

    def compose_node(self, parent, index):
        line = self.peek_event().start_mark.line + 1
        if self.check_event(yaml.AliasEvent):
            raise _Invalid(line, "YAML aliases (*name) are not allowed in a task definition; write the values out")
        if self.depth >= MAX_DEPTH:
            raise _Invalid(line, f"nested more than {MAX_DEPTH} levels deep; a task definition is tasks > task > "
                                 "splits > split > columns")
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _construct_mapping(loader, node):
    mapping = _Mapping(node.start_mark.line + 1)
    yield mapping
    for key_node, value_node in node.value:
        line = key_node.start_mark.line + 1
        if key_node.tag == "tag:yaml.org,2002:merge":
            raise _Invalid(line, "YAML merge keys (<<) are not allowed in a task definition; write the fields out")
        if not isinstance(key_node, yaml.ScalarNode):
            raise _Invalid(line, "a key that is a list or a mapping; keys are names")
        key = loader.construct_object(key_node)
        if key in mapping:
            raise _Invalid(line, f"{_shown(key)} is defined twice (first on line {mapping.lines[key]}); keep one")
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.lines[key] = line


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)


def _read_yaml(path: str):
    """The YAML document of the task definition file, read with _Loader; every problem is a UserError."""
    if os.path.isdir(path):
        raise UserError(f"--task_def {path} is a directory; give the task definition YAML file "
                        "(e.g. experiments/glue/glue_task_def.yml)")
    if not os.path.isfile(path):
        raise UserError(f"--task_def: file not found: {path}")
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except OSError as err:
        raise UserError(f"--task_def {path}: cannot read it ({err.strerror or err}); check its permissions") from None
    if len(data) > MAX_BYTES:
        raise UserError(f"--task_def {path}: larger than {MAX_BYTES >> 20} MiB, but a task definition is a few KB "
                        "of YAML; is this the right file?")
    try:
        return yaml.load(data.decode("utf-8-sig"), Loader=_Loader)      # noqa: S506 - _Loader is a SafeLoader
    except UnicodeDecodeError as err:
        raise UserError(f"--task_def {path}: bytes that are not UTF-8 at byte {err.start}; re-save it as UTF-8") \
            from None
    except _Invalid as err:
        raise UserError(f"--task_def {path}:{err.line}: {err.message}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else path
        problem = getattr(err, "problem", None) or err
        raise UserError(f"--task_def {where}: not valid YAML ({' '.join(str(problem).split())[:160]}); fix the file "
                        "or pass another --task_def") from None


# ---------------------------------------------------------------- checking it

def _shown(value) -> str:
    """`value` for a message, cut to a readable length."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_relative_path(value) -> bool:
    """A path that stays inside the folder it is joined to: relative, without '..', '.' or empty parts."""
    if not isinstance(value, str) or not value or "\0" in value or os.path.isabs(value):
        return False
    return all(part not in ("", ".", "..") for part in re.split(r"[/\\]", value))


def _is_file_name(value) -> bool:
    return _is_relative_path(value) and not re.search(r"[/\\]", value)


class _Fields:
    """The fields of one task or split, checked one by one; a problem is a UserError naming the file, the
    line of the key, the task (and split) and the key."""

    def __init__(self, path: str, mapping: _Mapping, where: str, known: tuple):
        self.path, self.mapping, self.where = path, mapping, where
        for key in mapping:
            if key not in known:
                self.fail(key, f"has the unknown field {_shown(key)}; the fields are {', '.join(known)}")

    def fail(self, key, message: str):
        line = self.mapping.lines.get(key, self.mapping.line)
        raise UserError(f"{self.path}:{line}: {self.where} {message}")

    def get(self, key: str, valid, want: str, default=None, required: bool = False):
        """The value of `key` when `valid(value)`; `default` when it is absent and not `required`."""
        if key not in self.mapping:
            if required:
                self.fail(None, f"lacks the field '{key}'; add it (see experiments/glue/glue_task_def.yml)")
            return default
        value = self.mapping[key]
        if not valid(value):
            self.fail(key, f"field '{key}' is {_shown(value)}; it must be {want}")
        return value


def _split_def(path: str, task: str, name, raw, line: int) -> SplitDef:
    if not isinstance(name, str) or not SPLIT_NAME.match(name):
        raise UserError(f"{path}:{line}: task '{task}' has the split {_shown(name)}; split names are train, dev, "
                        "test, <qualifier>_dev or <qualifier>_test (e.g. matched_dev), in lower-case letters and "
                        "digits")
    if not isinstance(raw, dict):
        raise UserError(f"{path}:{line}: task '{task}' split '{name}' is {_shown(raw)}, not a mapping of fields "
                        f"({', '.join(SPLIT_FIELDS)})")
    fields = _Fields(path, raw, f"task '{task}' split '{name}'", SPLIT_FIELDS)
    file = fields.get("file", _is_relative_path, "a file inside the task's glue_dir, e.g. train.tsv (no '..')",
                      required=True)
    n_columns = fields.get("n_columns", lambda v: _is_int(v) and v >= 1,
                           "the number of tab-separated columns of a row, an integer >= 1", required=True)

    def column(value):
        return _is_int(value) and -n_columns <= value < n_columns

    columns = f"one of its {n_columns} columns (0 to {n_columns - 1}, or -1 to -{n_columns} from the end)"
    text_columns = fields.get(
        "text_columns", lambda v: isinstance(v, list) and 1 <= len(v) <= 2 and all(column(c) for c in v)
        and len({c % n_columns for c in v}) == len(v),
        f"a list of one or two different column indices, each {columns}", required=True)
    label_column = fields.get("label_column", lambda v: v is None or column(v), f"null or {columns}")
    uid_column = fields.get("uid_column", lambda v: v is None or column(v), f"null (rows are numbered) or {columns}")
    submission = fields.get("submission", lambda v: v is None or _is_file_name(v),
                            "null or a plain file name, e.g. RTE.tsv")
    is_test = name.endswith("test")
    if is_test and label_column is not None:
        fields.fail("label_column", "has a label_column, but test splits are unlabelled (their labels are never "
                                    "read); drop it or name the split dev")
    if not is_test and label_column is None:
        fields.fail("label_column" if "label_column" in raw else None,
                    f"lacks the field 'label_column'; a {name} split needs labels (only test splits have none)")
    if submission is not None and not is_test:
        fields.fail("submission", "has a submission file, but only test splits are submitted; drop it")
    return SplitDef(name=name, file=file, header=fields.get("header", lambda v: isinstance(v, bool), "true or false",
                                                            default=True),
                    n_columns=n_columns, text_columns=tuple(text_columns), label_column=label_column,
                    uid_column=uid_column, submission=submission,
                    skip_short_rows=fields.get("skip_short_rows", lambda v: isinstance(v, bool), "true or false",
                                               default=False))


def _labels(fields: _Fields, n_class: int) -> tuple:
    """A classification task's label strings in id order: as many as n_class, distinct, written as in the files."""
    labels = fields.get("labels", lambda v: isinstance(v, list), 'a list of the label strings in id order, e.g. '
                        '["0", "1"]', required=True)
    for label in labels:
        if not (isinstance(label, str) or _is_int(label)) or str(label) != str(label).strip() or not str(label):
            fields.fail("labels", f"lists the label {_shown(label)}; labels are the strings of the label column "
                                  "(no surrounding spaces); quote them, as YAML reads yes/no/on/off as booleans and "
                                  "1.0 as a number")
        if [str(x) for x in labels].count(str(label)) > 1:
            fields.fail("labels", f"lists the label {_shown(label)} twice; each label once, in id order")
    if len(labels) != n_class:
        fields.fail("labels", f"lists {len(labels)} labels but n_class is {n_class}; they must agree")
    return tuple(str(label) for label in labels)


def _task_def(path: str, name, raw, line: int) -> TaskDef:
    if not isinstance(name, str) or not TASK_NAME.match(name):
        raise UserError(f"{path}:{line}: the task name {_shown(name)} is not allowed; task names are lower-case "
                        "letters and digits starting with a letter (e.g. rte, sst2): they name files and heads, and "
                        "dataset names are cut at their first '_'")
    if not isinstance(raw, dict):
        raise UserError(f"{path}:{line}: task '{name}' is {_shown(raw)}, not a mapping of fields; see "
                        "experiments/glue/glue_task_def.yml for the layout")
    fields = _Fields(path, raw, f"task '{name}'", TASK_FIELDS)
    task_type = fields.get("task_type", lambda v: v in TASK_TYPES, f"one of {', '.join(TASK_TYPES)}", required=True)
    regression = task_type == "Regression"
    metrics = fields.get("metric_meta", lambda v: isinstance(v, list) and v,
                         f"a non-empty list of metric names ({', '.join(METRICS)})", required=True)
    n_class = fields.get("n_class", _is_int, "an integer: the number of labels, or 1 for a Regression task",
                         required=True)
    if regression and n_class != 1:
        fields.fail("n_class", f"is a Regression task (one score per row), so n_class must be 1, not {n_class}")
    if not regression and n_class < 2:
        fields.fail("n_class", f"is a Classification task, so n_class must be at least 2, not {n_class}")
    for metric in metrics:
        if metric not in METRICS:
            fields.fail("metric_meta", f"lists unknown metric {_shown(metric)}; known: {', '.join(METRICS)}")
        if metrics.count(metric) > 1:
            fields.fail("metric_meta", f"lists the metric {metric} twice; list each once")
        if regression and metric in CLASS_METRICS:
            fields.fail("metric_meta", f"is a Regression task but lists {metric}, which scores class ids; use "
                                       "Pearson or Spearman")
        if metric == "F1" and n_class != 2:
            fields.fail("metric_meta", f"lists F1, which scores two-class tasks only, but n_class is {n_class}; "
                                       "use ACC or MCC")
    main_metric = fields.get("main_metric", lambda v: v in metrics, f"one of its metric_meta {list(metrics)}",
                             default=metrics[0])
    loss = fields.get("loss", lambda v: v in LOSSES, f"one of {', '.join(LOSSES)}",
                      default="MseCriterion" if regression else "CeCriterion")
    if LOSSES[loss] != task_type:
        fitting = next(k for k, v in LOSSES.items() if v == task_type)
        fields.fail("loss", f"is a {task_type} task but has loss '{loss}'; use {fitting}")
    if regression and "labels" in raw:
        fields.fail("labels", "is a Regression task, which has no labels; drop 'labels' (label_range bounds the "
                              "scores)")
    if not regression and "label_range" in raw:
        fields.fail("label_range", "is a Classification task, which has no label_range (it bounds a Regression "
                                   "task's scores); drop it")
    labels = None if regression else _labels(fields, n_class)
    label_range = fields.get("label_range", lambda v: isinstance(v, list) and len(v) == 2
                             and all(_is_number(x) for x in v) and v[0] < v[1],
                             "[low, high]: two finite numbers with low < high, e.g. [0.0, 5.0]")
    dropout_p = fields.get("dropout_p", lambda v: v is None or (_is_number(v) and 0 <= v < 1),
                           "a number in [0, 1), or null for --dropout_p")
    spec = fields.get("splits", lambda v: isinstance(v, dict) and v,
                      "a mapping of split names (train, dev, test, ...) to their files", required=True)
    glue_dir = fields.get("glue_dir", _is_relative_path, "the task's folder under --data_dir, e.g. RTE (no '..')",
                          required=True)
    splits = {split: _split_def(path, name, split, value, spec.lines[split]) for split, value in spec.items()}
    if "train" not in splits:
        fields.fail("splits", "has no 'train' split; train.py trains on <task>_train.json")
    for split in splits:
        if split.endswith("test") and f"{split[:-len('test')]}dev" not in splits:
            fields.fail("splits", f"has the split '{split}' without '{split[:-len('test')]}dev'; a test split is "
                                  "evaluated beside its dev split")
    return TaskDef(name=name, task_type=task_type, n_class=n_class, labels=labels, metric_meta=tuple(metrics),
                   main_metric=main_metric, loss=loss, dropout_p=None if dropout_p is None else float(dropout_p),
                   glue_dir=glue_dir, splits=splits,
                   label_range=None if label_range is None else tuple(float(x) for x in label_range))


def load_task_defs(path: str = DEFAULT_TASK_DEF) -> dict:
    """Read and check the task definition file into {task name: TaskDef}; any problem is a UserError
    naming the file, the line and the key."""
    raw = _read_yaml(path)
    if not isinstance(raw, dict) or not raw:
        found = "an empty file" if raw is None else "an empty mapping" if isinstance(raw, dict) \
            else "a list" if isinstance(raw, list) else _shown(raw)
        raise UserError(f"--task_def: {path} holds no task definitions (expected a mapping of task names, found "
                        f"{found})")
    return {name: _task_def(path, name, spec, raw.lines[name]) for name, spec in raw.items()}


def resolve_dataset(name: str, task_defs: dict, flag: str = "--test_datasets") -> TaskDef:
    """The task of a dataset name: 'mnli_matched' -> mnli, 'rte' -> rte."""
    task = name.split("_", 1)[0]
    if task not in task_defs:
        raise UserError(f"{flag}: unknown dataset '{name}': its task '{task}' is not in the task definition "
                        f"(known tasks: {', '.join(sorted(task_defs))})")
    return task_defs[task]
