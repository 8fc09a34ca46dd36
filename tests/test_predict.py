"""The evaluate and predict commands on a tiny saved model, against the toolkit's own predictions."""
import dataclasses
import io
import json
import os
import sys

import pytest
import torch
from transformers import BertModel

from data_utils.batcher import load_canonical
from data_utils.task_def import load_task_defs
from mt_dnn import evaluate as evaluate_cli
from mt_dnn import predict as predict_cli
from training.inference import predict
from modeling.model import MTDNNModel, save_model
from modeling.pretrained import load_tokenizer
from tests.conftest import run_main, tiny_bert_config

TASKS = ("rte", "stsb", "sst")


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory, tiny_model_dir, canonical_dir):
    """A random tiny model with rte, stsb and sst heads, the rte head centred on the dev data so
    that both classes are predicted."""
    task_defs = load_task_defs()
    torch.manual_seed(5)
    model = MTDNNModel(BertModel(tiny_bert_config()), {name: task_defs[name] for name in TASKS}).eval()
    dev = load_canonical(os.path.join(canonical_dir, "rte_dev.json"), "rte_dev", task_defs["rte"])
    with torch.no_grad():
        torch.nn.init.normal_(model.heads["rte"].proj.weight, std=2.0)
        model.heads["rte"].proj.bias.zero_()
        logits = torch.tensor([s for s in predict(model, dev, 64, torch.device("cpu"))["scores"]]).log()
        model.heads["rte"].proj.bias.sub_(logits.mean(dim=0))
    directory = str(tmp_path_factory.mktemp("predict") / "model")
    save_model(model, load_tokenizer(tiny_model_dir), directory)
    return model, directory


def own(model, canonical_dir, dataset):
    task = load_task_defs()[dataset.split("_")[0]]
    data = load_canonical(os.path.join(canonical_dir, f"{dataset}.json"), dataset, task)
    return predict(model, data, 16, torch.device("cpu"))


def test_predict_batches_by_length_and_answers_in_the_dataset_order(saved_model, canonical_dir):
    """Batches are formed from rows sorted by length; each result comes back at its row's position, equal to
    what the row gives alone (no padding at all)."""
    model, _ = saved_model
    task = load_task_defs()["rte"]
    data = load_canonical(os.path.join(canonical_dir, "rte_dev.json"), "rte_dev", task)
    lengths = [len(e["token_id"]) for e in data.examples]
    assert len(set(lengths)) > 3, "the rows differ in length (else the test proves little)"
    batched = predict(model, data, 16, torch.device("cpu"))
    assert batched["uids"] == [e["uid"] for e in data.examples], "results in the dataset's order"
    for index in (0, 1, len(data.examples) // 2, len(data.examples) - 1):
        alone = predict(model, dataclasses.replace(data, examples=[data.examples[index]]), 1, torch.device("cpu"))
        assert torch.allclose(torch.tensor(batched["scores"][index]), torch.tensor(alone["scores"][0]), atol=1e-5), \
            f"row {index}: its scores in a length-sorted batch equal its scores alone"
        assert batched["predictions"][index] == alone["predictions"][0], f"row {index}: same prediction"


def test_evaluate_matches_the_toolkits_scores(saved_model, canonical_dir, tmp_path, capsys):
    model, directory = saved_model
    out = tmp_path / "eval"
    code = run_main(evaluate_cli.main, ["--model", directory, "--data_dir", canonical_dir, "--datasets", "rte,stsb",
                                        "--output_dir", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    summary = json.load(open(out / "evaluation_dev.json"))
    for dataset in ("rte", "stsb"):
        expected = own(model, canonical_dir, f"{dataset}_dev")
        assert summary["metrics"][dataset] == pytest.approx(expected["metrics"], abs=1e-6), \
            f"{dataset}: evaluate {summary['metrics'][dataset]} vs toolkit {expected['metrics']}"
        assert f"{dataset} dev" in captured.out, f"metrics printed per dataset: {captured.out}"
    assert len(set(own(model, canonical_dir, "rte_dev")["predictions"])) == 2, "both rte classes are predicted"
    written = [name for name in os.listdir(out) if name.startswith("rte_dev")]
    assert written, f"per-dataset scores written: {os.listdir(out)}"
    scores = json.load(open(out / written[0]))
    assert scores["predictions"] == own(model, canonical_dir, "rte_dev")["predictions"], "written predictions"


def test_evaluate_defaults_to_every_task_of_the_model(saved_model, canonical_dir, capsys):
    _, directory = saved_model
    assert run_main(evaluate_cli.main, ["--model", directory, "--data_dir", canonical_dir]) == 0, \
        capsys.readouterr().err
    printed = capsys.readouterr().out
    assert all(f"{task} dev" in printed for task in TASKS), f"every head evaluated: {printed}"


def read_tsv(path):
    with open(path, encoding="utf-8") as handle:
        return [line.rstrip("\n").split("\t") for line in handle]


def test_predict_tsv_in_the_task_layout_matches_the_toolkit(saved_model, canonical_dir, sample_glue, tmp_path, capsys):
    model, directory = saved_model
    labels = load_task_defs()["rte"].labels
    out = tmp_path / "rte.tsv"
    code = run_main(predict_cli.main, ["--model", directory, "--task", "rte", "--input",
                                       os.path.join(sample_glue, "RTE", "dev.tsv"), "--layout", "dev",
                                       "--max_seq_len", "64", "--output", str(out)])
    assert code == 0, capsys.readouterr().err
    rows = read_tsv(out)
    expected = own(model, canonical_dir, "rte_dev")
    assert rows[0] == ["index", "label", "score"], f"header {rows[0]}"
    assert [r[0] for r in rows[1:]] == [str(u) for u in expected["uids"]], "index is the rows' id column"
    assert [r[1] for r in rows[1:]] == [labels[p] for p in expected["predictions"]], "label names as the toolkit's"
    for row, score, prediction in zip(rows[1:], expected["scores"], expected["predictions"]):
        assert abs(float(row[2]) - score[prediction]) < 1e-5, f"probability {row} vs {score}"


def test_predict_regression_by_column_names(saved_model, canonical_dir, sample_glue, tmp_path, capsys):
    model, directory = saved_model
    out = tmp_path / "stsb.tsv"
    code = run_main(predict_cli.main, ["--model", directory, "--task", "stsb", "--input",
                                       os.path.join(sample_glue, "STS-B", "dev.tsv"), "--text_columns",
                                       "sentence1,sentence2", "--max_seq_len", "64", "--output", str(out)])
    assert code == 0, capsys.readouterr().err
    rows = read_tsv(out)[1:]
    expected = own(model, canonical_dir, "stsb_dev")["predictions"]
    assert [r[0] for r in rows] == [str(i) for i in range(len(expected))], "index: the row position"
    assert all(abs(float(r[2]) - e) < 1e-5 for r, e in zip(rows, expected)), "regression values as the toolkit's"
    assert all(r[1] == f"{e:.3f}" for r, e in zip(rows, expected)), "the value, 3 decimals, as the label"


def test_predict_lines_from_stdin(saved_model, tmp_path, capsys, monkeypatch):
    model, directory = saved_model
    sentences = ["a gripping and moving film", "dull , lifeless and far too long"]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(("\n".join(sentences) + "\n\n").encode())))
    assert run_main(predict_cli.main, ["--model", directory, "--task", "sst"]) == 0, capsys.readouterr().err
    rows = [line.split("\t") for line in capsys.readouterr().out.strip().split("\n")]
    tokenizer = load_tokenizer(directory)
    encoded = tokenizer(sentences, padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(encoded["input_ids"], encoded["token_type_ids"], encoded["attention_mask"], task="sst").logits
    labels = load_task_defs()["sst"].labels
    assert rows[1:] == [[str(i), labels[p], f"{torch.softmax(l, -1)[p]:.6f}"]
                        for i, (l, p) in enumerate(zip(logits, logits.argmax(-1).tolist()))], \
        f"stdin lines labelled as the model does: {rows}"


@pytest.mark.parametrize("args,message", [
    (["--model", "{tmp}/missing", "--task", "rte", "--input", "{tsv}"], "--model {tmp}/missing: directory not found"),
    (["--model", "{model}", "--task", "mrpc", "--input", "{tsv}"], "--task mrpc: {model} has no head for it"),
    (["--model", "{model}", "--task", "nosuch", "--input", "{tsv}"], "--task nosuch: not in the task definition"),
    (["--model", "{model}", "--task", "rte", "--input", "{tsv}"], "{tsv}:3: malformed row with 2 tab-separated"),
    (["--model", "{model}", "--task", "rte", "--input", "{tsv}", "--layout", "nosuch"], "--layout nosuch"),
    (["--model", "{model}", "--task", "rte", "--input", "{tsv}", "--text_columns", "x,y"], "--text_columns: x, y"),
    (["--model", "{model}", "--task", "rte", "--input", "{tsv}", "--output", "{tsv}"],
     "is the input --input {tsv} itself"),
    (["--model", "{model}", "--task", "rte", "--input", "{tmp}/text.txt"], "{tmp}/text.txt:1: 1 tab-separated"),
])
def test_predict_errors_are_one_line(saved_model, tmp_path, capsys, args, message):
    _, directory = saved_model
    tsv = tmp_path / "in.tsv"
    tsv.write_text("index\tsentence1\tsentence2\n0\tA man sings.\tSomeone sings.\n1\tbroken row\n", encoding="utf-8")
    (tmp_path / "text.txt").write_text("only one text for a pair task\n", encoding="utf-8")
    before = tsv.read_bytes()
    values = {"tmp": str(tmp_path), "model": directory, "tsv": str(tsv)}
    code = run_main(predict_cli.main, [a.format(**values) for a in args])
    err = capsys.readouterr().err
    assert code == 2, f"exit status 2 for {args}: {code} {err}"
    assert message.format(**values) in err and len(err.strip().splitlines()) == 1, f"one-line error: {err}"
    assert "Traceback" not in err, err
    assert tsv.read_bytes() == before, "the input is never written to"


@pytest.mark.parametrize("args,message", [
    (["--model", "{tmp}/missing", "--data_dir", "{data}"], "--model {tmp}/missing: directory not found"),
    (["--model", "{model}", "--data_dir", "{data}", "--datasets", "mrpc"], "{model} has no head for task mrpc"),
    (["--model", "{model}", "--data_dir", "{tmp}", "--datasets", "rte"], "rte_dev.json: file not found"),
    (["--model", "{model}", "--data_dir", "{data}", "--output_dir", "{model}/eval"],
     "is inside the input --model {model}"),
    (["--model", "{tmp}", "--data_dir", "{data}"], "no heads.json"),
])
def test_evaluate_errors_are_one_line(saved_model, canonical_dir, tmp_path, capsys, args, message):
    _, directory = saved_model
    values = {"tmp": str(tmp_path), "model": directory, "data": canonical_dir}
    code = run_main(evaluate_cli.main, [a.format(**values) for a in args])
    err = capsys.readouterr().err
    assert code == 2, f"exit status 2 for {args}: {code} {err}"
    assert message.format(**values) in err and len(err.strip().splitlines()) == 1, f"one-line error: {err}"
    assert not os.path.exists(os.path.join(directory, "eval")), "nothing written into the model directory"
