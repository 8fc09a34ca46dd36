"""One interface to serve a saved model through torch, ONNX Runtime, or the toolkit's sparse CPU kernel.

`predict` and `evaluate` take `--engine` and `--threads` (add_arguments) and call `load_engine`:

    torch         the model in eager torch: train.py's and mt_dnn.export's directories (load_model) and
                  mt_dnn.compress's (load_compressed, fp32 or int8)
    onnxruntime   ONNX Runtime on CPU: an mt_dnn.onnx_export directory as it is, or any directory torch
                  reads (fp32), exported in memory, one graph per task, checked against torch first
    sparse        torch, with each pruned linear layer that is faster sparse on this machine replaced by
                  mt_dnn.sparse_linear.SparseLinear (its choice per layer is reported); for unstructured
                  (PLATON, magnitude, movement) models, fp32, from train.py's directory or a
                  compressed one (whose bitmask storage is read back into the weights the layers take)

What comes back serves training.inference.predict like an MTDNNModel: `model(input_ids, token_type_ids,
attention_mask, task=...)` gives `.logits`, `model.heads` names the tasks and `model.encoder.config` is the
encoder's config. ONNX Runtime and the sparse kernel run on CPU only. `--threads N` sets torch's intra-op
threads, numba's and ONNX Runtime's (0: each library's default).
"""
from __future__ import annotations

import os
from types import SimpleNamespace

import torch
from torch import nn

from data_utils.errors import UserError, check_thread_count

ENGINES = ("torch", "onnxruntime", "sparse")
CHECK_TOLERANCE = 1e-4      # largest |ONNX Runtime - torch| logit of an in-memory export


def add_arguments(parser) -> None:
    """--engine and --threads, as predict and evaluate take them."""
    parser.add_argument("--engine", default="torch", choices=ENGINES,
                        help="torch (default); onnxruntime (ONNX Runtime on CPU: an mt_dnn.onnx_export directory, "
                             "or any model, exported in memory); sparse (CPU sparse kernel for the pruned layers of "
                             "an unstructured model, where it is faster)")
    parser.add_argument("--threads", type=int, default=0,
                        help="CPU threads of torch, numba and ONNX Runtime (default 0: each library's default)")


def check_arguments(engine: str, threads: int, device: str) -> None:
    """Refuse --threads below 0 or far above the machine's cores (a crash in torch, numba or ONNX Runtime) and
    a CUDA --device for the CPU-only engines (before anything is loaded)."""
    check_thread_count(threads, "--threads")
    if engine != "torch" and device == "cuda":
        raise UserError(f"--engine {engine} runs on CPU; use --device cpu (or auto), or --engine torch for CUDA")


def device_for(engine: str, device: str) -> torch.device:
    """--device as a torch device; the CPU for onnxruntime and sparse."""
    from training.startup import pick_device

    return pick_device(device) if engine == "torch" else torch.device("cpu")


def set_threads(threads: int) -> None:
    """torch's and numba's intra-op threads (ONNX Runtime's are set per session)."""
    if not threads:
        return
    try:
        import numba
    except ImportError:
        pass
    else:
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    torch.set_num_threads(threads)      # after numba's: starting numba's thread pool resets torch's count


class OnnxRuntimeModel(nn.Module):
    """ONNX Runtime sessions, one per task, behind MTDNNModel's call: `model(ids, types, mask, task=...)`."""

    def __init__(self, sessions: dict, config, labels: dict):
        super().__init__()
        self.sessions = sessions
        self.heads = labels                         # {task: label names}: what callers look tasks up in
        self.encoder = SimpleNamespace(config=config)

    def forward(self, input_ids, token_type_ids, attention_mask, task: str, output_hidden_states: bool = False):
        from modeling.model import MTDNNOutput
        from mt_dnn.onnx_export import run_session

        if output_hidden_states:
            raise ValueError("an ONNX Runtime model gives logits only, no hidden states")
        inputs = {"input_ids": input_ids, "token_type_ids": token_type_ids, "attention_mask": attention_mask}
        return MTDNNOutput(torch.from_numpy(run_session(self.sessions[task], inputs)), None, task)


def _torch_model(directory: str, task_defs: dict, flag: str):
    from modeling.model import load_model
    from mt_dnn.compress import is_compressed, load_compressed

    if os.path.isdir(directory) and is_compressed(directory):
        return load_compressed(directory, task_defs, flag=flag)
    return load_model(directory, task_defs, flag=flag)


def _load_onnx_export(directory: str, task_defs: dict, threads: int, flag: str) -> OnnxRuntimeModel:
    from modeling.model import read_config
    from mt_dnn.onnx_export import read_manifest, session

    manifest = read_manifest(directory, flag)
    unknown = [task for task in manifest["tasks"] if task not in task_defs]
    if unknown:
        raise UserError(f"{flag} {directory}: graphs for tasks {unknown} are not in the task definition; pass the "
                        "--task_def the model was trained with")
    for task, entry in manifest["tasks"].items():
        if entry["n_class"] != task_defs[task].n_class:
            raise UserError(f"{flag} {directory}: the {task} graph has {entry.get('n_class')} outputs but the task "
                            f"definition says n_class {task_defs[task].n_class}; pass the --task_def the model was "
                            "trained with")
    config = read_config(directory, flag)
    sessions = {}
    for task, entry in manifest["tasks"].items():
        try:
            sessions[task] = session(os.path.join(directory, entry["graph"]), threads)
        except Exception as err:  # noqa: BLE001 - onnxruntime raises its own types for a damaged graph
            raise UserError(f"{flag} {os.path.join(directory, entry['graph'])}: ONNX Runtime cannot load it "
                            f"({' '.join(str(err).split())[:120]}); export the model again") from None
    return OnnxRuntimeModel(sessions, config, {task: entry.get("labels") for task, entry in manifest["tasks"].items()})


def _export_in_memory(model, directory: str, threads: int, flag: str, report) -> OnnxRuntimeModel:
    """A torch model as ONNX Runtime sessions, each graph checked against torch on the built-in sentences."""
    from modeling import pretrained
    from mt_dnn.compress import check_inputs, is_quantized
    from mt_dnn.onnx_export import export_graph, max_difference, session

    if is_quantized(model):
        raise UserError(f"{flag} {directory} holds torch int8 layers, which do not export to ONNX; export the fp32 "
                        "model with python -m mt_dnn.onnx_export --quantize int8 and serve that directory")
    inputs = check_inputs(model, pretrained.load_tokenizer(directory))
    sessions = {}
    for task in model.heads:
        graph = export_graph(model, task, inputs)
        difference = max_difference(graph, model, task, inputs)
        if not difference <= CHECK_TOLERANCE:
            raise UserError(f"{flag} {directory}: the ONNX graph of {task} differs from torch by {difference:.2e} "
                            f"> {CHECK_TOLERANCE}; serve it with --engine torch")
        report(f"onnxruntime engine: {task} exported in memory, max |ONNX Runtime - torch| = {difference:.2e}")
        sessions[task] = session(graph, threads)
    from modeling.hf_export import label_names

    labels = {task: label_names(model.task_defs.get(task), head.proj.out_features) for task, head in model.heads.items()}
    return OnnxRuntimeModel(sessions, model.encoder.config, labels)


def load_engine(directory: str, task_defs: dict, engine: str = "torch", threads: int = 0, flag: str = "--model",
                report=None):
    """The model of `directory` served by `engine` with `threads` CPU threads (0: the libraries' defaults);
    `report(line)` receives what the engine decided (the sparse kernel's choice per layer, the in-memory
    export's check), default: nothing."""
    from mt_dnn.onnx_export import is_onnx_export, require_onnx

    report = report or (lambda line: None)
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise UserError(f"{flag} {directory} is a file, not a directory; give the model/ or best_model/ directory "
                        "written by train.py (or an mt_dnn.export, compress or onnx_export directory)")
    set_threads(threads)
    onnx_dir = os.path.isdir(directory) and is_onnx_export(directory)
    if engine == "onnxruntime":
        require_onnx("--engine onnxruntime")
        if onnx_dir:
            return _load_onnx_export(directory, task_defs, threads, flag)
        return _export_in_memory(_torch_model(directory, task_defs, flag), directory, threads, flag, report)
    if onnx_dir:
        raise UserError(f"{flag} {directory} is an ONNX export; serve it with --engine onnxruntime")
    model = _torch_model(directory, task_defs, flag)
    if engine == "sparse":
        from mt_dnn.compress import is_quantized
        from mt_dnn.sparse_linear import numba_available, sparsify

        if is_quantized(model):
            raise UserError(f"{flag} {directory} holds torch int8 layers; the sparse engine runs fp32 weights: give "
                            "the fp32 model (or its mt_dnn.compress copy without --quantize)")
        if not numba_available():
            raise UserError("--engine sparse needs numba: pip install numba")
        for choice in sparsify(model.encoder):
            report(f"sparse engine: {choice.describe()}")
    return model
