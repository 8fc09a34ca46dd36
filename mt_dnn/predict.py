"""Label new text with one task of a saved model, without training.

    python -m mt_dnn.predict --model OUT/best_model --task rte --input pairs.tsv [--output labels.tsv]
    echo "a sentence" | python -m mt_dnn.predict --model OUT/best_model --task sst

Input (`--input FILE`, or `-` for stdin, the default):
- `--format text` (the default unless the file ends in .tsv): one example per line; a pair task's two
  texts are separated by one tab. Empty lines are skipped.
- `--format tsv`: a tab-separated table (no quoting, as GLUE's). The text columns are the task
  definition's for `--layout` (a split name; default `test`: GLUE's test.tsv layout, with its header,
  column count and id column), or `--text_columns` (0-based indices, or header names, which imply a
  header line; `--header` skips a header line with indices).

Output (`--output FILE`, or stdout): a TSV `index<TAB>label<TAB>score` with a header; index is the
row's id column where the layout has one, else its 0-based position; label is the task definition's
label name; score the probability of that label. A regression task (stsb) gives the predicted value as
the label (3 decimals, as GLUE's submissions) and in full as the score.
"""
import csv
import io
import os
import sys

import transformers

from data_utils import pairs
from data_utils.batcher import TaskDataset
from data_utils.errors import ArgumentParser, UserError, run_cli
from data_utils.files import refuse_unwritable, refuse_writing_inputs, write_output_file
from data_utils.task_def import DEFAULT_TASK_DEF, load_task_defs
from mt_dnn import engines
from modeling import pretrained
from modeling.families import family_of
from training.inference import predict


def build_parser():
    parser = ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="a model/ or best_model/ directory written by train.py")
    parser.add_argument("--task", required=True, help="which of the model's tasks labels the input, e.g. rte")
    parser.add_argument("--input", default="-", help="input file, or - for stdin (default)")
    parser.add_argument("--format", default="auto", choices=("auto", "text", "tsv"),
                        help="text: a line per example (pairs tab-separated); tsv: a table; auto: tsv for *.tsv")
    parser.add_argument("--layout", default="test",
                        help="TSV: read columns as the task definition's split of this name (default test)")
    parser.add_argument("--text_columns", default=None,
                        help="TSV: the text columns instead, as 0-based indices or header names, e.g. 3,4")
    parser.add_argument("--header", action="store_true", help="TSV with --text_columns indices: skip a header line")
    parser.add_argument("--output", default="-", help="output TSV file, or - for stdout (default)")
    parser.add_argument("--task_def", default=DEFAULT_TASK_DEF, help="task definition YAML")
    parser.add_argument("--batch_size", type=int, default=32, help="prediction batch size")
    parser.add_argument("--max_seq_len", type=int, default=512,
                        help="truncate longer inputs to this many tokens (as prepro does; at most the model's "
                             "position table)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="where to run")
    engines.add_arguments(parser)
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    return parser


def read_lines(path: str) -> list:
    """The input's lines (without line ends), decoded as UTF-8 with file:line errors."""
    name = "<stdin>" if path == "-" else path
    if path == "-":
        try:
            raw = sys.stdin.buffer.read()
        except (AttributeError, OSError, ValueError) as err:      # stdin closed (None) or not readable
            reason = getattr(err, "strerror", None) or "it is closed"
            raise UserError(f"--input -: cannot read stdin ({reason}); pipe the rows in or give --input FILE") \
                from None
    else:
        # not only regular files: a pipe (`--input <(...)`, /dev/fd/N) is read too, once, here
        if not os.path.exists(path):
            raise UserError(f"--input {path}: file not found")
        if os.path.isdir(path):
            raise UserError(f"--input {path} is a directory; give a file, or - for stdin")
        try:
            with open(path, "rb") as handle:
                raw = handle.read()
        except OSError as err:
            raise UserError(f"--input {path}: cannot read it ({err.strerror or err}); check its permissions") \
                from None
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    decoded = []
    for line_no, line in enumerate(lines, start=1):
        try:
            decoded.append(line.decode("utf-8").rstrip("\r"))
        except UnicodeDecodeError as err:
            raise UserError(f"{name}:{line_no}: bytes that are not UTF-8 at column {err.start + 1}; "
                            "re-save the input as UTF-8") from None
    return decoded


def n_texts(task) -> int:
    """1 for a single-sentence task, 2 for a pair task (from the task definition's train layout)."""
    split = task.splits.get("train") or next(iter(task.splits.values()))
    return len(split.text_columns)


def read_text(lines: list, name: str, task) -> list:
    """(uid, text_a, text_b) per non-empty line."""
    want, rows = n_texts(task), []
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        texts = line.split("\t")
        if len(texts) != want:
            raise UserError(f"{name}:{line_no}: {len(texts)} tab-separated texts, but {task.name} takes {want} "
                            f"({'a pair separated by one tab' if want == 2 else 'one text without tabs'})")
        rows.append((str(len(rows)), texts[0], texts[1] if want == 2 else None))
    return rows


def read_tsv(lines: list, name: str, task, args) -> list:
    """(uid, text_a, text_b) per data row of a TSV, columns from --layout or --text_columns."""
    want = n_texts(task)
    if args.text_columns is not None:
        specs = [c.strip() for c in args.text_columns.split(",") if c.strip()]
        by_name = not all(s.lstrip("-").isdigit() for s in specs)
        header = by_name or args.header
        n_columns, uid_column = None, None
        if by_name:
            if not lines:
                raise UserError(f"{name}: empty, but --text_columns {args.text_columns} names header columns")
            names = lines[0].split("\t")
            missing = [s for s in specs if s not in names]
            if missing:
                raise UserError(f"--text_columns: {', '.join(missing)} not in the header of {name} "
                                f"(its columns: {', '.join(names)})")
            columns = [names.index(s) for s in specs]
        else:
            columns = [int(s) for s in specs]
        if len(columns) != want:
            raise UserError(f"--text_columns {args.text_columns}: {task.name} takes {want} text column"
                            f"{'s' if want > 1 else ''}, got {len(columns)}")
        if len(columns) == 2 and columns[0] == columns[1]:
            raise UserError(f"--text_columns {args.text_columns} names the same column twice; give two different "
                            f"columns, the pair's first and second text")
    else:
        split = task.splits.get(args.layout)
        if split is None:
            raise UserError(f"--layout {args.layout}: task {task.name} has no such split (its splits: "
                            f"{', '.join(task.splits)}); or give --text_columns")
        header, n_columns, columns, uid_column = split.header, split.n_columns, split.text_columns, split.uid_column
    rows = []
    for index in range(1 if header else 0, len(lines)):
        line_no, line = index + 1, lines[index]
        if not line.strip():
            continue
        fields = line.split("\t")
        needed = max(c + 1 if c >= 0 else -c for c in list(columns) + ([uid_column] if uid_column is not None
                                                                         else []))
        if (n_columns is not None and len(fields) != n_columns) or len(fields) < needed:
            expected = f"{n_columns}" if n_columns is not None else f"at least {needed}"
            raise UserError(f"{name}:{line_no}: malformed row with {len(fields)} tab-separated columns, expected "
                            f"{expected} ({task.name} {'--text_columns' if n_columns is None else args.layout} "
                            "layout); fix the row or choose --layout/--text_columns")
        if len(columns) == 2 and columns[0] % len(fields) == columns[1] % len(fields):     # e.g. 1,-2 of 3 columns
            raise UserError(f"{name}:{line_no}: --text_columns {args.text_columns} name the same column of this "
                            f"{len(fields)}-column row twice; give two different columns")
        uid = fields[uid_column] if uid_column is not None else str(len(rows))
        texts = [fields[c] for c in columns]
        rows.append((uid, texts[0], texts[1] if len(texts) > 1 else None))
    return rows


def tokenize(tokenizer, rows: list, max_seq_len: int, task) -> list:
    """Canonical examples, tokenized as prepro does (truncation to max_seq_len)."""
    examples = []
    for start in range(0, len(rows), 4096):
        part = rows[start:start + 4096]
        texts_b = [r[2] for r in part] if part[0][2] is not None else None
        encoded = pairs.encode(tokenizer, [r[1] for r in part], texts_b, max_seq_len)
        for row, ids, types in zip(part, encoded["input_ids"], encoded["token_type_ids"]):
            examples.append({"uid": row[0], "label": 0.0 if task.is_regression else 0,
                             "token_id": ids, "type_id": types})
    return examples


def format_rows(task, result: dict) -> list:
    rows = [["index", "label", "score"]]
    for uid, prediction, score in zip(result["uids"], result["predictions"], result["scores"]):
        if task.is_regression:
            rows.append([uid, task.id_to_label(prediction), f"{float(score):.6g}"])
        else:
            rows.append([uid, task.id_to_label(prediction), f"{float(score[int(prediction)]):.6f}"])
    return rows


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if not args.output.strip():
        raise UserError("--output is empty; give a file, or - for stdout (the default)")
    engines.check_arguments(args.engine, args.threads, args.device)
    if args.batch_size < 1:
        raise UserError(f"--batch_size {args.batch_size} must be at least 1")
    if args.max_seq_len < 8:
        raise UserError(f"--max_seq_len {args.max_seq_len} is too small; use at least 8 (e.g. 128 or 512)")
    stream = is_stream(args.output)
    if args.output != "-":      # an input is never written to, and the output can be written: checked before any work
        refuse_writing_inputs([("--output", args.output)], [
            ("--input", None if args.input == "-" else args.input), ("--model", args.model),
            ("--task_def", args.task_def)])
        if not stream:
            refuse_unwritable(args.output, "--output")
    transformers.utils.logging.disable_progress_bar()    # stderr is for one-line errors
    task_defs = load_task_defs(args.task_def)
    if args.task not in task_defs:
        raise UserError(f"--task {args.task}: not in the task definition (known: {', '.join(sorted(task_defs))})")
    # the engine's choices are shown beside "wrote N predictions"; stdout output is the table alone
    model = engines.load_engine(args.model, task_defs, args.engine, args.threads,
                                report=print if not stream else None)
    if args.task not in model.heads:
        raise UserError(f"--task {args.task}: {args.model} has no head for it (it has {', '.join(model.heads)}); "
                        "choose one of those")
    task = task_defs[args.task]
    fmt = args.format if args.format != "auto" else ("tsv" if args.input.lower().endswith(".tsv") else "text")
    lines = read_lines(args.input)
    name = "<stdin>" if args.input == "-" else args.input
    rows = read_tsv(lines, name, task, args) if fmt == "tsv" else read_text(lines, name, task)
    if not rows:
        raise UserError(f"--input {name}: no examples to label")
    tokenizer = pretrained.load_tokenizer(args.model)
    limit = family_of(model.encoder.config).max_positions(model.encoder.config) or args.max_seq_len
    examples = tokenize(tokenizer, rows, min(args.max_seq_len, limit), task)
    dataset = TaskDataset(name=f"{task.name}_test", task=task, path=name, examples=examples)  # unlabelled
    device = engines.device_for(args.engine, args.device)
    result = predict(model.to(device), dataset, args.batch_size, device)
    table = format_rows(task, result)

    def write(handle):
        csv.writer(handle, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_NONE, escapechar="\\") \
            .writerows(table)
    if args.output == "-":
        buffer = io.StringIO()
        write(buffer)
        try:
            sys.stdout.write(buffer.getvalue())
            sys.stdout.flush()
        except (AttributeError, OSError, ValueError) as err:      # stdout closed (None) or not writable
            reason = getattr(err, "strerror", None) or "it is closed"
            raise UserError(f"--output -: cannot write stdout ({reason}); give --output FILE") from None
    elif stream:                # a pipe or a device cannot be replaced atomically: written as it is
        try:
            with open(args.output, "w", encoding="utf-8", newline="") as handle:
                write(handle)
        except OSError as err:
            raise UserError(f"--output {args.output}: could not write it ({err.strerror or err})") from None
    else:
        write_output_file(args.output, write)
        print(f"wrote {len(table) - 1} predictions to {args.output}")
    return 0


def is_stream(path: str) -> bool:
    """Whether --output names stdout ("-") or an existing pipe or device (`>(...)`, /dev/stdout), which is
    written as a stream: no atomic replacement, and nothing else printed to stdout."""
    return path == "-" or (os.path.exists(path) and not os.path.isfile(path) and not os.path.isdir(path))


if __name__ == "__main__":
    run_cli(main)
