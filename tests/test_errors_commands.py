"""Bad input to the serving commands (mt_dnn.export, compress, onnx_export, predict, evaluate) and the GPP-DFD
front end (run_GDbert_glue.py): one line on stderr naming the flag or file, exit status 2, nothing a user
named (an input, the working directory) touched, and nothing already written lost.

In-process through `run_cli` with capsys; subprocesses for the real command line where a bug used to
crash the interpreter (a segfault would take pytest with it) and for the working-directory check of export.
Every case that could write into the working directory runs with its cwd in a scratch directory of tmp_path.
"""
import json
import os
import shlex
import shutil
import subprocess
import sys

import pytest

import run_GDbert_glue
from mt_dnn import compress, evaluate, export, onnx_export, predict
from tests.conftest import ROOT, run_main
from tests.test_errors import fail


def snapshot(directory) -> dict:
    """{relative path: bytes} of every file below `directory` (directories listed as None)."""
    found = {}
    for root, dirs, files in os.walk(directory):
        for name in dirs:
            found[os.path.relpath(os.path.join(root, name), directory)] = None
        for name in files:
            path = os.path.join(root, name)
            found[os.path.relpath(path, directory)] = open(path, "rb").read()
    return found


def sandbox(tmp_path, monkeypatch):
    """A working directory holding a precious file and a sub-directory; the test runs inside it."""
    sand = tmp_path / "sand"
    (sand / "sub").mkdir(parents=True)
    (sand / "precious.txt").write_text("precious\n")
    (sand / "sub" / "notes.txt").write_text("notes\n")
    monkeypatch.chdir(sand)
    return sand


def env():
    return {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
            "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def run_module(module, args, cwd, timeout=300):
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=cwd, env=env(), capture_output=True,
                          text=True, timeout=timeout)


def assert_refused(result, *needles):
    err = result.stderr
    assert result.returncode == 2, f"exit 2 expected, got {result.returncode}: {err[-600:]}"
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, f"one line on stderr: {err!r}"
    assert err.startswith("error: "), f"the line starts with 'error: ': {err!r}"
    for needle in needles:
        assert needle in err, f"the message should contain {needle!r}: {err!r}"


# ---------------------------------------------------------------- F1/F9: an empty output path


def test_export_with_an_empty_output_dir_keeps_the_working_directory(gpp_model_dir, tmp_path, monkeypatch):
    """The real command line: `--output_dir ''` used to replace the whole working directory with the export."""
    sand = sandbox(tmp_path, monkeypatch)
    before = snapshot(sand)
    result = run_module("mt_dnn.export", ["--checkpoint", gpp_model_dir, "--output_dir", ""], cwd=sand)
    assert_refused(result, "error: --output_dir is empty; give a directory")
    assert snapshot(sand) == before, f"the working directory is untouched: {sorted(os.listdir(sand))}"


EMPTY_OUTPUT_CASES = [
    ("export", export.main, lambda m, d: ["--checkpoint", m, "--output_dir", ""], "--output_dir is empty"),
    ("export int8", export.main, lambda m, d: ["--checkpoint", m, "--output_dir", "", "--quantize", "int8"],
     "--output_dir is empty"),
    ("compress", compress.main, lambda m, d: ["--model", m, "--output_dir", ""], "--output_dir is empty"),
    ("onnx_export", onnx_export.main, lambda m, d: ["--model", m, "--output_dir", ""], "--output_dir is empty"),
    ("evaluate", evaluate.main, lambda m, d: ["--model", m, "--data_dir", d, "--datasets", "rte", "--output_dir", ""],
     "--output_dir is empty; give a directory"),
    ("predict", predict.main, lambda m, d: ["--model", m, "--task", "rte", "--input", "in.txt", "--output", ""],
     "--output is empty; give a file, or - for stdout"),
    ("run_GDbert_glue", run_GDbert_glue.main,
     lambda m, d: ["--model_name_or_path", m, "--task_name", "rte", "--do_train", "--data_dir", "glue",
                   "--output_dir", "", "--overwrite_output_dir"], "--output_dir is empty; give a directory"),
]


@pytest.mark.parametrize("case,main,argv,needle", EMPTY_OUTPUT_CASES, ids=[c[0] for c in EMPTY_OUTPUT_CASES])
def test_an_empty_output_path_is_refused_at_start(gpp_model_dir, canonical_dir, tmp_path, monkeypatch, capsys,
                                                   case, main, argv, needle):
    sand = sandbox(tmp_path, monkeypatch)
    (sand / "in.txt").write_text("A man sings.\tSomeone sings.\n")
    before = snapshot(sand)
    fail(main, argv(gpp_model_dir, canonical_dir), capsys, needle)
    assert snapshot(sand) == before, f"{case}: the working directory is untouched: {sorted(os.listdir(sand))}"


# ---------------------------------------------------------------- F3: run_GDbert_glue.py --output_dir and its inputs


def glue_front_end_layout(sample_glue, tiny_model_dir, tmp_path):
    """tmp/glue (RTE + a note), tmp/student (a copy of the tiny model), tmp/teacher_run/model (a teacher)."""
    shutil.copytree(os.path.join(sample_glue, "RTE"), tmp_path / "glue" / "RTE")
    (tmp_path / "glue" / "notes.txt").write_text("my notes\n")
    shutil.copytree(tiny_model_dir, tmp_path / "student")
    shutil.copytree(tiny_model_dir, tmp_path / "teacher_run" / "model")
    return {"glue": tmp_path / "glue", "student": tmp_path / "student", "teacher": tmp_path / "teacher_run"}


GLUE_INPUT_CASES = [
    ("output is the data dir", "{glue}", [], ["--output_dir {glue} is the input --data_dir {glue} itself",
                                              "choose another --output_dir"]),
    ("output is the data dir, overwrite", "{glue}", ["--overwrite_output_dir"],
     ["--output_dir {glue} is the input --data_dir {glue} itself"]),
    ("output inside the data dir", "{glue}/runs/x", ["--overwrite_output_dir"],
     ["--output_dir {glue}/runs/x is inside the input --data_dir {glue}"]),
    ("output contains the data dir", "{tmp}", ["--overwrite_output_dir"],
     ["--output_dir {tmp} contains the input --data_dir {glue}"]),
    ("output is the student model", "{student}", ["--overwrite_output_dir"],
     ["--output_dir {student} is the input --model_name_or_path {student} itself"]),
    ("output is the teacher's run", "{teacher}", ["--overwrite_output_dir", "--do_distill", "--teacher_model_path",
                                                  "{teacher}"],
     ["--output_dir {teacher} is the input --teacher_model_path {teacher} itself"]),
    ("output contains the teacher", "{teacher}", ["--overwrite_output_dir", "--do_distill", "--teacher_model_path",
                                                  "{teacher}/model"],
     ["--output_dir {teacher} contains the input --teacher_model_path {teacher}/model"]),
]


@pytest.mark.parametrize("case,output,extra,needles", GLUE_INPUT_CASES, ids=[c[0] for c in GLUE_INPUT_CASES])
def test_glue_front_end_never_writes_into_its_inputs(sample_glue, tiny_model_dir, tmp_path, capsys, case, output,
                                                      extra, needles):
    paths = glue_front_end_layout(sample_glue, tiny_model_dir, tmp_path)
    values = {"tmp": tmp_path, **paths}
    before = snapshot(tmp_path)
    argv = ["--model_name_or_path", paths["student"], "--task_name", "rte", "--do_train", "--num_train_epochs", "3",
            "--prepruning_finetune_epochs", "1", "--prune_epochs", "1", "--per_device_train_batch_size", "16",
            "--max_seq_length", "64", "--data_dir", paths["glue"], "--output_dir", output.format(**values),
            *[a.format(**values) for a in extra]]
    fail(run_GDbert_glue.main, argv, capsys, *[n.format(**values) for n in needles])
    assert snapshot(tmp_path) == before, f"{case}: nothing is written (no canonical_data, no run files, no move)"


# ---------------------------------------------------------------- F6: evaluate keeps an earlier submission


def test_evaluate_keeps_an_earlier_glue_submission_aside(gpp_model_dir, canonical_dir, tmp_path, capsys):
    """A train.py run's glue_submission/RTE.tsv in --output_dir is not replaced: it is kept, whole, in
    previous-<time>/glue_submission/RTE.tsv, and the new one takes its name."""
    run = tmp_path / "run"
    (run / "glue_submission").mkdir(parents=True)
    earlier = "index\tprediction\n0\tentailment\n# the training run's submission\n"
    (run / "glue_submission" / "RTE.tsv").write_text(earlier)
    (run / "log.log").write_text("the training run's log\n")
    argv = ["--model", gpp_model_dir, "--data_dir", canonical_dir, "--datasets", "rte", "--split", "test",
            "--output_dir", run]
    assert run_main(evaluate.main, [str(a) for a in argv]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    kept = [p for p in run.glob("previous-*/glue_submission/RTE.tsv")]
    assert len(kept) == 1 and kept[0].read_text() == earlier, \
        f"the earlier submission is kept whole in previous-<time>/: {sorted(snapshot(run))}"
    assert "kept the earlier" in out and str(kept[0]) in out, f"a line says where it went: {out}"
    new = (run / "glue_submission" / "RTE.tsv").read_text()
    assert new.startswith("index\tprediction\n") and "training run" not in new, f"the new submission: {new[:80]}"
    assert (run / "log.log").read_text() == "the training run's log\n", "other files stay as they were"
    # a second evaluation keeps the first one's files too (nothing this invocation did not write is replaced)
    first = {name: (run / name).read_bytes() for name in ("evaluation_test.json", "glue_submission/RTE.tsv")}
    assert run_main(evaluate.main, [str(a) for a in argv]) == 0, capsys.readouterr().err
    capsys.readouterr()
    for name, content in first.items():
        copies = [p for p in run.glob(f"previous-*/{name}") if p.read_bytes() == content]
        assert copies, f"the first evaluation's {name} is kept: {sorted(snapshot(run))}"


# ---------------------------------------------------------------- F8: --threads far too many


@pytest.mark.parametrize("module,threads", [("mt_dnn.predict", "100000000"),
                                            ("mt_dnn.evaluate", "10000000000000000000000")])
def test_far_too_many_threads_are_refused(gpp_model_dir, canonical_dir, tmp_path, module, threads):
    """A subprocess: 100000000 threads used to segfault the interpreter, 10**22 to overflow in torch."""
    (tmp_path / "in.txt").write_text("A man sings.\tSomeone sings.\n")
    args = ["--model", gpp_model_dir, "--threads", threads] + (
        ["--task", "rte", "--input", tmp_path / "in.txt"] if module == "mt_dnn.predict"
        else ["--data_dir", canonical_dir, "--datasets", "rte", "--output_dir", tmp_path / "eval"])
    result = run_module(module, args, cwd=tmp_path)
    assert_refused(result, f"--threads {threads} is too many threads", "or 0 for the libraries' defaults")
    assert not (tmp_path / "eval").exists(), "nothing is written"


# ---------------------------------------------------------------- F10: a compressed copy with an unknown dtype


def test_a_compressed_copy_with_an_unknown_dtype_is_refused(gpp_model_dir, canonical_dir, tmp_path, capsys):
    copy = tmp_path / "cmp"
    assert run_main(compress.main, ["--model", gpp_model_dir, "--output_dir", str(copy)]) == 0, \
        capsys.readouterr().err
    capsys.readouterr()
    manifest_path = copy / "compression.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["tensors"]["embeddings.word_embeddings.weight"]["dtype"] = "float99"
    manifest_path.write_text(json.dumps(manifest))
    fail(evaluate.main, ["--model", copy, "--data_dir", canonical_dir, "--datasets", "rte"], capsys,
         f"--model {manifest_path}: not a valid manifest", "dtype 'float99' of embeddings.word_embeddings.weight",
         "compress the model again")


# ---------------------------------------------------------------- F14: messages that name the right flag or file


def test_export_names_output_dir_for_its_int8_copy(gpp_model_dir, tmp_path, capsys):
    out = tmp_path / "D"
    (tmp_path / "D_int8").mkdir()
    (tmp_path / "D_int8" / "keep.txt").write_text("keep\n")
    err = fail(export.main, ["--checkpoint", gpp_model_dir, "--output_dir", out, "--quantize", "int8"], capsys,
               f"--output_dir {out}: its int8 copy {out}_int8 (--quantize int8) exists and holds keep.txt",
               "pass --overwrite_output_dir", "or choose another --output_dir")
    assert "--quantize int8's" not in err, f"no made-up flag name: {err}"
    assert (tmp_path / "D_int8" / "keep.txt").read_text() == "keep\n" and not out.exists(), "nothing written"


def test_export_names_output_dir_when_its_int8_copy_is_the_checkpoint(gpp_model_dir, tmp_path, capsys):
    checkpoint = tmp_path / "X_int8"
    shutil.copytree(gpp_model_dir, checkpoint)
    before = snapshot(checkpoint)
    err = fail(export.main, ["--checkpoint", checkpoint, "--output_dir", tmp_path / "X", "--quantize", "int8"],
               capsys, f"--output_dir {tmp_path}/X: its int8 copy {checkpoint} (--quantize int8) is the input "
                       f"--checkpoint {checkpoint} itself", "choose another --output_dir")
    assert "--quantize int8's" not in err, f"no made-up flag name: {err}"
    assert snapshot(checkpoint) == before and not (tmp_path / "X").exists(), "the checkpoint is untouched"


def test_a_damaged_n_class_in_export_json_blames_export_json(gpp_model_dir, canonical_dir, tmp_path, capsys):
    out = tmp_path / "onnx"
    assert run_main(onnx_export.main, ["--model", gpp_model_dir, "--output_dir", str(out)]) == 0, \
        capsys.readouterr().err
    capsys.readouterr()
    manifest = json.loads((out / "export.json").read_text())
    manifest["tasks"]["rte"]["n_class"] = "two"
    (out / "export.json").write_text(json.dumps(manifest))
    err = fail(evaluate.main, ["--model", out, "--data_dir", canonical_dir, "--datasets", "rte", "--engine",
                               "onnxruntime"], capsys,
               f"--model {out}/export.json: task rte's n_class is 'two', not a whole number of outputs",
               "export the model again")
    assert "graph has" not in err, f"the graph is not blamed: {err}"


@pytest.mark.parametrize("flag", ["--model", "--data_dir"])
def test_evaluate_says_a_file_is_not_a_directory(gpp_model_dir, canonical_dir, tmp_path, capsys, flag):
    paths = {"--model": gpp_model_dir, "--data_dir": canonical_dir}
    paths[flag] = os.path.join(paths[flag], "heads.json" if flag == "--model" else "rte_dev.json")
    err = fail(evaluate.main, ["--model", paths["--model"], "--data_dir", paths["--data_dir"], "--datasets", "rte"],
               capsys, f"{flag} {paths[flag]} is a file, not a directory")
    assert "not found" not in err, f"the file exists: {err}"


# ---------------------------------------------------------------- F15: a dataset or a column named twice


def test_evaluate_refuses_a_dataset_named_twice(gpp_model_dir, canonical_dir, tmp_path, capsys):
    fail(evaluate.main, ["--model", gpp_model_dir, "--data_dir", canonical_dir, "--datasets", "rte,rte",
                         "--output_dir", tmp_path / "eval"], capsys,
         "--datasets names rte more than once; list each dataset once")
    assert not (tmp_path / "eval").exists(), "nothing is written"


@pytest.mark.parametrize("columns,needle", [
    ("1,1", "--text_columns 1,1 names the same column twice; give two different columns"),
    ("sentence1,sentence1", "--text_columns sentence1,sentence1 names the same column twice"),
    ("1,-2", "{tsv}:1: --text_columns 1,-2 name the same column of this 3-column row twice"),
])
def test_predict_refuses_the_same_text_column_twice(gpp_model_dir, tmp_path, capsys, columns, needle):
    tsv = tmp_path / "in.tsv"
    header = "index\tsentence1\tsentence2\n" if not columns[0].isdigit() else ""
    tsv.write_text(header + "0\tA man sings.\tSomeone sings.\n")
    fail(predict.main, ["--model", gpp_model_dir, "--task", "rte", "--input", tsv, "--text_columns", columns,
                        "--output", tmp_path / "out.tsv"], capsys, needle.format(tsv=tsv))
    assert not (tmp_path / "out.tsv").exists(), "nothing is written"


@pytest.mark.parametrize("redirect, needle", [
    ("<&-", "--input -: cannot read stdin"), ("0>{tmp}/wo.txt", "--input -: cannot read stdin"),
    (">&-", "--output -: cannot write stdout")], ids=["stdin-closed", "stdin-write-only", "stdout-closed"])
def test_predict_with_an_unusable_stdin_or_stdout_is_one_line(gpp_model_dir, tmp_path, redirect, needle):
    """A closed or write-only stdin, or a closed stdout, was an internal error (AttributeError, EBADF)."""
    feed = "" if "<&-" in redirect or "0>" in redirect else "printf 'a\\tb\\n' | "
    command = (f"{feed}{shlex.quote(sys.executable)} -m mt_dnn.predict --model {shlex.quote(str(gpp_model_dir))} "
               f"--task rte --input - {redirect.format(tmp=tmp_path)}")
    result = subprocess.run(["sh", "-c", command], cwd=ROOT, capture_output=True, text=True,
                            env=dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1"))
    assert result.returncode == 2, f"{redirect}: exit {result.returncode}: {result.stderr[-600:]}"
    assert result.stderr.strip().startswith("error: ") and len(result.stderr.strip().splitlines()) == 1 \
        and needle in result.stderr, f"{redirect}: one error line naming the stream: {result.stderr!r}"
