"""PLATON and magnitude pruning through train.py: target reached, heads untouched, report, TensorBoard, errors."""
import json

import pytest
import torch
from safetensors.torch import load_file

import train
from tests.conftest import run_main

PLATON_README = ("--initial_threshold 1. --final_threshold 0.20 --warmup_steps 5400 --initial_warmup 1 "
                 "--final_warmup 5 --beta1 0.85 --beta2 0.95 --deltaT 10 "
                 "--data_dir data/canonical_data/bert-base-uncased --train_datasets mnli "
                 "--test_datasets mnli_matched,mnli_mismatched --init_checkpoint mt_dnn_models/bert_model_base_uncased.pt "
                 "--batch_size 32 --batch_size_eval 256 --optimizer adamax --learning_rate 8e-5 --epochs 8 --seed 7 "
                 "--log_per_updates 100 --eval_per_updates 6000 --output_dir log/run --log_file log.log "
                 "--tensorboard").split()


def prune_args(canonical_dir, model_dir, output_dir, pruner, *extra):
    return ["--data_dir", canonical_dir, "--init_checkpoint", model_dir, "--train_datasets", "rte,stsb",
            "--test_datasets", "rte,stsb", "--epochs", "3", "--batch_size", "8", "--max_seq_len", "64",
            "--learning_rate", "1e-3", "--log_per_updates", "2", "--seed", "5", "--output_dir", str(output_dir),
            "--pruner", pruner, "--initial_threshold", "1", "--final_threshold", "0.2", "--warmup_steps", "8",
            "--initial_warmup", "1", "--final_warmup", "1", "--deltaT", "2", *extra]


def selected(state):
    keys = ("attention.self", "attention.output.dense", "output.dense", "intermediate.dense")
    return {k: v for k, v in state.items() if any(s in k for s in keys)}


def test_platon_readme_command_parses_to_platon_meaning():
    args = train.build_parser().parse_args(PLATON_README)
    assert args.pruner == "platon", "PLATON is the default pruner"
    assert (args.initial_threshold, args.final_threshold, args.warmup_steps, args.initial_warmup,
            args.final_warmup, args.beta1, args.beta2, args.deltaT) == (1.0, 0.2, 5400, 1, 5, 0.85, 0.95, 10), \
        "threshold flags keep PLATON's meaning"
    assert args.optimizer == "adamax" and args.learning_rate == 8e-5 and args.tensorboard, "MT-DNN flags"


@pytest.mark.parametrize("pruner", ["platon", "magnitude"])
def test_pruning_reaches_target_on_encoder_only(canonical_dir, tiny_model_dir, tmp_path, pruner):
    assert run_main(train.main, prune_args(canonical_dir, tiny_model_dir, tmp_path, pruner, "--tensorboard")) == 0, \
        f"{pruner} run"
    state = load_file(tmp_path / "model" / "model.safetensors")
    weights = selected(state)
    total = sum(v.numel() for v in weights.values())
    zeros = sum(int((v == 0).sum()) for v in weights.values())
    assert abs(zeros / total - 0.8) < 0.01, f"{pruner}: {zeros / total:.4f} of the selected entries are zero, want 0.8"
    others = {k: v for k, v in state.items() if k not in weights}
    assert all(float((v == 0).float().mean()) < 0.05 for k, v in others.items() if "LayerNorm" not in k), \
        f"{pruner}: embeddings/pooler must not be pruned"
    heads = load_file(tmp_path / "model" / "heads.safetensors")
    assert all(int((v == 0).sum()) == 0 for v in heads.values()), f"{pruner}: task heads are never pruned"

    report = json.load(open(tmp_path / "sparsity_report.json"))
    assert abs(report["overall"]["remaining_ratio"] - 0.2) < 0.01, f"report says {report['overall']}"
    assert set(report["per_module_type"]) >= {"query", "key", "value", "intermediate"}, report["per_module_type"]
    log = open(tmp_path / "log.log").read()
    assert "sparsity report (target remaining ratio 0.2000)" in log, "the report is printed at the end"

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = EventAccumulator(str(tmp_path / "tensorboard_logdir"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"Prune/ratio", "Prune/threshold", "Sparsity/overall"} <= tags, f"pruning scalars: {tags}"
    assert any(t.startswith("Sparsity/per_layer/") for t in tags) and \
        any(t.startswith("Sparsity/per_module_type/") for t in tags), f"per-layer and per-type sparsity: {tags}"
    ratios = [e.value for e in events.Scalars("Prune/ratio")]
    assert ratios[0] == 1.0 and ratios[-1] == pytest.approx(0.2), f"ratio schedule from 1 to 0.2: {ratios}"

    from transformers import AutoModel
    encoder = AutoModel.from_pretrained(tmp_path / "model")
    query = encoder.encoder.layer[0].attention.self.query.weight
    assert torch.equal(query, state["encoder.layer.0.attention.self.query.weight"]), "AutoModel loads the zeros"


def capture_methods(monkeypatch) -> list:
    """The MethodStack each train.main builds (so a test can read what its flags set)."""
    built = []
    build = train.build_methods

    def spy(context):
        stack = build(context)
        built.append(stack)
        return stack
    monkeypatch.setattr(train, "build_methods", spy)
    return built


def kept_magnitude(state) -> float:
    """Mean |w| of the entries a pruner kept (non-zero) over the selected matrices."""
    kept = torch.cat([v[v != 0].abs().flatten() for k, v in selected(state).items() if v.dim() == 2])
    return float(kept.mean())


def test_platon_and_magnitude_prune_by_their_own_scores(canonical_dir, tiny_model_dir, tmp_path, monkeypatch):
    built = capture_methods(monkeypatch)
    states = {}
    for pruner in ("platon", "magnitude"):
        assert run_main(train.main, prune_args(canonical_dir, tiny_model_dir, tmp_path / pruner, pruner)) == 0
        states[pruner] = load_file(tmp_path / pruner / "model" / "model.safetensors")
    classes = [type(stack.methods[0].pruner).__name__ for stack in built]
    assert classes == ["PlatonPruner", "MagnitudePruner"], f"--pruner picks the pruner class: {classes}"
    # magnitude keeps the largest weights; PLATON keeps the most important, not always the largest
    assert kept_magnitude(states["magnitude"]) > kept_magnitude(states["platon"]), \
        f"magnitude pruning keeps larger weights than PLATON: {kept_magnitude(states['magnitude']):.4f} vs " \
        f"{kept_magnitude(states['platon']):.4f}"


@pytest.fixture(scope="module")
def platon_base(canonical_dir, tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("platon_base")
    assert run_main(train.main, prune_args(canonical_dir, tiny_model_dir, out, "platon")) == 0
    return selected(load_file(out / "model" / "model.safetensors"))


@pytest.mark.parametrize("flag,value", [("--beta1", "0.5"), ("--beta2", "1"), ("--deltaT", "1"),
                                        ("--final_threshold", "0.5"), ("--initial_warmup", "2"),
                                        ("--final_warmup", "2"), ("--warmup_steps", "6"),
                                        ("--initial_threshold", "0.9")])
def test_pruning_flags_change_the_result(canonical_dir, tiny_model_dir, platon_base, tmp_path, monkeypatch, flag,
                                        value):
    built = capture_methods(monkeypatch)
    args = prune_args(canonical_dir, tiny_model_dir, tmp_path / "changed", "platon", flag, value)
    assert run_main(train.main, args) == 0, flag
    pruner = built[0].methods[0].pruner
    setting = pruner.hyperparameters()[flag.lstrip("-")]
    assert setting == pytest.approx(float(value)), f"{flag} {value} reaches the pruner as {setting}"
    base = platon_base
    changed = selected(load_file(tmp_path / "changed" / "model" / "model.safetensors"))
    assert any(not torch.equal(base[k] == 0, changed[k] == 0) for k in base), f"{flag} {value} left the masks unchanged"
    if flag == "--final_threshold":
        kept = lambda state: sum(int((v != 0).sum()) for v in state.values()) / sum(v.numel() for v in state.values())  # noqa: E731
        assert kept(changed) > kept(base), f"a higher final ratio keeps more weights: {kept(changed):.3f} vs {kept(base):.3f}"


def test_pruner_kernels_change_the_loops_not_the_result(canonical_dir, tiny_model_dir, platon_base, tmp_path):
    pytest.importorskip("numba")
    args = prune_args(canonical_dir, tiny_model_dir, tmp_path, "platon", "--pruner_kernels", "torch")
    assert run_main(train.main, args) == 0
    log = open(tmp_path / "log.log").read()
    assert "torch kernels" in log, "the summary names the kernels that ran"
    changed = selected(load_file(tmp_path / "model" / "model.safetensors"))
    assert all(torch.equal(platon_base[k], changed[k]) for k in platon_base), \
        "torch operations give the same pruned weights as the default numba loops"


def test_pruner_kernels_numba_without_numba_is_refused(canonical_dir, tiny_model_dir, tmp_path, capsys,
                                                      monkeypatch):
    from pruners import kernels
    monkeypatch.setattr(kernels, "numba_available", lambda: False)
    args = prune_args(canonical_dir, tiny_model_dir, tmp_path, "platon", "--pruner_kernels", "numba")
    assert run_main(train.main, args) == 2
    err = capsys.readouterr().err
    assert "pip install numba" in err and "Traceback" not in err and err.strip().count("\n") == 0, err


@pytest.mark.parametrize("extra,needle", [
    ([], "T=42 updates while ti=initial_warmup×warmup_steps=5400"),
    (["--warmup_steps", "8", "--final_threshold", "1.5"], "--final_threshold=1.5 is invalid"),
    (["--warmup_steps", "8", "--final_warmup", "1", "--beta1", "1.2"], "--beta1=1.2 is invalid"),
    (["--warmup_steps", "8", "--deltaT", "0"], "--deltaT=0 is invalid"),
    (["--warmup_steps", "8", "--initial_threshold", "0.1", "--final_threshold", "0.2"],
     "--initial_threshold=0.1 is invalid"),
])
def test_bad_pruning_settings_are_refused(canonical_dir, tiny_model_dir, tmp_path, capsys, extra, needle):
    args = ["--data_dir", canonical_dir, "--init_checkpoint", tiny_model_dir, "--train_datasets", "rte,stsb",
            "--test_datasets", "rte", "--epochs", "3", "--batch_size", "8", "--output_dir", str(tmp_path), *extra]
    assert run_main(train.main, args) == 2, f"{extra}: exit 2"
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err and err.strip().count("\n") == 0, f"{extra}: {err}"
