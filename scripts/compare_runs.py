"""Print runs' final dev metrics and the share of the encoder they keep, side by side.

    python scripts/compare_runs.py RUN_DIR [RUN_DIR ...]

Each RUN_DIR is an --output_dir of train.py. The table reads its dev_metrics.json
and, for "encoder remaining" (the share of the encoder layers' attention and FFN
matrices, weights and biases, that remains: the matrices PLATON prunes):

- PLATON / magnitude: sparsity_report.json (non-zero entries);
- GPP: the physically smaller export, model_pruned/structured_export.json (heads and
  FFN neurons kept per layer), or else the indicators model/gpp_indicators.safetensors,
  counted against the dense shape in model/config.json;
- dense (--pruner none): 100 %.

A run that is missing, still running or failed gets a row that says what is
missing instead of its numbers; the exit status is 2 when any run could not be
read (one `error:` line on stderr), else 0.
"""
import json
import math
import numbers
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from data_utils.errors import ArgumentParser, run_cli  # noqa: E402


class RunProblem(Exception):
    """What keeps one run from its row's numbers (shown in the row)."""


def read_json(path: str, what: str, hint: str = ""):
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise RunProblem(f"incomplete: no {what}{hint}") from None
    except RecursionError:      # json nested thousands deep: a damaged file, not a bug of this script
        raise RunProblem(f"unreadable {what} (nested too deeply to be a run's file)") from None
    except (OSError, ValueError) as err:
        raise RunProblem(f"unreadable {what} ({type(err).__name__})") from None


def is_count(value) -> bool:
    """Whether `value` is a whole number >= 0 from a JSON file (a bool is not one)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 0


def layer_matrix_parameters(hidden: int, head_size: int, heads: int, neurons: int) -> int:
    """Weights and biases of one layer's query, key, value, attention output, intermediate and output
    dense layers with `heads` attention heads and `neurons` FFN neurons (the output biases stay)."""
    width = heads * head_size
    return 3 * (hidden * width + width) + (width * hidden + hidden) + (hidden * neurons + neurons) + \
        (neurons * hidden + hidden)


def structured_remaining(run_dir: str) -> float:
    """A GPP run's remaining share of the encoder layers' matrices, from its export or its indicators."""
    config = read_json(os.path.join(run_dir, "model", "config.json"), "model/config.json")
    try:
        hidden, heads, layers = config["hidden_size"], config["num_attention_heads"], config["num_hidden_layers"]
        neurons = config["intermediate_size"]
    except (KeyError, TypeError):
        raise RunProblem("model/config.json lacks hidden_size, num_attention_heads, num_hidden_layers or "
                         "intermediate_size") from None
    for key, value in (("hidden_size", hidden), ("num_attention_heads", heads), ("num_hidden_layers", layers),
                       ("intermediate_size", neurons)):
        if not (is_count(value) and value >= 1):
            raise RunProblem(f"model/config.json's {key} {json.dumps(value)[:40]} is not a whole number >= 1")
    if hidden % heads:
        raise RunProblem(f"model/config.json's hidden_size {hidden} is not a multiple of its num_attention_heads "
                         f"{heads}")
    export = os.path.join(run_dir, "model_pruned", "structured_export.json")
    indicators = os.path.join(run_dir, "model", "gpp_indicators.safetensors")
    if os.path.exists(export):
        report = read_json(export, "model_pruned/structured_export.json")
        if not isinstance(report, dict):
            raise RunProblem("model_pruned/structured_export.json is not a JSON object")
        kept_heads, kept_neurons = report.get("layer_heads"), report.get("layer_intermediate_sizes")
    elif os.path.exists(indicators):
        from safetensors.numpy import load_file
        try:
            z = load_file(indicators)
        except Exception as err:  # noqa: BLE001 - any corruption of the user's file
            raise RunProblem(f"unreadable model/gpp_indicators.safetensors ({type(err).__name__})") from None
        try:
            kept_heads = (z["z_head"] != 0).sum(axis=1).tolist() if "z_head" in z else [heads] * layers
            kept_neurons = (z["z_ffn"] != 0).sum(axis=1).tolist() if "z_ffn" in z else [neurons] * layers
        except (ValueError, IndexError):        # not (layers, units) tables
            raise RunProblem("model/gpp_indicators.safetensors's z_head/z_ffn are not (layers, units) "
                             "tables") from None
    else:
        raise RunProblem("incomplete: no model_pruned/structured_export.json or model/gpp_indicators.safetensors")
    if not (isinstance(kept_heads, list) and isinstance(kept_neurons, list) and len(kept_heads) == len(kept_neurons)
            == layers):
        raise RunProblem(f"the GPP export does not describe the {layers} layers of model/config.json")
    if not all(is_count(h) and h <= heads for h in kept_heads) or \
            not all(is_count(n) and n <= neurons for n in kept_neurons):
        raise RunProblem(f"the GPP export's kept heads and FFN neurons per layer are not whole numbers within "
                         f"model/config.json's {heads} heads and {neurons} neurons")
    head_size = hidden // heads
    dense = layers * layer_matrix_parameters(hidden, head_size, heads, neurons)
    kept = sum(layer_matrix_parameters(hidden, head_size, h, n) for h, n in zip(kept_heads, kept_neurons))
    return kept / dense


def remaining(run_dir: str) -> float:
    """The share of the encoder layers' matrices a run keeps (see the module docstring)."""
    report = os.path.join(run_dir, "sparsity_report.json")
    if os.path.exists(report):
        try:
            return float(read_json(report, "sparsity_report.json")["overall"]["remaining_ratio"])
        except (KeyError, TypeError, ValueError, OverflowError):
            raise RunProblem("sparsity_report.json lacks overall.remaining_ratio") from None
    config = os.path.join(run_dir, "config.json")
    settings = read_json(config, "config.json") if os.path.exists(config) else {}
    if not isinstance(settings, dict):
        raise RunProblem("config.json is not a JSON object")
    pruner = settings.get("pruner")
    if pruner == "gpp" or os.path.isdir(os.path.join(run_dir, "model_pruned")) or \
            os.path.exists(os.path.join(run_dir, "model", "gpp_indicators.safetensors")):
        return structured_remaining(run_dir)
    if pruner in (None, "none"):
        return 1.0
    raise RunProblem(f"incomplete: a --pruner {pruner} run without sparsity_report.json")


def load(run_dir: str):
    """(dev metrics {dataset: {metric: value}}, remaining share) of one run; RunProblem says what is missing."""
    if not os.path.isdir(run_dir):
        if os.path.isfile(run_dir):
            raise RunProblem("a file, not a run directory")
        raise RunProblem("not a directory" if os.path.exists(run_dir) else "missing: no such directory")
    metrics = read_json(os.path.join(run_dir, "dev_metrics.json"), "dev_metrics.json", " (still running, or failed?)")
    if not isinstance(metrics, dict) or not all(isinstance(v, dict) for v in metrics.values()):
        raise RunProblem("dev_metrics.json is not {dataset: {metric: value}}")
    return metrics, remaining(run_dir)


def number(value) -> str:
    try:
        value = float(value)
    except (TypeError, ValueError, OverflowError):
        return "n/a"
    return f"{value:.2f}" if math.isfinite(value) else str(value)


def table(run_dirs) -> tuple:
    """(the table's lines, the problems of runs that could not be read)."""
    runs, problems = [], []
    for run_dir in run_dirs:
        name = os.path.basename(os.path.normpath(run_dir))
        try:
            runs.append((name, *load(run_dir), None))
        except RunProblem as problem:
            runs.append((name, {}, None, str(problem)))
            problems.append(f"{run_dir}: {problem}")
    columns = []
    for _, metrics, _, _ in runs:
        for dataset, values in metrics.items():
            for metric in values:
                if (dataset, metric) not in columns:
                    columns.append((dataset, metric))
    header = ["run", "encoder remaining"] + [f"{d} {m}" for d, m in columns]
    rows = []
    for name, metrics, share, problem in runs:
        if problem:
            rows.append([name, f"({problem})"] + ["-"] * len(columns))
            continue
        rows.append([name, f"{100 * share:.1f} %"] +
                    [number(metrics[d][m]) if m in metrics.get(d, {}) else "-" for d, m in columns])
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    lines = [" | ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip(), "-|-".join("-" * w for w in widths)]
    lines += [" | ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    return lines, problems


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(description=__doc__.split("\n")[0],
                            epilog="A run directory whose name starts with '-' goes after --.")
    parser.add_argument("run_dirs", nargs="*", metavar="RUN_DIR", help="an --output_dir of train.py")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an internal error")
    return parser


def main(argv) -> int:
    run_dirs = build_parser().parse_args(list(argv)).run_dirs
    if not run_dirs:
        print("error: give at least one run directory (usage: python scripts/compare_runs.py RUN_DIR [RUN_DIR ...])",
              file=sys.stderr)
        return 2
    lines, problems = table(run_dirs)
    print("\n".join(lines))
    if problems:
        print(f"error: {len(problems)} of {len(run_dirs)} runs could not be read: {'; '.join(problems)} "
              "(each RUN_DIR must be an --output_dir of a finished train.py run)",
              file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    run_cli(main)
