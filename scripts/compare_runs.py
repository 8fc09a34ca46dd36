"""Print runs' final dev metrics and achieved sparsity side by side.

    python scripts/compare_runs.py RUN_DIR [RUN_DIR ...]

Each RUN_DIR is an --output_dir of train.py; the table reads its
dev_metrics.json and, when present, sparsity_report.json.
"""
import json
import os
import sys


def load(run_dir):
    with open(os.path.join(run_dir, "dev_metrics.json"), encoding="utf-8") as handle:
        metrics = json.load(handle)
    report = os.path.join(run_dir, "sparsity_report.json")
    remaining = None
    if os.path.exists(report):
        with open(report, encoding="utf-8") as handle:
            remaining = json.load(handle)["overall"]["remaining_ratio"]
    return metrics, remaining


def main(run_dirs):
    runs = [(os.path.basename(os.path.normpath(d)), *load(d)) for d in run_dirs]
    columns = []
    for _, metrics, _ in runs:
        for dataset, values in metrics.items():
            for metric in values:
                if (dataset, metric) not in columns:
                    columns.append((dataset, metric))
    header = ["run", "encoder remaining"] + [f"{d} {m}" for d, m in columns]
    rows = []
    for name, metrics, remaining in runs:
        rows.append([name, "100.0 %" if remaining is None else f"{100 * remaining:.1f} %"] +
                    [f"{metrics.get(d, {}).get(m, float('nan')):.2f}" for d, m in columns])
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    print(" | ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("-|-".join("-" * w for w in widths))
    for row in rows:
        print(" | ".join(str(c).ljust(w) for c, w in zip(row, widths)))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: python scripts/compare_runs.py RUN_DIR [RUN_DIR ...]")
    main(sys.argv[1:])
