"""mt_dnn.engines through evaluate and predict: --engine torch|onnxruntime|sparse give the torch metrics and
labels (within float tolerance) on a saved, a compressed and an ONNX-exported tiny pruned model; the sparse
engine reports its choice per layer; --threads reaches the libraries; refusals are one line."""
import json
import os

import pytest
import torch

from modeling.model import save_model
from modeling.pretrained import load_tokenizer
from mt_dnn import compress, engines, onnx_export
from mt_dnn import evaluate as evaluate_cli
from mt_dnn import predict as predict_cli
from tests.conftest import run_main
from tests.test_compress import tiny_model
from tests.test_errors import fail

pytest.importorskip("onnxruntime", reason="the onnxruntime engine needs onnxruntime (requirement.txt lists it)")
pytest.importorskip("numba", reason="the sparse engine's kernel is a numba loop")


@pytest.fixture(scope="module")
def served(tmp_path_factory, tiny_model_dir):
    """{kind: directory} of one tiny 90 %-pruned model (heads rte, sst) saved by train.py's writer, compressed
    by mt_dnn.compress and exported by mt_dnn.onnx_export."""
    root = tmp_path_factory.mktemp("engines")
    model, tokenizer = tiny_model(seed=7, sparsity=0.9), load_tokenizer(tiny_model_dir)
    saved = str(root / "model")
    save_model(model, tokenizer, saved)
    compressed = str(root / "compressed")
    compress.save_compressed(model, tokenizer, compressed, source=saved)
    exported = str(root / "onnx")
    onnx_export.export_model(model, tokenizer, exported, list(model.heads), compress.check_inputs(model, tokenizer))
    return {"saved": saved, "compressed": compressed, "onnx": exported}


def evaluation(directory, canonical_dir, tmp_path, capsys, *extra):
    out = tmp_path / f"eval{len(os.listdir(tmp_path))}"
    code = run_main(evaluate_cli.main, ["--model", directory, "--data_dir", canonical_dir, "--output_dir", str(out),
                                        *extra])
    captured = capsys.readouterr()
    assert code == 0, f"evaluate {extra} failed: {captured.err}"
    return json.load(open(out / "evaluation_dev.json")), captured.out


@pytest.mark.parametrize("kind,engine", [("saved", "onnxruntime"), ("onnx", "onnxruntime"), ("saved", "sparse"),
                                         ("compressed", "sparse"), ("compressed", "torch")])
def test_every_engine_gives_the_torch_metrics(served, canonical_dir, tmp_path, capsys, kind, engine):
    reference, _ = evaluation(served["saved"], canonical_dir, tmp_path, capsys)
    summary, printed = evaluation(served[kind], canonical_dir, tmp_path, capsys, "--engine", engine,
                                  "--threads", "1")
    assert summary["engine"] == engine, f"the engine is recorded: {summary}"
    for dataset, metrics in reference["metrics"].items():
        assert summary["metrics"][dataset] == pytest.approx(metrics, abs=1e-6), \
            f"{kind} through {engine}: {dataset} {summary['metrics'][dataset]} vs torch {metrics}"
    if engine == "sparse":
        assert "sparse engine: encoder.layer.0.attention.self.query 32x32 density" in printed, \
            f"the sparse engine reports its choice per layer: {printed}"
    if kind == "saved" and engine == "onnxruntime":
        assert "exported in memory, max |ONNX Runtime - torch|" in printed, f"the in-memory check is shown: {printed}"


@pytest.mark.parametrize("engine", ["torch", "onnxruntime", "sparse"])
def test_predict_labels_agree_across_engines(served, tmp_path, capsys, engine):
    source = tmp_path / "lines.txt"
    source.write_text("a gripping film\nflat and dull\nsomething in between\n", encoding="utf-8")
    tables = {}
    for kind, name in (("saved", "torch"), ("onnx" if engine == "onnxruntime" else "saved", engine)):
        out = tmp_path / f"{name}.tsv"
        code = run_main(predict_cli.main, ["--model", served[kind], "--task", "sst", "--input", str(source),
                                           "--output", str(out), "--engine", name])
        assert code == 0, capsys.readouterr().err
        tables[name] = [line.split("\t") for line in out.read_text().splitlines()]
    capsys.readouterr()
    reference, other = tables["torch"], tables[engine]
    assert [row[:2] for row in other] == [row[:2] for row in reference], f"{engine} labels {other} vs {reference}"
    for got, want in zip(other[1:], reference[1:]):
        assert float(got[2]) == pytest.approx(float(want[2]), abs=1e-5), f"{engine} score {got} vs torch {want}"


def test_threads_reach_torch_and_numba(served, monkeypatch):
    import numba

    calls = []
    monkeypatch.setattr(torch, "set_num_threads", lambda n: calls.append(("torch", n)))
    monkeypatch.setattr(numba, "set_num_threads", lambda n: calls.append(("numba", n)))
    engines.set_threads(1)
    assert ("torch", 1) in calls and ("numba", 1) in calls, f"--threads 1 set both libraries: {calls}"
    calls.clear()
    engines.set_threads(0)
    assert not calls, "--threads 0 leaves the libraries' defaults"


def test_onnx_sessions_take_the_thread_count(served):
    model = engines.load_engine(served["onnx"], _task_defs(), "onnxruntime", threads=1)
    options = model.sessions["rte"].get_session_options()
    assert options.intra_op_num_threads == 1, f"ONNX Runtime runs {options.intra_op_num_threads} threads"


def _task_defs():
    from data_utils.task_def import load_task_defs
    return load_task_defs()


@pytest.mark.parametrize("kind,extra,needles", [
    ("onnx", ["--engine", "torch"], ["is an ONNX export", "--engine onnxruntime"]),
    ("onnx", ["--engine", "sparse"], ["is an ONNX export"]),
    ("saved", ["--engine", "sparse", "--device", "cuda"], ["--engine sparse runs on CPU"]),
    ("saved", ["--threads", "-1"], ["--threads -1"]),
])
def test_engine_refusals_are_one_line(served, canonical_dir, tmp_path, capsys, kind, extra, needles):
    fail(evaluate_cli.main, ["--model", served[kind], "--data_dir", canonical_dir, *extra], capsys, *needles)
    source = tmp_path / "lines.txt"
    source.write_text("a film\n", encoding="utf-8")
    fail(predict_cli.main, ["--model", served[kind], "--task", "sst", "--input", source, *extra], capsys, *needles)


def test_int8_compressed_model_is_refused_by_onnxruntime_and_sparse(served, tiny_model_dir, tmp_path, capsys,
                                                                    canonical_dir):
    int8 = str(tmp_path / "int8")
    compress.save_compressed(compress.quantize_int8(tiny_model(seed=7, sparsity=0.9)),
                             load_tokenizer(tiny_model_dir), int8)
    for engine in ("onnxruntime", "sparse"):
        fail(evaluate_cli.main, ["--model", int8, "--data_dir", canonical_dir, "--engine", engine], capsys,
             "int8")


@pytest.mark.parametrize("case", ["damaged manifest", "missing graph", "other n_class", "damaged graph"])
def test_a_damaged_onnx_export_is_one_line(served, canonical_dir, tmp_path, capsys, case):
    import shutil

    broken = tmp_path / "onnx"
    shutil.copytree(served["onnx"], broken)
    manifest = broken / onnx_export.MANIFEST_FILE
    if case == "damaged manifest":
        manifest.write_text("{not json", encoding="utf-8")
        needles = ["export.json", "export the model again"]
    elif case == "missing graph":
        (broken / "rte" / onnx_export.GRAPH_FILE).unlink()
        needles = ["the graph of task rte", "missing"]
    elif case == "other n_class":
        content = json.loads(manifest.read_text(encoding="utf-8"))
        content["tasks"]["rte"]["n_class"] = 3
        manifest.write_text(json.dumps(content), encoding="utf-8")
        needles = ["the rte graph has 3 outputs", "--task_def"]
    else:
        (broken / "rte" / onnx_export.GRAPH_FILE).write_bytes(b"\x08\x07garbage")
        needles = ["ONNX Runtime cannot load it", "export the model again"]
    fail(evaluate_cli.main, ["--model", broken, "--data_dir", canonical_dir, "--engine", "onnxruntime"], capsys,
         *needles)


def test_sparse_engine_without_numba_is_one_line(served, canonical_dir, capsys, monkeypatch):
    from mt_dnn import sparse_linear

    monkeypatch.setattr(sparse_linear, "numba_available", lambda: False)
    fail(evaluate_cli.main, ["--model", served["saved"], "--data_dir", canonical_dir, "--engine", "sparse"], capsys,
         "pip install numba")


def test_thread_settings_hold_for_torch_after_numba_starts(monkeypatch):
    """numba.set_num_threads launches numba's thread pool the first time, which puts torch back to one thread
    per core: a run with --num_threads 1 (train.py's resume path, where the pool was not running yet) or
    --threads 1 (evaluate, predict) computed with two threads and lost its exact resume. Here numba's call is
    replaced by one that resets torch's count, as the launch does."""
    import numba
    import torch

    from mt_dnn.engines import set_threads as engine_threads
    from training.startup import set_threads

    real = numba.set_num_threads
    monkeypatch.setattr(numba, "set_num_threads", lambda n: (torch.set_num_threads(4), real(n)))
    before = torch.get_num_threads()
    try:
        line = set_threads(1)
        assert torch.get_num_threads() == 1, f"train.py's set_threads(1) left torch at {torch.get_num_threads()}: {line}"
        torch.set_num_threads(3)
        engine_threads(1)
        assert torch.get_num_threads() == 1, f"the engines' set_threads(1) left torch at {torch.get_num_threads()}"
    finally:
        torch.set_num_threads(before)
