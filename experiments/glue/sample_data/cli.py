"""Command line of the GLUE sample: `python -m experiments.glue.sample_data ...`."""
import os

from data_utils.errors import ArgumentParser

from .assembly import generate
from .common import DEFAULT_SEED, MAX_SCALE
from .registry import TASKS


def build_parser():
    parser = ArgumentParser(
        prog="python -m experiments.glue.sample_data",
        description="Write the built-in synthetic GLUE sample (all nine tasks, official layouts).")
    parser.add_argument("--out_dir", default="data",
                        help="folder that receives one sub-folder per task (default: data)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help=f"random seed; the same seed writes byte-identical files (default: {DEFAULT_SEED})")
    parser.add_argument("--scale", type=float, default=1.0,
                        help=f"multiply every file's row count, in (0, {MAX_SCALE:g}]; 1.0 gives 2,500 "
                             "train / 500 dev / 500 test rows per task (MNLI 4,500 / 600+600 / 500+500, "
                             "WNLI 4,000 train)")
    parser.add_argument("--tasks", default=",".join(TASKS),
                        help="comma-separated tasks to write (default: all nine)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    written = generate(args.out_dir, seed=args.seed, scale=args.scale,
                       tasks=[t for t in args.tasks.split(",") if t.strip()])
    for task, counts in written.items():
        files = " ".join(f"{name}={rows}" for name, rows in counts.items())
        print(f"{task:<6} {files}  -> {os.path.join(args.out_dir, task)}")
    print(f"wrote the built-in GLUE SAMPLE (synthetic, seed {args.seed}, scale {args.scale:g}) to "
          f"{args.out_dir}: NOT the real GLUE benchmark")
    return 0
