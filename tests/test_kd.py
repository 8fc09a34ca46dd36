"""Logit distillation (methods/kd.py): the loss against hand computations, KD of a model from itself, tiny
train.py runs with PLATON and with GPP plus DFD, a frozen teacher, exact resume, and the one-line refusals."""
import dataclasses
import math
import os

import pytest
import torch

import methods
import train
from data_utils.task_def import load_task_defs
from methods import MethodContext
from methods.kd import KDDistillation, kd_loss
from modeling.model import MTDNNModel, load_encoder, load_model, save_model
from modeling.pretrained import load_tokenizer
from tests.conftest import run_main, tiny_bert_config
from tests.test_errors import GPP, PLATON, fail, snapshot, train_args  # noqa: F401 (train_args is a fixture)
from tests.test_platon_train import capture_methods

STUDENT = torch.tensor([[1.0, -0.5, 2.0], [0.3, 0.0, -1.2]])
TEACHER = torch.tensor([[0.5, 0.5, 3.0], [-1.0, 2.0, 0.1]])
TASKS = ["--train_datasets", "rte,stsb", "--test_datasets", "rte"]       # a classification and a regression task
PLATON_14 = [*PLATON, "--warmup_steps", "4"]                               # PLATON's warmups fit the 14 updates


def softmax(row, temperature):
    exps = [math.exp(z / temperature) for z in row]
    return [e / sum(exps) for e in exps]


@pytest.mark.parametrize("temperature,alpha", [(1.0, 0.5), (2.0, 0.5), (4.0, 0.9), (0.5, 0.0), (2.0, 1.0)])
def test_classification_loss_is_the_hand_computed_mix(temperature, alpha):
    kl = sum(sum(p * (math.log(p) - math.log(q)) for p, q in zip(softmax(t, temperature), softmax(s, temperature)))
             for s, t in zip(STUDENT.tolist(), TEACHER.tolist())) / len(STUDENT)       # batchmean
    expected_kd = kl * temperature ** 2
    total, kd = kd_loss(STUDENT, TEACHER, torch.tensor(0.7), alpha, temperature, regression=False)
    assert kd.item() == pytest.approx(expected_kd, rel=1e-5), \
        f"T²·KL at T={temperature}: {kd.item()} vs {expected_kd}"
    assert total.item() == pytest.approx(alpha * expected_kd + (1 - alpha) * 0.7, rel=1e-5), \
        f"α·KD + (1-α)·task at α={alpha}, T={temperature}: {total.item()}"


@pytest.mark.parametrize("temperature,alpha", [(1.0, 0.5), (5.0, 0.5), (2.0, 0.25)])
def test_regression_loss_is_the_mse_to_the_teacher_and_ignores_the_temperature(temperature, alpha):
    student, teacher = torch.tensor([[1.0], [2.5], [-0.5]]), torch.tensor([[1.5], [2.0], [0.5]])
    expected_kd = (0.5 ** 2 + 0.5 ** 2 + 1.0 ** 2) / 3
    total, kd = kd_loss(student, teacher, torch.tensor(2.0), alpha, temperature, regression=True)
    assert kd.item() == pytest.approx(expected_kd), f"MSE of the scores at T={temperature}: {kd.item()}"
    assert total.item() == pytest.approx(alpha * expected_kd + (1 - alpha) * 2.0), f"the mix at α={alpha}"


def test_kd_gradient_reaches_the_student_only():
    student = STUDENT.clone().requires_grad_(True)
    teacher = TEACHER.clone().requires_grad_(True)
    with torch.no_grad():
        fixed = teacher * 1
    kd_loss(student, fixed, torch.tensor(0.0), 1.0, 2.0, regression=False)[0].backward()
    assert student.grad is not None and student.grad.abs().sum() > 0, "the student's logits get a gradient"
    assert teacher.grad is None, "logits computed under no_grad pass no gradient to the teacher"


def test_kd_from_a_model_to_itself_adds_nothing_but_the_task_share(tiny_model_dir, tmp_path):
    """The method built over a model whose saved copy is its teacher: KL and MSE are 0 on every head."""
    task_defs = load_task_defs()
    torch.manual_seed(1)
    model = MTDNNModel(load_encoder(tiny_model_dir), {name: task_defs[name] for name in ("rte", "stsb")}).eval()
    save_model(model, load_tokenizer(tiny_model_dir), str(tmp_path / "teacher"))
    args = train.build_parser().parse_args(["--kd_teacher", str(tmp_path / "teacher"), "--max_seq_len", "64"])
    method = KDDistillation(MethodContext(args, model, 10, torch.device("cpu"), None, None))
    inputs = (torch.randint(1000, 2000, (3, 9)), torch.zeros(3, 9, dtype=torch.long),
              torch.ones(3, 9, dtype=torch.long))
    for task in ("rte", "stsb"):
        output = model(*inputs, task=task)
        loss = method.loss(torch.tensor(0.8), inputs, output)
        assert method.loss_parts["kd"] == pytest.approx(0.0, abs=1e-6), f"{task}: KD of a model from itself is 0"
        assert loss.item() == pytest.approx(0.5 * 0.8), f"{task}: only (1-α)·task loss is left: {loss.item()}"
        assert method.loss_parts["kd_task_scaling"] == pytest.approx(-0.4), f"{task}: the task loss's share taken"


@pytest.fixture(scope="module")
def teacher(train_args, tmp_path_factory):  # noqa: F811 (the imported fixture)
    """A fine-tuned dense teacher of rte and stsb: train.py --pruner none's model/."""
    out = tmp_path_factory.mktemp("kd_teacher")
    assert run_main(train.main, train_args(out, *TASKS)) == 0, "teacher fine-tuning with --pruner none"
    return out / "model"


def scalars(run_dir) -> dict:
    """{TensorBoard tag: {update: value}} of a run with --tensorboard."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tensorboard_logdir"))
    events.Reload()
    return {tag: {event.step: event.value for event in events.Scalars(tag)} for tag in events.Tags()["scalars"]}


@pytest.mark.parametrize("case,extra", [
    ("platon", [*PLATON_14, "--kd_teacher", "{teacher}"]),
    ("gpp with DFD", [*GPP, "--do_distill", "--teacher_model_path", "{teacher}", "--logit_distill",
                      "--dfd_weight", "0.01"]),
], ids=["platon", "gpp_dfd"])
def test_a_pruning_run_distills_the_teacher_s_logits(teacher, train_args, tmp_path, monkeypatch, case,  # noqa: F811
                                                     extra):
    built = capture_methods(monkeypatch)
    before = snapshot(teacher)
    out = tmp_path / "run"
    argv = train_args(out, *TASKS, "--tensorboard", *[str(a).replace("{teacher}", str(teacher)) for a in extra])
    assert run_main(train.main, argv) == 0, f"{case}: the run with logit distillation finishes"
    found = scalars(out)
    kd = found.get("train/loss_kd", {})
    assert kd and kd.keys() == found["train/loss"].keys() and all(math.isfinite(v) and v > 0 for v in kd.values()), \
        f"{case}: train/loss_kd logged at every update, finite and > 0: {kd}"
    parts = [tag for tag in found if tag.startswith("train/loss_")]
    for update, loss in found["train/loss"].items():
        logged = {tag: found[tag][update] for tag in parts if update in found[tag]}
        assert sum(logged.values()) == pytest.approx(loss, rel=1e-4, abs=1e-5), \
            f"{case}: update {update}: the parts {logged} add up to the loss {loss}"
    if case == "gpp with DFD":
        assert "train/loss_distillation" in found and "train/loss_flooding" in found, f"DFD composes: {sorted(found)}"
    log = open(out / "log.log").read()
    assert f"logit distillation from {teacher} (alpha 0.5, temperature 2.0" in log, f"{case}: the start-up summary"

    method = built[0].methods[0]
    assert method.name == "kd", f"{case}: KD's loss runs first: {[m.name for m in built[0].methods]}"
    assert not method.teacher.training, f"{case}: the teacher stays in eval mode"
    saved = load_model(str(teacher), load_task_defs(), flag="--kd_teacher").state_dict()
    for name, param in method.teacher.named_parameters():
        assert not param.requires_grad and param.grad is None, f"{case}: teacher {name} gets no gradient"
        assert torch.equal(param, saved[name]), f"{case}: teacher {name} changed during training"
    assert snapshot(teacher) == before, f"{case}: the teacher directory is only read"


def test_kd_is_registered_before_dfd_and_the_pruners():
    names = list(methods.REGISTRY)
    assert names.index("kd") < names.index("dfd") < min(names.index(n) for n in methods.pruning_methods()), \
        f"KD scales the task loss alone, before DFD floods it and the pruners add their terms: {names}"


def test_resumed_kd_run_continues_bit_identically(teacher, train_args, tmp_path):  # noqa: F811
    """A checkpoint mid-run, resumed into a fresh directory with the KD flags left off the command line (the
    checkpoint restores them), ends with the uninterrupted run's weights."""
    from safetensors.torch import load_file

    straight = tmp_path / "straight"
    run = [*TASKS, *PLATON_14, "--kd_teacher", str(teacher), "--kd_alpha", "0.7", "--kd_temperature", "3"]
    assert run_main(train.main, train_args(straight, *run, "--save_per_updates", "1", "--keep_checkpoints", "0")) == 0
    checkpoints = sorted((p for p in straight.iterdir() if p.name.startswith("checkpoint-")),
                         key=lambda p: int(p.name.split("-")[1]))
    middle = checkpoints[len(checkpoints) // 2]
    resumed = tmp_path / "resumed"
    assert run_main(train.main, train_args(resumed, *TASKS, *PLATON_14, "--model_ckpt", str(middle))) == 0, \
        f"resume from {middle.name}"
    log = open(resumed / "log.log").read()
    assert "resumed from" in log, "the log records the resume"
    assert "logit distillation from" in log and "alpha 0.7, temperature 3.0" in log, \
        "the checkpoint's KD flags are restored on resume"
    for name in ("model.safetensors", "heads.safetensors"):
        expected, got = load_file(straight / "model" / name), load_file(resumed / "model" / name)
        assert expected.keys() == got.keys(), f"{name}: the same tensors"
        differ = [key for key in expected if not torch.equal(expected[key], got[key])]
        assert not differ, f"resumed from {middle.name}: {name} differs from the uninterrupted run in {differ[:3]}"


def saved_teacher(tiny_model_dir, directory, tasks, capsys, **config):
    """A model directory as train.py saves it, with heads for `tasks` ({name: TaskDef}) (what its loading and
    saving print is dropped: the test reads the run's stderr)."""
    from transformers import BertModel

    encoder = BertModel(tiny_bert_config(**config)) if config else load_encoder(tiny_model_dir)
    save_model(MTDNNModel(encoder, tasks), load_tokenizer(tiny_model_dir), str(directory))
    capsys.readouterr()
    return directory


def test_a_teacher_without_a_trained_task_is_refused(train_args, tiny_model_dir, tmp_path, capsys):  # noqa: F811
    only_rte = saved_teacher(tiny_model_dir, tmp_path / "teacher", {"rte": load_task_defs()["rte"]}, capsys)
    fail(train.main, train_args(tmp_path / "run", *TASKS, "--kd_teacher", only_rte), capsys,
         f"--kd_teacher {only_rte}: the teacher has no head for task stsb, which the student trains (its heads: rte)",
         "give a teacher fine-tuned on every task of --train_datasets")
    assert not (tmp_path / "run").exists(), "a refused run leaves no output directory"


def test_a_teacher_head_with_another_label_count_is_refused(train_args, tiny_model_dir, tmp_path, capsys):  # noqa: F811
    rte = load_task_defs()["rte"]
    three = dataclasses.replace(rte, n_class=3, labels=("entailment", "not_entailment", "neutral"))
    other = saved_teacher(tiny_model_dir, tmp_path / "teacher", {"rte": three}, capsys)
    fail(train.main, train_args(tmp_path / "run", "--kd_teacher", other), capsys,
         f"--kd_teacher {other}: the rte head has 3 outputs but the task definition says n_class 2",
         "pass the --task_def the model was trained with")


def test_a_teacher_of_another_vocabulary_is_refused(train_args, tiny_model_dir, tmp_path, capsys):  # noqa: F811
    other = saved_teacher(tiny_model_dir, tmp_path / "teacher", {"rte": load_task_defs()["rte"]}, capsys,
                          vocab_size=1000)
    fail(train.main, train_args(tmp_path / "run", "--kd_teacher", other), capsys,
         f"--kd_teacher {other}: teacher has vocab_size=1000 but the student has 30522", "the same tokenizer")


def test_a_teacher_with_a_shorter_position_table_is_refused(train_args, tiny_model_dir, tmp_path, capsys):  # noqa: F811
    short = saved_teacher(tiny_model_dir, tmp_path / "teacher", {"rte": load_task_defs()["rte"]}, capsys,
                          max_position_embeddings=32)
    fail(train.main, train_args(tmp_path / "run", "--kd_teacher", short), capsys,
         f"--kd_teacher {short}: the teacher embeds at most 32 positions but the student's rows run to 64",
         "pass --max_seq_len 32 or less")


FLAG_CASES = [
    ("alpha above 1", ["--kd_alpha", "1.5"], ["--kd_alpha 1.5 must be in [0, 1]"]),
    ("negative alpha", ["--kd_alpha", "-0.1"], ["--kd_alpha -0.1 must be in [0, 1]"]),
    ("NaN alpha", ["--kd_alpha", "nan"], ["--kd_alpha nan must be in [0, 1]"]),
    ("temperature 0", ["--kd_temperature", "0"], ["--kd_temperature 0.0 must be in (0, 10000]"]),
    ("negative temperature", ["--kd_temperature", "-2"], ["--kd_temperature -2.0 must be in (0, 10000]"]),
    ("infinite temperature", ["--kd_temperature", "inf"], ["--kd_temperature inf must be in (0, 10000]"]),
    ("NaN temperature", ["--kd_temperature", "nan"], ["--kd_temperature nan must be in (0, 10000]"]),
    ("temperature whose square overflows", ["--kd_temperature", "1e30"],
     ["--kd_temperature 1e+30 must be in (0, 10000]", "overflows float32"]),
]


@pytest.mark.parametrize("case,extra,needles", FLAG_CASES, ids=[c[0] for c in FLAG_CASES])
def test_bad_kd_flags_are_refused(train_args, tiny_model_dir, tmp_path, capsys, case, extra, needles):  # noqa: F811
    fail(train.main, train_args(tmp_path / "run", "--kd_teacher", tiny_model_dir, *extra), capsys, *needles)
    assert not (tmp_path / "run").exists(), f"{case}: refused before anything is written"


TEACHER_FLAG_CASES = [
    ("--logit_distill without a teacher", ["--logit_distill"],
     ["--logit_distill needs --teacher_model_path DIR", "or name the teacher with --kd_teacher DIR"]),
    ("both teacher flags", ["--logit_distill", "--teacher_model_path", "{tmp}", "--kd_teacher", "{tmp}"],
     ["--logit_distill takes its teacher from --teacher_model_path, but --kd_teacher {tmp} names one too"]),
    ("teacher directory missing", ["--kd_teacher", "{tmp}/nothing"],
     ["--kd_teacher {tmp}/nothing: directory not found; give the model/ directory of a fine-tuned train.py run"]),
    ("teacher is a file", ["--kd_teacher", "{tmp}/afile"], ["--kd_teacher {tmp}/afile is a file, not a directory"]),
    ("--logit_distill teacher missing", ["--logit_distill", "--teacher_model_path", "{tmp}/nothing"],
     ["--teacher_model_path {tmp}/nothing: directory not found"]),
    ("teacher without heads", ["--kd_teacher", "{model}"],
     ["--kd_teacher {model}: no heads.json and heads.safetensors, so no task heads"]),
    ("output directory inside the teacher", ["--kd_teacher", "{tmp}", "--output_dir", "{tmp}/run"],
     ["--output_dir {tmp}/run is inside the input --kd_teacher {tmp}"]),
]


@pytest.mark.parametrize("case,extra,needles", TEACHER_FLAG_CASES, ids=[c[0] for c in TEACHER_FLAG_CASES])
def test_bad_teacher_flags_are_refused(train_args, tiny_model_dir, tmp_path, capsys, case, extra,  # noqa: F811
                                       needles):
    (tmp_path / "afile").write_text("x")
    fill = {"{tmp}": str(tmp_path), "{model}": tiny_model_dir}

    def filled(text):
        for key, value in fill.items():
            text = text.replace(key, value)
        return text
    fail(train.main, train_args(tmp_path / "out", *[filled(a) for a in extra]), capsys,
         *[filled(n) for n in needles])
    assert not os.path.exists(tmp_path / "out") and not os.path.exists(tmp_path / "run"), \
        f"{case}: nothing is written"
