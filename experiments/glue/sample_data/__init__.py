"""Deterministic built-in GLUE sample: the nine tasks in the official file layouts.

`generate()` writes CoLA, SST-2, MRPC, STS-B, QQP, MNLI, QNLI, RTE and WNLI
into `<out_dir>/<Task>/` with exactly the headers, column orders, BOMs and line
endings of the GLUE archives (tests/fixtures/glue-format-samples/ holds the real
first rows of each file), so every reader and
preprocessing step of the toolkit runs unchanged when the real benchmark cannot
be downloaded (`sh download.sh` falls back to it).

The text comes from the small grammars and word lists of this package's task
modules; nothing is downloaded. Labels mean what they mean in each task, and
every task mixes easy cases with traps (negation that flips or does not flip a
label, antonyms, the same words in another order, one changed number or name,
an extra fact) plus 3% seeded label noise, so a small encoder learns each task
well above chance but not perfectly. The same seed writes byte-identical files.
This is smoke-test and tutorial data: a score measured on it says nothing about
GLUE.

    python -m experiments.glue.sample_data --out_dir data [--seed N] [--scale F] [--tasks CoLA,SST-2]

Layout of the package:

    common.py     settings, records, text helpers, shared word lists, RNG/TSV/atomic-write plumbing
    cola.py ... wnli.py   one module per task: FILES, LABELS, make_example, layout_rows
    registry.py   task name -> that module's pieces, in GLUE order (TASKS, FILES, LABELS)
    assembly.py   build_examples and generate: drawing, label noise, layout, writing
    cli.py        the argument parser and main(); __main__.py runs it
"""
# `os` stays importable as `sample_data.os`: tests patch `sample_data.os.replace`
# to simulate a failed write (it is the same module object `common` writes with).
import os  # noqa: F401

from .assembly import build_examples, generate, resolve_tasks
from .cli import build_parser, main
from .common import (DEFAULT_SEED, LABEL_NOISE, MARKER_FILE, MAX_SCALE, Example, SampleFile,
                     scaled_rows)
from .mnli import MNLI_MATCHED_GENRES, MNLI_MISMATCHED_GENRES
from .registry import FILES, LABELS, TASKS

__all__ = [
    "DEFAULT_SEED", "FILES", "LABELS", "LABEL_NOISE", "MARKER_FILE", "MAX_SCALE",
    "MNLI_MATCHED_GENRES", "MNLI_MISMATCHED_GENRES", "TASKS", "Example", "SampleFile",
    "build_examples", "build_parser", "generate", "main", "resolve_tasks", "scaled_rows",
]
