"""The state of a training run: where the loop is, what it was built from, and how it is saved and resumed.

    Run                    what the loop works with and never rebinds (flags, model, methods, ...)
    LoopState              where the loop is; saved in every checkpoint
    new_optimizer          the optimizer and LR schedule LoopState describes
    save_training_state    a checkpoint-<update>/ directory (mt_dnn.checkpoint)
    find_resume_checkpoint, reconcile_config, restore_training_state
                           --resume / --model_ckpt, restored in one place

A checkpoint holds the loop state, the resolved flags, the model, the optimizer,
the LR schedule, the RNG states of every process, and each training method's
state under the method's name (methods.MethodStack.state_dict).
"""
import logging
import os
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

import torch

from data_utils.errors import Interrupted, UserError
from mt_dnn.checkpoint import latest_checkpoint, rng_state, save_checkpoint, set_rng_state
from mt_dnn.distributed import all_gather_objects, barrier
from mt_dnn.optim import build_optimizer, build_schedule
from mt_dnn.options import build_parser, training_flags

logger = logging.getLogger("train")
TRAINING_FLAGS = training_flags(build_parser())


@dataclass(frozen=True)
class Run:
    """What the loop's helpers work with: fixed for the whole run."""
    args: Any
    model: torch.nn.Module          # the MTDNNModel itself (not its DDP wrapper)
    tokenizer: Any
    device: torch.device
    dist_info: Any
    methods: Any                    # methods.MethodStack
    eval_sets: list                 # [(dev dataset, test dataset or None)]
    check_batch: tuple              # (task, collated rows) on which exports are checked
    total_steps: int
    writer: Optional[Any] = None    # TensorBoard SummaryWriter on the main process
    started_files: set = field(default_factory=set)   # append-only files this process began (metrics.jsonl)


@dataclass
class LoopState:
    """Where the loop is; saved in checkpoints so a resumed run continues exactly."""
    global_step: int = 0
    epoch: int = 0
    next_batch: int = 0                 # index in the epoch's batch list of the next batch to run
    running_loss: float | None = None
    best_metric: float | None = None
    last_metrics: dict = field(default_factory=dict)
    schedule_span: int = 0              # updates covered by the current LR schedule (a method may restart it)
    schedule_warmup: float = 0.0
    schedule_shape: str = "warmup_linear"
    schedule_lr: float = 0.0


def initial_state(args, total_steps: int) -> LoopState:
    return LoopState(schedule_span=total_steps, schedule_warmup=args.warmup, schedule_shape=args.warmup_schedule,
                     schedule_lr=args.learning_rate)


def new_optimizer(args, model: torch.nn.Module, state: LoopState):
    """(optimizer, LR schedule) over `model`'s parameters, as `state` describes the schedule."""
    optimizer = build_optimizer(args.optimizer, model.named_parameters(), state.schedule_lr, args.weight_decay,
                                max_grad_norm=args.grad_clipping)
    return optimizer, build_schedule(optimizer, state.schedule_span, state.schedule_warmup, state.schedule_shape)


def restart_optimizer(args, model: torch.nn.Module, state: LoopState, learning_rate: float, total_steps: int):
    """A fresh optimizer and a linear-decay schedule over the updates left, at `learning_rate`
    (a method asked for it: GPP at each phase)."""
    state.schedule_lr, state.schedule_span = learning_rate, total_steps - state.global_step
    state.schedule_warmup, state.schedule_shape = 0.0, "warmup_linear"
    return new_optimizer(args, model, state)


def find_resume_checkpoint(args) -> Optional[str]:
    if args.model_ckpt:
        return args.model_ckpt
    if args.resume:
        path = latest_checkpoint(args.output_dir)
        if path is None:
            raise UserError(f"--resume: no checkpoint-<update> directory in --output_dir {args.output_dir}; "
                            "drop --resume to start afresh or pass --model_ckpt PATH")
        return path
    return None


def reconcile_config(args, saved: dict) -> list:
    """Resume with the checkpoint's training flags (so it continues the same run); other flags follow
    the command line. Returns one warning per conflict, saying which value wins."""
    warnings_ = []
    for key, saved_value in saved.items():
        if not hasattr(args, key) or getattr(args, key) == saved_value:
            continue
        if key in TRAINING_FLAGS:
            warnings_.append(f"--{key}: the checkpoint's {saved_value!r} wins over the command line's "
                             f"{getattr(args, key)!r} (resume continues the saved run)")
            setattr(args, key, saved_value)
        elif key not in ("resume", "model_ckpt"):
            warnings_.append(f"--{key}: the command line's {getattr(args, key)!r} wins over the checkpoint's "
                             f"{saved_value!r}")
    return warnings_


def save_training_state(run: Run, state: LoopState, optimizer, lr_schedule) -> None:
    """checkpoint-<update>/ in --output_dir (every process takes part: RNG states are gathered)."""
    rng_states = all_gather_objects(run.dist_info, rng_state())
    if run.dist_info.is_main:
        save_checkpoint(run.args.output_dir, state.global_step, {
            "loop": asdict(state), "config": vars(run.args), "model": run.model.state_dict(),
            "optimizer": optimizer.state_dict(), "lr_schedule": lr_schedule.state_dict(),
            **run.methods.state_dict(), "rng": rng_states[0], "rng_per_rank": rng_states},
            keep=run.args.keep_checkpoints, run_id=getattr(run.args, "run_id", None))
    barrier(run.dist_info)


def restore_training_state(run: Run, resumed: dict, path: str):
    """Everything a checkpoint holds, back in place: the model, the methods, the loop state, the
    optimizer and schedule it describes, and last the RNGs (so that nothing built before moves them).
    Returns (loop state, optimizer, LR schedule)."""
    try:
        run.model.load_state_dict(resumed["model"])
    except RuntimeError as err:
        detail = " ".join(str(err).split(":", 1)[-1].split())[:120]
        raise UserError(f"checkpoint {path}: its model does not fit --init_checkpoint {run.args.init_checkpoint} "
                        f"({detail}); resume with the model it was trained from") from None
    run.methods.load_state_dict(resumed)
    state = LoopState(**resumed["loop"])
    optimizer, lr_schedule = new_optimizer(run.args, run.model, state)
    optimizer.load_state_dict(resumed["optimizer"])
    lr_schedule.load_state_dict(resumed["lr_schedule"])
    rank, saved = run.dist_info.rank, resumed["rng_per_rank"]
    set_rng_state(saved[rank] if run.dist_info.world_size == len(saved) else resumed["rng"])
    logger.info("resumed from %s at update %d (epoch %d, batch %d)", path, state.global_step, state.epoch,
                state.next_batch)
    return state, optimizer, lr_schedule


def stop_after_signal(run, state, optimizer, lr_schedule, name: str, status: int) -> None:
    """End the run after a SIGTERM/SIGINT (RunDirectory.pending_signal): a checkpoint of this update when
    --save_per_updates is set, so that --resume continues exactly, a line in the log, exit 143 / 130."""
    args = run.args
    if args.save_per_updates:
        if state.global_step % args.save_per_updates != 0:
            save_training_state(run, state, optimizer, lr_schedule)
        saved = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
        what = f"checkpoint {saved} holds it: continue with --resume"
    else:
        what = "no checkpoint was written (pass --save_per_updates N to be able to --resume)"
    message = f"stopped by {name} after update {state.global_step} of {run.total_steps}; {what}"
    logger.warning("%s", message)
    stop = Interrupted(message, status)
    stop.logged = True
    raise stop
