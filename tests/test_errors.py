"""The bad-input catalogue (docs/ERRORS.md): every bad input ends as one line on stderr that names the
file (with :line) or the flag and says what to do, exit status 2, no traceback, and nothing already
written is lost or left half-written.

Runs in-process through `run_cli` (stderr via capsys); subprocesses only for download.sh and two
end-to-end checks of the real command line.
"""
import contextlib
import errno
import io
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

import prepro
import run_GDbert_glue
import train
from data_utils.errors import UserError, run_cli
from training import checkpoint as checkpoint_module
from mt_dnn import export
from tests.conftest import ROOT, run_main, tiny_bert_config


def fail(main, argv, capsys, *needles) -> str:
    """Run a CLI `main` that must refuse its input; check the error contract; return the message."""
    code = run_main(main, [str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 2, f"{argv}: exit 2 expected, got {code}: {err[-600:]}"
    assert "Traceback" not in err, f"{argv}: no traceback without --debug: {err[-600:]}"
    assert len(err.strip().splitlines()) == 1, f"{argv}: want exactly one line on stderr, got {err!r}"
    assert err.startswith("error: "), f"{argv}: the line starts with 'error: ': {err!r}"
    for needle in needles:
        assert needle in err, f"{argv}: the message should contain {needle!r}: {err!r}"
    return err.strip()


def succeed(main, argv, capsys) -> str:
    code = run_main(main, [str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 0, f"{argv}: should succeed, exit {code}: {err[-600:]}"
    return err


def snapshot(directory) -> dict:
    """{relative path: bytes} of every file below `directory`."""
    found = {}
    for root, _, files in os.walk(directory):
        for name in files:
            path = os.path.join(root, name)
            found[os.path.relpath(path, directory)] = open(path, "rb").read()
    return found


class Evil:
    """A pickle whose loading would create `path`: the marker proves no pickled code ever ran."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


# ---------------------------------------------------------------- download.sh (subprocess: it is a shell script)

@pytest.mark.parametrize("case,args,env,needle", [
    ("unknown flag", ["--bogus"], {}, "unknown argument '--bogus'"),
    ("data_dir under a file", ["--sample", "--data_dir", "afile/data"], {}, "afile/data: cannot create or write"),
    ("sample scale not a number", ["--sample", "--data_dir", "d"], {"GLUE_SAMPLE_SCALE": "abc"},
     "GLUE_SAMPLE_SCALE must be a number in (0, 50], not 'abc'"),
    ("connect timeout zero", ["--data_dir", "d"], {"GLUE_CONNECT_TIMEOUT": "0"},
     "GLUE_CONNECT_TIMEOUT must be a whole number"),
    ("unknown fetcher", ["--data_dir", "d"], {"GLUE_FETCHER": "aria2"}, "GLUE_FETCHER must be curl or wget"),
])
def test_download_refuses(tmp_path, case, args, env, needle):
    (tmp_path / "afile").write_text("a file, not a directory\n")
    result = subprocess.run(["sh", os.path.join(ROOT, "download.sh"), *args], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60, env={**os.environ, **env})
    assert result.returncode == 2, f"{case}: exit 2 expected, got {result.returncode}: {result.stderr}"
    assert len(result.stderr.strip().splitlines()) == 1, f"{case}: one line on stderr: {result.stderr!r}"
    assert needle in result.stderr, f"{case}: message should contain {needle!r}: {result.stderr!r}"
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".glue-download")], f"{case}: temp folder left"
    assert (tmp_path / "afile").read_text() == "a file, not a directory\n", f"{case}: the file was touched"


# ---------------------------------------------------------------- prepro: GLUE TSV files

def glue_copy(sample_glue, tmp_path, task_dir="RTE"):
    """A data dir holding one task of the generated sample; returns (data dir, task dir)."""
    shutil.copytree(os.path.join(sample_glue, task_dir), tmp_path / "glue" / task_dir)
    return tmp_path / "glue", tmp_path / "glue" / task_dir


def edit_lines(path, edit):
    lines = path.read_bytes().split(b"\n")
    path.write_bytes(b"\n".join(edit(lines)))


def replace_line(index, new):
    def edit(lines):
        lines[index] = new
        return lines
    return edit


TSV_CASES = [
    # (case, task dir, file, edit of its lines, needles)
    ("truncated row", "RTE", "dev.tsv", replace_line(5, b"5\tA sentence cut sh"),
     ["RTE/dev.tsv:6: malformed row with 2 tab-separated columns, expected 4", "pass --skip_malformed"]),
    ("extra column", "RTE", "train.tsv", replace_line(3, b"3\tA\tB\tentailment\textra"),
     ["RTE/train.tsv:4: malformed row with 5 tab-separated columns, expected 4", "pass --skip_malformed"]),
    ("wrong header", "RTE", "train.tsv", replace_line(0, b"index\tsentence1\tlabel"),
     ["RTE/train.tsv:1: header has 3 columns, expected 4 for rte train", "is this the right file?"]),
    ("header missing", "RTE", "train.tsv", lambda lines: lines[1:],
     ["RTE/train.tsv:1: expected the header row but found a data row", "restore the file's header line"]),
    ("unknown label", "RTE", "dev.tsv", replace_line(6, b"6\tA\tB\tmaybe"),
     ["RTE/dev.tsv:7: label 'maybe' is not valid for rte (expected not_entailment, entailment)",
      "pass --skip_malformed"]),
    ("score out of range", "STS-B", "dev.tsv",
     lambda lines: lines[:4] + [b"\t".join(lines[4].split(b"\t")[:9] + [b"7.5"])] + lines[5:],
     ["STS-B/dev.tsv:5: label '7.5' is not valid for stsb (expected a number in [0.0, 5.0])",
      "pass --skip_malformed"]),
    ("non-UTF-8 bytes", "RTE", "train.tsv", replace_line(8, b"8\tCaf\xe9 au lait\tA drink.\tentailment"),
     ["RTE/train.tsv:9: bytes that are not UTF-8", "re-save the file as UTF-8"]),
    ("empty file", "RTE", "dev.tsv", lambda lines: [],
     ["RTE/dev.tsv: file is empty", "download it again"]),
    ("header only", "RTE", "test.tsv", lambda lines: lines[:1] + [b""],
     ["RTE/test.tsv: no data rows after the header", "download it again"]),
]


@pytest.mark.parametrize("case,task_dir,name,edit,needles", TSV_CASES, ids=[c[0] for c in TSV_CASES])
def test_prepro_refuses_bad_tsv_and_keeps_earlier_output(sample_glue, tmp_path, capsys, case, task_dir, name, edit,
                                                         needles):
    data, folder = glue_copy(sample_glue, tmp_path, task_dir)
    edit_lines(folder / name, edit)
    out = tmp_path / "canonical"
    out.mkdir()
    task = "stsb" if task_dir == "STS-B" else "rte"
    (out / f"{task}_train.json").write_text("an earlier run's output\n")
    fail(prepro.main, ["--data_dir", data, "--tasks", task, "--output_dir", out], capsys, *needles)
    assert snapshot(out) == {f"{task}_train.json": b"an earlier run's output\n"}, \
        f"{case}: a refused input must write nothing and keep earlier output: {sorted(snapshot(out))}"


def test_skip_malformed_lets_prepro_finish(sample_glue, tmp_path, capsys):
    data, folder = glue_copy(sample_glue, tmp_path)
    edit_lines(folder / "dev.tsv", replace_line(6, b"6\tA\tB\tmaybe"))
    err = succeed(prepro.main, ["--data_dir", data, "--tasks", "rte", "--output_dir", tmp_path / "out",
                                "--skip_malformed"], capsys)
    assert "warning: skipped" in err and "dev.tsv:7" in err, f"the skipped row is reported: {err!r}"
    rows = (tmp_path / "out" / "rte_dev.json").read_text().count("\n")
    assert rows == (folder / "dev.tsv").read_text().count("\n") - 2, "every row but the header and the bad one"


def test_prepro_refuses_a_task_dir_without_dev(sample_glue, tmp_path, capsys):
    data, folder = glue_copy(sample_glue, tmp_path)
    (folder / "dev.tsv").unlink()
    fail(prepro.main, ["--data_dir", data, "--tasks", "rte", "--output_dir", tmp_path / "out"], capsys,
         f"{folder / 'dev.tsv'}: file not found", "sh download.sh")
    assert not (tmp_path / "out").exists() or not os.listdir(tmp_path / "out"), "nothing written"


@pytest.mark.parametrize("case,argv,needles", [
    ("unknown task", ["--tasks", "nosuch"], ["--tasks: unknown task 'nosuch' (known: cola"]),
    ("missing data dir", ["--data_dir", "{tmp}/nothing"], ["--data_dir {tmp}/nothing: directory not found",
                                                           "run `sh download.sh` first"]),
    ("task dir missing", ["--data_dir", "{tmp}", "--tasks", "rte"], ["--tasks rte: directory {tmp}/RTE not found"]),
    ("too short max_seq_len", ["--max_seq_len", "2"], ["--max_seq_len 2 is too small; use at least 8"]),
    ("unknown flag", ["--bogus"], ["error: unrecognized arguments: --bogus (see --help)"]),
    ("output dir under a file", ["--tasks", "rte", "--output_dir", "{tmp}/afile/out"],
     ["--output_dir {tmp}/afile/out: cannot create it (Not a directory); choose another directory"]),
])
def test_prepro_refuses_bad_flags(sample_glue, tmp_path, capsys, case, argv, needles):
    (tmp_path / "afile").write_text("x")
    argv = ["--data_dir", sample_glue, *[a.format(tmp=tmp_path) for a in argv]]
    fail(prepro.main, argv, capsys, *[n.format(tmp=tmp_path) for n in needles])


@pytest.mark.parametrize("case,text,needles", [
    ("malformed YAML", "rte:\n  task_type: Classification\n  labels: [a, b\n",
     ["--task_def {path}:4: not valid YAML", "fix the file or pass another --task_def"]),
    ("task not a mapping", "rte: 3\n", ["{path}:1: task 'rte' is 3, not a mapping of fields"]),
    ("field missing", "rte: {task_type: Classification}\n", ["{path}:1: task 'rte' lacks the field 'metric_meta'"]),
    ("not task definitions", "- rte\n- mnli\n", ["--task_def: {path} holds no task definitions"]),
])
def test_bad_task_definition(sample_glue, tmp_path, capsys, case, text, needles):
    path = tmp_path / "tasks.yml"
    path.write_text(text)
    fail(prepro.main, ["--data_dir", sample_glue, "--task_def", path], capsys,
         *[n.format(path=path) for n in needles])


def test_task_loss_must_fit_the_task_type(sample_glue, tmp_path, capsys):
    import yaml

    from data_utils.task_def import DEFAULT_TASK_DEF

    spec = yaml.safe_load(open(DEFAULT_TASK_DEF))
    spec["rte"]["loss"] = "MseCriterion"
    path = tmp_path / "tasks.yml"
    path.write_text(yaml.safe_dump(spec))
    fail(prepro.main, ["--data_dir", sample_glue, "--task_def", path], capsys,
         f"{path}:", "task 'rte' is a Classification task but has loss 'MseCriterion'; use CeCriterion")


# ---------------------------------------------------------------- train.py: flags, data, models

@pytest.fixture(scope="module")
def train_args(canonical_dir, tiny_model_dir):
    def make(output_dir, *extra, data=canonical_dir):
        return ["--data_dir", data, "--init_checkpoint", tiny_model_dir, "--train_datasets", "rte",
                "--test_datasets", "rte", "--pruner", "none", "--epochs", "1", "--batch_size", "8",
                "--batch_size_eval", "16", "--max_seq_len", "64", "--learning_rate", "1e-3", "--log_per_updates", "0",
                "--seed", "5", "--output_dir", str(output_dir), *extra]
    return make


PLATON = ["--pruner", "platon", "--initial_warmup", "1", "--final_warmup", "1", "--deltaT", "1"]
GPP = ["--pruner", "gpp", "--prepruning_finetune_epochs", "0", "--prune_epochs", "1"]

FLAG_CASES = [
    ("unknown task", ["--train_datasets", "nosuch"], ["--train_datasets: unknown task 'nosuch' (known: cola"]),
    ("test set of an untrained task", ["--test_datasets", "mrpc"],
     ["--test_datasets: 'mrpc' belongs to task 'mrpc', which is not in --train_datasets", "add it there"]),
    ("unknown dataset name", ["--test_datasets", "rte_matched"],
     ["--test_datasets: unknown dataset 'rte_matched' (task rte provides rte)"]),
    ("unknown dataset task", ["--test_datasets", "nosuch"],
     ["--test_datasets: unknown dataset 'nosuch'", "(known tasks: cola"]),
    ("task listed twice", ["--train_datasets", "rte,rte"], ["--train_datasets names rte more than once"]),
    ("batch size 0", ["--batch_size", "0"], ["--batch_size 0 must be a positive integer"]),
    ("negative learning rate", ["--learning_rate", "-1"], ["--learning_rate -1.0 must be > 0 and finite"]),
    ("infinite learning rate", ["--learning_rate", "inf"], ["--learning_rate inf must be > 0 and finite"]),
    ("warmup not a fraction", ["--warmup", "1.5"], ["--warmup 1.5 must be a fraction in [0, 1)"]),
    ("dropout 1", ["--dropout_p", "1"], ["--dropout_p 1.0 must be in [0, 1)"]),
    ("epochs not a number", ["--epochs", "two"], ["argument --epochs: invalid int value: 'two' (see --help)"]),
    ("unknown optimizer", ["--optimizer", "lamb"], ["argument --optimizer: invalid choice: 'lamb'", "choose from"]),
    ("max_seq_len too short", ["--max_seq_len", "4"], ["--max_seq_len 4 is too small; use at least 8"]),
    ("accumulation beyond the run", ["--grad_accumulation_step", "100"],
     ["--grad_accumulation_step 100 exceeds the 7 batches of the run; lower it"]),
    ("PLATON warmups cover every update", [*PLATON, "--warmup_steps", "5400"],
     ["--warmup_steps=5400 is invalid", "T=7 updates", "use --warmup_steps "]),
    ("PLATON final_threshold 0", [*PLATON, "--final_threshold", "0"],
     ["--final_threshold=0.0 is invalid", "it must be in (0, 1]"]),
    ("PLATON beta2 above 1", [*PLATON, "--beta2", "1.5"], ["--beta2=1.5 is invalid", "it must be in [0, 1)"]),
    ("PLATON deltaT 0", [*PLATON, "--deltaT", "0"], ["--deltaT=0 is invalid", "it must be an integer"]),
    ("GPP epochs shorter than its phases", ["--pruner", "gpp", "--prune_epochs", "2"],
     ["--epochs 1 is shorter than --prepruning_finetune_epochs + --prune_epochs = 3",
      "raise --epochs to at least 3"]),
    ("GPP target sparsity 1", [*GPP, "--target_sparsity", "1"], ["--target_sparsity 1.0 must be in (0, 1), e.g. 0.5"]),
    ("teacher directory missing", [*GPP, "--do_distill", "--teacher_model_path", "{tmp}/nothing"],
     ["--teacher_model_path {tmp}/nothing: directory not found; give the model/ directory"]),
    ("distillation without a teacher", [*GPP, "--do_distill"], ["--do_distill needs --teacher_model_path DIR"]),
    ("negative DFD weight", [*GPP, "--do_distill", "--teacher_model_path", "{tmp}", "--dfd_weight", "-1"],
     ["--dfd_weight -1.0 must be >= 0 and finite"]),
    ("resume with nothing to resume", ["--resume"],
     ["--resume: no checkpoint-<update> directory in --output_dir", "drop --resume to start afresh"]),
    ("missing checkpoint", ["--model_ckpt", "{tmp}/checkpoint-9"],
     ["checkpoint {tmp}/checkpoint-9: missing state.safetensors or state.json",
      "point --model_ckpt at a checkpoint-<update> directory"]),
    ("output dir under a file", ["--output_dir", "{tmp}/afile/run"],
     ["--output_dir {tmp}/afile/run: not writable (Not a directory); choose another directory"]),
    ("log file under a file", ["--log_file", "{tmp}/afile/log.log"],
     ["--log_file {tmp}/afile/log.log: cannot open it (Not a directory); choose another file"]),
    ("missing init checkpoint", ["--init_checkpoint", "{tmp}/nothing.pt"],
     ["--init_checkpoint {tmp}/nothing.pt: file not found; check the path"]),
    # probed bad values (item 8): each was an internal error, a NaN loss later, or a misleading message
    ("negative seed", ["--seed", "-1"], ["--seed -1 must be an integer in [0, 2**64 - 1] (e.g. 2018)"]),
    ("seed beyond 64 bits", ["--seed", str(2 ** 64)], [f"--seed {2 ** 64} must be an integer in [0, 2**64 - 1]"]),
    ("infinite weight decay", ["--weight_decay", "inf"], ["--weight_decay inf must be >= 0 and finite (e.g. 0.01)"]),
    ("NaN weight decay", ["--weight_decay", "nan"], ["--weight_decay nan must be >= 0 and finite"]),
    ("infinite flooding level", [*GPP, "--do_distill", "--teacher_model_path", "{tmp}", "--flooding_b", "inf"],
     ["--flooding_b inf must be >= 0 and finite (e.g. 0.01)"]),
    ("test dataset listed twice", ["--test_datasets", "rte,rte"],
     ["--test_datasets names rte more than once; list each dataset once"]),
    ("data dir is a file", ["--data_dir", "{tmp}/afile"],
     ["--data_dir {tmp}/afile is a file, not a directory; give the directory of canonical JSON files"]),
    ("task definition is a directory", ["--task_def", "{tmp}"],
     ["--task_def {tmp} is a directory; give the task definition YAML file"]),
    ("TensorBoard directory under a file", ["--tensorboard", "--tensorboard_logdir", "{tmp}/afile/tb"],
     ["--tensorboard_logdir {tmp}/afile/tb: cannot be a directory because {tmp}/afile is a file",
      "choose another --tensorboard_logdir"]),
    ("TensorBoard directory is a file", ["--tensorboard", "--tensorboard_logdir", "{tmp}/afile"],
     ["--tensorboard_logdir {tmp}/afile: cannot be a directory because {tmp}/afile is a file"]),
    ("init checkpoint directory missing", ["--init_checkpoint", "{tmp}/nothing"],
     ["--init_checkpoint {tmp}/nothing: directory not found; check the path"]),
    ("init checkpoint a file but not .pt", ["--init_checkpoint", "{tmp}/afile"],
     ["--init_checkpoint {tmp}/afile is a file but not an MT-DNN .pt checkpoint"]),
    ("teacher is a file", [*GPP, "--do_distill", "--teacher_model_path", "{tmp}/afile"],
     ["--teacher_model_path {tmp}/afile is a file, not a directory; give the model/ directory"]),
]


@pytest.mark.parametrize("case,extra,needles", FLAG_CASES, ids=[c[0] for c in FLAG_CASES])
def test_train_refuses_bad_flags(train_args, tmp_path, capsys, case, extra, needles):
    (tmp_path / "afile").write_text("a file, not a directory\n")
    argv = train_args(tmp_path / "run", *[a.format(tmp=tmp_path) for a in extra])
    fail(train.main, argv, capsys, *[n.format(tmp=tmp_path) for n in needles])
    assert (tmp_path / "afile").read_text() == "a file, not a directory\n", f"{case}: the file was touched"
    assert not (tmp_path / "run" / "model").exists(), f"{case}: no model is written"


def canonical_copy(canonical_dir, tmp_path, name, edit):
    """The canonical data with `edit` applied to the lines of one file."""
    data = tmp_path / "canonical"
    data.mkdir()
    for file in ("rte_train.json", "rte_dev.json", "rte_test.json"):
        shutil.copy(os.path.join(canonical_dir, file), data)
    lines = (data / name).read_text().splitlines()
    (data / name).write_text("".join(line + "\n" for line in edit(lines)))
    return data


def long_row(lines):
    row = json.loads(lines[0])
    row["token_id"], row["type_id"] = [101] + [2000] * 198 + [102], [0] * 200
    return [json.dumps(row)] + lines[1:]


CANONICAL_CASES = [
    ("broken JSON line", "rte_train.json", lambda lines: lines[:4] + [lines[4][:40]] + lines[5:],
     ["rte_train.json:5: not a canonical JSON row (JSONDecodeError", "rerun prepro"]),
    ("label outside the classes", "rte_dev.json",
     lambda lines: lines[:2] + [json.dumps({**json.loads(lines[2]), "label": 7})] + lines[3:],
     ["rte_dev.json:3: label 7 is not a class id of rte (0..1)", "rerun prepro with the same --task_def"]),
    ("token and type ids of different lengths", "rte_train.json",
     lambda lines: lines[:1] + [json.dumps({**json.loads(lines[1]), "type_id": [0]})] + lines[2:],
     ["rte_train.json:2: token_id and type_id must be non-empty lists of integers of the same length",
      "rerun prepro"]),
    ("empty file", "rte_dev.json", lambda lines: [], ["rte_dev.json: holds no rows; rerun prepro"]),
    ("rows longer than the model's positions", "rte_train.json", long_row,
     ["rte_train.json: rows of 200 tokens", "embeds at most 128 positions; pass --max_seq_len 128 or less"]),
    ("token ids beyond the vocabulary", "rte_train.json",
     lambda lines: [json.dumps({**json.loads(lines[0]), "token_id": [99999] + json.loads(lines[0])["token_id"][1:]})]
     + lines[1:], ["token ids up to 99999", "has only 30522", "rerun prepro with --model"]),
    # probed bad rows (item 8): each was an internal error, a NaN loss later, or silently accepted
    ("negative token id", "rte_train.json", lambda lines: lines[:2] + [edit_row(lines[2], token_id=[-5, 102], type_id=[0, 0])]
     + lines[3:], ["rte_train.json:3: token id -5 is negative; token ids are vocabulary indices >= 0"]),
    ("negative type id", "rte_dev.json", lambda lines: lines[:1] + [edit_row(lines[1], token_id=[101, 102],
                                                                             type_id=[0, -1])] + lines[2:],
     ["rte_dev.json:2: type id -1 is not 0 or 1 (first or second segment); rerun prepro"]),
    ("type id 2", "rte_train.json", lambda lines: [edit_row(lines[0], token_id=[101, 102], type_id=[0, 2])]
     + lines[1:], ["rte_train.json:1: type id 2 is not 0 or 1"]),
    ("a float among the token ids", "rte_train.json",
     lambda lines: [edit_row(lines[0], token_id=[101, 7.5, 102], type_id=[0, 0, 0])] + lines[1:],
     ["rte_train.json:1: token_id and type_id must be non-empty lists of integers of the same length"]),
    ("uid missing", "rte_train.json", lambda lines: lines[:3] + [edit_row(lines[3], uid=None, drop="uid")]
     + lines[4:], ["rte_train.json:4: not a canonical JSON row (KeyError: 'uid')"]),
    ("uid null", "rte_test.json", lambda lines: [edit_row(lines[0], uid=None)] + lines[1:],
     ["rte_test.json:1: uid None is not a string or an integer; rerun prepro"]),
    ("boolean label", "rte_train.json", lambda lines: lines[:1] + [edit_row(lines[1], label=True)] + lines[2:],
     ["rte_train.json:2: label True is not a class id of rte (0..1)"]),
    ("token ids beyond the vocabulary in the dev split", "rte_dev.json",
     lambda lines: lines[:2] + [edit_row(lines[2], token_id=[40000] + json.loads(lines[2])["token_id"][1:])]
     + lines[3:], ["rte_dev.json:3: token ids up to 40000", "has only 30522"]),
]


def edit_row(line, drop=None, **fields):
    """A canonical JSON line with `fields` replaced (and the field `drop` removed)."""
    row = {**json.loads(line), **fields}
    row.pop(drop, None)
    return json.dumps(row)


@pytest.mark.parametrize("case,name,edit,needles", CANONICAL_CASES, ids=[c[0] for c in CANONICAL_CASES])
def test_train_refuses_bad_canonical_data(canonical_dir, train_args, tmp_path, capsys, case, name, edit, needles):
    data = canonical_copy(canonical_dir, tmp_path, name, edit)
    fail(train.main, train_args(tmp_path / "run", "--max_seq_len", "512", data=data), capsys, *needles)


def test_train_refuses_a_missing_dev_split(canonical_dir, train_args, tmp_path, capsys):
    data = canonical_copy(canonical_dir, tmp_path, "rte_train.json", lambda lines: lines)
    (data / "rte_dev.json").unlink()
    fail(train.main, train_args(tmp_path / "run", data=data), capsys,
         f"{data / 'rte_dev.json'}: file not found; run `sh experiments/glue/prepro.sh`")


def test_malformed_task_definition_in_train(train_args, tmp_path, capsys):
    path = tmp_path / "tasks.yml"
    path.write_text("rte: {task_type: Classification\n")
    fail(train.main, train_args(tmp_path / "run", "--task_def", path), capsys, f"--task_def {path}:2: not valid YAML")


# ---------------------------------------------------------------- model and teacher directories

def hf_dir(path, **config):
    from transformers import BertModel

    torch.manual_seed(0)
    BertModel(tiny_bert_config(**config)).save_pretrained(path)
    return path


def test_malicious_pt_init_checkpoint_is_refused_without_running_it(train_args, tmp_path, capsys):
    marker = tmp_path / "PWNED"
    torch.save({"state": {}, "config": {}, "payload": Evil(str(marker))}, tmp_path / "evil.pt")
    fail(train.main, train_args(tmp_path / "run", "--init_checkpoint", tmp_path / "evil.pt"), capsys,
         f"--init_checkpoint {tmp_path / 'evil.pt'}: refused or unreadable as a weights-only checkpoint",
         "never code")
    assert not marker.exists(), "loading the .pt file ran pickled code"


@pytest.mark.parametrize("flag", ["--init_checkpoint", "--teacher_model_path"])
def test_pickle_only_model_directory_is_refused(train_args, tmp_path, capsys, flag):
    marker = tmp_path / "PWNED"
    directory = tmp_path / "pickled"
    directory.mkdir()
    tiny_bert_config().save_pretrained(directory)
    torch.save({"payload": Evil(str(marker))}, directory / "pytorch_model.bin")
    extra = [flag, directory] + (GPP + ["--do_distill"] if flag == "--teacher_model_path" else [])
    fail(train.main, train_args(tmp_path / "run", *extra), capsys,
         f"{flag} {directory}: no model.safetensors in this directory (its pytorch_model.bin is never loaded",
         "safe_serialization=True")
    assert not marker.exists(), f"{flag}: pytorch_model.bin was unpickled"


def test_teacher_directory_without_weights(train_args, tmp_path, capsys):
    teacher = tmp_path / "teacher"
    teacher.mkdir()
    tiny_bert_config().save_pretrained(teacher)
    fail(train.main, train_args(tmp_path / "run", *GPP, "--do_distill", "--teacher_model_path", teacher), capsys,
         f"--teacher_model_path {teacher}: no model.safetensors in this directory", "save the weights")


@pytest.mark.parametrize("field,value", [("num_hidden_layers", 3), ("vocab_size", 1000)])
def test_teacher_of_another_shape(train_args, tmp_path, capsys, field, value):
    teacher = hf_dir(tmp_path / "teacher", **{field: value})
    student = {"num_hidden_layers": 2, "vocab_size": tiny_bert_config().vocab_size}[field]
    fail(train.main, train_args(tmp_path / "run", *GPP, "--do_distill", "--teacher_model_path", teacher), capsys,
         f"--teacher_model_path {teacher}: teacher has {field}={value} but the student has {student}",
         "DFD needs the same layer count and hidden size, and the same vocabulary")


def test_truncated_init_weights(train_args, tiny_model_dir, tmp_path, capsys):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    fail(train.main, train_args(tmp_path / "run", "--init_checkpoint", broken), capsys,
         f"--init_checkpoint {broken}: cannot load a model with safetensors weights",
         "a local Hugging Face directory")


# ---------------------------------------------------------------- NaN loss, full disk, checkpoints

def nan_on_fifth_batch(monkeypatch) -> None:
    """Make train.py's task loss NaN on the fifth training batch (update 5 without accumulation)."""
    calls = []
    original = train.task_loss

    def loss(logits, labels, task):
        calls.append(1)
        value = original(logits, labels, task)
        return value * float("nan") if len(calls) == 5 else value
    monkeypatch.setattr(train, "task_loss", loss)


@pytest.fixture(scope="module")
def nan_run(train_args, tmp_path_factory):
    """A run whose loss becomes NaN at update 5 after checkpoints at updates 2 and 4 (shared by the
    NaN test and the corrupt-checkpoint tests, which copy its checkpoints): (output dir, exit code, stderr)."""
    out = tmp_path_factory.mktemp("nan_run")
    err = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stderr(err), \
            contextlib.redirect_stdout(io.StringIO()):
        nan_on_fifth_batch(patch)
        code = run_main(train.main, train_args(out, "--save_per_updates", "2", "--keep_checkpoints", "0"))
    return out, code, err.getvalue()


def test_nan_loss_stops_with_the_update_and_keeps_the_last_checkpoint(nan_run):
    out, code, err = nan_run
    assert code == 2, f"a NaN loss is exit 2: {code} {err[-500:]}"
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, f"one line: {err!r}"
    assert "the loss became nan at update 5 (task rte, epoch 0)" in err, f"names the update: {err!r}"
    assert "lower --learning_rate or pass --skip_nan_batches" in err, f"says what to do: {err!r}"
    assert f"the last checkpoint {out / 'checkpoint-4'} is intact" in err, f"names the checkpoint: {err!r}"
    names = sorted(os.listdir(out))
    assert [n for n in names if n.startswith("checkpoint-")] == ["checkpoint-2", "checkpoint-4"], names
    assert "model" not in names, "no final model after a NaN"
    state = checkpoint_module.load_checkpoint(str(out / "checkpoint-4"))
    assert state["loop"]["global_step"] == 4, "checkpoint-4 still holds update 4"
    assert all(torch.isfinite(t).all() for t in state["model"].values()), "the saved weights are finite"


def test_skip_nan_batches_lets_the_run_finish(train_args, tmp_path, capsys, monkeypatch):
    nan_on_fifth_batch(monkeypatch)
    succeed(train.main, train_args(tmp_path, "--skip_nan_batches"), capsys)
    assert "skipped batch 4 of epoch 0: non-finite loss nan" in (tmp_path / "log.log").read_text(), "warned"
    assert (tmp_path / "model" / "model.safetensors").exists(), "the run finished and saved its model"


def test_learning_rate_1e10_is_caught_as_nan(train_args, tmp_path, capsys):
    fail(train.main, train_args(tmp_path, "--learning_rate", "1e10"), capsys,
         "the loss became nan at update", "lower --learning_rate", "no checkpoint was written")


def test_full_disk_during_checkpoint_keeps_the_previous_one(train_args, tmp_path, capsys, monkeypatch):
    saves = []
    original = checkpoint_module.save_file

    def save_file_until_full(tensors, path, *args, **kwargs):
        saves.append(path)
        if len(saves) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(tensors, path, *args, **kwargs)
    monkeypatch.setattr(checkpoint_module, "save_file", save_file_until_full)
    fail(train.main, train_args(tmp_path, "--save_per_updates", "3"), capsys,
         f"could not write checkpoint {tmp_path / 'checkpoint-6'} (No space left on device)",
         f"the previous checkpoint {tmp_path / 'checkpoint-3'} is intact", "rerun with --resume")
    names = sorted(os.listdir(tmp_path))
    assert not [n for n in names if n.endswith(".tmp")], f"no .tmp directory is left: {names}"
    assert [n for n in names if n.startswith("checkpoint-")] == ["checkpoint-3"], names
    assert checkpoint_module.load_checkpoint(str(tmp_path / "checkpoint-3"))["loop"]["global_step"] == 3


def test_full_disk_as_safetensors_reports_it(tmp_path, monkeypatch):
    """A real full disk reaches Python as SafetensorError, not OSError: it must be handled the same way."""
    from safetensors import SafetensorError

    state = {"loop": {"global_step": 1}, "model": {"w": torch.ones(3)}}
    checkpoint_module.save_checkpoint(str(tmp_path), 1, state)
    before = snapshot(tmp_path)

    def full(*args, **kwargs):
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")
    monkeypatch.setattr(checkpoint_module, "save_file", full)
    with pytest.raises(UserError, match="could not write checkpoint .*checkpoint-2 .*No space left on device.*"
                                        "checkpoint-1 is intact"):
        checkpoint_module.save_checkpoint(str(tmp_path), 2, state)
    assert snapshot(tmp_path) == before, "the previous checkpoint is intact and no .tmp is left"


def test_full_disk_while_writing_scores_keeps_the_previous_file(tmp_path, monkeypatch):
    from data_utils import files

    path = tmp_path / "rte_dev_scores_epoch_000.json"
    path.write_text("previous scores")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(files.json, "dump", full)
    with pytest.raises(UserError, match=r"rte_dev_scores_epoch_000.json: could not write it \(No space left on "
                                        r"device\); the previous file, if any, is intact"):
        files.write_json_atomic(str(path), {"metrics": {}})
    assert sorted(os.listdir(tmp_path)) == [path.name] and path.read_text() == "previous scores", \
        "the previous file is intact and no .tmp is left"


def corrupt_copy(nan_run, tmp_path, edit):
    target = tmp_path / "checkpoint-4"
    shutil.copytree(nan_run[0] / "checkpoint-4", target)
    edit(target)
    return target


CHECKPOINT_CASES = [
    ("bad JSON", lambda d: (d / "state.json").write_text('{"__dict__": {"loop": '),
     ["corrupt or unreadable state.json (JSONDecodeError", "resume from an earlier checkpoint-<update>"]),
    ("truncated safetensors",
     lambda d: (d / "state.safetensors").write_bytes((d / "state.safetensors").read_bytes()[:5000]),
     ["corrupt or unreadable state.safetensors (SafetensorError", "with --model_ckpt"]),
    ("JSON that is not a training state", lambda d: (d / "state.json").write_text('{"__dict__": {}}'),
     ["state.json lacks loop, config, model", "not a training state written by train.py"]),
]


@pytest.mark.parametrize("case,edit,needles", CHECKPOINT_CASES, ids=[c[0] for c in CHECKPOINT_CASES])
def test_corrupt_checkpoint_is_refused(nan_run, train_args, tmp_path, capsys, case, edit, needles):
    broken = corrupt_copy(nan_run, tmp_path, edit)
    fail(train.main, train_args(tmp_path / "run", "--model_ckpt", broken), capsys, f"checkpoint {broken}: ",
         *needles)
    assert not (tmp_path / "run").exists(), f"{case}: refused before anything is written"


def test_resume_refuses_a_corrupt_newest_checkpoint(nan_run, train_args, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(nan_run[0], out)
    (out / "checkpoint-4" / "state.json").write_text("{")
    before = snapshot(out)
    fail(train.main, train_args(out, "--resume"), capsys, f"checkpoint {out / 'checkpoint-4'}: corrupt")
    assert snapshot(out) == before, "a refused --resume changes nothing in --output_dir"


def test_debug_shows_the_traceback(train_args, tmp_path):
    with pytest.raises(UserError, match="--train_datasets: unknown task 'nosuch'"):
        run_cli(train.main, train_args(tmp_path, "--train_datasets", "nosuch", "--debug"))


def test_debug_is_read_from_the_parsed_flags(train_args, tmp_path):
    with pytest.raises(UserError, match="--train_datasets: unknown task 'nosuch'"):
        run_cli(train.main, train_args(tmp_path, "--train_datasets", "nosuch", "--debu"))   # argparse's abbreviation


def test_real_cli_one_line_and_debug_traceback(sample_glue, tmp_path):
    command = [sys.executable, os.path.join(ROOT, "prepro.py"), "--data_dir", sample_glue, "--tasks", "nosuch"]
    plain = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert plain.returncode == 2 and plain.stderr.strip().splitlines() == [
        "error: --tasks: unknown task 'nosuch' (known: cola, sst, mrpc, stsb, qqp, mnli, qnli, rte, wnli)"], \
        f"real command line: {plain.returncode} {plain.stderr!r}"
    debug = subprocess.run(command + ["--debug"], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert debug.returncode == 1 and "Traceback (most recent call last)" in debug.stderr, \
        f"--debug shows the traceback: {debug.returncode} {debug.stderr[-400:]}"
    assert "UserError: --tasks: unknown task 'nosuch'" in debug.stderr, debug.stderr[-400:]


# ---------------------------------------------------------------- mt_dnn.export


EXPORT_CASES = [
    ("missing checkpoint", lambda m, t: ["--checkpoint", t / "nothing"],
     ["--checkpoint {tmp}/nothing: directory not found", "give the model/ or best_model/ directory"]),
    ("dense model without indicators", lambda m, t: ["--checkpoint", t / "dense"],
     ["--checkpoint {tmp}/dense: no gpp_indicators.safetensors", "train.py --pruner gpp"]),
    ("truncated indicators", lambda m, t: ["--checkpoint", t / "truncated"],
     ["--checkpoint {tmp}/truncated/gpp_indicators.safetensors: unreadable", "re-save it with train.py"]),
    ("broken heads.json", lambda m, t: ["--checkpoint", t / "heads"],
     ["--checkpoint {tmp}/heads/heads.json: not valid JSON", "re-save the model with train.py"]),
    ("output dir under a file", lambda m, t: ["--checkpoint", m, "--output_dir", t / "afile" / "out"],
     ["could not write the model to {tmp}/afile/out (Not a directory)", "choose another --output_dir"]),
    ("negative tolerance", lambda m, t: ["--checkpoint", m, "--tolerance", "-1"], ["--tolerance -1.0 must be >= 0"]),
    ("missing required flag", lambda m, t: ["--checkpoint", m, "--output_dir"],
     ["argument --output_dir: expected one argument (see --help)"]),
]


@pytest.mark.parametrize("case,argv,needles", EXPORT_CASES, ids=[c[0] for c in EXPORT_CASES])
def test_export_refuses(gpp_model_dir, tiny_model_dir, tmp_path, capsys, case, argv, needles):
    (tmp_path / "afile").write_text("x")
    shutil.copytree(tiny_model_dir, tmp_path / "dense")
    for name in ("truncated", "heads"):
        shutil.copytree(gpp_model_dir, tmp_path / name)
    indicators = tmp_path / "truncated" / "gpp_indicators.safetensors"
    indicators.write_bytes(indicators.read_bytes()[:20])
    (tmp_path / "heads" / "heads.json").write_text("{not json")
    out = tmp_path / "previous_export"       # an earlier export at --output_dir must survive a refusal
    out.mkdir()
    (out / "config.json").write_text("{}")
    args = argv(gpp_model_dir, tmp_path)
    if "--output_dir" not in args:
        args += ["--output_dir", out]
    fail(export.main, args, capsys, *[n.format(tmp=tmp_path) for n in needles])
    assert snapshot(out) == {"config.json": b"{}"}, f"{case}: the earlier export was changed"
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")], f"{case}: a .tmp directory is left"


# ---------------------------------------------------------------- run_GDbert_glue.py (GPP-DFD's flags)

@pytest.mark.parametrize("case,extra,needles", [
    ("unknown task", ["--task_name", "nosuch"], ["--task_name nosuch: unknown; use one of cola"]),
    ("fractional epochs", ["--task_name", "rte", "--num_train_epochs", "1.5"],
     ["--num_train_epochs 1.5: use a whole number of epochs"]),
    ("epochs shorter than the GPP phases", ["--task_name", "rte", "--num_train_epochs", "1", "--prune_epochs", "2"],
     ["--num_train_epochs 1 is shorter than --prepruning_finetune_epochs + --prune_epochs = 3",
      "raise --num_train_epochs to at least 3"]),
    ("bad boolean", ["--task_name", "rte", "--logging_first_step", "maybe"],
     ["argument --logging_first_step: expected True or False, got 'maybe'"]),
    ("non-empty output dir", ["--task_name", "rte", "--output_dir", "{tmp}/previous"],
     ["--output_dir {tmp}/previous is not empty; pass --overwrite_output_dir"]),
])
def test_gpp_dfd_front_end_refuses(sample_glue, tiny_model_dir, tmp_path, capsys, case, extra, needles):
    data, _ = glue_copy(sample_glue, tmp_path)
    (tmp_path / "previous").mkdir()
    (tmp_path / "previous" / "log.log").write_text("an earlier run\n")
    argv = ["--model_name_or_path", tiny_model_dir, "--data_dir", data, "--do_train", "--do_eval",
            "--output_dir", tmp_path / "run", *[a.format(tmp=tmp_path) for a in extra]]
    fail(run_GDbert_glue.main, argv, capsys, *[n.format(tmp=tmp_path) for n in needles])
    assert not (data / "canonical_data").exists(), f"{case}: nothing is preprocessed before the flags are checked"
    assert (tmp_path / "previous" / "log.log").read_text() == "an earlier run\n", f"{case}: earlier output kept"


# ---------------------------------------------------------------- the output directory (training/run_dir.py)

def test_an_error_also_goes_to_the_log_and_releases_the_lock(nan_run):
    out, code, err = nan_run
    assert err.strip() and err.strip() in (out / "log.log").read_text(), f"the log holds the error line: {err!r}"
    assert not (out / ".lock").exists(), "the lock is released after an error"


def test_an_internal_error_goes_to_the_log_with_its_traceback(train_args, tmp_path, capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")
    monkeypatch.setattr(train, "log_update", broken)
    code = run_main(train.main, train_args(tmp_path))
    err = capsys.readouterr().err
    assert code == 1 and err.strip() == "internal error: RuntimeError: boom (rerun with --debug for the traceback)", \
        f"exit 1, one line: {code} {err!r}"
    log = (tmp_path / "log.log").read_text()
    assert err.strip() in log and "Traceback (most recent call last)" in log, f"the log has the traceback: {log[-600:]}"
    assert sorted(os.listdir(tmp_path)) == ["log.log"], \
        f"a run failing before any output leaves only its log in a directory that existed: {os.listdir(tmp_path)}"


def test_a_fresh_run_into_another_runs_directory_is_refused(nan_run, train_args, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(nan_run[0], out)
    before = snapshot(out)
    fail(train.main, train_args(out), capsys, f"--output_dir {out} holds another run's outputs (run ",
         "checkpoint-2/, checkpoint-4/", "pass --overwrite_output_dir to move them aside", "or choose another")
    assert snapshot(out) == before, "the other run's files are untouched"


def test_an_output_dir_inside_the_data_dir_is_refused(canonical_dir, train_args, tmp_path, capsys):
    data = canonical_copy(canonical_dir, tmp_path, "rte_train.json", lambda lines: lines)
    before = snapshot(data)
    fail(train.main, train_args(data / "out", data=data), capsys,
         f"--output_dir {data / 'out'} is inside the input --data_dir {data}", "is ever written to")
    assert snapshot(data) == before, "nothing is written into --data_dir"


# ---------------------------------------------------------------- regression labels (item 8)

@pytest.mark.parametrize("label,shown", [(float("nan"), "nan"), (float("inf"), "inf"), (True, "True"),
                                         ("3.5", "'3.5'")])
def test_train_refuses_a_regression_label_that_is_not_a_finite_number(canonical_dir, train_args, tmp_path, capsys,
                                                                      label, shown):
    data = tmp_path / "canonical"
    data.mkdir()
    for file in ("stsb_train.json", "stsb_dev.json"):
        shutil.copy(os.path.join(canonical_dir, file), data)
    lines = (data / "stsb_train.json").read_text().splitlines()
    lines[4] = json.dumps({**json.loads(lines[4]), "label": label})      # NaN and Infinity as Python writes them
    (data / "stsb_train.json").write_text("".join(line + "\n" for line in lines))
    fail(train.main, train_args(tmp_path / "run", "--train_datasets", "stsb", "--test_datasets", "stsb", data=data),
         capsys, f"stsb_train.json:5: label {shown} is not a finite number for the regression task stsb",
         "rerun prepro with the same --task_def")
    assert not (tmp_path / "run" / "model").exists(), "refused at load time: nothing trained"
