"""Turns the registry's task modules into files: drawing, label noise, layout, writing.

`build_examples` draws each file's examples (unique texts across a task's
files, seeded label noise on labelled files) and `generate` lays them out and
writes them atomically, with the marker file that tells the sample from real
GLUE.
"""
import dataclasses
import os

from data_utils.errors import UserError

from .common import (DEFAULT_SEED, LABEL_NOISE, MARKER_FILE, check_scale, derive_rng, encode_tsv,
                     pick_other, scaled_rows, write_atomic)
from .registry import FILES, LABELS, REGISTRY, TASKS


def _add_noise(task, examples, rng):
    """Give exactly round(LABEL_NOISE * n) rows a wrong label (a random score for STS-B)."""
    flips = int(round(LABEL_NOISE * len(examples)))
    if not flips:
        return examples
    examples = list(examples)
    for i in sorted(rng.sample(range(len(examples)), flips)):
        ex = examples[i]
        if LABELS[task] is None:
            wrong = ex.label
            while abs(wrong - ex.label) < 1.5:  # far enough off to be a real mistake
                wrong = round(rng.uniform(0.0, 5.0) * 5) / 5
        else:
            wrong = pick_other(rng, LABELS[task], ex.label)
        examples[i] = dataclasses.replace(ex, label=wrong)
    return examples


def _draw(task, spec, rows, seed, seen):
    """`rows` fresh examples for one file; `seen` keeps texts unique across a task's files."""
    rng = derive_rng(seed, task, spec.name)
    make = REGISTRY[task].make_example
    examples = []
    while len(examples) < rows:
        wanted = None
        for attempt in range(200):
            key, batch = make(rng, spec)
            wanted = batch[0].label if wanted is None else wanted
            # Retry with the same label, so exhausting the duplicates of one
            # class does not skew the label mix; give up on that after 100 tries.
            if key not in seen and (batch[0].label == wanted or attempt >= 100):
                break
        seen.add(key)
        examples.extend(batch)
    if REGISTRY[task].shuffle:
        rng.shuffle(examples)
    examples = examples[:rows]
    if spec.labelled:
        examples = _add_noise(task, examples, derive_rng(seed, task, spec.name, "noise"))
    return examples


def build_examples(task, seed=DEFAULT_SEED, scale=1.0):
    """{file name: [Example]} for one task, exactly as `generate` would write them."""
    seen = set()
    return {spec.name: _draw(task, spec, scaled_rows(spec.rows, scale), seed, seen)
            for spec in FILES[task]}


def _check_not_real_glue(out_dir, tasks):
    """Refuse to overwrite files this generator did not write (a real GLUE download)."""
    if os.path.exists(os.path.join(out_dir, MARKER_FILE)):
        return
    for task in tasks:
        for spec in FILES[task]:
            path = os.path.join(out_dir, task, spec.name)
            if os.path.exists(path):
                raise UserError(
                    f"{path} already exists and {out_dir} has no {MARKER_FILE}, so it may be real "
                    f"GLUE data; the sample will not overwrite it. Choose another --out_dir or "
                    f"delete {os.path.join(out_dir, task)} first")


def resolve_tasks(tasks):
    """Validated task names in GLUE order; accepts any case ('sst-2', 'mnli')."""
    if tasks is None:
        return list(TASKS)
    by_lower = {t.lower(): t for t in TASKS}
    chosen = []
    for name in tasks:
        name = name.strip()
        if name.lower() not in by_lower:
            raise UserError(f"unknown task {name!r}: choose from {','.join(TASKS)}")
        chosen.append(by_lower[name.lower()])
    if not chosen:
        raise UserError(f"no task given: choose from {','.join(TASKS)}")
    return [t for t in TASKS if t in chosen]


def generate(out_dir, seed=DEFAULT_SEED, scale=1.0, tasks=None):
    """Write the sample into `<out_dir>/<Task>/`; return {task: {file name: data rows}}."""
    check_scale(scale)
    chosen = resolve_tasks(tasks)
    _check_not_real_glue(out_dir, chosen)
    written = {}
    for task in chosen:
        task_dir = os.path.join(out_dir, task)
        os.makedirs(task_dir, exist_ok=True)
        examples = build_examples(task, seed, scale)
        counts = {}
        for spec in FILES[task]:
            header, rows, bom = REGISTRY[task].layout_rows(spec, examples[spec.name],
                                                           derive_rng(seed, task, spec.name, "layout"))
            write_atomic(os.path.join(task_dir, spec.name), encode_tsv(header, rows, bom))
            counts[spec.name] = len(rows)
        written[task] = counts
    # The marker text is part of the byte-identical output, so it keeps naming
    # the generator by its original single-file path.
    note = (f"This folder holds the toolkit's built-in synthetic GLUE SAMPLE (seed {seed}, scale "
            f"{scale:g}), written by experiments/glue/sample_data.py from its own word lists.\n"
            "It is NOT the GLUE benchmark: scores on it say nothing about GLUE.\n"
            "Run `sh download.sh` to fetch the real data.\n")
    write_atomic(os.path.join(out_dir, MARKER_FILE), note.encode("utf-8"))
    return written
