"""mt_dnn.onnx_export: every saved model (dense, unstructured-pruned, GPP export) to one ONNX graph per task
that ONNX Runtime runs with torch's logits on other batch and sequence sizes than the traced ones; pruned zeros
kept exactly; the int8 and fp16-embedding variants; the command line and its refusals."""
import json
import os
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("onnx", reason="ONNX export needs the onnx package (requirement.txt lists it)")
pytest.importorskip("onnxruntime", reason="ONNX export needs onnxruntime (requirement.txt lists it)")

import onnx
from onnx import numpy_helper

from modeling.model import save_model
from modeling.pretrained import load_tokenizer
from mt_dnn import onnx_export
from tests.conftest import run_main
from tests.test_compress import gpp_model, inputs, tiny_model
from tests.test_errors import fail, snapshot

MODELS = {"dense": lambda: tiny_model(seed=0), "unstructured 90 %": lambda: tiny_model(seed=1, sparsity=0.9),
          "gpp export": lambda: gpp_model(seed=2)}


def zeros_in(model_bytes: bytes) -> int:
    return sum(int((numpy_helper.to_array(init) == 0).sum()) for init in onnx.load_from_string(model_bytes)
               .graph.initializer if init.data_type == onnx.TensorProto.FLOAT)


@pytest.fixture(scope="module")
def exports(tmp_path_factory, tiny_model_dir):
    """{(kind, quantize, embeddings): (model, output directory, manifest)} for the three kinds of model."""
    tokenizer = load_tokenizer(tiny_model_dir)
    made = {}
    for kind, build in MODELS.items():
        model = build()
        for quantize, embeddings in (("none", "fp32"), ("int8", "fp16")):
            out = str(tmp_path_factory.mktemp("onnx") / "export")
            manifest = onnx_export.export_model(model, tokenizer, out, list(model.heads), inputs(),
                                                quantize=quantize, embeddings=embeddings)
            made[kind, quantize, embeddings] = (model, out, manifest)
    return made


@pytest.mark.parametrize("kind", list(MODELS))
def test_onnx_runtime_gives_torchs_logits_on_new_shapes(exports, kind):
    model, out, manifest = exports[kind, "none", "fp32"]
    assert sorted(manifest["tasks"]) == sorted(model.heads), f"a graph per task: {manifest['tasks']}"
    for batch, length in ((1, 5), (4, 33)):                 # neither the traced nor the checked shape
        check = inputs(batch=batch, length=length, seed=batch + length)
        for task, entry in manifest["tasks"].items():
            got = onnx_export.run_session(onnx_export.session(os.path.join(out, entry["graph"])), check)
            with torch.no_grad():
                expected = model(**check, task=task).logits.numpy()
            assert got.shape == expected.shape, f"{kind} {task}: logits {got.shape}, expected {expected.shape}"
            assert np.abs(got - expected).max() < 1e-5, \
                f"{kind} {task} at {batch}x{length}: max |ONNX Runtime - torch| = {np.abs(got - expected).max():.2e}"
            assert entry["max_abs_difference_fp32"] < 1e-5, f"{kind} {task}: the recorded check {entry}"
            with open(os.path.join(out, task, onnx_export.LABELS_FILE), encoding="utf-8") as handle:
                labels = json.load(handle)
            assert labels == entry["labels"] and len(labels) == entry["n_class"], f"{task} labels: {labels}"


def test_pruned_zeros_are_kept_exactly(exports):
    model, out, manifest = exports["unstructured 90 %", "none", "fp32"]
    zeros = sum(int((p == 0).sum()) for p in model.encoder.encoder.parameters() if p.dim() == 2)
    for task, entry in manifest["tasks"].items():
        with open(os.path.join(out, entry["graph"]), "rb") as handle:
            found = zeros_in(handle.read())
        assert found >= zeros, f"{task}: {found} zero weights in the graph, the model's layers have {zeros}"


@pytest.mark.parametrize("kind", list(MODELS))
def test_int8_with_fp16_embeddings_runs_close_and_smaller(exports, kind):
    _, _, fp32 = exports[kind, "none", "fp32"]
    _, out, manifest = exports[kind, "int8", "fp16"]
    for task, entry in manifest["tasks"].items():
        proto = onnx.load(os.path.join(out, entry["graph"]))
        ops = {node.op_type for node in proto.graph.node}
        assert "MatMulInteger" in ops or "DynamicQuantizeMatMul" in ops, f"{kind} {task}: int8 matmuls, got {ops}"
        halves = [i.name for i in proto.graph.initializer if i.data_type == onnx.TensorProto.FLOAT16]
        assert any("word_embeddings" in name for name in halves), f"{kind} {task}: fp16 tables, got {halves}"
        assert entry["bytes"] < 0.6 * fp32["tasks"][task]["bytes"], \
            f"{kind} {task}: {entry['bytes']} bytes, fp32 export {fp32['tasks'][task]['bytes']}"
        assert entry["max_abs_difference"] < 0.5, f"{kind} {task}: int8 logits off by {entry['max_abs_difference']}"


def test_fp16_embeddings_alone_change_logits_by_rounding_only(tiny_model_dir, tmp_path):
    model = tiny_model(seed=4)
    manifest = onnx_export.export_model(model, load_tokenizer(tiny_model_dir), str(tmp_path / "out"), ["rte"],
                                        inputs(), embeddings="fp16")
    difference = manifest["tasks"]["rte"]["max_abs_difference"]
    assert 0 <= difference < 1e-2, f"fp16 embeddings moved the logits by {difference}"


@pytest.fixture(scope="module")
def saved_sparse(tmp_path_factory, tiny_model_dir):
    directory = str(tmp_path_factory.mktemp("saved") / "model")
    save_model(tiny_model(seed=5, sparsity=0.9), load_tokenizer(tiny_model_dir), directory)
    return directory


def test_command_writes_graphs_tokenizer_labels_and_manifest(saved_sparse, tmp_path, capsys):
    out = tmp_path / "onnx"
    assert run_main(onnx_export.main, ["--model", saved_sparse, "--output_dir", str(out), "--tasks", "sst"]) == 0, \
        capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "sst:" in printed and "max |ONNX Runtime fp32 - torch|" in printed, f"the check is printed: {printed}"
    names = set(os.listdir(out))
    assert {"export.json", "config.json", "tokenizer.json", "sst"} <= names, f"export contents: {names}"
    assert "rte" not in names, "--tasks sst exports sst only"
    manifest = onnx_export.read_manifest(str(out))
    assert manifest["source"] == saved_sparse and manifest["tasks"]["sst"]["labels"] == ["0", "1"], manifest


@pytest.mark.parametrize("case,extra,needles", [
    ("unknown task", ["--tasks", "mnli"], ["--tasks mnli", "no head"]),
    ("empty tasks", ["--tasks", ","], ["names no task"]),
    ("negative tolerance", ["--tolerance", "-1"], ["--tolerance"]),
])
def test_command_refusals(saved_sparse, tmp_path, capsys, case, extra, needles):
    out = tmp_path / "out"
    fail(onnx_export.main, ["--model", saved_sparse, "--output_dir", out, *extra], capsys, *needles)
    assert not out.exists(), f"{case}: nothing written"


def test_refuses_a_non_empty_output_and_an_export_as_model(saved_sparse, tmp_path, capsys):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    before = snapshot(out)
    fail(onnx_export.main, ["--model", saved_sparse, "--output_dir", out], capsys, "--overwrite_output_dir")
    assert snapshot(out) == before, "a refused export leaves the directory as it was"
    first = tmp_path / "first"
    assert run_main(onnx_export.main, ["--model", saved_sparse, "--output_dir", str(first), "--tasks", "rte"]) == 0
    capsys.readouterr()
    fail(onnx_export.main, ["--model", first, "--output_dir", tmp_path / "second"], capsys, "fp32 directory")


def test_refuses_a_check_above_the_tolerance_and_writes_nothing(saved_sparse, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(onnx_export, "max_difference", lambda *args: 0.5)
    out = tmp_path / "out"
    fail(onnx_export.main, ["--model", saved_sparse, "--output_dir", out], capsys, "differs from the torch model",
         "nothing was written")
    assert not out.exists(), "nothing written after a failed check"


def test_missing_onnxruntime_is_one_line(saved_sparse, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)       # import onnxruntime now raises ImportError
    fail(onnx_export.main, ["--model", saved_sparse, "--output_dir", tmp_path / "out"], capsys,
         "pip install onnx onnxruntime")


def test_command_flags_reach_the_export(saved_sparse, canonical_dir, tmp_path, capsys):
    """--quantize int8 --embeddings fp16 --check_data: int8 matrix products, fp16 tables, checked on real rows."""
    out = tmp_path / "int8"
    argv = ["--model", saved_sparse, "--output_dir", str(out), "--tasks", "rte", "--quantize", "int8",
            "--embeddings", "fp16", "--check_data", os.path.join(canonical_dir, "rte_dev.json")]
    assert run_main(onnx_export.main, argv) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    manifest = onnx_export.read_manifest(str(out))
    assert (manifest["quantize"], manifest["embeddings"]) == ("int8", "fp16"), f"recorded: {manifest}"
    proto = onnx.load(os.path.join(out, "rte", onnx_export.GRAPH_FILE))
    ops = {node.op_type for node in proto.graph.node}
    assert ops & {"MatMulInteger", "DynamicQuantizeMatMul"} and "Cast" in ops, f"int8 graph with casts: {ops}"
    assert "--quantize int8, --embeddings fp16" in printed, f"the served graph's check is printed: {printed}"
