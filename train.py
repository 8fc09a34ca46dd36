"""Multi-task fine-tuning of a shared encoder, with pruning inside the loop.

    python train.py --train_datasets rte,mrpc --test_datasets rte,mrpc --pruner platon ...

Reads top to bottom: parse -> data -> model -> optimizer/schedule/pruner ->
one loop (forward -> loss -> backward -> clip -> optimizer.step() ->
pruner.step(t) -> lr_schedule.step() -> log -> eval/save). `--help` lists
every flag.
"""
import logging
import os
import random
import sys
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import transformers
from tqdm import tqdm

from data_utils.batcher import MultiTaskBatchSampler, check_fits_model, collate, load_canonical
from data_utils.errors import UserError, run_cli
from data_utils.task_def import load_task_defs, resolve_dataset
from mt_dnn import pretrained
from mt_dnn.checkpoint import latest_checkpoint, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from mt_dnn.distributed import all_gather_objects, average_gradients, barrier, broadcast_flag, init_distributed, shutdown
from mt_dnn.inference import predict, write_glue_submission, write_json_atomic, write_scores
from mt_dnn.model import GPP_INDICATORS, MTDNNModel, export_structured, load_encoder, load_heads, save_model
from mt_dnn.optim import build_optimizer, build_schedule
from module.distill import dfd_loss, flooded
from mt_dnn.options import build_parser, split_names, training_flags, validate

logger = logging.getLogger("train")


def setup_output(args) -> None:
    try:
        os.makedirs(args.output_dir, exist_ok=True)
        probe = os.path.join(args.output_dir, ".write_test")
        with open(probe, "w", encoding="utf-8") as handle:
            handle.write("ok")
        os.remove(probe)
    except OSError as err:
        raise UserError(f"--output_dir {args.output_dir}: not writable ({err.strerror}); choose another directory") \
            from None
    log_path = args.log_file if os.path.isabs(args.log_file) else os.path.join(args.output_dir, args.log_file)
    try:
        log_handler = logging.FileHandler(log_path, encoding="utf-8")
    except OSError as err:
        raise UserError(f"--log_file {log_path}: cannot open it ({err.strerror}); choose another file") from None
    # A full disk is reported once, by the next checkpoint or output file, not as a traceback per log line.
    log_handler.handleError = lambda record: None
    logger.handlers.clear()
    logger.setLevel(logging.INFO)
    logger.propagate = False
    formatter = logging.Formatter("%(asctime)s %(message)s", "%m/%d %H:%M:%S")
    for handler in (log_handler, logging.StreamHandler(sys.stdout)):
        handler.setFormatter(formatter)
        logger.addHandler(handler)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def pick_device(choice: str) -> torch.device:
    if choice == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is visible; use --device auto or cpu")
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(choice)


def load_data(args, task_defs: dict):
    """Training sets (one per task) and, per test dataset, its dev and (optional) test sets."""
    train_sets = []
    for name in split_names(args.train_datasets):
        task = task_defs.get(name)
        if task is None:
            raise UserError(f"--train_datasets: unknown task '{name}' (known: {', '.join(task_defs)})")
        path = os.path.join(args.data_dir, f"{name}_train.json")
        train_sets.append(load_canonical(path, f"{name}_train", task, args.max_seq_len))
    trained = {d.task.name for d in train_sets}
    eval_sets = []
    for name in split_names(args.test_datasets):
        task = resolve_dataset(name, task_defs)
        if name not in task.dataset_prefixes():
            raise UserError(f"--test_datasets: unknown dataset '{name}' (task {task.name} provides "
                            f"{', '.join(task.dataset_prefixes())})")
        if task.name not in trained:
            raise UserError(f"--test_datasets: '{name}' belongs to task '{task.name}', which is not in "
                            f"--train_datasets; add it there or drop it here")
        dev = load_canonical(os.path.join(args.data_dir, f"{name}_dev.json"), f"{name}_dev", task, args.max_seq_len)
        test_path = os.path.join(args.data_dir, f"{name}_test.json")
        test = load_canonical(test_path, f"{name}_test", task, args.max_seq_len) \
            if os.path.isfile(test_path) else None
        eval_sets.append((dev, test))
    return train_sets, eval_sets


def task_loss(logits, labels, task):
    """The loss the task definition names (`loss:`, MT-DNN's criterion names)."""
    if task.loss == "MseCriterion":
        return torch.nn.functional.mse_loss(logits.view(-1), labels)
    return torch.nn.functional.cross_entropy(logits, labels)


def clip_global_gradient_norm(model, max_norm: float) -> None:
    """MT-DNN's --global_grad_clipping, over all parameters together, before optimizer.step() (the
    per-tensor --grad_clipping happens inside the optimizer's step, as in MT-DNN)."""
    if max_norm > 0:
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.grad is not None], max_norm)


def build_pruner(args, model, total_steps: int):
    """The unstructured pruner over the shared encoder (task heads are never selected)."""
    if args.pruner not in ("platon", "magnitude"):
        return None
    from pruners import MagnitudePruner, PlatonPruner

    schedule = dict(initial_threshold=args.initial_threshold, final_threshold=args.final_threshold,
                    warmup_steps=args.warmup_steps, initial_warmup=args.initial_warmup,
                    final_warmup=args.final_warmup, deltaT=args.deltaT, kernels=args.pruner_kernels)
    try:
        if args.pruner == "platon":
            return PlatonPruner(model.encoder, total_steps, beta1=args.beta1, beta2=args.beta2, **schedule)
        return MagnitudePruner(model.encoder, total_steps, **schedule)
    except ValueError as err:
        raise UserError(str(err)) from None


def load_teacher(args, model, device):
    """The fine-tuned teacher of DFD: a train.py output directory, frozen, in eval mode."""
    teacher_encoder = load_encoder(args.teacher_model_path, flag="--teacher_model_path")
    student, teacher_config = model.encoder.config, teacher_encoder.config
    for field in ("num_hidden_layers", "hidden_size", "vocab_size"):
        if getattr(student, field) != getattr(teacher_config, field):
            raise UserError(f"--teacher_model_path {args.teacher_model_path}: teacher has {field}="
                            f"{getattr(teacher_config, field)} but the student has {getattr(student, field)}; "
                            "DFD needs the same layer count and hidden size, and the same vocabulary (the teacher "
                            "reads the student's token ids): fine-tune the teacher from the student's model")
    teacher_encoder.to(device).eval()      # DFD distils hidden states only: the teacher's heads are not needed
    for param in teacher_encoder.parameters():
        param.requires_grad_(False)
    return teacher_encoder


def gpp_phase_lengths(args, total_steps: int):
    """(P, Tp): updates of the pre-pruning fine-tune and of the pruning phase (docs/METHODS.md §2)."""
    from pruners.gpp import phase_of

    per_epoch = total_steps // args.epochs
    prepruning, pruning = args.prepruning_finetune_epochs * per_epoch, args.prune_epochs * per_epoch
    try:
        phase_of(1, prepruning, pruning, total_steps)
    except ValueError as err:
        raise UserError(f"--prune_epochs/--prepruning_finetune_epochs: {err}") from None
    return prepruning, pruning


@dataclass
class LoopState:
    """Where the loop is; saved in checkpoints so a resumed run continues exactly."""
    global_step: int = 0
    epoch: int = 0
    next_batch: int = 0                 # index in the epoch's batch list of the next batch to run
    running_loss: float | None = None
    best_metric: float | None = None
    last_metrics: dict = field(default_factory=dict)
    schedule_span: int = 0              # updates covered by the current LR schedule (GPP restarts it)
    schedule_warmup: float = 0.0
    schedule_shape: str = "warmup_linear"
    schedule_lr: float = 0.0


TRAINING_FLAGS = training_flags(build_parser())


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


def find_resume_checkpoint(args):
    if args.model_ckpt:
        return args.model_ckpt
    if args.resume:
        path = latest_checkpoint(args.output_dir)
        if path is None:
            raise UserError(f"--resume: no checkpoint-<update> directory in --output_dir {args.output_dir}; "
                            "drop --resume to start afresh or pass --model_ckpt PATH")
        return path
    return None


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    resume_path = find_resume_checkpoint(args)
    resumed = load_checkpoint(resume_path) if resume_path else None
    config_warnings = reconcile_config(args, resumed["config"]) if resumed else []
    validate(args)
    transformers.utils.logging.disable_progress_bar()
    dist_info = init_distributed(args.device)
    if dist_info.is_main:
        setup_output(args)
    else:
        logger.handlers.clear()
        logger.addHandler(logging.NullHandler())
        logger.propagate = False
    for warning in config_warnings:
        logger.warning("warning: %s", warning)
    seed_everything(args.seed)
    device = pick_device(args.device)
    if device.type == "cuda" and dist_info.enabled:
        device = torch.device("cuda", dist_info.local_rank)

    # ---- data
    task_defs = load_task_defs(args.task_def)
    train_sets, eval_sets = load_data(args, task_defs)
    sampler = MultiTaskBatchSampler([len(d) for d in train_sets], args.batch_size, mix_opt=args.mix_opt,
                                    ratio=args.ratio, seed=args.seed, rank=dist_info.rank,
                                    world_size=dist_info.world_size)
    batches_per_epoch = len(sampler)
    total_steps = args.epochs * batches_per_epoch // args.grad_accumulation_step
    if total_steps < 1:
        raise UserError(f"--grad_accumulation_step {args.grad_accumulation_step} exceeds the "
                        f"{batches_per_epoch * args.epochs} batches of the run; lower it")

    # ---- model
    encoder = load_encoder(args.init_checkpoint, args.dropout_p)
    check_fits_model([*train_sets, *(d for pair in eval_sets for d in pair if d is not None)], encoder.config,
                     args.init_checkpoint)
    core = MTDNNModel(encoder, {d.task.name: d.task for d in train_sets}, args.dropout_p)
    if os.path.isdir(args.init_checkpoint):
        loaded = load_heads(core, args.init_checkpoint)
        if loaded:
            logger.info("loaded task heads for %s from %s", ", ".join(loaded), args.init_checkpoint)
    core.to(device)
    tokenizer = pretrained.load_tokenizer(args.init_checkpoint)
    teacher = load_teacher(args, core, device) if args.do_distill else None

    # ---- optimizer, schedule, pruner
    state = LoopState(schedule_span=total_steps, schedule_warmup=args.warmup,
                      schedule_shape=args.warmup_schedule, schedule_lr=args.learning_rate)
    gpp, gpp_phases = None, None
    if args.pruner == "gpp":
        from pruners.gpp import GPPPruner, is_phase_start, phase_of
        gpp_phases = gpp_phase_lengths(args, total_steps) + (total_steps,)

        def new_gpp():
            return GPPPruner(core.encoder, pruning_type=args.pruning_type, target_sparsity=args.target_sparsity,
                             prune_steps=gpp_phases[1])
    pruner = build_pruner(args, core, total_steps)
    if resumed:
        state = LoopState(**resumed["loop"])
        try:
            core.load_state_dict(resumed["model"])
        except RuntimeError as err:
            detail = " ".join(str(err).split(":", 1)[-1].split())[:120]
            raise UserError(f"checkpoint {resume_path}: its model does not fit --init_checkpoint "
                            f"{args.init_checkpoint} ({detail}); resume with the model it was trained from") from None
        if resumed.get("gpp") is not None:
            gpp = new_gpp()
            gpp.load_state_dict(resumed["gpp"])
        if pruner is not None:
            pruner.load_state_dict(resumed["pruner"])
    model = core
    if dist_info.enabled:
        # Every rank trains the same task at each update, but the other tasks' heads get no gradient.
        model = torch.nn.parallel.DistributedDataParallel(
            core, device_ids=[dist_info.local_rank] if device.type == "cuda" else None,
            find_unused_parameters=True)

    def new_optimizer():
        optimizer_ = build_optimizer(args.optimizer, core.named_parameters(), state.schedule_lr, args.weight_decay,
                                     max_grad_norm=args.grad_clipping)
        return optimizer_, build_schedule(optimizer_, state.schedule_span, state.schedule_warmup,
                                          state.schedule_shape)
    optimizer, lr_schedule = new_optimizer()
    if resumed:
        optimizer.load_state_dict(resumed["optimizer"])
        lr_schedule.load_state_dict(resumed["lr_schedule"])

    writer = None
    if args.tensorboard and dist_info.is_main:
        from torch.utils.tensorboard import SummaryWriter
        logdir = args.tensorboard_logdir if os.path.isabs(args.tensorboard_logdir) \
            else os.path.join(args.output_dir, args.tensorboard_logdir)
        writer = SummaryWriter(logdir)

    if dist_info.is_main:
        write_json_atomic(os.path.join(args.output_dir, "config.json"),
                          {**vars(args), "total_steps": total_steps, "batches_per_epoch": batches_per_epoch,
                           "device": str(device), "world_size": dist_info.world_size})
    log_summary(args, train_sets, eval_sets, dist_info, batches_per_epoch, total_steps, encoder, device, pruner)
    if resumed:
        logger.info("resumed from %s at update %d (epoch %d, batch %d)", resume_path, state.global_step,
                    state.epoch, state.next_batch)

    def evaluate(tag: str) -> dict:
        """Score every dev and test split; returns {dataset: dev metrics}."""
        dev_metrics = {}
        for dev, test in eval_sets:
            result = predict(core, dev, args.batch_size_eval, device, dist_info)
            name = dev.name.rsplit("_", 1)[0]
            dev_metrics[name] = result["metrics"]
            if dist_info.is_main:
                write_scores(args.output_dir, dev, "dev", tag, result)
                logger.info("[%s] %s dev %s", tag, name, " ".join(f"{k}={v:.2f}" for k, v in result["metrics"].items()))
                if writer is not None:
                    for metric, value in result["metrics"].items():
                        writer.add_scalar(f"dev/{name}/{metric}", value, state.global_step)
            if test is not None:
                result = predict(core, test, args.batch_size_eval, device, dist_info)
                if dist_info.is_main:
                    write_scores(args.output_dir, test, "test", tag, result)
                    if args.glue_format_on:
                        write_glue_submission(args.output_dir, test, tag, result)
        return dev_metrics

    def at_target() -> bool:
        """Whether pruning has reached its target (always true for dense runs)."""
        if args.pruner == "gpp":
            return gpp is not None and gpp.is_done
        if pruner is not None:
            return state.global_step > total_steps - args.final_warmup * args.warmup_steps
        return True

    check_rows = eval_sets[0][0] if eval_sets else train_sets[0]
    check_batch = (check_rows.task.name, collate(check_rows.examples[:args.batch_size_eval], check_rows.task))

    def save_outputs(directory: str) -> None:
        """The model as trained (masked for pruning runs); GPP also exports the smaller model."""
        indicators = gpp.indicators() if gpp is not None else {}
        save_model(core, tokenizer, directory, extra_tensors={
            GPP_INDICATORS: {f"z_{name}": z for name, z in indicators.items()}} if gpp is not None else None)
        if gpp is not None:
            report = export_structured(core, indicators.get("head"), indicators.get("ffn"), tokenizer,
                                       directory + "_pruned", check_batch=check_batch)
            logger.info("exported %s: %d -> %d encoder parameters, max |masked - exported| = %.2e",
                        directory + "_pruned", report["parameters_before"], report["parameters_after"],
                        report["max_abs_difference"])
        if pruner is not None:
            from pruners.report import sparsity_report
            report = sparsity_report(core.encoder)
            write_json_atomic(os.path.join(directory, "sparsity_report.json"), report)

    def after_eval(dev_metrics: dict) -> None:
        """Remember the metrics; save best_model/ when the main metric of the first test dataset
        improves once pruning has reached its target."""
        state.last_metrics = dev_metrics
        if not eval_sets or not at_target():
            return
        dev = eval_sets[0][0]
        value = dev_metrics[dev.name.rsplit("_", 1)[0]][dev.task.main_metric]
        if state.best_metric is not None and value <= state.best_metric:
            return
        state.best_metric = value
        if dist_info.is_main:
            save_outputs(os.path.join(args.output_dir, "best_model"))
            logger.info("new best %s %s %.2f at update %d", dev.name, dev.task.main_metric, value, state.global_step)

    def save_training_state() -> None:
        rng_states = all_gather_objects(dist_info, rng_state())
        if dist_info.is_main:
            save_checkpoint(args.output_dir, state.global_step, {
                "loop": asdict(state), "config": vars(args), "model": core.state_dict(),
                "optimizer": optimizer.state_dict(), "lr_schedule": lr_schedule.state_dict(),
                "pruner": pruner.state_dict() if pruner is not None else None,
                "gpp": gpp.state_dict() if gpp is not None else None,
                "rng": rng_states[0], "rng_per_rank": rng_states}, keep=args.keep_checkpoints)
        barrier(dist_info)

    if resumed:     # last, so that building the model and optimizer does not move the RNGs
        set_rng_state(resumed["rng_per_rank"][dist_info.rank] if dist_info.world_size == len(
            resumed["rng_per_rank"]) else resumed["rng"])

    # ---- the loop
    started = time.perf_counter()
    model.train()
    optimizer.zero_grad(set_to_none=True)
    while state.epoch < args.epochs:
        batches = sampler.epoch(state.epoch)
        progress = tqdm(total=len(batches), initial=state.next_batch, desc=f"epoch {state.epoch}",
                        disable=None if dist_info.is_main else True, mininterval=1.0, leave=False)
        for batch_index in range(state.next_batch, len(batches)):
            task_index, indices = batches[batch_index]
            if state.global_step >= total_steps:      # a trailing partial accumulation beyond T is dropped
                break
            phase = phase_of(state.global_step + 1, *gpp_phases) if gpp_phases else None
            if gpp_phases and batch_index % args.grad_accumulation_step == 0 and \
                    is_phase_start(state.global_step + 1, *gpp_phases) and phase.name != "prepruning":
                # GPP restarts the optimizer and a linear-decay schedule at each phase (docs/METHODS.md §2)
                if phase.name == "pruning":
                    gpp = new_gpp()
                state.schedule_lr = args.learning_rate if phase.name == "pruning" \
                    else (args.retrain_learning_rate or args.learning_rate)
                state.schedule_span, state.schedule_warmup = total_steps - state.global_step, 0.0
                state.schedule_shape = "warmup_linear"
                optimizer, lr_schedule = new_optimizer()
                logger.info("GPP %s phase starts at update %d (lr %g)", phase.name, state.global_step + 1,
                            state.schedule_lr)
            pruning = phase is not None and phase.name == "pruning" and not gpp.is_done

            dataset = train_sets[task_index]
            batch = collate([dataset.examples[i] for i in indices], dataset.task)
            inputs = (batch["input_ids"].to(device), batch["token_type_ids"].to(device),
                      batch["attention_mask"].to(device))
            out = model(*inputs, task=dataset.task.name, output_hidden_states=teacher is not None)
            loss = task_loss(out.logits, batch["labels"].to(device), dataset.task)
            if teacher is not None:
                with torch.no_grad():
                    teacher_hidden = teacher(input_ids=inputs[0], token_type_ids=inputs[1], attention_mask=inputs[2],
                                             output_hidden_states=True).hidden_states
                loss = (flooded(loss, args.flooding_b)
                        + args.dfd_weight * dfd_loss(teacher_hidden, out.hidden_states, args.window_size,
                                                         args.dfd_fusion))
            if pruning:
                loss = loss + gpp.indicator_loss()
            if broadcast_flag(dist_info, not bool(torch.isfinite(loss))):
                if not args.skip_nan_batches:
                    last = latest_checkpoint(args.output_dir)
                    raise UserError(f"the loss became {loss.item()} at update {state.global_step + 1} "
                                    f"(task {dataset.task.name}, epoch {state.epoch}); lower --learning_rate or "
                                    f"pass --skip_nan_batches; {'the last checkpoint ' + last + ' is intact' if last else 'no checkpoint was written (see --save_per_updates)'}")
                logger.warning("warning: skipped batch %d of epoch %d: non-finite loss %s (--skip_nan_batches)",
                               batch_index, state.epoch, loss.item())
                optimizer.zero_grad(set_to_none=True)
                if gpp is not None:
                    for z in gpp.indicators().values():
                        z.grad = None
                loss = None
            else:
                (loss / args.grad_accumulation_step).backward()
                if pruning:
                    average_gradients(dist_info, gpp.indicators().values())
                    gpp.accumulate_gradients()
                state.running_loss = loss.item() if state.running_loss is None \
                    else 0.95 * state.running_loss + 0.05 * loss.item()
            progress.update(1)
            state.next_batch = batch_index + 1
            if (batch_index + 1) % args.grad_accumulation_step != 0 and batch_index + 1 != len(batches):
                continue

            clip_global_gradient_norm(core, args.global_grad_clipping)
            optimizer.step()
            state.global_step += 1
            if pruner is not None:
                remaining_ratio, mask_threshold = pruner.step(state.global_step)
                if writer is not None:
                    writer.add_scalar("Prune/ratio", remaining_ratio, state.global_step)
                    if mask_threshold is not None:
                        writer.add_scalar("Prune/threshold", float(mask_threshold), state.global_step)
            if pruning:
                sparsity = gpp.step(phase.pruning_step)
                if writer is not None:
                    writer.add_scalar("Prune/structured_sparsity", sparsity, state.global_step)
                if gpp.is_done:
                    logger.info("%s", gpp.summary())
            lr_schedule.step()
            optimizer.zero_grad(set_to_none=True)

            if state.running_loss is not None:
                progress.set_postfix(loss=f"{state.running_loss:.4f}")
            if writer is not None:
                if loss is not None:
                    writer.add_scalar("train/loss", loss.item(), state.global_step)
                writer.add_scalar("train/lr", lr_schedule.get_last_lr()[0], state.global_step)
                if pruner is not None and state.global_step % max(1, args.log_per_updates) == 0:
                    log_sparsity(writer, core.encoder, state.global_step)
            if args.log_per_updates and state.global_step % args.log_per_updates == 0:
                logger.info("update %d/%d epoch %d loss %.4f lr %.3g elapsed %.0fs", state.global_step, total_steps,
                            state.epoch, state.running_loss or float("nan"), lr_schedule.get_last_lr()[0],
                            time.perf_counter() - started)
            if args.eval_per_updates and state.global_step % args.eval_per_updates == 0:
                after_eval(evaluate(f"updates_{state.global_step}"))
            if args.save_per_updates and state.global_step % args.save_per_updates == 0:
                save_training_state()
        progress.close()
        after_eval(evaluate(f"epoch_{state.epoch}"))
        state.epoch, state.next_batch = state.epoch + 1, 0

    # ---- output
    checksums = all_gather_objects(dist_info, model_checksums(core, gpp))
    if dist_info.is_main:
        write_json_atomic(os.path.join(args.output_dir, "rank_checksums.json"), checksums)
        if any(c != checksums[0] for c in checksums):
            logger.warning("warning: ranks disagree on weights or masks: %s", checksums)
        model_dir = os.path.join(args.output_dir, "model")
        save_outputs(model_dir)
        logger.info("saved the final model to %s%s", model_dir,
                    f" and the structurally pruned export to {model_dir}_pruned" if gpp is not None else "")
        if pruner is not None:
            from pruners.report import format_report, sparsity_report
            report = sparsity_report(core.encoder)
            write_json_atomic(os.path.join(args.output_dir, "sparsity_report.json"), report)
            logger.info("sparsity report (target remaining ratio %.4f):\n%s", args.final_threshold,
                        format_report(report))
        write_json_atomic(os.path.join(args.output_dir, "dev_metrics.json"), state.last_metrics)
        logger.info("final dev metrics:")
        for name, metrics in state.last_metrics.items():
            logger.info("  %-20s %s", name, "  ".join(f"{k} {v:6.2f}" for k, v in metrics.items()))
    if writer is not None:
        writer.close()
    barrier(dist_info)
    shutdown(dist_info)
    return 0


def model_checksums(model, gpp) -> dict:
    """Checksums of the weights, the zero pattern (unstructured masks) and GPP's indicators; every
    rank of a distributed run must report the same ones."""
    import hashlib

    weights, zeros = hashlib.sha256(), hashlib.sha256()
    for name, param in sorted(model.state_dict().items()):
        data = param.detach().cpu().contiguous()
        weights.update(data.numpy().tobytes())
        zeros.update((data == 0).numpy().tobytes())
    result = {"weights": weights.hexdigest()[:16], "zero_mask": zeros.hexdigest()[:16]}
    if gpp is not None:
        indicators = hashlib.sha256()
        for name, z in sorted(gpp.indicators().items()):
            indicators.update(z.detach().cpu().numpy().tobytes())
        result["gpp_indicators"] = indicators.hexdigest()[:16]
    return result


def log_summary(args, train_sets, eval_sets, dist_info, batches_per_epoch, total_steps, encoder, device, pruner):
    logger.info("=" * 60)
    for dataset in train_sets:
        logger.info("train %-22s %7d examples", dataset.name, len(dataset))
    for dev, test in eval_sets:
        logger.info("eval  %-22s %7d dev, %s test", dev.name.rsplit("_", 1)[0], len(dev), len(test) if test else "no")
    logger.info("effective batch %d (batch %d x accumulation %d x processes %d); %d batches/epoch; %d epochs; "
                "%d updates", args.batch_size * args.grad_accumulation_step * dist_info.world_size, args.batch_size,
                args.grad_accumulation_step, dist_info.world_size, batches_per_epoch, args.epochs, total_steps)
    target = ""
    if pruner is not None:
        target = f" (target remaining ratio {args.final_threshold}; {pruner.kernel_name} kernels)"
    elif args.pruner == "gpp":
        target = f" ({args.pruning_type}, target sparsity {args.target_sparsity})"
    logger.info("encoder %s: %d parameters; optimizer %s lr %g; device %s; pruner %s%s", args.init_checkpoint,
                sum(p.numel() for p in encoder.parameters()), args.optimizer, args.learning_rate, device,
                args.pruner, target)
    logger.info("=" * 60)


def log_sparsity(writer, encoder, step: int) -> None:
    """TensorBoard: achieved sparsity overall, per layer and per module type."""
    from pruners.report import sparsity_report

    report = sparsity_report(encoder)
    writer.add_scalar("Sparsity/overall", 1 - report["overall"]["remaining_ratio"], step)
    for group in ("per_layer", "per_module_type"):
        for name, row in report[group].items():
            writer.add_scalar(f"Sparsity/{group}/{name}", 1 - row["remaining_ratio"], step)


if __name__ == "__main__":
    run_cli(main)
