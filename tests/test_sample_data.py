"""Tests for the built-in GLUE sample: official layouts, sizes, labels, determinism, CLI."""
import collections
import os
import statistics
import subprocess
import sys

import pytest

from data_utils.errors import UserError
from experiments.glue import sample_data as sd
from tests.conftest import GLUE_FORMAT_SAMPLES, ROOT

BOM = b"\xef\xbb\xbf"
HEADERLESS = {("CoLA", "train.tsv"), ("CoLA", "dev.tsv")}
# GLUE's own CoLA (70% acceptable) and MRPC (68% paraphrases) are skewed.
MAX_CLASS_SHARE = {"CoLA": 0.75, "MRPC": 0.75}


def read_bytes(path):
    with open(path, "rb") as handle:
        return handle.read()


def read_rows(path):
    """(header or None, rows) of a generated file, as plain tab-separated fields."""
    text = read_bytes(path).decode("utf-8")
    text = text[1:] if text.startswith("\ufeff") else text
    lines = text.split("\n")
    assert lines[-1] == "", f"{path} does not end with a newline"
    rows = [line.split("\t") for line in lines[:-1]]
    task, name = path.split(os.sep)[-2:]
    if (task, name) in HEADERLESS:
        return None, rows
    return rows[0], rows[1:]


def all_files():
    return [(task, spec.name) for task in sd.TASKS for spec in sd.FILES[task]]


@pytest.fixture(scope="module")
def small_dir(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("small"))
    sd.generate(out, scale=0.02)
    return out


@pytest.fixture(scope="module")
def default_dir(tmp_path_factory):
    """The full default sample, generated once for the size and label tests."""
    out = str(tmp_path_factory.mktemp("default"))
    counts = sd.generate(out)
    return out, counts


@pytest.mark.parametrize("task,name", all_files())
def test_layout_matches_shared_sample(small_dir, task, name):
    sample = os.path.join(GLUE_FORMAT_SAMPLES, task, name)
    ours, theirs = read_bytes(os.path.join(small_dir, task, name)), read_bytes(sample)
    assert ours.startswith(BOM) == theirs.startswith(BOM), \
        f"{task}/{name}: BOM present {ours.startswith(BOM)}, shared sample {theirs.startswith(BOM)}"
    assert b"\r" not in ours, f"{task}/{name}: has carriage returns; GLUE uses '\\n' line endings"
    our_first, their_first = ours.split(b"\n", 1)[0], theirs.split(b"\n", 1)[0]
    if (task, name) in HEADERLESS:
        ours_cols, theirs_cols = len(our_first.split(b"\t")), len(their_first.split(b"\t"))
        assert ours_cols == theirs_cols, f"{task}/{name}: first row has {ours_cols} columns, sample has {theirs_cols}"
        assert our_first.split(b"\t")[1] in (b"0", b"1"), f"{task}/{name}: headerless file starts with a header"
    else:
        assert our_first == their_first, f"{task}/{name}: header {our_first!r} != shared {their_first!r}"
    header, rows = read_rows(os.path.join(small_dir, task, name))
    width = len(their_first.split(b"\t"))
    bad = [i for i, row in enumerate(rows) if len(row) != width]
    assert not bad, f"{task}/{name}: rows {bad[:5]} do not have {width} columns"


def test_cola_and_sst_conventions(small_dir):
    _, cola = read_rows(os.path.join(small_dir, "CoLA", "train.tsv"))
    for source, label, original, sentence in cola:
        assert original == ("*" if label == "0" else ""), \
            f"CoLA original-label {original!r} does not match label {label!r} for {sentence!r}"
        assert source and " " not in source, f"CoLA source code {source!r} is not a bare code like gj04"
    header, test = read_rows(os.path.join(small_dir, "CoLA", "test.tsv"))
    assert [row[0] for row in test] == [str(i) for i in range(len(test))], "CoLA test index is not 0..n-1"
    _, sst = read_rows(os.path.join(small_dir, "SST-2", "train.tsv"))
    assert all(row[0].endswith(" ") for row in sst), "SST-2 train sentences must end with a space like GLUE's"
    assert all(row[0] == row[0].lower() for row in sst), "SST-2 sentences must be lower-cased like GLUE's"
    _, sst_test = read_rows(os.path.join(small_dir, "SST-2", "test.tsv"))
    assert not any(row[1].endswith(" ") for row in sst_test), "SST-2 test sentences have no trailing space"


def test_default_sizes_meet_minimums(default_dir):
    out, counts = default_dir
    for task in sd.TASKS:
        for spec in sd.FILES[task]:
            _, rows = read_rows(os.path.join(out, task, spec.name))
            assert len(rows) == counts[task][spec.name], \
                f"{task}/{spec.name}: {len(rows)} rows on disk, generate() reported {counts[task][spec.name]}"
            if spec.name == "train.tsv":
                minimum = 4000 if task == "MNLI" else 2000
            elif spec.labelled:
                minimum = 600 if task == "MNLI" else 500
            else:
                minimum = 500
            assert len(rows) >= minimum, f"{task}/{spec.name}: {len(rows)} rows, want >= {minimum}"


def labelled_files():
    return [(task, spec.name) for task in sd.TASKS for spec in sd.FILES[task]
            if spec.labelled and sd.LABELS[task] is not None]


@pytest.mark.parametrize("task,name", labelled_files())
def test_label_distribution_not_degenerate(default_dir, task, name):
    out, _ = default_dir
    _, rows = read_rows(os.path.join(out, task, name))
    label_col = 1 if task == "CoLA" else (0 if task == "MRPC" else -1)
    counts = collections.Counter(row[label_col] for row in rows)
    assert set(counts) == set(sd.LABELS[task]), f"{task}/{name}: labels {dict(counts)}, want all of {sd.LABELS[task]}"
    top = max(counts.values()) / len(rows)
    limit = MAX_CLASS_SHARE.get(task, 0.70)
    assert top <= limit, f"{task}/{name}: largest class is {top:.0%} of rows (limit {limit:.0%}): {dict(counts)}"


def test_stsb_scores(default_dir):
    out, _ = default_dir
    _, rows = read_rows(os.path.join(out, "STS-B", "train.tsv"))
    scores = [row[-1] for row in rows]
    assert all(len(s.split(".")[1]) == 3 for s in scores), "STS-B scores must have 3 decimals like 3.800"
    values = [float(s) for s in scores]
    assert min(values) >= 0.0 and max(values) <= 5.0, f"STS-B scores outside 0-5: {min(values)}..{max(values)}"
    assert statistics.pstdev(values) > 1.0, f"STS-B scores barely vary (std {statistics.pstdev(values):.2f})"
    assert sum(v < 1 for v in values) > 0.1 * len(values) and sum(v >= 4 for v in values) > 0.1 * len(values), \
        "STS-B scores do not cover both ends of the scale"


def test_label_noise_present_but_small():
    for task in sd.TASKS:
        examples = sd.build_examples(task, scale=0.4)
        for spec in sd.FILES[task]:
            rows = examples[spec.name]
            noisy = sum(ex.label != ex.clean_label for ex in rows) / len(rows)
            if spec.labelled:
                assert 0.02 <= noisy <= 0.05, f"{task}/{spec.name}: {noisy:.1%} noisy labels, want 2-5%"
            else:
                assert noisy == 0, f"{task}/{spec.name}: unlabelled file has noisy labels"


def test_texts_do_not_leak_between_files():
    for task in sd.TASKS:
        examples = sd.build_examples(task, scale=0.2)
        key = (lambda ex: ex.texts[0]) if task == "MNLI" else (lambda ex: ex.texts)
        owner = {}
        for name, rows in examples.items():
            for ex in rows:
                assert owner.setdefault(key(ex), name) == name, \
                    f"{task}: {key(ex)!r} appears in both {owner[key(ex)]} and {name}"


def test_mnli_genres_and_annotations(default_dir):
    out, _ = default_dir
    genres = {}
    for spec in sd.FILES["MNLI"]:
        header, rows = read_rows(os.path.join(out, "MNLI", spec.name))
        genres[spec.name] = {row[3] for row in rows}
        if spec.name.startswith("dev"):
            for row in rows:
                annotations, gold = row[10:15], row[15]
                assert annotations.count(gold) >= 3, f"MNLI {spec.name}: gold {gold} is not the majority of {annotations}"
                assert row[2] == row[1] + row[10][0], f"MNLI {spec.name}: pairID {row[2]} != promptID + label1 initial"
        elif spec.name == "train.tsv":
            assert all(row[10] == row[11] for row in rows), "MNLI train label1 must equal gold_label"
        else:
            assert all(row[2] == row[1] for row in rows), f"MNLI {spec.name}: test pairID must equal promptID"
        assert all(row[4].startswith("( ") and row[6].startswith("(ROOT (S") for row in rows), \
            f"MNLI {spec.name}: parse columns are not bracketed parses"
    assert genres["train.tsv"] == genres["dev_matched.tsv"] == genres["test_matched.tsv"] \
        == set(sd.MNLI_MATCHED_GENRES), f"MNLI matched genres differ: {genres}"
    assert genres["dev_mismatched.tsv"] == genres["test_mismatched.tsv"] == set(sd.MNLI_MISMATCHED_GENRES), \
        f"MNLI mismatched genres wrong: {genres}"
    assert not genres["train.tsv"] & genres["dev_mismatched.tsv"], "MNLI mismatched genres overlap the training genres"


def test_same_seed_is_byte_identical_and_seed_matters(tmp_path, small_dir):
    again = str(tmp_path / "again")
    sd.generate(again, scale=0.02)
    other = str(tmp_path / "other")
    sd.generate(other, scale=0.02, seed=sd.DEFAULT_SEED + 1)
    for task, name in all_files():
        first = read_bytes(os.path.join(small_dir, task, name))
        assert read_bytes(os.path.join(again, task, name)) == first, f"{task}/{name} differs between two runs"
        assert read_bytes(os.path.join(other, task, name)) != first, f"{task}/{name} ignores the seed"


def test_tasks_flag_writes_only_those_tasks_and_same_bytes(tmp_path, small_dir):
    out = str(tmp_path / "two")
    counts = sd.generate(out, scale=0.02, tasks=["cola", "SST-2"])
    assert list(counts) == ["CoLA", "SST-2"], f"generate wrote {list(counts)}"
    assert sorted(os.listdir(out)) == ["CoLA", sd.MARKER_FILE, "SST-2"], f"unexpected entries {os.listdir(out)}"
    for spec in sd.FILES["SST-2"]:
        assert read_bytes(os.path.join(out, "SST-2", spec.name)) == \
            read_bytes(os.path.join(small_dir, "SST-2", spec.name)), \
            f"SST-2/{spec.name} depends on which other tasks were generated"


def test_scale_changes_sizes(tmp_path):
    counts = sd.generate(str(tmp_path / "s"), scale=0.01, tasks=["MNLI", "RTE"])
    assert counts["RTE"] == {"train.tsv": 25, "dev.tsv": 5, "test.tsv": 5}, f"RTE at scale 0.01: {counts['RTE']}"
    assert counts["MNLI"]["train.tsv"] == 45, f"MNLI train at scale 0.01: {counts['MNLI']}"


def test_bad_arguments_raise_user_errors(tmp_path):
    with pytest.raises(UserError, match="scale"):
        sd.generate(str(tmp_path), scale=0)
    with pytest.raises(UserError, match="unknown task"):
        sd.generate(str(tmp_path), tasks=["CoLA", "SQuAD"])


def test_refuses_to_overwrite_real_glue(tmp_path):
    real = tmp_path / "CoLA" / "train.tsv"
    real.parent.mkdir()
    real.write_text("gj04\t1\t\tA real sentence.\n")
    with pytest.raises(UserError, match="may be real GLUE"):
        sd.generate(str(tmp_path), scale=0.01, tasks=["CoLA"])
    assert real.read_text() == "gj04\t1\t\tA real sentence.\n", "real file was modified"


def test_interrupted_write_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    out = str(tmp_path)
    sd.generate(out, scale=0.01, tasks=["RTE"])
    before = read_bytes(os.path.join(out, "RTE", "train.tsv"))

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(sd.os, "replace", crash)
    with pytest.raises(OSError):
        sd.generate(out, scale=0.02, tasks=["RTE"])
    assert read_bytes(os.path.join(out, "RTE", "train.tsv")) == before, "a failed write changed the old file"
    leftovers = [name for name in os.listdir(os.path.join(out, "RTE")) if name.endswith(".tmp")]
    assert not leftovers, f"temporary files left behind: {leftovers}"


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "experiments.glue.sample_data", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_cli_writes_and_summarises(tmp_path):
    result = run_cli("--out_dir", str(tmp_path), "--scale", "0.01", "--tasks", "CoLA,WNLI", "--seed", "7")
    assert result.returncode == 0, f"CLI failed: {result.stderr}"
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("CoLA") and lines[1].startswith("WNLI"), f"no per-task summary: {result.stdout}"
    assert "SAMPLE" in lines[-1] and "NOT the real GLUE" in lines[-1], f"no sample notice: {result.stdout}"
    expected = str(tmp_path / "seven")
    sd.generate(expected, seed=7, scale=0.01, tasks=["WNLI"])
    assert read_bytes(str(tmp_path / "WNLI" / "dev.tsv")) == read_bytes(os.path.join(expected, "WNLI", "dev.tsv")), \
        "CLI --seed does not match generate(seed=...)"


@pytest.mark.parametrize("args", [["--scale", "0"], ["--tasks", "Foo"], ["--bogus"], ["--seed", "x"]])
def test_cli_errors_exit_2(tmp_path, args):
    result = run_cli("--out_dir", str(tmp_path), *args)
    assert result.returncode == 2, f"{args}: exit {result.returncode}, stderr {result.stderr}"
    assert result.stderr.strip(), f"{args}: no error message"
    assert "Traceback" not in result.stderr, f"{args}: traceback instead of a one-line error: {result.stderr}"
