"""GPP and DFD inside train.py: target reached, export equivalence and reload, flags, GPP-DFD front end."""
import json
import os
import re

import pytest
import torch
from safetensors.torch import load_file

import run_GDbert_glue
import train
from data_utils.errors import UserError
from mt_dnn import export as export_cli
from tests.conftest import run_main


def gpp_args(canonical_dir, model_dir, output_dir, *extra):
    return ["--data_dir", canonical_dir, "--init_checkpoint", model_dir, "--train_datasets", "rte,stsb",
            "--test_datasets", "rte", "--epochs", "3", "--batch_size", "8", "--max_seq_len", "64",
            "--learning_rate", "1e-3", "--log_per_updates", "0", "--seed", "5", "--output_dir", str(output_dir),
            "--pruner", "gpp", "--prepruning_finetune_epochs", "1", "--prune_epochs", "1",
            "--target_sparsity", "0.5", *extra]


@pytest.fixture(scope="module")
def teacher_dir(canonical_dir, tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("teacher")
    args = gpp_args(canonical_dir, tiny_model_dir, out)
    args[args.index("gpp")] = "none"
    assert run_main(train.main, args) == 0, "teacher fine-tuning with --pruner none"
    return out / "model"


@pytest.fixture(scope="module")
def gpp_run(canonical_dir, tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("gpp")
    assert run_main(train.main, gpp_args(canonical_dir, tiny_model_dir, out)) == 0, "GPP run"
    return out


def test_gpp_reaches_target_and_exports_smaller_equivalent_model(gpp_run):
    z = load_file(gpp_run / "model" / "gpp_indicators.safetensors")
    for name, expected_pruned in (("z_head", 4), ("z_ffn", 64)):     # 2 layers x 4 heads, 2 x 64 neurons
        values = set(z[name].unique().tolist())
        assert values <= {0.0, 1.0}, f"{name}: frozen at exact 0/1 once the target is reached: {values}"
        assert int((z[name] == 0).sum()) == expected_pruned, f"{name}: floor(n x 0.5) units pruned"
    report = json.load(open(gpp_run / "model_pruned" / "structured_export.json"))
    heads_kept = (z["z_head"] != 0).sum(dim=1).tolist()
    assert report["layer_heads"] == heads_kept, f"exported head counts {report['layer_heads']} vs {heads_kept}"
    assert report["layer_intermediate_sizes"] == (z["z_ffn"] != 0).sum(dim=1).tolist(), "exported FFN widths"
    assert report["max_abs_difference"] <= 1e-4, f"exported = masked on a dev batch: {report['max_abs_difference']}"
    assert report["parameters_after"] < report["parameters_before"], "the export is physically smaller"
    assert (gpp_run / "best_model_pruned").is_dir(), "the best checkpoint after reaching the target is kept"

    import modeling.structured  # noqa: F401 - registers the pruned model type with the Auto classes
    from transformers import AutoModel
    reloaded = AutoModel.from_pretrained(gpp_run / "model_pruned")
    assert [layer.intermediate.dense.out_features for layer in reloaded.encoder.layer] == \
        report["layer_intermediate_sizes"], "AutoModel reloads the smaller shapes"
    assert sum(p.numel() for p in reloaded.parameters()) == report["parameters_after"], "parameter count"


def test_exported_model_is_an_init_checkpoint_and_predicts_like_the_masked_one(gpp_run, canonical_dir, tmp_path):
    out = tmp_path / "eval"
    args = gpp_args(canonical_dir, str(gpp_run / "model_pruned"), out, "--learning_rate", "1e-12", "--epochs", "1")
    args[args.index("gpp")] = "none"
    assert run_main(train.main, args) == 0, "the exported model loads through the toolkit's loader"
    scores = json.load(open(out / "rte_dev_scores_epoch_000.json"))
    masked = json.load(open(gpp_run / "rte_dev_scores_epoch_002.json"))
    assert scores["predictions"] == masked["predictions"], "exported model predicts what the masked one did"


def test_export_command_from_saved_masked_checkpoint(gpp_run, tmp_path, canonical_dir, capsys):
    out = tmp_path / "exported"
    code = run_main(export_cli.main, ["--checkpoint", str(gpp_run / "model"), "--output_dir", str(out),
                                 "--check_data", os.path.join(canonical_dir, "rte_dev.json")])
    assert code == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "max |masked - exported|" in printed and "encoder parameters" in printed, printed
    report = json.load(open(out / "structured_export.json"))
    assert report["max_abs_difference"] <= 1e-4, f"export command equivalence: {report}"
    code = run_main(export_cli.main, ["--checkpoint", str(tmp_path), "--output_dir", str(tmp_path / "x")])
    assert code == 2 and "no gpp_indicators.safetensors" in capsys.readouterr().err, "non-GPP directory refused"


@pytest.mark.parametrize("flag,value", [("--pruning_type", "structured_heads"), ("--pruning_type", "structured_mlp"),
                                        ("--target_sparsity", "0.25")])
def test_pruning_flags_change_what_is_pruned(canonical_dir, tiny_model_dir, tmp_path, flag, value):
    assert run_main(train.main, gpp_args(canonical_dir, tiny_model_dir, tmp_path, flag, value)) == 0
    z = load_file(tmp_path / "model" / "gpp_indicators.safetensors")
    if value == "structured_heads":
        assert set(z) == {"z_head"}, f"only heads pruned: {set(z)}"
    elif value == "structured_mlp":
        assert set(z) == {"z_ffn"}, f"only FFN neurons pruned: {set(z)}"
    else:
        assert int((z["z_head"] == 0).sum()) == 2 and int((z["z_ffn"] == 0).sum()) == 32, "25 % of each type"


def test_distillation_flags_change_training(canonical_dir, tiny_model_dir, teacher_dir, gpp_run, tmp_path,
                                           monkeypatch):
    import methods.dfd as dfd

    calls = []
    real_loss, real_flooded = dfd.dfd_loss, dfd.flooded

    def dfd_loss(teacher, student, window_size, fusion):
        value = real_loss(teacher, student, window_size, fusion)
        calls.append({"window_size": window_size, "fusion": fusion, "dfd": float(value)})
        return value

    def flooded(loss, b):
        calls.append({"flooding_b": b})
        return real_flooded(loss, b)
    real_method_loss = dfd.DFDDistillation.loss

    def method_loss(self, loss, inputs, output):
        total = real_method_loss(self, loss, inputs, output)
        calls.append({"weighted": self.loss_parts["distillation"] / calls[-1]["dfd"] if calls[-1]["dfd"] else None})
        return total
    monkeypatch.setattr(dfd, "dfd_loss", dfd_loss)
    monkeypatch.setattr(dfd, "flooded", flooded)
    monkeypatch.setattr(dfd.DFDDistillation, "loss", method_loss)

    def retraining_starts(run_dir):
        found = re.findall(r"GPP retraining phase starts at update (\d+) \(lr ([^)]+)\)", open(run_dir / "log.log").read())
        assert len(found) <= 1, f"{run_dir}: at most one retraining phase: {found}"
        return (int(found[0][0]), float(found[0][1])) if found else (None, None)

    base = load_file(gpp_run / "model" / "model.safetensors")
    teacher = ["--do_distill", "--teacher_model_path", str(teacher_dir)]
    # (flags, what the method must have received: a value in the recorded calls, or a line of the log)
    variants = {"distill": (teacher, {"window_size": 3, "fusion": "magnitude", "flooding_b": 0.01}),
                "window": ([*teacher, "--window_size", "1"], {"window_size": 1}),
                "flooding": ([*teacher, "--flooding_b", "2.0"], {"flooding_b": 2.0}),
                "dfd_weight": ([*teacher, "--dfd_weight", "0.01"], {"weighted": pytest.approx(0.01)}),
                "fusion": ([*teacher, "--dfd_fusion", "signed"], {"fusion": "signed"}),
                "retrain_lr": (["--retrain_learning_rate", "1e-5"], None),
                "prepruning": (["--prepruning_finetune_epochs", "0"], "GPP pruning phase starts at update 1 "),
                "prune_epochs": (["--prune_epochs", "2"], None)}
    for name, (extra, expected) in variants.items():
        calls.clear()
        assert run_main(train.main, gpp_args(canonical_dir, tiny_model_dir, tmp_path / name, *extra)) == 0, name
        final = load_file(tmp_path / name / "model" / "model.safetensors")
        assert any(not torch.equal(base[k], final[k]) for k in base), f"{name}: flags left the weights unchanged"
        if expected is None:
            continue
        if isinstance(expected, str):
            log = open(tmp_path / name / "log.log").read()
            assert expected in log, f"{name}: the log should say {expected!r}: " \
                f"{[line for line in log.splitlines() if 'GPP' in line]}"
            continue
        assert calls, f"{name}: distillation never ran"
        for key, value in expected.items():
            seen = [call[key] for call in calls if key in call and call[key] is not None]
            assert seen and all(v == value for v in seen), f"{name}: the method should get {key}={value!r}: {seen[:5]}"
    base_update, base_rate = retraining_starts(gpp_run)
    update, rate = retraining_starts(tmp_path / "retrain_lr")
    assert (update, rate) == (base_update, 1e-5), f"--retrain_learning_rate sets the retraining rate: {update} {rate}"
    assert base_rate == 1e-3, f"without it retraining continues at --learning_rate: {base_rate}"
    assert base_update is not None, "the baseline (1 dense, 1 pruning epoch of 3) retrains in its third epoch"
    later, _ = retraining_starts(tmp_path / "prune_epochs")
    assert later is None, f"--prune_epochs 2 prunes through the last epoch: no retraining, got update {later}"


def test_teacher_shape_mismatch_is_refused(canonical_dir, tiny_model_dir, tmp_path, capsys):
    from transformers import BertModel

    from tests.conftest import tiny_bert_config
    other = tmp_path / "teacher3"
    BertModel(tiny_bert_config(num_hidden_layers=3)).save_pretrained(other)
    code = run_main(train.main, gpp_args(canonical_dir, tiny_model_dir, tmp_path / "o", "--do_distill",
                                    "--teacher_model_path", str(other)))
    err = capsys.readouterr().err
    assert code == 2 and "teacher has num_hidden_layers=3 but the student has 2" in err, err


README_COMMAND = ("--model_name_or_path bert-base-uncased --task_name cola --do_distill --teacher_model_path base/cola "
                  "--target_sparsity 0.5 --window_size 3 --logging_steps 50 --eval_steps 50 --logging_first_step True "
                  "--prepruning_finetune_epochs 0 --prune_epochs 20 --do_train --do_eval --max_seq_length 128 "
                  "--per_device_train_batch_size 32 --learning_rate 2e-5 --retrain_learning_rate 2e-5 "
                  "--num_train_epochs 32 --overwrite_output_dir --output_dir out/cola").split()


def test_gpp_dfd_command_maps_onto_train_flags():
    args = run_GDbert_glue.build_parser().parse_args(README_COMMAND)
    mapped = run_GDbert_glue.to_train_args(args)
    pairs = dict(zip(mapped[::2], mapped[1::2]))
    expected = {"--train_datasets": "cola", "--test_datasets": "cola", "--init_checkpoint": "bert-base-uncased",
                "--pruner": "gpp", "--target_sparsity": "0.5", "--prepruning_finetune_epochs": "0",
                "--prune_epochs": "20", "--epochs": "32", "--learning_rate": "2e-05", "--batch_size": "32",
                "--max_seq_len": "128", "--log_per_updates": "50", "--eval_per_updates": "50",
                "--retrain_learning_rate": "2e-05", "--window_size": "3", "--optimizer": "adamw",
                "--data_dir": os.path.join("data", "canonical_data", "bert-base-uncased")}
    for flag, value in expected.items():
        assert pairs.get(flag) == value, f"{flag}: mapped to {pairs.get(flag)!r}, expected {value!r}"
    assert "--do_distill" in mapped and mapped[mapped.index("--teacher_model_path") + 1] == "base/cola", "distillation"
    assert train.build_parser().parse_args(mapped).pruner == "gpp", "train.py accepts every mapped flag"
    mnli = run_GDbert_glue.to_train_args(run_GDbert_glue.build_parser().parse_args(
        ["--task_name", "MNLI", "--do_train", "--do_eval", "--output_dir", "o"]))
    assert mnli[mnli.index("--test_datasets") + 1] == "mnli_matched,mnli_mismatched", "mnli evaluates both dev sets"
    with pytest.raises(UserError, match="--task_name nosuch"):
        run_GDbert_glue.to_train_args(run_GDbert_glue.build_parser().parse_args(
            ["--task_name", "nosuch", "--do_train", "--output_dir", "o"]))


def test_gpp_dfd_front_end_runs_end_to_end(sample_glue, tiny_model_dir, teacher_dir, tmp_path):
    out = tmp_path / "gd"
    args = ["--model_name_or_path", tiny_model_dir, "--task_name", "rte", "--data_dir", sample_glue, "--do_distill",
            "--teacher_model_path", str(teacher_dir), "--target_sparsity", "0.5", "--prepruning_finetune_epochs", "0",
            "--prune_epochs", "1", "--do_train", "--do_eval", "--max_seq_length", "64",
            "--per_device_train_batch_size", "8", "--learning_rate", "1e-3", "--num_train_epochs", "2",
            "--logging_first_step", "True", "--output_dir", str(out)]
    assert run_main(run_GDbert_glue.main, args) == 0, "GPP-DFD command runs"
    assert (out / "model_pruned" / "structured_export.json").exists(), "and exports the smaller model"
    assert run_main(run_GDbert_glue.main, args) == 2, "a non-empty output_dir needs --overwrite_output_dir"


def test_saved_model_is_the_evaluated_one_without_the_indicators(gpp_run, canonical_dir):
    """GPP folds its frozen indicators into the weights: model/ loaded by any loader that ignores
    gpp_indicators.safetensors (AutoModel, --init_checkpoint, --teacher_model_path) computes what was evaluated."""
    from transformers import AutoModel

    import modeling.structured  # noqa: F401 - registers the pruned export's model type
    from data_utils.batcher import collate, load_canonical
    from data_utils.task_def import load_task_defs
    from training.inference import predict
    from modeling.model import MTDNNModel, load_encoder, load_heads

    z = load_file(gpp_run / "model" / "gpp_indicators.safetensors")
    weights = load_file(gpp_run / "model" / "model.safetensors")
    layer = 0
    pruned_head = int(torch.nonzero(z["z_head"][layer] == 0)[0])
    head_size = weights["encoder.layer.0.attention.self.query.weight"].shape[0] // z["z_head"].shape[1]
    rows = slice(pruned_head * head_size, (pruned_head + 1) * head_size)
    assert not weights[f"encoder.layer.{layer}.attention.self.value.weight"][rows].any(), \
        "a pruned head's value rows are exact zeros in model/"
    assert not weights[f"encoder.layer.{layer}.attention.output.dense.weight"][:, rows].any(), \
        "and so are its columns of attention.output.dense"
    pruned_neuron = int(torch.nonzero(z["z_ffn"][layer] == 0)[0])
    assert not weights[f"encoder.layer.{layer}.output.dense.weight"][:, pruned_neuron].any(), \
        "a pruned FFN neuron's column of output.dense is zero"

    task = load_task_defs()["rte"]
    model = MTDNNModel(load_encoder(str(gpp_run / "model")), {"rte": task, "stsb": load_task_defs()["stsb"]})
    load_heads(model, str(gpp_run / "model"))
    dev = load_canonical(os.path.join(canonical_dir, "rte_dev.json"), "rte_dev", task, 64)
    reloaded = predict(model, dev, 8, torch.device("cpu"))
    final = max((p for p in os.listdir(gpp_run) if p.startswith("rte_dev_scores_epoch_")),
                key=lambda name: int(name.rsplit("_", 1)[1].split(".")[0]))
    evaluated = json.load(open(gpp_run / final))
    assert reloaded["predictions"] == evaluated["predictions"], "model/ predicts what the run evaluated"
    torch.testing.assert_close(torch.tensor(reloaded["scores"]), torch.tensor(evaluated["scores"]), atol=1e-5, rtol=0,
                               msg="model/ without its indicators gives the evaluated scores to 1e-5")

    batch = collate(dev.examples[:8], task)
    inputs = {key: batch[key] for key in ("input_ids", "token_type_ids", "attention_mask")}
    with torch.no_grad():
        dense = AutoModel.from_pretrained(gpp_run / "model").eval()(**inputs).last_hidden_state
        smaller = AutoModel.from_pretrained(gpp_run / "model_pruned").eval()(**inputs).last_hidden_state
    torch.testing.assert_close(dense, smaller, atol=1e-5, rtol=0,
                               msg="AutoModel on model/ equals the structurally pruned export")
