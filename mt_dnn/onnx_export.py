"""Export a saved model to ONNX, one graph per task, for ONNX Runtime (or any ONNX runtime).

    python -m mt_dnn.onnx_export --model DIR --output_dir OUT [--tasks rte,mrpc] [--quantize none|int8]
                                 [--embeddings fp32|fp16|int8] [--check_data FILE] [--tolerance 1e-4]
                                 [--task_def YAML] [--overwrite_output_dir]

`--model` is any directory written by train.py or mt_dnn.export: a dense or PLATON/magnitude/movement
`model/` (its zeros are kept, exactly, in the graph's weights) or a GPP `model_pruned/`. OUT gets

    export.json                  format, version, source, quantization, embedding storage, opset, and per
                                 task: its graph, label names, task type, and the checks' differences
    config.json, tokenizer files the encoder's config and tokenizer, as in --model
    <task>/model.onnx            the task's graph: inputs input_ids, token_type_ids, attention_mask (int64,
                                 batch x sequence, both axes dynamic; the family's inputs: DistilBERT's graph
                                 has no token_type_ids), output logits (batch x n_class)
    <task>/labels.json           the task's label names, in the order of the logits

Each fp32 graph is run in ONNX Runtime on a check batch (`--check_data`, a canonical JSON file, else
built-in sentences, with a padded row) and compared with the torch model's logits; above `--tolerance`
nothing is written. `--quantize int8` then quantizes the graph's matrix products with ONNX Runtime's
dynamic quantization (`onnxruntime.quantization.quantize_dynamic`: int8 weights per output channel,
activations quantized per call); `--embeddings fp16` stores the embedding tables in half precision (a
Cast back to fp32 after them; the word embeddings are most of a small model's file), `--embeddings int8`
quantizes them with the same tool (uint8 per table). The served graph's difference from torch is printed
and saved (quantization error: reported, not refused); its dev metric comes from
`python -m mt_dnn.evaluate --model OUT --engine onnxruntime`.

Needs the onnx and onnxruntime packages (`pip install onnx onnxruntime`, or the toolkit's `[onnx]` extra).
"""
from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import warnings

import numpy as np
import torch
import transformers
from torch import nn

from data_utils.errors import ArgumentParser, UserError, run_cli
from data_utils.files import claim_output_dir, refuse_writing_inputs, write_directory
from data_utils.task_def import DEFAULT_TASK_DEF, load_task_defs
from mt_dnn.compress import (
    EMBEDDING_CHOICES,  # one set of storage names for both commands
)

FORMAT = "mt-dnn-onnx"
VERSION = 1
MANIFEST_FILE = "export.json"
GRAPH_FILE = "model.onnx"
LABELS_FILE = "labels.json"
OPSET = 17
INPUT_NAMES = ("input_ids", "token_type_ids", "attention_mask")
QUANTIZE_CHOICES = ("none", "int8")


def require_onnx(why: str = "ONNX export") -> None:
    """Refuse with one line when onnx or onnxruntime is not installed."""
    missing = []
    for name in ("onnx", "onnxruntime"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise UserError(f"{why} needs {' and '.join(missing)}: pip install onnx onnxruntime "
                        "(or pip install -e .[onnx])")


def is_onnx_export(directory: str) -> bool:
    return os.path.isfile(os.path.join(directory, MANIFEST_FILE))


class TaskGraph(nn.Module):
    """One task of an MTDNNModel as a module of the three token tensors: what each graph computes."""

    def __init__(self, model: nn.Module, task: str):
        super().__init__()
        self.model, self.task = model, task

    def forward(self, input_ids, token_type_ids, attention_mask):
        return self.model(input_ids, token_type_ids, attention_mask, task=self.task).logits


def trace_batch(inputs: dict) -> tuple:
    """The tensors the graph is traced on: the check batch with a padded row added, so that the attention
    mask's padding path is what gets traced (a batch without padding may let the encoder skip the mask)."""
    ids, types, mask = (inputs[name] for name in INPUT_NAMES)
    padded = mask[:1].clone()
    padded[0, max(1, int(padded[0].sum()) // 2):] = 0
    return (torch.cat([ids, ids[:1]]), torch.cat([types, types[:1]]), torch.cat([mask, padded]))


def export_graph(model: nn.Module, task: str, inputs: dict) -> bytes:
    """The serialized ONNX graph of one task (torch's TorchScript-based exporter: it needs no extra package
    and gives plain MatMul/Gather nodes, which ONNX Runtime's quantizer handles)."""
    buffer = io.BytesIO()
    axes = {name: {0: "batch", 1: "sequence"} for name in INPUT_NAMES}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")           # tracer notes on Python-side shape logic of transformers
        torch.onnx.export(TaskGraph(model, task).eval(), trace_batch(inputs), buffer, input_names=list(INPUT_NAMES),
                          output_names=["logits"], dynamic_axes={**axes, "logits": {0: "batch"}},
                          opset_version=OPSET, do_constant_folding=True, dynamo=False)
    return buffer.getvalue()


def session(graph, threads: int = 1):
    """An ONNX Runtime CPU session over a graph (bytes or a path), with `threads` intra-op threads."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(graph, options, providers=["CPUExecutionProvider"])


def run_session(graph_session, inputs: dict) -> np.ndarray:
    """The logits of a graph on the toolkit's inputs, fed the ones it takes (a family without token types, such
    as DistilBERT, leaves token_type_ids out of its graph)."""
    taken = {node.name for node in graph_session.get_inputs()}
    feed = {name: inputs[name].to(torch.int64).cpu().numpy() for name in INPUT_NAMES if name in taken}
    return graph_session.run(["logits"], feed)[0]


def max_difference(graph, model: nn.Module, task: str, inputs: dict) -> float:
    """Largest |ONNX Runtime - torch| logit of one task on `inputs`."""
    with torch.no_grad():
        expected = model(*(inputs[name] for name in INPUT_NAMES), task=task).logits.numpy()
    return float(np.abs(run_session(session(graph), inputs) - expected).max())


def _embedding_tables(graph) -> list:
    """Names of the initializers that Gather nodes index with token, type or position ids (the embedding
    tables): 2-d float initializers used as a Gather's data input."""
    from onnx import TensorProto

    floats = {init.name for init in graph.initializer if init.data_type == TensorProto.FLOAT and len(init.dims) == 2}
    return sorted({node.input[0] for node in graph.node if node.op_type == "Gather" and node.input[0] in floats})


def embeddings_to_fp16(model_bytes: bytes) -> bytes:
    """The graph with its embedding tables stored in fp16, each followed by a Cast to fp32 (the rest of the
    graph computes as before, on the rounded tables)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    proto = onnx.load_from_string(model_bytes)
    graph = proto.graph
    tables = set(_embedding_tables(graph))
    casts = []
    for init in graph.initializer:
        if init.name in tables:
            name = init.name
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), name + "_fp16"))
            casts.append(helper.make_node("Cast", [name + "_fp16"], [name], to=TensorProto.FLOAT,
                                          name=f"{name}_to_fp32"))
    for cast in reversed(casts):
        graph.node.insert(0, cast)
    return proto.SerializeToString()


@contextlib.contextmanager
def _quiet_root_logger():
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def quantize_graph(model_bytes: bytes, scratch: str, matmul: bool, embeddings: bool) -> bytes:
    """ONNX Runtime's dynamic quantization of the graph's MatMul nodes (int8 weights per output channel) and/or
    its embedding Gathers; `scratch` is a directory for the tool's files (it works on paths)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    source, target = os.path.join(scratch, "fp32.onnx"), os.path.join(scratch, "int8.onnx")
    with open(source, "wb") as handle:
        handle.write(model_bytes)
    with warnings.catch_warnings(), _quiet_root_logger():      # its advice to pre-process first goes to root
        warnings.simplefilter("ignore")
        quantize_dynamic(source, target, weight_type=QuantType.QInt8, per_channel=matmul,
                         op_types_to_quantize=(["MatMul"] if matmul else []) + (["Gather"] if embeddings else []))
    with open(target, "rb") as handle:
        result = handle.read()
    os.remove(source), os.remove(target)
    return result


def export_model(model, tokenizer, output_dir: str, tasks: list, inputs: dict, *, quantize: str = "none",
                 embeddings: str = "fp32", tolerance: float = 1e-4, source: str | None = None,
                 existing: str = "replace", flag: str = "--output_dir") -> dict:
    """Write the ONNX export of `model` (an MTDNNModel, fp32) for `tasks` to `output_dir`, whole or not at all
    (data_utils.files.write_directory); every fp32 graph is checked against torch on `inputs` first (refused
    above `tolerance`). Returns the manifest."""
    import onnxruntime

    from modeling.hf_export import label_names

    model = model.eval()
    manifest = {"format": FORMAT, "version": VERSION, "source": source, "quantize": quantize,
                "embeddings": embeddings, "opset": OPSET, "inputs": list(model.family.input_names),
                "torch": torch.__version__,
                "onnxruntime": onnxruntime.__version__, "tasks": {}}
    graphs = {}
    for task in tasks:
        graph = export_graph(model, task, inputs)
        checked = max_difference(graph, model, task, inputs)
        if not checked <= tolerance:
            raise UserError(f"the ONNX graph of {task} differs from the torch model by {checked:.2e} > --tolerance "
                            f"{tolerance}; nothing was written to {flag} {output_dir}")
        graphs[task] = graph
        head = model.heads[task]
        task_def = model.task_defs.get(task)
        manifest["tasks"][task] = {"graph": f"{task}/{GRAPH_FILE}", "n_class": head.proj.out_features,
                                   "task_type": task_def.task_type if task_def is not None else None,
                                   "labels": label_names(task_def, head.proj.out_features),
                                   "max_abs_difference_fp32": checked}

    def fill(tmp):
        model.encoder.config.save_pretrained(tmp)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        for task, graph in graphs.items():
            os.makedirs(os.path.join(tmp, task))
            if quantize == "int8" or embeddings == "int8":
                graph = quantize_graph(graph, os.path.join(tmp, task), matmul=quantize == "int8",
                                       embeddings=embeddings == "int8")
            if embeddings == "fp16":
                graph = embeddings_to_fp16(graph)
            path = os.path.join(tmp, task, GRAPH_FILE)
            with open(path, "wb") as handle:
                handle.write(graph)
            entry = manifest["tasks"][task]
            entry["max_abs_difference"] = max_difference(path, model, task, inputs)
            entry["bytes"] = os.path.getsize(path)
            with open(os.path.join(tmp, task, LABELS_FILE), "w", encoding="utf-8") as handle:
                json.dump(entry["labels"], handle)
        with open(os.path.join(tmp, MANIFEST_FILE), "w", encoding="utf-8") as handle:
            json.dump(manifest, handle, indent=1)

    write_directory(output_dir, fill, existing=existing, what="the ONNX export", flag=flag)
    return manifest


def read_manifest(directory: str, flag: str = "--model") -> dict:
    """export.json of an ONNX export, checked enough to be used."""
    from data_utils.jsonio import read_json

    path = os.path.join(directory, MANIFEST_FILE)
    manifest = read_json(path, "an export.json of mt_dnn.onnx_export", "export the model again")
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or manifest.get("version") != VERSION \
            or not isinstance(manifest.get("tasks"), dict):
        raise UserError(f"{flag} {path}: not an export.json of mt_dnn.onnx_export (format {FORMAT} version "
                        f"{VERSION}); export the model again")
    for task, entry in manifest["tasks"].items():
        graph = os.path.join(directory, str(entry.get("graph", "")) if isinstance(entry, dict) else "")
        if not isinstance(entry, dict) or not os.path.isfile(graph):
            raise UserError(f"{flag} {directory}: the graph of task {task} named in {MANIFEST_FILE} is missing; "
                            "export the model again")
        n_class = entry.get("n_class")
        if type(n_class) is not int or n_class < 1:
            raise UserError(f"{flag} {path}: task {task}'s n_class is {n_class!r}, not a whole number of outputs "
                            f"(1 or more); {MANIFEST_FILE} is damaged: export the model again")
    return manifest


# ---------------------------------------------------------------------------
# Command line


def build_parser():
    parser = ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True,
                        help="a model directory written by train.py (model/, best_model/) or mt_dnn.export")
    parser.add_argument("--output_dir", required=True, help="where to write the ONNX export")
    parser.add_argument("--tasks", default=None, help="comma-separated tasks to export (default: every head)")
    parser.add_argument("--quantize", default="none", choices=QUANTIZE_CHOICES,
                        help="int8: ONNX Runtime's dynamic int8 quantization of the matrix products")
    parser.add_argument("--embeddings", default="fp32", choices=EMBEDDING_CHOICES,
                        help="storage of the embedding tables: fp32 (default), fp16 (half the size) or int8")
    parser.add_argument("--check_data", default=None,
                        help="canonical JSON file whose first rows check the graphs (default: built-in sentences)")
    parser.add_argument("--tolerance", type=float, default=1e-4,
                        help="largest allowed |ONNX Runtime - torch| logit of the fp32 graphs (default 1e-4)")
    parser.add_argument("--task_def", default=DEFAULT_TASK_DEF, help="task definition YAML")
    parser.add_argument("--overwrite_output_dir", action="store_true",
                        help="write into a non-empty --output_dir: what it held is kept in "
                             "OUTPUT_DIR/previous-<time>/ (nothing is deleted)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    return parser


def chosen_tasks(spec: str | None, model) -> list:
    if spec is None:
        return list(model.heads)
    tasks = [name.strip() for name in spec.split(",") if name.strip()]
    if not tasks:
        raise UserError(f"--tasks '{spec}' names no task; e.g. --tasks rte,mrpc")
    unknown = [name for name in tasks if name not in model.heads]
    if unknown:
        raise UserError(f"--tasks {','.join(unknown)}: the model has no head for it (it has "
                        f"{', '.join(model.heads)}); choose among those")
    return list(dict.fromkeys(tasks))


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if not args.output_dir.strip():
        raise UserError("--output_dir is empty; give a directory")
    if not args.tolerance >= 0:
        raise UserError(f"--tolerance {args.tolerance} must be >= 0 (e.g. 1e-4)")
    require_onnx()
    transformers.utils.logging.disable_progress_bar()
    from modeling import pretrained
    from modeling.model import load_model
    from mt_dnn.compress import check_inputs, is_compressed

    if os.path.exists(args.model) and not os.path.isdir(args.model):
        raise UserError(f"--model {args.model} is a file, not a directory; give the model directory written by "
                        "train.py (model/, best_model/) or mt_dnn.export")
    if os.path.isdir(args.model) and (is_compressed(args.model) or is_onnx_export(args.model)):
        raise UserError(f"--model {args.model} is a compressed or ONNX copy; give the fp32 directory it was made "
                        "from (train.py's model/ or mt_dnn.export's output)")
    task_defs = load_task_defs(args.task_def)
    model = load_model(args.model, task_defs, flag="--model")
    tasks = chosen_tasks(args.tasks, model)
    refuse_writing_inputs([("dir:--output_dir", args.output_dir)],
                          [("--model", args.model), ("--task_def", args.task_def), ("--check_data", args.check_data)])
    existing = claim_output_dir(args.output_dir, args.overwrite_output_dir)
    tokenizer = pretrained.load_tokenizer(args.model)
    inputs = check_inputs(model, tokenizer, args.check_data)
    manifest = export_model(model, tokenizer, args.output_dir, tasks, inputs, quantize=args.quantize,
                            embeddings=args.embeddings, tolerance=args.tolerance, source=args.model,
                            existing=existing)
    for task, entry in manifest["tasks"].items():
        print(f"{task}: {args.output_dir}/{entry['graph']} ({entry['bytes'] / 1e6:.1f} MB); max |ONNX Runtime fp32 - "
              f"torch| = {entry['max_abs_difference_fp32']:.2e}; served graph (--quantize {args.quantize}, "
              f"--embeddings {args.embeddings}): {entry['max_abs_difference']:.2e}")
    return 0


if __name__ == "__main__":
    run_cli(main)
