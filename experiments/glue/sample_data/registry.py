"""The task registry: GLUE task name -> the pieces of its module that `generate` uses.

Order matters: it is GLUE's task order, the order of `TASKS`, of `--tasks`
error messages and of the files `generate` writes.
"""
from dataclasses import dataclass

from . import cola, mnli, mrpc, qnli, qqp, rte, sst, stsb, wnli


@dataclass(frozen=True)
class Task:
    """One task's files, labels, example builder and file layout."""
    files: tuple  # SampleFile per file, in writing order
    labels: object  # label strings as they appear in the files; None for regression
    make_example: object  # (rng, spec) -> (dedup key, [Example])
    layout_rows: object  # (spec, examples, rng) -> (header or None, rows, bom)
    shuffle: bool = False  # shuffle a file's examples before trimming to its row count


def _entry(module, shuffle=False):
    return Task(module.FILES, module.LABELS, module.make_example, module.layout_rows, shuffle)


REGISTRY = {
    "CoLA": _entry(cola),
    "SST-2": _entry(sst),
    "MRPC": _entry(mrpc),
    "STS-B": _entry(stsb),
    "QQP": _entry(qqp),
    # The three hypotheses of a premise are not adjacent in MNLI.
    "MNLI": _entry(mnli, shuffle=True),
    "QNLI": _entry(qnli),
    "RTE": _entry(rte),
    "WNLI": _entry(wnli),
}

TASKS = tuple(REGISTRY)
# Default sizes (scale 1.0): at least 2,000 train and 500 dev rows per task.
FILES = {name: task.files for name, task in REGISTRY.items()}
# Label strings as they appear in the files; None marks the regression task.
LABELS = {name: task.labels for name, task in REGISTRY.items()}
