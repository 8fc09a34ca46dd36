"""Multi-task fine-tuning of a shared encoder, with pruning inside the loop.

    python train.py --train_datasets rte,mrpc --test_datasets rte,mrpc --pruner platon ...

Reads top to bottom: parse -> data -> model -> optimizer/schedule/pruner ->
one loop (forward -> loss -> backward -> clip -> optimizer.step() ->
pruner.step(t) -> lr_schedule.step() -> log -> eval/save). `--help` lists
every flag.
"""
import json
import logging
import os
import random
import sys
import time

import numpy as np
import torch
import transformers
from tqdm import tqdm

from data_utils.batcher import MultiTaskBatchSampler, collate, load_canonical
from data_utils.errors import UserError, run_cli
from data_utils.task_def import load_task_defs, resolve_dataset
from mt_dnn import pretrained
from mt_dnn.inference import predict, write_glue_submission, write_json_atomic, write_scores
from mt_dnn.model import GPP_INDICATORS, MTDNNModel, export_structured, load_encoder, load_heads, save_model
from mt_dnn.optim import build_optimizer, build_schedule
from module.distill import dfd_loss, flooded
from mt_dnn.options import build_parser, split_names, validate

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
    logger.handlers.clear()
    logger.setLevel(logging.INFO)
    logger.propagate = False
    formatter = logging.Formatter("%(asctime)s %(message)s", "%m/%d %H:%M:%S")
    for handler in (logging.FileHandler(log_path, encoding="utf-8"), logging.StreamHandler(sys.stdout)):
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
    if task.is_regression:
        return torch.nn.functional.mse_loss(logits.view(-1), labels)
    return torch.nn.functional.cross_entropy(logits, labels)


def clip_gradients(model, per_parameter: float, global_norm: float) -> None:
    params = [p for p in model.parameters() if p.grad is not None]
    if per_parameter > 0:
        for param in params:
            torch.nn.utils.clip_grad_norm_([param], per_parameter)
    if global_norm > 0:
        torch.nn.utils.clip_grad_norm_(params, global_norm)


def build_pruner(args, model, total_steps: int):
    """The unstructured pruner over the shared encoder (task heads are never selected)."""
    if args.pruner not in ("platon", "magnitude"):
        return None
    from pruners import MagnitudePruner, PlatonPruner

    schedule = dict(initial_threshold=args.initial_threshold, final_threshold=args.final_threshold,
                    warmup_steps=args.warmup_steps, initial_warmup=args.initial_warmup,
                    final_warmup=args.final_warmup, deltaT=args.deltaT)
    try:
        if args.pruner == "platon":
            return PlatonPruner(model.encoder, total_steps, beta1=args.beta1, beta2=args.beta2, **schedule)
        return MagnitudePruner(model.encoder, total_steps, **schedule)
    except ValueError as err:
        raise UserError(str(err)) from None


def load_teacher(args, model, device):
    """The fine-tuned teacher of DFD: a train.py output directory, frozen, in eval mode."""
    teacher_encoder = load_encoder(args.teacher_model_path)
    student, teacher_config = model.encoder.config, teacher_encoder.config
    for field in ("num_hidden_layers", "hidden_size"):
        if getattr(student, field) != getattr(teacher_config, field):
            raise UserError(f"--teacher_model_path {args.teacher_model_path}: teacher has {field}="
                            f"{getattr(teacher_config, field)} but the student has {getattr(student, field)}; "
                            "DFD needs the same layer count and hidden size")
    teacher_encoder.to(device).eval()      # DFD distils hidden states only: the teacher's heads are not needed
    for param in teacher_encoder.parameters():
        param.requires_grad_(False)
    return teacher_encoder


def gpp_phase_lengths(args, total_steps: int):
    """(P, Tp): updates of the pre-pruning fine-tune and of the pruning phase (ALGORITHMS.md 2.2)."""
    from pruners.gpp import phase_of

    per_epoch = total_steps // args.epochs
    prepruning, pruning = args.prepruning_finetune_epochs * per_epoch, args.prune_epochs * per_epoch
    try:
        phase_of(1, prepruning, pruning, total_steps)
    except ValueError as err:
        raise UserError(f"--prune_epochs/--prepruning_finetune_epochs: {err}") from None
    return prepruning, pruning


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    validate(args)
    transformers.utils.logging.disable_progress_bar()
    setup_output(args)
    seed_everything(args.seed)
    device = pick_device(args.device)

    # ---- data
    task_defs = load_task_defs(args.task_def)
    train_sets, eval_sets = load_data(args, task_defs)
    sampler = MultiTaskBatchSampler([len(d) for d in train_sets], args.batch_size,
                                    mix_opt=args.mix_opt, ratio=args.ratio, seed=args.seed)
    batches_per_epoch = len(sampler)
    total_steps = args.epochs * batches_per_epoch // args.grad_accumulation_step
    if total_steps < 1:
        raise UserError(f"--grad_accumulation_step {args.grad_accumulation_step} exceeds the "
                        f"{batches_per_epoch * args.epochs} batches of the run; lower it")

    # ---- model
    encoder = load_encoder(args.init_checkpoint, args.dropout_p)
    model = MTDNNModel(encoder, {d.task.name: d.task for d in train_sets}, args.dropout_p)
    if os.path.isdir(args.init_checkpoint):
        loaded = load_heads(model, args.init_checkpoint)
        if loaded:
            logger.info("loaded task heads for %s from %s", ", ".join(loaded), args.init_checkpoint)
    model.to(device)
    tokenizer = pretrained.load_tokenizer(args.init_checkpoint)

    teacher = load_teacher(args, model, device) if args.do_distill else None

    # ---- optimizer, schedule, pruner
    optimizer = build_optimizer(args.optimizer, model.named_parameters(), args.learning_rate, args.weight_decay)
    lr_schedule = build_schedule(optimizer, total_steps, args.warmup, args.warmup_schedule)
    pruner = build_pruner(args, model, total_steps)
    gpp, gpp_phases = None, None
    if args.pruner == "gpp":
        from pruners.gpp import GPPPruner, is_phase_start, phase_of
        gpp_phases = gpp_phase_lengths(args, total_steps) + (total_steps,)

    writer = None
    if args.tensorboard:
        from torch.utils.tensorboard import SummaryWriter
        logdir = args.tensorboard_logdir if os.path.isabs(args.tensorboard_logdir) \
            else os.path.join(args.output_dir, args.tensorboard_logdir)
        writer = SummaryWriter(logdir)

    write_json_atomic(os.path.join(args.output_dir, "config.json"),
                      {**vars(args), "total_steps": total_steps, "batches_per_epoch": batches_per_epoch,
                       "device": str(device)})
    logger.info("=" * 60)
    for dataset in train_sets:
        logger.info("train %-22s %7d examples", dataset.name, len(dataset))
    for dev, test in eval_sets:
        logger.info("eval  %-22s %7d dev, %s test", dev.name.rsplit("_", 1)[0], len(dev),
                    len(test) if test else "no")
    logger.info("effective batch %d (batch %d x accumulation %d); %d batches/epoch; %d epochs; %d updates",
                args.batch_size * args.grad_accumulation_step, args.batch_size, args.grad_accumulation_step,
                batches_per_epoch, args.epochs, total_steps)
    logger.info("encoder %s: %d parameters; optimizer %s lr %g; device %s; pruner %s%s",
                args.init_checkpoint, sum(p.numel() for p in encoder.parameters()), args.optimizer,
                args.learning_rate, device, args.pruner,
                f" (final remaining ratio {args.final_threshold})" if pruner is not None else "")
    logger.info("=" * 60)

    def evaluate(tag: str, step: int) -> dict:
        """Score every dev and test split; returns {dataset: dev metrics}."""
        dev_metrics = {}
        for dev, test in eval_sets:
            result = predict(model, dev, args.batch_size_eval, device)
            write_scores(args.output_dir, dev, "dev", tag, result)
            name = dev.name.rsplit("_", 1)[0]
            dev_metrics[name] = result["metrics"]
            logger.info("[%s] %s dev %s", tag, name,
                        " ".join(f"{k}={v:.2f}" for k, v in result["metrics"].items()))
            if writer is not None:
                for metric, value in result["metrics"].items():
                    writer.add_scalar(f"dev/{name}/{metric}", value, step)
            if test is not None:
                result = predict(model, test, args.batch_size_eval, device)
                write_scores(args.output_dir, test, "test", tag, result)
                if args.glue_format_on:
                    write_glue_submission(args.output_dir, test, tag, result)
        return dev_metrics

    def at_target() -> bool:
        """Whether pruning has reached its target (always true for dense runs)."""
        if args.pruner == "gpp":
            return gpp is not None and gpp.is_done
        if pruner is not None:
            return global_step > total_steps - args.final_warmup * args.warmup_steps
        return True

    def keep_best(dev_metrics: dict, best):
        """Save best_model/ when the first test dataset's main metric improves at the target sparsity."""
        if not eval_sets or not at_target():
            return best
        dev = eval_sets[0][0]
        value = dev_metrics[dev.name.rsplit("_", 1)[0]][dev.task.main_metric]
        if best is not None and value <= best:
            return best
        save_outputs(best_dir)
        logger.info("new best %s %s %.2f at update %d -> %s", dev.name, dev.task.main_metric, value,
                    global_step, best_dir)
        return value

    check_rows = eval_sets[0][0] if eval_sets else train_sets[0]
    check_batch = (check_rows.task.name, collate(check_rows.examples[:args.batch_size_eval], check_rows.task))

    def save_outputs(directory: str) -> None:
        """The model as trained (masked for pruning runs); GPP also exports the smaller model."""
        save_model(model, tokenizer, directory)
        if gpp is not None:
            from safetensors.torch import save_file
            save_file({f"z_{name}": z.detach().cpu().contiguous() for name, z in gpp.indicators().items()},
                      os.path.join(directory, GPP_INDICATORS))
            indicators = gpp.indicators()
            report = export_structured(model, indicators.get("head"), indicators.get("ffn"), tokenizer,
                                       directory + "_pruned", check_batch=check_batch)
            logger.info("exported %s: %d -> %d encoder parameters, max |masked - exported| = %.2e",
                        directory + "_pruned", report["parameters_before"], report["parameters_after"],
                        report["max_abs_difference"])

    # ---- the loop
    global_step, running_loss, last_metrics = 0, None, {}
    best_metric, best_dir = None, os.path.join(args.output_dir, "best_model")
    started = time.perf_counter()
    model.train()
    optimizer.zero_grad(set_to_none=True)
    for epoch in range(args.epochs):
        batches = sampler.epoch(epoch)
        progress = tqdm(batches, desc=f"epoch {epoch}", disable=None, mininterval=1.0, leave=False)
        for batch_index, (task_index, indices) in enumerate(progress):
            if global_step >= total_steps:      # a trailing partial accumulation beyond T is dropped
                break
            phase = phase_of(global_step + 1, *gpp_phases) if gpp_phases else None
            if gpp_phases and batch_index % args.grad_accumulation_step == 0 and \
                    is_phase_start(global_step + 1, *gpp_phases) and phase.name != "prepruning":
                # GPP restarts the optimizer and a linear-decay schedule at each phase (ALGORITHMS.md 2.2)
                if phase.name == "pruning":
                    gpp = GPPPruner(model.encoder, pruning_type=args.pruning_type,
                                    target_sparsity=args.target_sparsity, prune_steps=gpp_phases[1])
                    lr = args.learning_rate
                else:
                    lr = args.retrain_learning_rate or args.learning_rate
                optimizer = build_optimizer(args.optimizer, model.named_parameters(), lr, args.weight_decay)
                lr_schedule = build_schedule(optimizer, total_steps - global_step, 0.0, "warmup_linear")
                logger.info("GPP %s phase starts at update %d (lr %g)", phase.name, global_step + 1, lr)
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
                loss = flooded(loss, args.flooding_b) + dfd_loss(teacher_hidden, out.hidden_states, args.window_size)
            if pruning:
                loss = loss + gpp.indicator_loss()
            (loss / args.grad_accumulation_step).backward()
            if pruning:
                gpp.accumulate_gradients()
            running_loss = loss.item() if running_loss is None else 0.95 * running_loss + 0.05 * loss.item()
            if (batch_index + 1) % args.grad_accumulation_step != 0 and batch_index + 1 != len(batches):
                continue

            clip_gradients(model, args.grad_clipping, args.global_grad_clipping)
            optimizer.step()
            global_step += 1
            if pruner is not None:
                remaining_ratio, mask_threshold = pruner.step(global_step)
                if writer is not None:
                    writer.add_scalar("Prune/ratio", remaining_ratio, global_step)
                    if mask_threshold is not None:
                        writer.add_scalar("Prune/threshold", float(mask_threshold), global_step)
            if pruning:
                sparsity = gpp.step(phase.pruning_step)
                if writer is not None:
                    writer.add_scalar("Prune/structured_sparsity", sparsity, global_step)
                if gpp.is_done:
                    logger.info("%s", gpp.summary())
            lr_schedule.step()
            optimizer.zero_grad(set_to_none=True)

            progress.set_postfix(loss=f"{running_loss:.4f}")
            if writer is not None:
                writer.add_scalar("train/loss", loss.item(), global_step)
                writer.add_scalar("train/lr", lr_schedule.get_last_lr()[0], global_step)
            if args.log_per_updates and global_step % args.log_per_updates == 0:
                logger.info("update %d/%d epoch %d loss %.4f lr %.3g elapsed %.0fs", global_step, total_steps,
                            epoch, running_loss, lr_schedule.get_last_lr()[0], time.perf_counter() - started)
            if args.eval_per_updates and global_step % args.eval_per_updates == 0:
                last_metrics = evaluate(f"updates_{global_step}", global_step)
                best_metric = keep_best(last_metrics, best_metric)
        progress.close()
        last_metrics = evaluate(f"epoch_{epoch}", global_step)
        best_metric = keep_best(last_metrics, best_metric)

    # ---- output
    model_dir = os.path.join(args.output_dir, "model")
    save_outputs(model_dir)
    logger.info("saved the final model to %s%s", model_dir,
                f" and the structurally pruned export to {model_dir}_pruned" if gpp is not None else "")
    write_json_atomic(os.path.join(args.output_dir, "dev_metrics.json"), last_metrics)
    logger.info("final dev metrics:")
    for name, metrics in last_metrics.items():
        logger.info("  %-20s %s", name, "  ".join(f"{k} {v:6.2f}" for k, v in metrics.items()))
    if writer is not None:
        writer.close()
    return 0


if __name__ == "__main__":
    run_cli(main)
