"""The state of a training run: where the loop is, what it was built from, and how it is saved and resumed.

    Run                    what the loop works with and never rebinds (flags, model, methods, ...)
    LoopState              where the loop is; saved in every checkpoint
    new_optimizer          the optimizer and its LR schedule (training.optim.PhasedLR: the run's phases,
                           train.py's and those the methods declare, restarting the optimizer)
    save_training_state    a checkpoint-<update>/ directory (training.checkpoint)
    find_resume_checkpoint, reconcile_config, restore_training_state
                           --resume / --model_ckpt, restored in one place

A checkpoint holds the loop state, the resolved flags, the model, the optimizer,
the LR schedule, the RNG states of every process, and each training method's
state under the method's name (methods.MethodStack.state_dict).

Checkpoints written before the LR schedule knew its phases still resume exactly:
their loop state carries four `schedule_*` fields (the LR schedule restarted last)
and their LR schedule is a LambdaLR counting the updates since that restart;
`check_resumable` turns them into the phase schedule's state (`legacy_schedule`).
"""
import logging
import math
import os
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Optional

import torch

from data_utils.errors import Interrupted, UserError
from training.checkpoint import (STATE_TENSORS, is_count, latest_checkpoint, refuse, rng_state, save_checkpoint,
                               set_rng_state)
from data_utils.distributed import all_gather_objects, barrier
from methods.base import LRPhase
from training.optim import WARMUP_SCHEDULES, PhasedLR, PhaseSchedule, build_optimizer, lr_multiplier
from training.options import build_parser, training_flags, validate

logger = logging.getLogger("train")


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
    precision: Optional[Any] = None   # training.precision.Precision (--precision)
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
    loss_scale: float | None = None       # --precision fp16: the dynamic loss scale (training.precision)
    loss_scale_good_updates: int = 0      # updates since it last changed


# Fields of the loop state of checkpoints written before the phase schedule: the LR schedule restarted last.
LEGACY_SCHEDULE_FIELDS = ("schedule_span", "schedule_warmup", "schedule_shape", "schedule_lr")


def new_optimizer(args, model: torch.nn.Module, total_steps: int, methods):
    """(optimizer, LR schedule) over `model`'s parameters: --optimizer, and the run's phases: from update 1
    at --learning_rate with --warmup/--warmup_schedule, then each phase a method declares
    (methods.MethodStack.optimizer_phases: GPP's pruning and retraining), before which the LR schedule
    restarts the optimizer."""
    phases = PhaseSchedule(total_steps, [LRPhase("training", 1, args.learning_rate, args.warmup,
                                                 args.warmup_schedule), *methods.optimizer_phases()])
    try:
        optimizer = build_optimizer(args.optimizer, model.named_parameters(), phases.lr(1), args.weight_decay,
                                    max_grad_norm=args.grad_clipping, impl=args.optimizer_impl)
    except ValueError as err:       # --optimizer_impl foreach/numba whose check fails on the run's device
        raise UserError(f"--optimizer_impl {args.optimizer_impl}: {err}") from None
    return optimizer, PhasedLR(optimizer, phases)


def first_phase_multiplier(args, total_steps: int):
    """t -> the factor on --learning_rate at update t of the run's first LR phase (--warmup, --warmup_schedule):
    the schedule a method's own optimizer follows (movement's scores)."""
    return lambda t: lr_multiplier(t - 1, total_steps, args.warmup, args.warmup_schedule)


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


# Inputs a resumed run may find elsewhere: when the checkpoint's path is gone and the command line names an
# existing one (the folder moved), the command line's is used (the canonical data's manifest still checks it).
MOVABLE_PATHS = ("data_dir", "init_checkpoint", "kd_teacher", "teacher_model_path", "task_def")


def reconcile_config(args, saved: dict) -> list:
    """Resume with the checkpoint's training flags (so it continues the same run); other flags follow
    the command line. Returns one warning per conflict, saying which value wins. A saved training flag
    that is not a value of that flag, or that train.py's checks (options.validate) refuse, is refused
    naming the checkpoint's file and key."""
    path = find_resume_checkpoint(args)
    warnings_, taken = [], []
    parser = build_parser()                   # the core flags and every registered method's
    resumed_flags = training_flags(parser)
    actions = {action.dest: action for action in parser._actions}
    for key, saved_value in saved.items():
        if not hasattr(args, key) or getattr(args, key) == saved_value:
            continue
        given = getattr(args, key)
        if key in MOVABLE_PATHS and isinstance(saved_value, str) and not os.path.exists(saved_value) \
                and isinstance(given, str) and os.path.exists(given):
            warnings_.append(f"--{key}: the checkpoint's {saved_value!r} no longer exists; the command line's "
                             f"{given!r} is used (a moved folder must hold what the run was started with)")
            continue
        if key in resumed_flags:
            problem = _flag_value_problem(actions[key], saved_value)
            if problem:
                refuse(path, f"config.{key}", problem)
            warnings_.append(f"--{key}: the checkpoint's {saved_value!r} wins over the command line's "
                             f"{getattr(args, key)!r} (resume continues the saved run)")
            setattr(args, key, saved_value)
            taken.append(key)
        elif key not in ("resume", "model_ckpt"):
            warnings_.append(f"--{key}: the command line's {getattr(args, key)!r} wins over the checkpoint's "
                             f"{saved_value!r}")
    try:
        validate(args)
    except UserError as err:
        culprit = next((key for key in taken if f"--{key} " in f"{err} "), None)
        if culprit is None:
            raise
        refuse(path, f"config.{culprit}", f"is refused by train.py's checks ({err})")
    return warnings_


def _flag_value_problem(action, value) -> Optional[str]:
    """Why `value` cannot be what the parser gives for `action`'s flag (None: it can)."""
    if value is None:
        return None if action.default is None else f"is null, but {action.option_strings[0]} always has a value"
    if action.nargs == 0:                                  # store_true
        wanted, ok = "true or false", isinstance(value, bool)
    elif action.type in (int, float):
        wanted = "an integer" if action.type is int else "a number"
        ok = isinstance(value, action.type if action.type is int else (int, float)) and not isinstance(value, bool)
    else:
        wanted, ok = "a string", isinstance(value, str)
    if not ok:
        return f"is {value!r}, not {wanted} as {action.option_strings[0]} takes"
    if action.choices is not None and value not in action.choices:
        return f"is {value!r}, not one of {action.option_strings[0]}'s choices ({', '.join(map(str, action.choices))})"
    return None


def save_training_state(run: Run, state: LoopState, optimizer, lr_schedule) -> None:
    """checkpoint-<update>/ in --output_dir (every process takes part: RNG states are gathered)."""
    rng_states = all_gather_objects(run.dist_info, rng_state())
    if run.dist_info.is_main:
        save_checkpoint(run.args.output_dir, state.global_step, {
            "loop": asdict(state), "config": vars(run.args), "model": run.model.state_dict(),
            "optimizer": optimizer.state_dict(), "lr_schedule": lr_schedule.state_dict(),
            **run.methods.state_dict(), "rng": rng_states[0], "rng_per_rank": rng_states},
            keep=run.args.keep_checkpoints, run_id=getattr(run.args, "run_id", None),
            protect=[run.args.model_ckpt])       # a checkpoint the user named is never rotated away
    barrier(run.dist_info)


def restore_training_state(run: Run, resumed: dict, path: str, batches_per_epoch: Optional[int] = None):
    """Everything a checkpoint holds, back in place: the model, the methods, the loop state, the
    optimizer and schedule it describes, and last the RNGs (so that nothing built before moves them).
    The checkpoint is first checked against this run (check_resumable). Returns (loop state, optimizer,
    LR schedule)."""
    state, schedule_state = check_resumable(run, resumed, path, batches_per_epoch)
    try:
        run.model.load_state_dict(resumed["model"])
    except RuntimeError as err:
        detail = " ".join(str(err).split(":", 1)[-1].split())[:120]
        raise UserError(f"checkpoint {path}: its model does not fit --init_checkpoint {run.args.init_checkpoint} "
                        f"({detail}); resume with the model it was trained from") from None
    names = ", ".join(method.name for method in run.methods.methods)
    try:
        run.methods.load_state_dict(resumed)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as err:   # the pruners' refusals
        problem = f"lacks {err}" if isinstance(err, KeyError) else " ".join(str(err).split())[:200]
        refuse(path, names, f"does not fit this run: {problem}")
    optimizer, lr_schedule = new_optimizer(run.args, run.model, run.total_steps, run.methods)
    optimizer.load_state_dict(resumed["optimizer"])
    lr_schedule.load_state_dict(schedule_state)     # after the optimizer's: it may restart it (a new phase)
    rank, saved = run.dist_info.rank, resumed["rng_per_rank"]
    set_rng_state(saved[rank] if run.dist_info.world_size == len(saved) else resumed["rng"])
    logger.info("resumed from %s at update %d (epoch %d, batch %d)", path, state.global_step, state.epoch,
                state.next_batch)
    return state, optimizer, lr_schedule


# ---- a checkpoint against the run that resumes it (training.checkpoint.check_layout has checked its layout)

def check_resumable(run: Run, resumed: dict, path: str, batches_per_epoch: Optional[int] = None):
    """Refuse a checkpoint this run cannot continue, before anything is restored, with one line naming its
    file and key: a loop position beyond this run (update, epoch, batch of the epoch), a loop state of other
    fields or types, an optimizer state of other groups, entries, shapes or dtypes than a step of this run's
    optimizer gives its parameters, an LR schedule of another layout or other phases, a method without its
    state. Returns (the loop state, the LR schedule's state: a legacy one turned into today's)."""
    args, loop = run.args, resumed["loop"]
    known = {f.name for f in fields(LoopState)} | set(LEGACY_SCHEDULE_FIELDS)
    for key, value in loop.items():
        problem = _loop_value_problem(key, value) if key in known else "is not a field of the loop state"
        if problem:
            refuse(path, f"loop.{key}", problem)
    state = LoopState(**{key: value for key, value in loop.items() if key not in LEGACY_SCHEDULE_FIELDS})
    legacy = {key: loop[key] for key in LEGACY_SCHEDULE_FIELDS if key in loop}
    for key, value, limit, what in (
            ("global_step", state.global_step, run.total_steps, f"the {run.total_steps} updates of this run"),
            ("schedule_span", legacy.get("schedule_span"), run.total_steps,
             f"the {run.total_steps} updates of this run"),
            ("epoch", state.epoch, args.epochs - 1, f"the last epoch {args.epochs - 1} of this run (--epochs "
                                                    f"{args.epochs})"),
            ("next_batch", state.next_batch, batches_per_epoch, f"the {batches_per_epoch} batches of an epoch")):
        if limit is not None and value is not None and value > limit:
            refuse(path, f"loop.{key}", f"is {value}, beyond {what}")
    optimizer, lr_schedule = new_optimizer(args, run.model, run.total_steps, run.methods)
    _check_optimizer(run, optimizer, resumed["optimizer"], path)
    fresh, saved = lr_schedule.state_dict(), resumed["lr_schedule"]
    if legacy:
        saved = legacy_schedule(legacy, saved, fresh, state, run.total_steps, path)
    _check_schedule(fresh, saved, state, path)
    for method in run.methods.methods:
        if method.name not in resumed:
            refuse(path, method.name, f"is missing: the checkpoint holds no state of this run's method "
                                      f"{method.name} (was it saved by a run with another --pruner?)")
    return state, saved


def _loop_value_problem(key: str, value) -> Optional[str]:
    """Why `value` cannot be the loop state's field `key` (None: it can)."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if key in ("global_step", "epoch", "next_batch"):
        return None if is_count(value) else f"is {value!r}, not a count (a whole number >= 0)"
    if key == "schedule_span":
        return None if is_count(value) and value >= 1 else f"is {value!r}, not a number of updates >= 1"
    if key == "running_loss":
        return None if value is None or (number and math.isfinite(value)) else f"is {value!r}, not a finite loss"
    if key == "best_metric":
        return None if value is None or number else f"is {value!r}, not a metric value"
    if key == "last_metrics":
        return None if isinstance(value, dict) else f"is a {type(value).__name__}, not a mapping of metrics"
    if key == "schedule_warmup":
        return None if number and 0 <= value < 1 else f"is {value!r}, not a warmup fraction in [0, 1)"
    if key == "schedule_shape":
        return None if value in WARMUP_SCHEDULES else f"is {value!r}, not one of {', '.join(WARMUP_SCHEDULES)}"
    if key == "schedule_lr":
        return None if number and 0 < value < math.inf else f"is {value!r}, not a learning rate > 0"
    return None


PROBE_SHAPE = (2, 3)


def _step_layout(args) -> dict:
    """{key: value} of the per-parameter state one step of this run's optimizer writes, on a probe
    parameter of shape PROBE_SHAPE (float32): moments have its shape, step counts their own."""
    probe = torch.nn.Parameter(torch.zeros(PROBE_SHAPE))
    optimizer = build_optimizer(args.optimizer, [("probe.weight", probe)], 1e-3, 0.0, max_grad_norm=0.0)
    probe.grad = torch.ones_like(probe)
    optimizer.step()
    return dict(optimizer.state[probe])


def _check_optimizer(run: Run, fresh, saved: dict, path: str) -> None:
    """The saved optimizer state against a fresh optimizer over this model: the same groups of the same
    parameters, and each parameter's entries those a step writes (missing entries are parameters that had
    no gradient yet), shaped and typed like the parameter (moments) or like the probe's (step counts)."""
    groups, saved_groups = fresh.state_dict()["param_groups"], saved["param_groups"]
    if len(saved_groups) != len(groups):
        refuse(path, "optimizer.param_groups", f"has {len(saved_groups)} groups, this run's --optimizer "
                                               f"{run.args.optimizer} has {len(groups)}")
    for index, (group, saved_group) in enumerate(zip(groups, saved_groups)):
        if saved_group["params"] != group["params"]:
            refuse(path, f"optimizer.param_groups.{index}.params",
                   f"lists {len(saved_group['params'])} parameters, this model's group has {len(group['params'])}")
        lr = saved_group.get("lr")
        if not isinstance(lr, (int, float)) or isinstance(lr, bool) or not 0 <= lr < math.inf:
            refuse(path, f"optimizer.param_groups.{index}.lr", f"is {lr!r}, not a learning rate >= 0")
    names = {param: name for name, param in run.model.named_parameters()}
    params = [param for group in fresh.param_groups for param in group["params"]]
    layout = _step_layout(run.args)
    for index, entry in saved["state"].items():
        key = f"optimizer.state.{index}"
        if index >= len(params):
            refuse(path, key, f"is the state of parameter {index}, but this model's optimizer has {len(params)}")
        param = params[index]
        if set(entry) != set(layout):
            refuse(path, key, f"holds {', '.join(sorted(entry)) or 'nothing'}, a step of --optimizer "
                              f"{run.args.optimizer} writes {', '.join(sorted(layout))}")
        for name, value in entry.items():
            wanted = layout[name]
            if not isinstance(wanted, torch.Tensor):
                continue
            moment = tuple(wanted.shape) == PROBE_SHAPE
            shape, dtype = (param.shape, param.dtype) if moment else (wanted.shape, wanted.dtype)
            where = f"parameter {index} ({names.get(param, '?')})"
            if not isinstance(value, torch.Tensor) or value.shape != shape:
                got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
                refuse(path, f"{key}.{name}", f"has shape {got}, {where} needs {tuple(shape)}", STATE_TENSORS)
            if value.dtype != dtype:
                refuse(path, f"{key}.{name}", f"is {value.dtype}, {where} needs {dtype}", STATE_TENSORS)


def _check_schedule_entries(fresh: dict, saved: dict, state: LoopState, path: str) -> None:
    """The entries an LR schedule's load_state_dict reads, one per optimizer group, and a step count no
    larger than the updates done (today's PhasedLR state and the LambdaLR state of older checkpoints)."""
    for key in ("base_lrs", "_last_lr"):
        if not isinstance(saved.get(key), list) or len(saved[key]) != len(fresh[key]):
            refuse(path, f"lr_schedule.{key}", f"is not a list of {len(fresh[key])} (one per optimizer group)")
    if not is_count(saved.get("last_epoch")) or saved["last_epoch"] > state.global_step:
        refuse(path, "lr_schedule.last_epoch", f"is {saved.get('last_epoch')!r}, not a count of schedule steps up "
                                               f"to loop.global_step {state.global_step}")


def _check_schedule(fresh: dict, saved: dict, state: LoopState, path: str) -> None:
    """The saved PhasedLR state (training.optim): its entries, the phases of this run (their flags are
    restored from the checkpoint, so they agree unless the file was edited), and the start of a phase the
    optimizer's state can belong to."""
    _check_schedule_entries(fresh, saved, state, path)
    if saved.get("phases") != fresh["phases"]:
        refuse(path, "lr_schedule.phases", f"is {saved.get('phases')!r}, this run's LR phases are {fresh['phases']!r} "
                                           "([name, first update, learning rate, warmup, shape])")
    starts = [start for _, start, *_ in fresh["phases"] if start <= state.global_step + 1]
    if saved.get("phase_start") not in starts:
        refuse(path, "lr_schedule.phase_start", f"is {saved.get('phase_start')!r}, not the first update of a phase "
                                                f"begun by update {state.global_step + 1} ({starts})")


def legacy_schedule(legacy: dict, saved: dict, fresh: dict, state: LoopState, total_steps: int, path: str) -> dict:
    """The PhasedLR state equal to the LR schedule of a checkpoint written before the phase schedule: its
    loop state's four `legacy` schedule_* fields describe the LR schedule restarted last (before update s,
    over the T − s + 1 updates left, at schedule_lr with schedule_warmup/shape) and `saved`, a LambdaLR
    state, counts the updates since (last_epoch = global_step − s + 1). Refused unless every field is there
    and that restart is where a phase of this run starts, with the same span, rate, warmup and shape; the
    next update then continues it, or restarts the optimizer if it begins the next phase, as the older
    code did."""
    for key in LEGACY_SCHEDULE_FIELDS:
        if key not in legacy:
            refuse(path, f"loop.{key}", "is missing: a loop state with schedule_* fields (written before the LR "
                                        f"schedule knew its phases) has all of {', '.join(LEGACY_SCHEDULE_FIELDS)}")
    _check_schedule_entries(fresh, saved, state, path)
    if not isinstance(saved.get("lr_lambdas"), list) or any(fn is not None for fn in saved["lr_lambdas"]):
        refuse(path, "lr_schedule.lr_lambdas", "holds a saved function state; train.py's schedules save none")
    start = state.global_step - saved["last_epoch"] + 1
    phase = {phase_start: [phase_start, rate, warmup, shape] for _, phase_start, rate, warmup, shape in fresh["phases"]}
    described = [total_steps - legacy["schedule_span"] + 1, legacy["schedule_lr"], legacy["schedule_warmup"],
                 legacy["schedule_shape"]]
    if phase.get(start) != described:
        refuse(path, "loop.schedule_lr", f"with the other schedule_* fields and lr_schedule.last_epoch describes an "
                                         f"LR schedule restarted before update {start} over {legacy['schedule_span']} "
                                         f"updates at {legacy['schedule_lr']!r} (warmup {legacy['schedule_warmup']!r}, "
                                         f"{legacy['schedule_shape']}), which no LR phase of this run matches: "
                                         f"{fresh['phases']}")
    today = {key: value for key, value in saved.items() if key != "lr_lambdas"}
    return dict(today, last_epoch=state.global_step, phase_start=start, phases=fresh["phases"])


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
