"""Saved models as standard transformers models: every task head as a sequence-classification model
(pipeline / AutoModelForSequenceClassification give the toolkit's logits and label names), the
structured export loading with trust_remote_code without the toolkit, its encoder-layer parameter
counts, and the package metadata in pyproject.toml."""
import ast
import json
import os
import re
import subprocess
import sys
import tomllib

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification, BertModel, pipeline

from data_utils.task_def import load_task_defs
from modeling.model import MTDNNModel, export_structured, load_model, save_model
from modeling.pretrained import load_tokenizer
from pruners.structured_mask import StructuredMask
from tests.conftest import ROOT, tiny_bert_config

PAIRS = [("A man is playing a guitar on stage.", "Somebody makes music."),
         ("The committee approved the new budget.", "Nobody voted."),
         ("It rained all day in the city.", "The streets were wet.")]


def tiny_model(tokenizer, tasks=("rte", "stsb")) -> MTDNNModel:
    """A random tiny two-task model whose heads are centred on PAIRS, so that both classes occur."""
    task_defs = load_task_defs()
    torch.manual_seed(3)
    model = MTDNNModel(BertModel(tiny_bert_config()), {name: task_defs[name] for name in tasks}).eval()
    with torch.no_grad():
        for name, head in model.heads.items():
            torch.nn.init.normal_(head.proj.weight, std=1.0)
            head.proj.bias.zero_()
            head.proj.bias.sub_(toolkit_logits(model, tokenizer, name).mean(dim=0))
    return model


def toolkit_logits(model, tokenizer, task):
    encoded = tokenizer([a for a, _ in PAIRS], [b for _, b in PAIRS], padding=True, return_tensors="pt")
    with torch.no_grad():
        return model(encoded["input_ids"], encoded["token_type_ids"], encoded["attention_mask"], task=task).logits


@pytest.fixture(scope="module")
def saved(tmp_path_factory, tiny_model_dir):
    tokenizer = load_tokenizer(tiny_model_dir)
    model = tiny_model(tokenizer)
    directory = str(tmp_path_factory.mktemp("saved") / "model")
    save_model(model, tokenizer, directory)
    return model, tokenizer, directory


def test_each_task_is_a_standard_sequence_classification_model(saved):
    model, tokenizer, directory = saved
    task_defs = load_task_defs()
    assert sorted(os.listdir(os.path.join(directory, "hf"))) == ["rte", "stsb"], "one hf/<task> directory per head"
    encoded = tokenizer([a for a, _ in PAIRS], [b for _, b in PAIRS], padding=True, return_tensors="pt")
    for task in ("rte", "stsb"):
        standard = AutoModelForSequenceClassification.from_pretrained(os.path.join(directory, "hf", task)).eval()
        assert type(standard).__name__ == "BertForSequenceClassification", f"{task}: {type(standard).__name__}"
        with torch.no_grad():
            logits = standard(**encoded).logits
        expected = toolkit_logits(model, tokenizer, task)
        assert torch.allclose(logits, expected, atol=1e-5), \
            f"{task}: standard model's logits differ by {(logits - expected).abs().max():.2e}"
    rte = AutoModelForSequenceClassification.from_pretrained(os.path.join(directory, "hf", "rte")).config
    assert [rte.id2label[i] for i in range(2)] == list(task_defs["rte"].labels), f"rte labels {rte.id2label}"
    assert rte.label2id == {"not_entailment": 0, "entailment": 1}, f"rte label2id {rte.label2id}"
    assert rte.problem_type == "single_label_classification", rte.problem_type
    stsb = AutoModelForSequenceClassification.from_pretrained(os.path.join(directory, "hf", "stsb")).config
    assert stsb.num_labels == 1 and stsb.problem_type == "regression", f"stsb {stsb.num_labels} {stsb.problem_type}"


def test_pipeline_gives_the_toolkits_predictions_with_label_names(saved):
    model, tokenizer, directory = saved
    labels = load_task_defs()["rte"].labels
    classify = pipeline("text-classification", model=os.path.join(directory, "hf", "rte"))
    got = classify([{"text": a, "text_pair": b} for a, b in PAIRS], top_k=None)
    probabilities = torch.softmax(toolkit_logits(model, tokenizer, "rte"), dim=-1)
    predicted = [labels[i] for i in probabilities.argmax(dim=-1).tolist()]
    assert [max(row, key=lambda r: r["score"])["label"] for row in got] == predicted, \
        f"pipeline labels {got} vs toolkit {predicted}"
    assert len(set(predicted)) == 2, f"the test should see both classes: {predicted}"
    for row, expected in zip(got, probabilities):
        scores = {r["label"]: r["score"] for r in row}
        assert abs(scores[labels[0]] - float(expected[0])) < 1e-5, f"probabilities {scores} vs {expected}"
    score = pipeline("text-classification", model=os.path.join(directory, "hf", "stsb"))
    values = [r["score"] for r in score([{"text": a, "text_pair": b} for a, b in PAIRS])]
    expected = toolkit_logits(model, tokenizer, "stsb").view(-1).tolist()
    assert all(abs(v - e) < 1e-5 for v, e in zip(values, expected)), f"regression values {values} vs {expected}"


def test_saved_layout_shares_the_encoder_shard_and_records_labels(saved):
    _, _, directory = saved
    shards = [os.path.join(directory, "hf", task, "encoder.safetensors") for task in ("rte", "stsb")]
    with open(shards[0], "rb") as first, open(shards[1], "rb") as second:
        assert first.read() == second.read(), "every task's encoder shard holds the same encoder"
    encoder = load_file(os.path.join(directory, "model.safetensors"))
    shard = load_file(shards[0])
    assert set(shard) == {f"bert.{k}" for k in encoder}, "the shard is the saved encoder under bert."
    assert all(torch.equal(shard[f"bert.{k}"], v) for k, v in encoder.items()), "same encoder weights"
    specs = json.load(open(os.path.join(directory, "heads.json")))
    assert specs["rte"]["labels"] == ["not_entailment", "entailment"], f"heads.json labels {specs}"
    assert specs["stsb"]["task_type"] == "Regression", f"heads.json task type {specs}"
    assert not os.path.exists(directory + ".tmp"), "the atomic write leaves no temporary directory"


def test_load_model_reads_a_saved_directory_back(saved):
    model, tokenizer, directory = saved
    loaded = load_model(directory, load_task_defs())
    for task in ("rte", "stsb"):
        assert torch.allclose(toolkit_logits(loaded, tokenizer, task), toolkit_logits(model, tokenizer, task),
                              atol=1e-6), f"{task}: reloaded model differs"


def _pruned_export(tmp_path, tiny_model_dir):
    tokenizer = load_tokenizer(tiny_model_dir)
    model = tiny_model(tokenizer)
    heads = torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    neurons = torch.ones(2, 64)
    neurons[0, :40] = 0.0
    directory = str(tmp_path / "pruned")
    encoded = tokenizer([a for a, _ in PAIRS], [b for _, b in PAIRS], padding=True, return_tensors="pt")
    batch = {"input_ids": encoded["input_ids"], "token_type_ids": encoded["token_type_ids"],
             "attention_mask": encoded["attention_mask"]}
    StructuredMask(model.encoder, head=heads, ffn=neurons)      # the masked model, as a GPP run has it
    report = export_structured(model, heads, neurons, tokenizer, directory, check_batch=("rte", batch))
    return model, tokenizer, directory, report


def test_structured_export_loads_without_the_toolkit(tmp_path, tiny_model_dir):
    masked, tokenizer, directory, report = _pruned_export(tmp_path, tiny_model_dir)
    assert report["max_abs_difference"] <= 1e-5, f"export equals the masked model: {report}"
    for name in ("configuration_pruned_bert.py", "modeling_pruned_bert.py"):
        tree = ast.parse(open(os.path.join(directory, name)).read())
        imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                    for alias in node.names}
        imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                     if isinstance(node, ast.ImportFrom) and node.level == 0}
        assert imported <= {"torch", "transformers", "warnings"}, f"{name} imports {imported}"
    config = json.load(open(os.path.join(directory, "config.json")))
    assert config["auto_map"]["AutoModel"] == "modeling_pruned_bert.PrunedBertModel", config.get("auto_map")
    reference = toolkit_logits(masked, tokenizer, "rte").tolist()
    script = f"""
import json, sys, torch
try:
    import mt_dnn
    sys.exit("the toolkit is importable: " + mt_dnn.__file__)
except ImportError:
    pass
from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer
directory = {directory!r}
encoder = AutoModel.from_pretrained(directory, trust_remote_code=True)
classifier = AutoModelForSequenceClassification.from_pretrained(directory + "/hf/rte", trust_remote_code=True).eval()
tokenizer = AutoTokenizer.from_pretrained(directory + "/hf/rte", trust_remote_code=True)
encoded = tokenizer({[a for a, _ in PAIRS]!r}, {[b for _, b in PAIRS]!r}, padding=True, return_tensors="pt")
with torch.no_grad():
    logits = classifier(**encoded).logits.tolist()
print(json.dumps({{"class": type(encoder).__name__, "layer_heads": encoder.config.layer_heads, "logits": logits}}))
"""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", script], cwd=str(tmp_path), env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, f"loading without the toolkit failed: {done.stderr[-2000:]}"
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["class"] == "PrunedBertModel" and result["layer_heads"] == [2, 0], f"remote code loaded {result}"
    difference = (torch.tensor(result["logits"]) - torch.tensor(reference)).abs().max()
    assert difference <= 1e-5, f"trust_remote_code model's logits differ from the masked model by {difference:.2e}"


def test_structured_export_still_loads_through_the_registered_classes(tmp_path, tiny_model_dir):
    _, _, directory, _ = _pruned_export(tmp_path, tiny_model_dir)
    import modeling.structured
    from transformers import AutoModel

    encoder = AutoModel.from_pretrained(directory)
    assert type(encoder) is modeling.structured.PrunedBertModel, f"registered class, got {type(encoder)}"
    classifier = AutoModelForSequenceClassification.from_pretrained(os.path.join(directory, "hf", "rte"))
    assert type(classifier) is modeling.structured.PrunedBertForSequenceClassification, type(classifier)


def test_export_report_counts_encoder_layers_apart_from_embeddings(tmp_path, tiny_model_dir):
    _, _, directory, report = _pruned_export(tmp_path, tiny_model_dir)
    dense = BertModel(tiny_bert_config())
    layers = sum(p.numel() for p in dense.encoder.parameters())
    embeddings = sum(p.numel() for p in dense.embeddings.parameters())
    pooler = sum(p.numel() for p in dense.pooler.parameters())
    assert report["encoder_layer_parameters_before"] == layers, f"layers before: {report}"
    assert report["embedding_parameters"] == embeddings and report["pooler_parameters"] == pooler, report
    assert report["parameters_before"] == layers + embeddings + pooler, f"total before: {report}"
    assert report["parameters_after"] == report["encoder_layer_parameters_after"] + embeddings + pooler, report
    # kept: layer 0 two heads (q,k,v 32x16 + bias, out 16x32) and 24 neurons; layer 1 no heads, 64 neurons
    assert report["encoder_layer_parameters_after"] < layers / 2, f"most of the layers are gone: {report}"
    saved = json.load(open(os.path.join(directory, "structured_export.json")))
    assert saved["encoder_layer_parameters_after"] == report["encoder_layer_parameters_after"], saved


def test_pyproject_lists_what_exists():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as handle:
        project = tomllib.load(handle)
    setuptools = project["tool"]["setuptools"]
    for package in setuptools["packages"]:
        path = os.path.join(ROOT, *package.split("."), "__init__.py")
        assert os.path.isfile(path), f"package {package} has no {path}"
    for module in setuptools["py-modules"]:
        assert os.path.isfile(os.path.join(ROOT, module + ".py")), f"module {module} missing"
    import importlib
    for name, target in project["project"]["scripts"].items():
        module, function = target.split(":")
        assert callable(getattr(importlib.import_module(module), function)), f"script {name} -> {target}"
    def requirement_names(name):
        with open(os.path.join(ROOT, name)) as handle:
            return {re.split(r"[<>=!~ ]", line.strip())[0] for line in handle
                    if line.strip() and not line.startswith("#")}

    def names(specs):
        return {re.split(r"[<>=!~ ]", spec)[0] for spec in specs}
    assert names(project["project"]["dependencies"]) == requirement_names("requirement.txt"), \
        f"pyproject dependencies {project['project']['dependencies']} differ from requirement.txt"
    assert names(project["project"]["optional-dependencies"]["test"]) == requirement_names("requirements-test.txt"), \
        "pyproject's test extra differs from requirements-test.txt"


# every command module of mt_dnn (a `main` run as `python -m mt_dnn.<name>`) and its console script
MT_DNN_SCRIPTS = {"mt_dnn.export": "mtdnn-export", "mt_dnn.evaluate": "mtdnn-evaluate",
                  "mt_dnn.predict": "mtdnn-predict", "mt_dnn.compress": "mtdnn-compress",
                  "mt_dnn.onnx_export": "mtdnn-onnx-export"}


def test_every_mt_dnn_command_has_a_console_script_that_runs_it(monkeypatch, capsys):
    import importlib

    import console

    commands = {f"mt_dnn.{name[:-3]}" for name in os.listdir(os.path.join(ROOT, "mt_dnn")) if name.endswith(".py")
                and '__name__ == "__main__"' in open(os.path.join(ROOT, "mt_dnn", name), encoding="utf-8").read()}
    assert commands == set(MT_DNN_SCRIPTS), \
        f"mt_dnn commands {sorted(commands)} differ from those with a console script here {sorted(MT_DNN_SCRIPTS)}"
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as handle:
        scripts = tomllib.load(handle)["project"]["scripts"]
    for module, script in MT_DNN_SCRIPTS.items():
        assert script in scripts, f"pyproject.toml [project.scripts] has no {script} for python -m {module}"
        monkeypatch.setattr(sys, "argv", [script, "--help"])
        with pytest.raises(SystemExit) as info:
            getattr(console, scripts[script].split(":")[1])()
        assert info.value.code == 0, f"{script} --help exited {info.value.code}"
        title = importlib.import_module(module).__doc__.split("\n")[0]
        assert " ".join(title.split()) in " ".join(capsys.readouterr().out.split()), \
            f"{script} --help does not show {module}'s description: it runs another command"
        monkeypatch.setattr(sys, "argv", [script, "--no_such_flag"])
        with pytest.raises(SystemExit) as info:
            getattr(console, scripts[script].split(":")[1])()
        err = capsys.readouterr().err.strip()
        assert info.value.code == 2 and len(err.splitlines()) == 1 and err.startswith("error:"), \
            f"{script} with a bad flag should exit 2 with one error line, got {info.value.code}: {err!r}"


def test_pyproject_builds_offline(tmp_path):
    """`pip install --dry-run -e .` offline, without build isolation: the metadata builds."""
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
                           "--dry-run", "--quiet", "-e", ROOT], capture_output=True, text=True, timeout=300,
                          cwd=str(tmp_path))
    assert done.returncode == 0, f"pip could not read the project: {done.stderr[-1500:]}"
