"""Cost of PLATON's `step()` next to the training step it follows, on a BERT-base-shaped encoder.

One run trains a randomly initialised BertForSequenceClassification (12 layers,
hidden 768, 12 heads, FFN 3072; batch 8 × 128 tokens; Adamax) through a
compressed pruning schedule, once per ΔT (10 and 1), and times each update's
plain training step (forward + backward + optimizer step) and the pruner's own
`step()` side by side. The schedule (total_steps 20, warmup_steps 2,
initial_warmup 1, final_warmup 4: warm-up 1..2, cubic phase 3..12, final phase
13..20) covers the cubic phase (masking every ΔT updates) and the final phase
(masking at every update). It prints the mean pruner time per phase as a
fraction of the mean plain step, the whole-schedule fraction, the bytes of
pruner state per selected weight, and checks the threshold against
`torch.kthvalue` over all scores at the last masking step of each run. The
pruner runs with its default kernels (pruners.kernels: numba's fused loops when
installed, compiled when the pruner is built, outside the timed steps);
`--kernels numba torch` measures both kinds one after the other.

    python bench/pruner_overhead.py                        # BERT-base, about 5 minutes on 2 idle CPU cores
    python bench/pruner_overhead.py --kernels numba torch  # both kinds, about 10 minutes
    python bench/pruner_overhead.py --quick                # 4 layers, batch 4 × 64, under a minute
"""
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from data_utils.errors import ArgumentParser, UserError, check_thread_count, run_cli  # noqa: E402
from pruners import CubicSchedule, PlatonPruner  # noqa: E402
from pruners.schedule import PrunerSettingError  # noqa: E402

# the schedule's settings as this script's flags (PrunerSettingError.with_names)
FLAGS = {name: f"--{name}" for name in ("total_steps", "warmup_steps", "initial_warmup", "final_warmup", "deltaT",
                                        "final_threshold", "kernels")}


def parse_args(argv=None):
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a 4-layer encoder, batch 4 x 64 (a smoke run)")
    parser.add_argument("--total_steps", type=int, default=20, help="updates per schedule (T)")
    parser.add_argument("--warmup_steps", type=int, default=2, help="warmup_steps of the schedule")
    parser.add_argument("--initial_warmup", type=int, default=1, help="initial_warmup (ti = it x warmup_steps)")
    parser.add_argument("--final_warmup", type=int, default=4, help="final_warmup (tf = it x warmup_steps)")
    parser.add_argument("--deltaT", type=int, nargs="+", default=[10, 1], help="the ΔT values to measure")
    parser.add_argument("--final_threshold", type=float, default=0.1, help="remaining ratio at the end")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--kernels", nargs="+", default=["auto"], choices=["auto", "numba", "torch"],
                        help="the pruner's kernels (pruners.kernels), each measured in turn: "
                             "--kernels numba torch compares the fused loops with torch operations")
    parser.add_argument("--pruner_threads", type=int, default=0,
                        help="the pruner's num_threads (0: torch's default, as training); shows how much of its "
                             "time goes to threads waiting for each other on cores busy with other processes")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an internal error")
    return parser.parse_args(argv)


def check_args(args) -> None:
    """Refuse settings the schedule or the pruner cannot run with, naming the flag, before the model is built:
    the threads and the seed, then the schedule's own checks (pruners.schedule.validate_schedule) for every
    --deltaT."""
    check_thread_count(args.pruner_threads, "--pruner_threads")
    if not 0 <= args.seed < 2 ** 64:
        raise UserError(f"--seed {args.seed} must be a whole number in [0, 2**64 - 1], e.g. 0")
    for delta_t in args.deltaT:
        try:
            CubicSchedule(args.total_steps, initial_threshold=1.0, final_threshold=args.final_threshold,
                          warmup_steps=args.warmup_steps, initial_warmup=args.initial_warmup,
                          final_warmup=args.final_warmup, deltaT=delta_t)
        except PrunerSettingError as err:
            raise UserError(err.with_names(FLAGS)) from None
    if "numba" in args.kernels:
        from pruners import kernels
        if not kernels.numba_available():
            raise UserError("--kernels numba needs the numba package: pip install numba, or use --kernels auto or "
                            "torch")


def build(quick: bool):
    from transformers import BertConfig, BertForSequenceClassification
    layers, batch, seq = (4, 4, 64) if quick else (12, 8, 128)
    config = BertConfig(num_hidden_layers=layers, hidden_size=768, num_attention_heads=12, intermediate_size=3072)
    return BertForSequenceClassification(config), batch, seq, config.vocab_size


def check_threshold(pruner, threshold: float) -> bool:
    """The returned threshold equals torch.kthvalue over all scores (PLATON's scores are not changed
    by masking, so they can be read after the step)."""
    scores = torch.cat([chunk.flatten().clone() for chunk in pruner.slab_scores()])
    k = int(pruner.total_numel * (1 - pruner.last_step_stats.remaining_ratio))
    return torch.kthvalue(scores, k).values.item() == threshold


def run(args, delta_t: int, kernels: str, model, initial_state, batch, seq, vocab):
    model.load_state_dict(initial_state)
    optimizer = torch.optim.Adamax(model.parameters(), lr=1e-4)
    schedule = CubicSchedule(args.total_steps, initial_threshold=1.0, final_threshold=args.final_threshold,
                             warmup_steps=args.warmup_steps, initial_warmup=args.initial_warmup,
                             final_warmup=args.final_warmup, deltaT=delta_t)
    pruner = PlatonPruner(model, schedule, beta1=0.85, beta2=0.95, num_threads=args.pruner_threads or None,
                          kernels=kernels)
    generator = torch.Generator().manual_seed(args.seed)
    plain, pruning, checked = [], {"warmup": [], "cubic": [], "final": []}, None
    plain_cpu, pruning_cpu = 0.0, 0.0
    searched = {"cubic": 0, "final": 0}
    for t in range(1, args.total_steps + 1):
        ids = torch.randint(0, vocab, (batch, seq), generator=generator)
        labels = torch.randint(0, 2, (batch,), generator=generator)
        started, started_cpu = time.perf_counter(), time.process_time()
        model(input_ids=ids, labels=labels).loss.backward()
        optimizer.step()
        middle, middle_cpu = time.perf_counter(), time.process_time()
        _, threshold = pruner.step(t)
        ended, ended_cpu = time.perf_counter(), time.process_time()
        plain_cpu += middle_cpu - started_cpu
        pruning_cpu += ended_cpu - middle_cpu
        optimizer.zero_grad(set_to_none=True)
        plain.append(middle - started)
        phase = schedule.phase(t)
        pruning[phase].append(ended - middle)
        if pruner.last_step_stats.threshold_searched:
            searched[phase] += 1
        if threshold is not None and pruner.last_step_stats.threshold_searched:
            checked = (t, check_threshold(pruner, threshold))
        print(f"  {pruner.kernel_name} dT={delta_t:<2} t={t:<3} {phase:<6} plain {middle - started:6.3f} s  pruner "
              f"{ended - middle:6.3f} s  threshold {threshold}", flush=True)
    state_bytes = sum(tensor.numel() * tensor.element_size() for tensor in pruner.state_dict()["tensors"].values())
    # one slab-sized work buffer, and two more while a threshold is searched (the kernels' scratch)
    buffer_bytes = 3 * sum(b.numel() * b.element_size() for b in pruner.layout.work_buffers.values())
    return (plain, pruning, searched, checked, state_bytes, buffer_bytes, pruner.total_numel,
            pruning_cpu / plain_cpu, pruner.kernel_name)


def main(argv=None):
    args = parse_args(argv)
    check_args(args)
    torch.manual_seed(args.seed)
    model, batch, seq, vocab = build(args.quick)
    initial_state = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    print(f"load average at the start: {os.getloadavg()}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads"
          f"{f' ({args.pruner_threads} in pruner.step)' if args.pruner_threads else ''}; "
          f"{'quick' if args.quick else 'BERT-base'} "
          f"encoder, batch {batch} x {seq}; schedule T={args.total_steps}, warmup_steps={args.warmup_steps}, "
          f"initial_warmup={args.initial_warmup}, final_warmup={args.final_warmup}")
    results = {}
    for kernels in args.kernels:
        for delta_t in args.deltaT:
            results[kernels, delta_t] = run(args, delta_t, kernels, model, initial_state, batch, seq, vocab)
    print()
    print(f"load average (1, 5, 15 min) at the end: {os.getloadavg()} on {os.cpu_count()} CPUs "
          "(other processes on the machine slow both columns)")
    for (_, delta_t), result in results.items():
        plain, pruning, searched, checked, state_bytes, buffer_bytes, numel, cpu_fraction, kernel_name = result
        step = statistics.mean(plain)
        whole = sum(sum(times) for times in pruning.values()) / sum(plain)
        print(f"deltaT={delta_t}, {kernel_name} kernels: plain step {step:.3f} s (median {statistics.median(plain):.3f}); "
              f"selected weights {numel:,}")
        for phase, times in pruning.items():
            if times:
                print(f"  {phase:<6} phase: pruner step {statistics.mean(times) * 1e3:7.1f} ms mean "
                      f"({statistics.median(times) * 1e3:7.1f} median) over {len(times):2d} steps = "
                      f"{statistics.mean(times) / step:6.2%} of the plain step"
                      + (f"; threshold searched {searched[phase]}x" if phase in searched else ""))
        print(f"  whole schedule: pruner / plain = {whole:.2%} of wall time ({cpu_fraction:.2%} of CPU time)")
        print(f"  pruner state: {state_bytes:,} bytes = {state_bytes / numel:.1f} bytes "
              f"({state_bytes / numel / 4:.2f} float32) per selected weight; "
              f"work buffers {buffer_bytes:,} bytes at most")
        if checked is not None:
            print(f"  threshold at t={checked[0]} equals torch.kthvalue over all {numel:,} scores: {checked[1]}")
    return 0 if all(r[3] is None or r[3][1] for r in results.values()) else 1


if __name__ == "__main__":
    run_cli(main)
