"""Readers for the official GLUE TSV files, driven by the task definition.

Fields are plain tab-separated (no CSV quoting: GLUE texts contain quotes).
Every malformed row, undecodable byte or unknown label is reported with its
file and line; with `skip_malformed` such rows are skipped with a warning
instead (real QQP has a few).

Where MT-DNN's readers (namisan/mt-dnn, experiments/glue/glue_utils.py) treat a task's rows
specially, the task definition says so and the reader does the same: QQP's train and dev splits have
no uid_column, so their rows are numbered with a running counter of kept rows (test keeps its id
column), and `skip_short_rows`, so rows with fewer than six fields are skipped and counted rather
than refused, as `load_qqp` does. Every deliberate
difference from MT-DNN's readers is listed in docs/METHODS.md ("Reading GLUE as MT-DNN does").
"""
import os
import sys
from dataclasses import dataclass

from data_utils.errors import UserError
from data_utils.files import why_not_a_file
from data_utils.task_def import SplitDef, TaskDef


# The reader's output version: bump it when the same TSV would be read into other examples, so that
# prepro's manifest marks canonical data written by an older reader as stale.
READER_VERSION = 2

@dataclass(frozen=True)
class Example:
    uid: str
    label: object      # int class id, float score, or 0 for unlabelled test rows
    text_a: str
    text_b: str | None


def read_split(task: TaskDef, split: SplitDef, data_dir: str, skip_malformed: bool = False,
               report: dict | None = None) -> list:
    """Read one split of one task from `data_dir/<glue_dir>/<file>` into Examples.

    `report`, when given, receives the counts of rows left out: `skipped_short` (rows MT-DNN skips,
    the split's `skip_short_rows`) and `skipped_malformed` (with `skip_malformed`)."""
    path = os.path.join(data_dir, task.glue_dir, split.file)
    if not os.path.isfile(path):
        raise UserError(f"{path}: {why_not_a_file(path)}; run `sh download.sh --data_dir {data_dir}` "
                        "or point --data_dir at the GLUE directory")
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as err:
        raise UserError(f"{path}: cannot read it ({err.strerror or err}); check its permissions") from None
    if not raw.strip():
        raise UserError(f"{path}: file is empty; download it again with `sh download.sh`")
    if raw.startswith(b"\xef\xbb\xbf"):          # MRPC ships with a UTF-8 BOM
        raw = raw[3:]
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()

    examples, skipped, short = [], 0, 0
    first = 1 if split.header else 0
    if split.header:
        header = _decode(lines[0], path, 1).rstrip("\r").split("\t")
        if len(header) != split.n_columns:
            raise UserError(f"{path}:1: header has {len(header)} columns, expected {split.n_columns} "
                            f"for {task.name} {split.name}; is this the right file?")
        if split.label_column is not None and task.label_to_id(header[split.label_column]) is not None:
            # a data row where the header belongs: reading on would silently drop it
            raise UserError(f"{path}:1: expected the header row but found a data row (label "
                            f"'{header[split.label_column]}'); restore the file's header line")
    for index in range(first, len(lines)):
        line_no = index + 1
        if split.skip_short_rows and lines[index].count(b"\t") + 1 < split.n_columns:
            short += 1           # MT-DNN's load_qqp: `if is_train and len(blocks) < 6: skipped += 1`
            continue
        try:
            examples.append(_parse_row(task, split, lines[index], path, line_no, len(examples)))
        except UserError as err:
            if not skip_malformed:
                raise UserError(f"{err} (pass --skip_malformed to skip such rows)") from None
            skipped += 1
            print(f"warning: skipped {err}", file=sys.stderr)
    if not examples:
        raise UserError(f"{path}: no data rows after the header; download it again with `sh download.sh`")
    if skipped:
        print(f"warning: {path}: skipped {skipped} malformed rows", file=sys.stderr)
    if short:
        print(f"note: {path}: skipped {short} rows with fewer than {split.n_columns} fields, as MT-DNN's "
              f"reader does for {task.name} {split.name}", file=sys.stderr)
    if report is not None:
        report.update(skipped_short=short, skipped_malformed=skipped)
    return examples


def _decode(line: bytes, path: str, line_no: int) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as err:
        raise UserError(f"{path}:{line_no}: bytes that are not UTF-8 at column {err.start + 1}; "
                        "re-save the file as UTF-8") from None


def _parse_row(task: TaskDef, split: SplitDef, line: bytes, path: str, line_no: int, position: int) -> Example:
    fields = _decode(line, path, line_no).rstrip("\r").split("\t")
    if len(fields) != split.n_columns:
        raise UserError(f"{path}:{line_no}: malformed row with {len(fields)} tab-separated columns, "
                        f"expected {split.n_columns}")
    texts = [fields[c] for c in split.text_columns]
    if split.label_column is None:
        label = 0
    else:
        raw_label = fields[split.label_column]
        label = task.label_to_id(raw_label)
        if label is None:
            if not task.is_regression:
                allowed = ", ".join(task.labels)
            elif task.label_range:
                allowed = f"a number in {list(task.label_range)}"
            else:
                allowed = "a finite number"
            raise UserError(f"{path}:{line_no}: label '{raw_label}' is not valid for {task.name} "
                            f"(expected {allowed})")
    uid = fields[split.uid_column] if split.uid_column is not None else str(position)
    return Example(uid=uid, label=label, text_a=texts[0], text_b=texts[1] if len(texts) > 1 else None)
