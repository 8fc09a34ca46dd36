"""Preprocessing throughput against the bare tokenizer call on the same rows.

    python bench/prepro_throughput.py [--data_dir data] [--max_seq_len 128] [--repeat 3]

Times, side by side in one process, (a) the batched fast-tokenizer call alone
and (b) prepro's whole path (read TSV, tokenize, render and write canonical
JSON) over every split of every task found in --data_dir, and prints
rows/second for both and their ratio (target: prepro >= 0.7 x tokenizer).
Generates the built-in sample first when --data_dir holds no GLUE folders (a --data_dir
given on the command line must exist).
"""
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import prepro  # noqa: E402
from data_utils.errors import ArgumentParser, UserError, run_cli  # noqa: E402
from data_utils.glue_readers import read_split  # noqa: E402
from data_utils.task_def import load_task_defs  # noqa: E402
from modeling.pretrained import BUNDLED_MODEL, load_tokenizer  # noqa: E402


def check_args(args) -> None:
    """Refuse flags the benchmark cannot run with, naming the flag, before anything is read or generated."""
    if args.repeat < 1:
        raise UserError(f"--repeat {args.repeat} must be a whole number >= 1 (timed repetitions), e.g. 3")
    if not 8 <= args.max_seq_len <= prepro.MAX_SEQ_LEN:
        raise UserError(f"--max_seq_len {args.max_seq_len} must be in [8, {prepro.MAX_SEQ_LEN}] (as prepro's), "
                        "e.g. 128")
    if args.data_dir is None:       # the default: data/, or the built-in sample when it holds no GLUE folders
        args.data_dir = "data"
    elif os.path.isfile(args.data_dir):
        raise UserError(f"--data_dir {args.data_dir} is a file, not a directory; give the directory holding the GLUE "
                        "task folders (RTE/, MNLI/, ...)")
    elif not os.path.isdir(args.data_dir):
        raise UserError(f"--data_dir {args.data_dir}: directory not found; run `sh download.sh` first, or leave the "
                        "flag out to time the built-in sample")


def main(argv=None) -> int:
    parser = ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data_dir", default=None,
                        help="GLUE folders (default: data, or the built-in sample when it holds none)")
    parser.add_argument("--max_seq_len", type=int, default=128, help="truncation length")
    parser.add_argument("--repeat", type=int, default=3, help="timed repetitions (best is kept)")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an internal error")
    args = parser.parse_args(argv)
    check_args(args)

    tasks = load_task_defs()
    present = [t for t in tasks.values() if os.path.isdir(os.path.join(args.data_dir, t.glue_dir))]
    if not present:
        from experiments.glue.sample_data import generate
        args.data_dir = tempfile.mkdtemp(prefix="glue_sample_")
        generate(args.data_dir)
        present = list(tasks.values())
    tokenizer = load_tokenizer(BUNDLED_MODEL)
    splits = [(t, s) for t in present for s in t.splits.values()]
    rows = sum(len(read_split(t, s, args.data_dir)) for t, s in splits)

    def bare_tokenizer_only(split_examples):
        """The same batched tokenizer calls prepro makes (same chunks and arguments), nothing else."""
        for examples in split_examples:
            for _ in prepro.tokenize(tokenizer, examples, args.max_seq_len):
                pass

    out_dir = tempfile.mkdtemp(prefix="prepro_bench_")

    def full():
        for task, split in splits:
            examples = read_split(task, split, args.data_dir)
            lines = (prepro.canonical_line(*row) for row in prepro.tokenize(tokenizer, examples, args.max_seq_len))
            prepro.write_canonical(os.path.join(out_dir, f"{task.name}_{split.name}.json"), lines)

    split_examples = [read_split(task, split, args.data_dir) for task, split in splits]

    def best(fn, *fn_args):
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            fn(*fn_args)
            times.append(time.perf_counter() - start)
        return min(times)

    best(bare_tokenizer_only, split_examples)      # warm-up
    t_tok = best(bare_tokenizer_only, split_examples)
    t_full = best(full)
    print(f"rows: {rows} over {len(splits)} files, max_seq_len {args.max_seq_len}, data {args.data_dir}")
    print(f"bare tokenizer call : {rows / t_tok:10.0f} rows/s ({t_tok:.3f}s)")
    print(f"prepro (read+tokenize+write): {rows / t_full:10.0f} rows/s ({t_full:.3f}s)")
    print(f"throughput ratio prepro/tokenizer: {t_tok / t_full:.2f} (target >= 0.70)")
    return 0


if __name__ == "__main__":
    run_cli(main)
