"""The bad-input catalogue (docs/ERRORS.md), continued: checkpoints that cannot be resumed, model directories
whose config.json does not fit their weights, evaluate's and predict's inputs and outputs, and
run_GDbert_glue.py's numeric flags. Each case runs the real CLI main and ends as one line naming the file and
key (or the flag), exit status 2, with nothing already written changed.
"""
import json
import os
import shutil
import threading

import pytest
import torch
from safetensors.torch import load_file, save_file

import run_GDbert_glue
import train
from data_utils.task_def import DEFAULT_TASK_DEF
from mt_dnn import evaluate as evaluate_cli
from mt_dnn import export
from mt_dnn import predict as predict_cli
from modeling.model import load_encoder
from tests.conftest import run_main
# train_args (tests/test_errors.py) and saved_model (tests/test_predict.py) are fixtures, shared by importing them
from tests.test_errors import PLATON, fail, glue_copy, snapshot, succeed, train_args  # noqa: F401
from tests.test_predict import saved_model  # noqa: F401

# ---------------------------------------------------------------- checkpoints: every part checked at load


@pytest.fixture(scope="module")
def platon_run(train_args, tmp_path_factory):
    """A PLATON run with a checkpoint every 2 updates (its output directory): a model, an optimizer with
    moments, an LR schedule, RNG states and a pruner state to spoil."""
    out = tmp_path_factory.mktemp("platon_run")
    code = run_main(train.main, train_args(out, *PLATON, "--warmup_steps", "1", "--save_per_updates", "2",
                                           "--keep_checkpoints", "0"))
    assert code == 0 and (out / "checkpoint-4").is_dir(), f"the PLATON run with checkpoints failed ({code})"
    return out


def spoil(source, target, edit):
    """A copy of checkpoint `source` at `target` with `edit(entries, tensors)` applied: `entries` is state.json's
    top-level mapping (train.py's layout, {"__dict__": ...} per mapping), `tensors` state.safetensors' tensors."""
    shutil.copytree(source, target)
    skeleton = json.loads((target / "state.json").read_text())
    tensors = load_file(target / "state.safetensors")
    edit(skeleton["__dict__"], tensors)
    (target / "state.json").write_text(json.dumps(skeleton))
    save_file(tensors, target / "state.safetensors")
    return target


def loop(entries) -> dict:
    return entries["loop"]["__dict__"]


def moment(entries, index: int = 3, name: str = "exp_avg") -> str:
    """The safetensors key of optimizer moment `name` of parameter `index`."""
    items = entries["optimizer"]["__dict__"]["state"]["__items__"]
    return dict(items)[index]["__dict__"][name]["__tensor__"]


def set_tensor(key_of, make):
    def edit(entries, tensors):
        key = key_of(entries)
        tensors[key] = make(tensors[key])
    return edit


def with_nan(tensor):
    tensor = tensor.clone()
    tensor.view(-1)[0] = float("nan")
    return tensor


def pruner_tensor(entries) -> str:
    return next(iter(entries["platon"]["__dict__"]["tensors"]["__dict__"].values()))["__tensor__"]


def set_value(path: str, value):
    """Set the state.json entry at dotted `path` (through {"__dict__": ...} mappings) to `value`."""
    def edit(entries, tensors):
        *parents, last = path.split(".")
        node = entries
        for name in parents:
            node = node[name]["__dict__"]
        node[last] = value
    return edit


def drop(path: str):
    def edit(entries, tensors):
        *parents, last = path.split(".")
        node = entries
        for name in parents:
            node = node[name]["__dict__"]
        del node[last]
    return edit


def drop_moment(entries, tensors):
    del dict(entries["optimizer"]["__dict__"]["state"]["__items__"])[3]["__dict__"]["exp_avg"]


def nested(depth: int):
    value = []
    for _ in range(depth):
        value = [value]
    return value


def deeply_nested_json(target):
    """state.json with a loop nested 100000 lists deep (json.dumps itself cannot write it)."""
    text = (target / "state.json").read_text()
    (target / "state.json").write_text(text.replace('{"__dict__": {"loop": ', '{"__dict__": {"loop": ' + "[" * 100000
                                                    + "]" * 100000 + ', "was": ', 1))


CHECKPOINT_CASES = [
    # (case, edit, file at fault, needles)
    ("negative update", set_value("loop.global_step", -3), "state.json",
     ["loop.global_step is -3, not a count (a whole number >= 0)"]),
    ("update beyond the run", set_value("loop.global_step", 1000), "state.json",
     ["loop.global_step is 1000, beyond the", "updates of this run"]),
    ("update that is not a number", set_value("loop.global_step", "4"), "state.json",
     ["loop.global_step is '4', not a count"]),
    ("epoch beyond the run", set_value("loop.epoch", 50), "state.json",
     ["loop.epoch is 50, beyond the last epoch 0 of this run (--epochs 1)"]),
    ("sampler position beyond the epoch", set_value("loop.next_batch", 1000), "state.json",
     ["loop.next_batch is 1000, beyond the", "batches of an epoch"]),
    ("unknown loop field", set_value("loop.bogus", 1), "state.json", ["loop.bogus is not a field of the loop state"]),
    ("NaN LR of the loop's schedule", set_value("loop.schedule_lr", float("nan")), "state.json",
     ["loop.schedule_lr is nan, not a learning rate > 0"]),
    ("optimizer moment of another shape", set_tensor(moment, lambda t: torch.zeros(7, 3)), "state.safetensors",
     ["optimizer.state.3.exp_avg has shape (7, 3), parameter 3 (", "needs (32, 32)"]),
    ("optimizer moment of another dtype", set_tensor(moment, lambda t: t.half()), "state.safetensors",
     ["optimizer.state.3.exp_avg is torch.float16", "needs torch.float32"]),
    ("optimizer moment with NaN", set_tensor(moment, with_nan), "state.safetensors",
     ["optimizer.state.3.exp_avg holds NaN or infinite values"]),
    ("optimizer entry missing", drop_moment, "state.json",
     ["optimizer.state.3 holds exp_inf, step, a step of --optimizer adamax writes exp_avg, exp_inf, step"]),
    ("optimizer of other groups", lambda e, t: e["optimizer"]["__dict__"]["param_groups"].pop(), "state.json",
     ["optimizer.param_groups has 1 groups, this run's --optimizer adamax has 2"]),
    ("NaN learning rate in the optimizer",
     lambda e, t: e["optimizer"]["__dict__"]["param_groups"][0]["__dict__"].update(lr=float("nan")),
     "state.json", ["optimizer.param_groups.0.lr is nan, not a finite number"]),
    ("LR schedule ahead of the loop", set_value("lr_schedule.last_epoch", 1000), "state.json",
     ["lr_schedule.last_epoch is 1000, not a count of schedule steps up to loop.global_step 4"]),
    ("LR schedule without its entries", set_value("lr_schedule", {"__dict__": {"last_epoch": 4}}), "state.json",
     ["lr_schedule.base_lrs is not a list of 2 (one per optimizer group)"]),
    ("RNG state torch refuses", lambda e, t: e["rng_per_rank"][0]["__dict__"].update(torch={"__tensor__": moment(e)}),
     "state.json", ["rng_per_rank.0 holds a torch RNG state that torch refuses"]),
    ("python RNG state cut short", set_value("rng.python", [3, 1]), "state.json",
     ["rng holds a python RNG state that random.setstate refuses"]),
    ("pruner state of another shape", set_tensor(pruner_tensor, lambda t: torch.zeros(3)), "state.json",
     ["platon does not fit this run: pruner state", "has shape (3,)"]),
    ("pruner state missing", drop("platon"), "state.json",
     ["platon is missing: the checkpoint holds no state of this run's method platon"]),
    ("model weight with NaN", set_tensor(lambda e: e["model"]["__dict__"]["encoder.embeddings.word_embeddings.weight"]
                                         ["__tensor__"], with_nan), "state.safetensors",
     ["model.encoder.embeddings.word_embeddings.weight holds NaN or infinite values"]),
    ("saved flag of another type", set_value("config.epochs", "1"), "state.json",
     ["config.epochs is '1', not an integer as --epochs takes"]),
    ("saved flag that train.py refuses", set_value("config.learning_rate", -1.0), "state.json",
     ["config.learning_rate is refused by train.py's checks (--learning_rate -1.0 must be > 0 and finite"]),
    ("saved flag nested as a list", set_value("config.seed", nested(300)), "state.json",
     ["config.seed is a list, not a flag value"]),
]


@pytest.mark.parametrize("case,edit,file,needles", CHECKPOINT_CASES, ids=[c[0] for c in CHECKPOINT_CASES])
def test_a_checkpoint_that_cannot_be_continued_is_refused(platon_run, train_args, tmp_path, capsys,
                                                           case, edit, file, needles):
    broken = spoil(platon_run / "checkpoint-4", tmp_path / "checkpoint-4", edit)
    before = snapshot(broken)
    fail(train.main, train_args(tmp_path / "run", *PLATON, "--warmup_steps", "1", "--model_ckpt", broken), capsys,
         f"checkpoint {broken / file}: ", *needles, "resume from an earlier checkpoint-<update> with --model_ckpt")
    assert not (tmp_path / "run").exists(), f"{case}: the run's new directory is removed after the refusal"
    assert snapshot(broken) == before, f"{case}: the checkpoint is only read"


def test_deeply_nested_state_json_is_refused(platon_run, train_args, tmp_path, capsys):
    broken = tmp_path / "checkpoint-4"
    shutil.copytree(platon_run / "checkpoint-4", broken)
    deeply_nested_json(broken)
    fail(train.main, train_args(tmp_path / "run", *PLATON, "--model_ckpt", broken), capsys,
         f"checkpoint {broken / 'state.json'}: nested too deeply to be a training state written by train.py",
         "resume from an earlier checkpoint-<update>")


def test_resume_refuses_an_update_beyond_the_run_and_changes_nothing(platon_run, train_args, tmp_path,
                                                                     capsys):
    """--resume into the run's own directory: the newest checkpoint is refused against this run before
    config.json or anything else there is rewritten."""
    out = tmp_path / "run"
    shutil.copytree(platon_run, out, ignore=shutil.ignore_patterns("checkpoint-6"))
    newest = out / "checkpoint-4"
    shutil.rmtree(newest)
    spoil(platon_run / "checkpoint-4", newest, set_value("loop.global_step", 999))
    before = snapshot(out)
    fail(train.main, train_args(out, *PLATON, "--warmup_steps", "1", "--resume"), capsys,
         f"checkpoint {newest / 'state.json'}: loop.global_step is 999, beyond the")
    after = snapshot(out)
    after.pop("log.log", None), before.pop("log.log", None)      # the log records the refusal
    assert after == before, "a refused --resume changes nothing in --output_dir (config.json included)"


# ---------------------------------------------------------------- model directories whose config.json does not fit

MISFITS = [
    ("hidden_size", 64, "embeddings.LayerNorm.bias is (32,) in the weights but (64,) by config.json"),
    ("num_hidden_layers", 3, "the weights lack encoder.layer.2."),
    ("num_hidden_layers", 1, "the weights hold encoder.layer.1."),
    ("vocab_size", 1000, "embeddings.word_embeddings.weight is (30522, 32) in the weights but (1000, 32)"),
]


def misfit(model_dir, target, field, value):
    """A copy of `model_dir` whose config.json says `field` is `value`."""
    shutil.copytree(model_dir, target)
    config = json.loads((target / "config.json").read_text())
    (target / "config.json").write_text(json.dumps({**config, field: value}))
    return target


@pytest.mark.parametrize("field,value,needle", MISFITS, ids=[f"{m[0]}={m[1]}" for m in MISFITS])
def test_train_refuses_an_init_checkpoint_whose_config_does_not_fit(train_args, tiny_model_dir, tmp_path,
                                                                    capsys, field, value, needle):
    model = misfit(tiny_model_dir, tmp_path / "model", field, value)
    fail(train.main, train_args(tmp_path / "run", "--init_checkpoint", model), capsys,
         f"--init_checkpoint {model}: config.json does not fit the weights: {needle}", f"{field} {value}",
         "restore config.json saved with these weights")
    assert not (tmp_path / "run").exists(), "refused before the run's directory is kept"


@pytest.mark.parametrize("field,value,needle", MISFITS, ids=[f"{m[0]}={m[1]}" for m in MISFITS])
def test_evaluate_predict_and_export_refuse_a_model_whose_config_does_not_fit(saved_model, gpp_model_dir,
                                                                              canonical_dir, tmp_path, capsys,
                                                                              field, value, needle):
    model = misfit(saved_model[1], tmp_path / "model", field, value)
    fail(evaluate_cli.main, ["--model", model, "--data_dir", canonical_dir, "--datasets", "rte"], capsys,
         f"--model {model}: config.json does not fit the weights: {needle}")
    (tmp_path / "in.txt").write_text("a gripping film\n")
    fail(predict_cli.main, ["--model", model, "--task", "sst", "--input", tmp_path / "in.txt"], capsys,
         f"--model {model}: config.json does not fit the weights: {needle}")
    checkpoint = misfit(gpp_model_dir, tmp_path / "gpp", field, value)
    fail(export.main, ["--checkpoint", checkpoint, "--output_dir", tmp_path / "export"], capsys,
         f"--checkpoint {checkpoint}: config.json does not fit the weights: {needle}")
    assert not (tmp_path / "export").exists(), "nothing exported"


@pytest.mark.parametrize("field,value,needle", [
    ("hidden_act", "nope", "(KeyError: 'nope')"),
    ("hidden_size", "wide", "expected int, got str"),
    ("hidden_size", -32, "negative dimension -32"),
])
def test_a_config_that_cannot_build_a_model_is_refused(train_args, tiny_model_dir, tmp_path, capsys,
                                                        field, value, needle):
    model = misfit(tiny_model_dir, tmp_path / "model", field, value)
    fail(train.main, train_args(tmp_path / "run", "--init_checkpoint", model), capsys,
         f"--init_checkpoint {model}: cannot load a model with safetensors weights (", needle)


@pytest.mark.parametrize("text,needle", [("[" * 100000 + "]" * 100000, "RecursionError"),
                                         ("{not json", "JSONDecodeError"), ('{"version": "1.0"}', "KeyError")])
def test_damaged_tokenizer_files_are_refused(train_args, saved_model, canonical_dir, tmp_path, capsys,
                                             text, needle):
    model = tmp_path / "model"
    shutil.copytree(saved_model[1], model)
    (model / "tokenizer.json").write_text(text)
    message = f"{model}: its tokenizer files cannot be read ({needle}"
    fail(train.main, train_args(tmp_path / "run", "--init_checkpoint", model), capsys, message,
         "restore tokenizer.json and tokenizer_config.json")
    fail(evaluate_cli.main, ["--model", model, "--data_dir", canonical_dir, "--datasets", "rte"], capsys, message)


def test_a_heads_file_with_a_class_count_that_is_not_a_number_is_refused(saved_model, canonical_dir, tmp_path,
                                                                        capsys):
    model = tmp_path / "model"
    shutil.copytree(saved_model[1], model)
    heads = json.loads((model / "heads.json").read_text())
    heads["rte"]["n_class"] = "2"
    (model / "heads.json").write_text(json.dumps(heads))
    fail(evaluate_cli.main, ["--model", model, "--data_dir", canonical_dir], capsys,
         f"--model {model / 'heads.json'}: not a valid heads file", "save the model again with train.py")


def test_an_mtdnn_pt_file_whose_config_does_not_fit_is_refused(train_args, tmp_path, capsys):
    from transformers import BertModel

    from tests.conftest import tiny_bert_config
    torch.manual_seed(0)
    state = {f"bert.{key}": value for key, value in BertModel(tiny_bert_config()).state_dict().items()}
    torch.save({"state": state, "config": tiny_bert_config(hidden_size=64).to_dict()}, tmp_path / "mtdnn.pt")
    fail(train.main, train_args(tmp_path / "run", "--init_checkpoint", tmp_path / "mtdnn.pt"), capsys,
         f"--init_checkpoint {tmp_path / 'mtdnn.pt'}: the 'config' entry does not fit the weights: "
         "embeddings.LayerNorm.bias is (32,) in the weights but (64,) by the 'config' entry")
    # the same weights with their own config load, --dropout_p overriding the saved dropout (was a TypeError)
    torch.save({"state": state, "config": tiny_bert_config().to_dict()}, tmp_path / "fits.pt")
    encoder = load_encoder(str(tmp_path / "fits.pt"), 0.3)
    assert encoder.config.hidden_dropout_prob == 0.3, "the dropout flag overrides the file's"
    assert torch.equal(encoder.embeddings.word_embeddings.weight, state["bert.embeddings.word_embeddings.weight"]), \
        "the file's weights are loaded"


def test_gpp_dfd_front_end_refuses_a_model_whose_config_does_not_fit(sample_glue, tiny_model_dir, tmp_path,
                                                                     capsys):
    data, _ = glue_copy(sample_glue, tmp_path)
    model = misfit(tiny_model_dir, tmp_path / "model", "num_hidden_layers", 3)
    fail(run_GDbert_glue.main, ["--model_name_or_path", model, "--task_name", "rte", "--data_dir", data,
                                "--do_train", "--num_train_epochs", "3", "--output_dir", tmp_path / "run"], capsys,
         f"--model_name_or_path {model}: config.json does not fit the weights: the weights lack encoder.layer.2.")


@pytest.mark.parametrize("command", ["export", "compress"])
def test_check_rows_beyond_the_vocabulary_are_refused(gpp_model_dir, canonical_dir, tmp_path, capsys, command):
    """--check_data rows of another tokenizer (ids beyond the vocabulary) were an internal IndexError."""
    from mt_dnn import compress

    lines = (open(os.path.join(canonical_dir, "rte_dev.json")).read().splitlines())
    row = {**json.loads(lines[1]), "token_id": [101, 40000, 102], "type_id": [0, 0, 0]}
    check = tmp_path / "rte_dev.json"
    check.write_text("\n".join([lines[0], json.dumps(row), *lines[2:]]) + "\n")
    main, flag = (export.main, "--checkpoint") if command == "export" else (compress.main, "--model")
    fail(main, [flag, gpp_model_dir, "--output_dir", tmp_path / "out", "--check_data", check], capsys,
         f"{check}:2: token ids up to 40000, but the model {gpp_model_dir} has only 30522", "fix --check_data")
    assert not (tmp_path / "out").exists(), f"{command}: nothing written"


# ---------------------------------------------------------------- mt_dnn.evaluate: data and outputs

def test_evaluate_refuses_data_made_for_another_tokenizer(saved_model, canonical_dir, tmp_path,
                                                          capsys):
    data = tmp_path / "canonical"
    shutil.copytree(canonical_dir, data)
    manifest = json.loads((data / "manifest.json").read_text())
    manifest["files"]["rte_dev.json"]["tokenizer"].update(model="bert-base-cased", fingerprint="0123456789abcdef")
    (data / "manifest.json").write_text(json.dumps(manifest))
    fail(evaluate_cli.main, ["--model", saved_model[1], "--data_dir", data, "--datasets", "rte",
                             "--output_dir", tmp_path / "eval"], capsys,
         f"{data / 'rte_dev.json'}: tokenized for 'bert-base-cased'", "rerun prepro with --model")
    assert not (tmp_path / "eval").exists(), "nothing written"


def test_evaluate_names_its_own_flag_for_rows_beyond_the_vocabulary(saved_model, canonical_dir, tmp_path,
                                                                    capsys):
    """Data without a manifest (made by hand): its ids are still checked against the model's tables, and the
    warning that nothing else could be checked goes to stdout, leaving stderr to the one error line."""
    data = tmp_path / "canonical"
    data.mkdir()
    lines = open(os.path.join(canonical_dir, "rte_dev.json")).read().splitlines()
    row = {**json.loads(lines[2]), "token_id": [101, 40000, 102], "type_id": [0, 0, 0]}
    (data / "rte_dev.json").write_text("\n".join([*lines[:2], json.dumps(row), *lines[3:]]) + "\n")
    fail(evaluate_cli.main, ["--model", saved_model[1], "--data_dir", data, "--datasets", "rte"], capsys,
         f"{data / 'rte_dev.json'}:3: token ids up to 40000, but --model {saved_model[1]} has only 30522",
         "fix --data_dir")


@pytest.fixture()
def never_scored(monkeypatch):
    """Fails the test if evaluate scores anything (its outputs must be refused before)."""
    def scored(*args, **kwargs):
        raise AssertionError("evaluate scored a dataset before refusing its output")
    monkeypatch.setattr(evaluate_cli, "predict", scored)


@pytest.mark.parametrize("case,prepare,needles", [
    ("under a file", lambda out: (out.parent / "afile").write_text("x") and out.parent / "afile" / "eval",
     ["--output_dir {out}: cannot be created because {tmp}/afile is a file"]),
    ("a file", lambda out: out.write_text("x") and out, ["--output_dir {out} is a file, where a directory is to be"]),
    ("a score file's name taken by a directory", lambda out: (out / "rte_test_scores_eval.json").mkdir(parents=True)
     or out, ["{out}/rte_test_scores_eval.json (in --output_dir) is a directory, where a file is to be written"]),
    ("glue_submission a file", lambda out: out.mkdir() or (out / "glue_submission").write_text("x") and out,
     ["{out}/glue_submission/RTE.tsv (in --output_dir): cannot be created because {out}/glue_submission is a file"]),
    ("the task definition", lambda out: out.write_text("rte: {}\n") and out,
     ["--output_dir {out} is the input --task_def {out} itself"]),
])
def test_evaluate_refuses_an_output_it_cannot_write_before_scoring(saved_model, canonical_dir, tmp_path, capsys,
                                                                   never_scored, case, prepare, needles):
    out = prepare(tmp_path / "eval")
    extra = ["--task_def", out] if case == "the task definition" else []
    before = snapshot(tmp_path)
    fail(evaluate_cli.main, ["--model", saved_model[1], "--data_dir", canonical_dir, "--datasets", "rte",
                             "--split", "test", "--output_dir", out, *extra], capsys,
         *[n.format(out=out, tmp=tmp_path) for n in needles])
    assert snapshot(tmp_path) == before, f"{case}: nothing written"


def test_evaluate_refuses_a_read_only_output_dir_before_scoring(saved_model, canonical_dir, tmp_path, capsys,
                                                                never_scored, monkeypatch):
    """A folder no file can be made in (a read-only mount; tests run as root, who ignores permission bits,
    so the refusal of the file system is simulated where the probe meets it)."""
    from data_utils import files

    out = tmp_path / "eval"
    out.mkdir()
    real = files.tempfile.mkstemp

    def read_only(*args, dir=None, **kwargs):
        if os.path.realpath(dir) == os.path.realpath(out):
            raise OSError(30, "Read-only file system")
        return real(*args, dir=dir, **kwargs)
    monkeypatch.setattr(files.tempfile, "mkstemp", read_only)
    fail(evaluate_cli.main, ["--model", saved_model[1], "--data_dir", canonical_dir, "--datasets", "rte",
                             "--output_dir", out], capsys,
         f"--output_dir {out}: cannot write in {out} (Read-only file system); choose another --output_dir")
    assert os.listdir(out) == [], "nothing written"


# ---------------------------------------------------------------- mt_dnn.predict: pipes and inputs never written

SENTENCES = ["a gripping and moving film", "dull , lifeless and far too long", "fine"]


def test_predict_reads_input_from_a_pipe_once(saved_model, tmp_path, capsys):
    """`--input <(...)`: bash passes /dev/fd/N, a pipe that can be read once."""
    read_end, write_end = os.pipe()
    os.write(write_end, ("\n".join(SENTENCES) + "\n").encode())
    os.close(write_end)
    try:
        succeed(predict_cli.main, ["--model", saved_model[1], "--task", "sst", "--input", f"/dev/fd/{read_end}",
                                   "--output", tmp_path / "out.tsv"], capsys)
    finally:
        os.close(read_end)
    rows = (tmp_path / "out.tsv").read_text().splitlines()
    assert [row.split("\t")[0] for row in rows] == ["index", "0", "1", "2"], f"one row per piped line: {rows}"


def test_predict_reads_a_named_fifo_and_writes_to_one(saved_model, tmp_path, capsys):
    fifo_in, fifo_out = tmp_path / "in.fifo", tmp_path / "out.fifo"
    os.mkfifo(fifo_in)
    os.mkfifo(fifo_out)
    received = []

    def feed():
        with open(fifo_in, "w") as handle:
            handle.write("\n".join(SENTENCES) + "\n")

    def drain():
        with open(fifo_out) as handle:
            received.append(handle.read())
    threads = [threading.Thread(target=feed, daemon=True), threading.Thread(target=drain, daemon=True)]
    for thread in threads:
        thread.start()
    code = run_main(predict_cli.main, ["--model", saved_model[1], "--task", "sst", "--input", str(fifo_in),
                                       "--output", str(fifo_out)])
    for thread in threads:
        thread.join(timeout=30)
    captured = capsys.readouterr()
    assert code == 0, f"predict from and to named pipes: exit {code}: {captured.err}"
    assert received and len(received[0].splitlines()) == 4, f"the table went into the output pipe: {received}"
    assert captured.out == "", f"nothing else printed beside a stream output: {captured.out!r}"
    assert fifo_out.exists() and not fifo_out.is_file(), "the output pipe is written to, not replaced by a file"


@pytest.mark.parametrize("case,output,needle", [
    ("the task definition", "{task_def}", "--output {task_def} is the input --task_def {task_def} itself"),
    ("the input", "{input}", "--output {input} is the input --input {input} itself"),
    ("a file inside the model", "{model}/heads.json", "--output {model}/heads.json is inside the input --model"),
    ("a directory", "{tmp}", "--output {tmp} is a directory, where a file is to be written"),
    ("under a file", "{input}/out.tsv", "--output {input}/out.tsv: cannot be created because {input} is a file"),
])
def test_predict_never_writes_an_input_and_refuses_an_unwritable_output(saved_model, tmp_path, capsys,
                                                                        case, output, needle):
    model = tmp_path / "model"
    shutil.copytree(saved_model[1], model)
    task_def = tmp_path / "tasks.yml"
    shutil.copy(DEFAULT_TASK_DEF, task_def)
    (tmp_path / "in.txt").write_text("\n".join(SENTENCES) + "\n")
    values = {"task_def": task_def, "input": tmp_path / "in.txt", "model": model, "tmp": tmp_path}
    before = snapshot(tmp_path)
    fail(predict_cli.main, ["--model", model, "--task", "sst", "--input", tmp_path / "in.txt", "--task_def", task_def,
                            "--output", output.format(**values)], capsys, needle.format(**values))
    assert snapshot(tmp_path) == before, f"{case}: no input (nor anything else) is written"


def test_predict_refuses_a_directory_as_input(saved_model, tmp_path, capsys):
    fail(predict_cli.main, ["--model", saved_model[1], "--task", "sst", "--input", tmp_path], capsys,
         f"--input {tmp_path} is a directory; give a file, or - for stdin")


# ---------------------------------------------------------------- run_GDbert_glue.py: numeric flags

@pytest.mark.parametrize("flag,value,needle", [
    ("--num_train_epochs", "nan", "--num_train_epochs nan: use a whole number of epochs"),
    ("--num_train_epochs", "inf", "--num_train_epochs inf: use a whole number of epochs"),
    ("--num_train_epochs", "-1", "--num_train_epochs -1 must be a positive integer"),
    ("--learning_rate", "nan", "--learning_rate nan must be > 0 and finite"),
    ("--retrain_learning_rate", "inf", "--retrain_learning_rate inf must be > 0 and finite"),
    ("--warmup_ratio", "nan", "--warmup_ratio nan must be a fraction in [0, 1)"),
    ("--weight_decay", "inf", "--weight_decay inf must be >= 0 and finite"),
    ("--max_grad_norm", "nan", "--max_grad_norm nan must be >= 0"),
    ("--target_sparsity", "nan", "--target_sparsity nan must be in (0, 1)"),
    ("--seed", "-1", "--seed -1 must be an integer in [0, 2**64 - 1]"),
    ("--save_steps", "-1", "--save_steps -1 must be >= 0"),
    ("--save_total_limit", "-1", "--save_total_limit -1 must be >= 0"),
    ("--logging_steps", "-1", "--logging_steps -1 must be >= 0"),
    ("--max_seq_length", "-5", "--max_seq_length -5 must be a positive integer"),
    ("--per_device_train_batch_size", "0", "--per_device_train_batch_size 0 must be a positive integer"),
    ("--prune_epochs", "-1", "--prune_epochs -1 must be >= 1"),
])
def test_gpp_dfd_front_end_refuses_bad_numbers(sample_glue, tiny_model_dir, tmp_path, capsys, flag, value, needle):
    data, _ = glue_copy(sample_glue, tmp_path)
    fail(run_GDbert_glue.main, ["--model_name_or_path", tiny_model_dir, "--task_name", "rte", "--data_dir", data,
                                "--do_train", "--output_dir", tmp_path / "run", flag, value], capsys, needle)
    assert not (data / "canonical_data").exists(), f"{flag} {value}: refused before anything is preprocessed"
    assert not (tmp_path / "run").exists(), f"{flag} {value}: nothing written"
