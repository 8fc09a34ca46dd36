"""The method protocol: a new method joins the loop, the checkpoints and the outputs through its own
class and one registry line, and the loop names no method."""
import json
import os
import re

import pytest
import torch

import methods
import train
from data_utils.errors import UserError
from methods.base import MethodStack, TrainingMethod
from tests.conftest import run_main


class ToyPruning(TrainingMethod):
    """Zeroes --toy_step more entries of the first FFN weight at each update and records every hook call."""

    name = "toy"
    calls = []          # (hook, update) across instances, in order
    not_resumed = ("toy_note",)

    @classmethod
    def add_arguments(cls, parser):
        group = parser.add_argument_group("toy pruning")
        group.add_argument("--toy_step", type=int, default=1, help="entries zeroed per update")
        group.add_argument("--toy_note", default="", help="a note that does not change training")

    @classmethod
    def validate(cls, args):
        if args.toy_step < 1:
            raise UserError(f"--toy_step {args.toy_step} must be >= 1")

    def __init__(self, context):
        super().__init__(context)
        self.weight = context.model.encoder.encoder.layer[0].intermediate.dense.weight
        self.step = context.args.toy_step
        self.zeroed = 0

    def start_update(self, t):
        self.calls.append(("start_update", t))
        return None

    def loss(self, loss, inputs, output):
        self.calls.append(("loss", None))
        return loss

    def after_backward(self):
        self.calls.append(("after_backward", None))

    def after_update(self, t):
        self.calls.append(("after_update", t))
        self.zeroed += self.step
        with torch.no_grad():
            self.weight.view(-1)[:self.zeroed] = 0
        return {"Prune/toy": float(self.zeroed)}

    def at_target(self, t):
        return self.zeroed >= 3

    def write_model_files(self, directory):
        with open(os.path.join(directory, "toy.json"), "w", encoding="utf-8") as handle:
            json.dump({"zeroed": self.zeroed}, handle)

    def state_dict(self):
        return {"zeroed": self.zeroed, "tensors": {"first": self.weight.detach()[0].clone()}}

    def load_state_dict(self, state):
        self.calls.append(("load_state_dict", state["zeroed"]))
        self.zeroed = state["zeroed"]


def toy_args(canonical_dir, model_dir, output_dir, *extra):
    return ["--data_dir", canonical_dir, "--init_checkpoint", model_dir, "--train_datasets", "rte",
            "--test_datasets", "rte", "--epochs", "2", "--batch_size", "16", "--max_seq_len", "32",
            "--seed", "3", "--output_dir", str(output_dir), "--pruner", "toy", *extra]


def test_a_registered_method_runs_checkpoints_and_resumes(canonical_dir, tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setitem(methods.REGISTRY, "toy", ToyPruning)
    monkeypatch.setattr(ToyPruning, "calls", [])
    out = tmp_path / "run"
    assert run_main(train.main, toy_args(canonical_dir, tiny_model_dir, out, "--save_per_updates", "2",
                                         "--keep_checkpoints", "0", "--toy_step", "2")) == 0, \
        "--pruner toy and its own --toy_step are offered and run once the method is registered"
    calls = ToyPruning.calls
    updates = [t for hook, t in calls if hook == "after_update"]
    assert updates == list(range(1, len(updates) + 1)) and len(updates) >= 4, f"one after_update per update: {updates}"
    first = calls.index(("after_update", 1))
    assert [hook for hook, _ in calls[:first]] == ["start_update", "loss", "after_backward"], \
        f"hooks of update 1 in loop order: {calls[:first + 1]}"
    assert json.load(open(out / "model" / "toy.json")) == {"zeroed": 2 * len(updates)}, \
        "the method's files are written into model/, and --toy_step 2 reached the method"
    state = json.load(open(out / "checkpoint-2" / "state.json"))["__dict__"]
    assert state["toy"]["__dict__"]["zeroed"] == 4, "the checkpoint holds the method's state under its name"
    from safetensors.torch import load_file
    saved = load_file(str(out / "model" / "model.safetensors"))
    key = next(k for k in saved if k.endswith("layer.0.intermediate.dense.weight"))
    assert int((saved[key].view(-1)[:2 * len(updates)] == 0).sum()) == 2 * len(updates), \
        "the method's masking is saved"

    ToyPruning.calls.clear()
    resumed = tmp_path / "resumed"
    assert run_main(train.main, toy_args(canonical_dir, tiny_model_dir, resumed, "--model_ckpt",
                                         str(out / "checkpoint-2"), "--toy_step", "5", "--toy_note", "x")) == 0, \
        "resume from the toy's checkpoint"
    assert ("load_state_dict", 4) in ToyPruning.calls, "resume restores the method's state"
    config = json.load(open(resumed / "config.json"))
    assert (config["toy_step"], config["toy_note"]) == (2, "x"), \
        f"a resume takes the method's training flag from the checkpoint, its not_resumed one from the command line: " \
        f"{config['toy_step']}, {config['toy_note']!r}"
    assert [t for hook, t in ToyPruning.calls if hook == "after_update"][0] == 3, "and continues at update 3"
    assert json.load(open(resumed / "model" / "toy.json")) == {"zeroed": 2 * len(updates)}, \
        "the resumed run ends where the straight one did"


def test_a_registered_methods_flags_are_checked_and_named_in_library_errors(canonical_dir, tiny_model_dir,
                                                                            tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(methods.REGISTRY, "toy", ToyPruning)
    code = run_main(train.main, toy_args(canonical_dir, tiny_model_dir, tmp_path / "run", "--toy_step", "0"))
    err = capsys.readouterr().err
    assert code == 2 and err.strip() == "error: --toy_step 0 must be >= 1", f"the method's own check runs: {err!r}"
    assert not (tmp_path / "run").exists(), "refused before anything is written"
    parser = train.build_parser()
    assert "toy_step" in parser.resume_flags and "toy_note" not in parser.resume_flags, \
        f"resume flags come from the methods' declarations: {parser.resume_flags}"
    assert methods.parameter_flags()["beta1"] == "--beta1" and methods.parameter_flags()["kernels"] == \
        "--pruner_kernels", "library parameters are named by the flags their methods declare"


def test_the_loop_names_no_method():
    source = open(train.__file__, encoding="utf-8").read()
    code = re.sub(r'""".*?"""', "", source, flags=re.S)     # docstrings may mention them
    for name in ("platon", "magnitude", "gpp", "dfd", "teacher", "indicator", "pruner."):
        assert name not in code.lower(), f"train.py's code names {name!r}: it belongs in a method"


class Adds(TrainingMethod):
    def __init__(self, label, log):
        self.label, self.log, self.name = label, log, label

    def loss(self, loss, inputs, output):
        self.log.append(self.label)
        return loss * 2 if self.label == "first" else loss + 1


def test_stack_passes_the_loss_through_the_methods_in_registry_order():
    log = []
    stack = MethodStack([Adds("first", log), Adds("second", log)])
    assert float(stack.loss(torch.tensor(3.0), None, None)) == 7.0, "(3·2)+1: the first method's terms come first"
    assert log == ["first", "second"], f"hooks run in order: {log}"
    assert stack.loss_parts == {"task": 3.0, "first": 3.0, "second": 1.0}, \
        f"the loss parts for TensorBoard: the task loss and what each method added: {stack.loss_parts}"
    names = list(methods.REGISTRY)
    assert names.index("dfd") < min(names.index(n) for n in methods.pruning_methods()), \
        "distillation precedes pruning, so that flooding applies to the task loss alone"


def test_pruner_choices_come_from_the_registry(monkeypatch):
    monkeypatch.setitem(methods.REGISTRY, "toy", ToyPruning)
    assert train.build_parser().parse_args(["--pruner", "toy"]).pruner == "toy", "a registered pruner is a choice"
    with pytest.raises(SystemExit):
        train.build_parser().parse_args(["--pruner", "nosuch"])
