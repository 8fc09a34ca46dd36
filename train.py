"""Multi-task fine-tuning of a shared encoder, with pruning or distillation inside the loop.

    python train.py --train_datasets rte,mrpc --test_datasets rte,mrpc --pruner platon ...

Reads top to bottom: main = parse -> setup (output directory, data, model, methods
(pruning, distillation), optimizer/schedule) -> train_loop (forward -> loss -> backward
-> clip -> optimizer.step() -> methods.after_update(t) [the pruner's step] ->
lr_schedule.step() -> log -> eval/save) -> finish_run (outputs), all inside the
RunDirectory that owns --output_dir. The methods join the loop through the hooks of
`methods.base`; the loop names none of them. `--help` lists every flag.
"""
import dataclasses
import logging
import math
import time

import torch
import transformers
from tqdm import tqdm

from data_utils.batcher import MultiTaskBatchSampler, collate
from data_utils.errors import UserError, run_cli
from data_utils.task_def import load_task_defs
from methods import MethodContext, build_methods
from training.checkpoint import latest_checkpoint, load_checkpoint
from data_utils.distributed import broadcast_flag, init_distributed
from training.optim import optimizer_description, step_with_global_clip
from training.options import build_parser, validate
from training.outputs import evaluate, finish_run, record_evaluation
from training.precision import Precision, resolve_precision
from training.run_dir import RunDirectory, guard_process_exit
from training.run_state import (LoopState, Run, find_resume_checkpoint, first_phase_multiplier, new_optimizer,
                                reconcile_config, restore_training_state, save_training_state, stop_after_signal)
from training.startup import (build_model, load_data, log_summary, open_tensorboard, pick_device, seed_everything,
                              set_threads, setup_output, wrap_distributed, write_run_config)

logger = logging.getLogger("train")


def task_loss(logits, labels, task):
    """The loss the task definition names (`loss:`, MT-DNN's criterion names)."""
    if task.loss == "MseCriterion":
        return torch.nn.functional.mse_loss(logits.view(-1), labels)
    return torch.nn.functional.cross_entropy(logits, labels)


def forward_loss(model, dataset, indices, device, methods, precision):
    """The loss of one micro-batch: the task's loss, then each method's terms (under --precision's autocast;
    the loss itself in fp32)."""
    batch = collate([dataset.examples[i] for i in indices], dataset.task)
    inputs = tuple(batch[key].to(device) for key in ("input_ids", "token_type_ids", "attention_mask"))
    with precision.autocast():
        out = model(*inputs, task=dataset.task.name, output_hidden_states=methods.needs_hidden_states)
        loss = methods.loss(task_loss(out.logits.float(), batch["labels"].to(device), dataset.task), inputs, out)
    return loss.float()


def refuse_nonfinite_loss(args, state, loss, dataset, batch_index) -> None:
    """A NaN/inf loss stops the run with a one-line error, or with --skip_nan_batches is logged and skipped."""
    if not args.skip_nan_batches:
        last = latest_checkpoint(args.output_dir)
        raise UserError(f"the loss became {loss.item()} at update {state.global_step + 1} (task {dataset.task.name}, "
                        f"epoch {state.epoch}); lower --learning_rate or pass --skip_nan_batches; "
                        f"{'the last checkpoint ' + last + ' is intact' if last else 'no checkpoint was written (see --save_per_updates)'}")
    logger.warning("warning: skipped batch %d of epoch %d: non-finite loss %s (--skip_nan_batches)",
                   batch_index, state.epoch, loss.item())


def log_update(run: Run, state, loss, scalars: dict, learning_rate: float, progress, started: float) -> None:
    """The progress bar, TensorBoard (loss, lr, the methods' scalars) and the log line of one update."""
    args, t = run.args, state.global_step
    if state.running_loss is not None:
        progress.set_postfix(loss=f"{state.running_loss:.4f}")
    if run.writer is not None:
        if loss is not None:      # the last micro-batch's loss, and its parts (task, each method's terms)
            scalars = {"train/loss": loss.item(), **{f"train/loss_{part}": float(value)
                                                     for part, value in run.methods.loss_parts.items()}, **scalars}
        if t % max(1, args.log_per_updates) == 0:
            scalars = {**scalars, **run.methods.periodic_scalars()}
        for tag, value in {**scalars, "train/lr": learning_rate}.items():
            run.writer.add_scalar(tag, value, t)
    if args.log_per_updates and t % args.log_per_updates == 0:
        logger.info("update %d/%d epoch %d loss %.4f lr %.3g elapsed %.0fs", t, run.total_steps, state.epoch,
                    state.running_loss or float("nan"), learning_rate, time.perf_counter() - started)


def setup(args, owner):
    """Everything before the loop: the output directory and log, data, model, methods, optimizer, LR schedule
    and, when resuming, the checkpoint's state. Returns (run, sampler, train_sets, state, optimizer, lr_schedule)."""
    resume_path = find_resume_checkpoint(args)
    resumed = load_checkpoint(resume_path) if resume_path else None
    config_warnings = reconcile_config(args, resumed["config"]) if resumed else []
    validate(args)
    task_defs = load_task_defs(args.task_def)        # a bad task definition is refused before anything is written
    transformers.utils.logging.disable_progress_bar()
    dist_info = init_distributed(args.device)
    setup_output(args, owner, dist_info, resumed, resume_path)
    for warning in config_warnings:
        logger.warning("warning: %s", warning)
    seed_everything(args.seed)
    device = pick_device(args.device, dist_info)
    logger.info(set_threads(args.num_threads))

    # ---- data
    train_sets, eval_sets = load_data(args, task_defs)
    sampler = MultiTaskBatchSampler([len(d) for d in train_sets], args.batch_size, mix_opt=args.mix_opt,
                                    ratio=args.ratio, seed=args.seed, rank=dist_info.rank,
                                    world_size=dist_info.world_size)
    total_steps = args.epochs * len(sampler) // args.grad_accumulation_step
    if total_steps < 1:
        raise UserError(f"--grad_accumulation_step {args.grad_accumulation_step} exceeds the "
                        f"{len(sampler) * args.epochs} batches of the run; lower it")
    check_rows = eval_sets[0][0] if eval_sets else train_sets[0]

    # ---- model, methods (pruning, distillation), optimizer and LR schedule
    core, tokenizer = build_model(args, train_sets, eval_sets, device)
    requested = args.precision
    args.precision = resolve_precision(args.precision, device)      # config.json and a resume get what runs
    precision = Precision(args.precision, device)
    methods = build_methods(MethodContext(args, core, total_steps, device, dist_info, logger,
                                          lr_multiplier=first_phase_multiplier(args, total_steps),
                                          grad_scale=lambda: precision.current_scale))
    state = LoopState()
    optimizer, lr_schedule = new_optimizer(args, core, total_steps, methods)    # the methods' LR phases included
    run = Run(args, core, tokenizer, device, dist_info, methods, eval_sets, total_steps=total_steps,
              precision=precision,
              check_batch=(check_rows.task.name, collate(check_rows.examples[:args.batch_size_eval], check_rows.task)))
    if resumed:       # checked against this run (its length, parameters, methods) before anything is written
        state, optimizer, lr_schedule = restore_training_state(run, resumed, resume_path, len(sampler))
    run = dataclasses.replace(run, writer=open_tensorboard(args, dist_info, resumed))
    write_run_config(args, dist_info, device, total_steps, len(sampler))
    log_summary(args, train_sets, eval_sets, dist_info, len(sampler), total_steps, core, device, methods)
    logger.info("optimizer step: %s", optimizer_description(optimizer))
    if args.precision != "fp32" or requested != args.precision:
        logger.info("precision: %s%s", precision.describe(state),
                    f" (--precision {requested})" if requested != args.precision else "")
    return run, sampler, train_sets, state, optimizer, lr_schedule


def train_loop(run: Run, owner, sampler, train_sets, state, optimizer, lr_schedule):
    """Epochs of updates until --epochs are done; returns the final loop state."""
    args, core, methods, dist_info, device = run.args, run.model, run.methods, run.dist_info, run.device
    model = wrap_distributed(core, dist_info, device)
    started = time.perf_counter()
    evaluating = 0.0                                  # seconds spent in evaluations, for the closing log line

    def evaluation(tag: str) -> None:
        nonlocal evaluating
        began = time.perf_counter()
        record_evaluation(run, state, evaluate(run, state, tag))
        evaluating += time.perf_counter() - began

    model.train()
    optimizer.zero_grad(set_to_none=True)
    while state.epoch < args.epochs:
        batches = sampler.epoch(state.epoch)
        progress = tqdm(total=len(batches), initial=state.next_batch, desc=f"epoch {state.epoch}",
                        disable=None if dist_info.is_main else True, mininterval=1.0, leave=False)
        for batch_index in range(state.next_batch, len(batches)):
            if state.global_step >= run.total_steps:      # a trailing partial accumulation beyond T is dropped
                break
            if batch_index % args.grad_accumulation_step == 0:
                methods.start_update(state.global_step + 1)
            task_index, indices = batches[batch_index]
            loss = forward_loss(model, train_sets[task_index], indices, device, methods, run.precision)
            value = loss.item()      # the one host sync of a micro-batch: the NaN check and the running loss
            if broadcast_flag(dist_info, not math.isfinite(value)):
                refuse_nonfinite_loss(args, state, loss, train_sets[task_index], batch_index)
                optimizer.zero_grad(set_to_none=True)
                methods.skip_batch()
                loss = None
            else:
                scaled = loss * run.precision.scale(state) if run.precision.scaling else loss    # fp16: loss scaling
                (scaled / args.grad_accumulation_step).backward()
                methods.after_backward()
                state.running_loss = value if state.running_loss is None \
                    else 0.95 * state.running_loss + 0.05 * value
            progress.update(1)
            state.next_batch = batch_index + 1
            if (batch_index + 1) % args.grad_accumulation_step != 0 and batch_index + 1 != len(batches):
                continue

            finite = run.precision.unscale(state, [*core.parameters(), *methods.trainable_tensors()])
            if finite:
                # MT-DNN's --global_grad_clipping over all gradients (and the tensors the methods train
                # themselves: movement's scores), then the step; the fused Adamax applies the coefficient in
                # its own pass over the gradients, bit for bit what clip_grad_norm_ then step() gives
                step_with_global_clip(optimizer, core, args.global_grad_clipping, methods.trainable_tensors())
            else:                                   # fp16 overflow: no step; the pruners see no gradients
                logger.warning("warning: update %d skipped: fp16 gradients overflowed at loss scale %g",
                               state.global_step + 1, run.precision.scale(state))
                optimizer.zero_grad(set_to_none=True)
                methods.skip_batch()
            run.precision.update(state, finite)
            state.global_step += 1
            scalars = methods.after_update(state.global_step)
            lr_schedule.step()
            optimizer.zero_grad(set_to_none=True)
            log_update(run, state, loss, scalars, lr_schedule.get_last_lr()[0], progress, started)
            if args.eval_per_updates and state.global_step % args.eval_per_updates == 0:
                evaluation(f"updates_{state.global_step}")
            if args.save_per_updates and state.global_step % args.save_per_updates == 0:
                save_training_state(run, state, optimizer, lr_schedule)
            stop = owner.pending_signal(dist_info)
            if stop is not None:                                  # SIGTERM/SIGINT: checkpoint, exit 143/130
                stop_after_signal(run, state, optimizer, lr_schedule, *stop)
        progress.close()
        evaluation(f"epoch_{state.epoch}")
        state.epoch, state.next_batch = state.epoch + 1, 0
    total = time.perf_counter() - started
    logger.info("loop: %.0fs, of which evaluation %.0fs (%.0f %%)", total, evaluating,
                100 * evaluating / max(total, 1e-9))
    return state


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    with RunDirectory(args, argv) as owner:       # the output directory's lock; what an error or a signal leaves
        run, sampler, train_sets, state, optimizer, lr_schedule = setup(args, owner)
        state = train_loop(run, owner, sampler, train_sets, state, optimizer, lr_schedule)
        finish_run(run, state)
    return 0


def cli_main(argv=None) -> int:
    """main, with the process's late SIGTERM/SIGINT handled (training.run_dir.guard_process_exit)."""
    finished = guard_process_exit()
    code = main(argv)
    finished()
    return code


if __name__ == "__main__":
    run_cli(cli_main)
