"""train.py's command line: MT-DNN's core flags plus every method's own (declared by the method classes in
methods/), and their validation.

`validate` checks every value that can be checked before data is loaded and
raises one `UserError` naming the flag, the value, the valid range and a fix.
Checks that need the number of updates (pruning schedules) happen once the
data is loaded.
"""
import argparse
import math
import os

from data_utils.errors import ArgumentParser, UserError, check_thread_count
from data_utils.task_def import DEFAULT_TASK_DEF
from methods import add_method_arguments, pruning_methods, validate_methods
from modeling import pretrained
from training.optim import OPTIMIZER_IMPLS, OPTIMIZERS, WARMUP_SCHEDULES, check_optimizer_impl

# Flags of the core groups that decide what a run trains, restored from the checkpoint by --resume (the
# methods declare their own: methods.add_method_arguments), except those that change only how or what is
# evaluated, or where it runs.
NOT_TRAINING = ("test_datasets", "batch_size_eval", "eval_test_during_training", "device", "num_threads",
                "optimizer_impl")


def training_flags(parser: argparse.ArgumentParser) -> tuple:
    """Destinations of the flags that decide what a run trains (`--resume` restores these from the
    checkpoint): the core training groups' and each method's, as build_parser recorded them."""
    return parser.resume_flags


def build_parser() -> argparse.ArgumentParser:
    """train.py's parser: the core flags, then every registered method's (methods.add_method_arguments).
    `parser.resume_flags` lists the flags a --resume takes from the checkpoint."""
    p = ArgumentParser(description="Multi-task fine-tuning of a shared encoder with in-loop pruning "
                            "(PLATON, magnitude, movement, GPP) and optional distillation.")
    resumed = []
    g = p.add_argument_group("data and tasks")
    g.add_argument("--data_dir", default=os.path.join("data", "canonical_data", pretrained.BUNDLED_MODEL),
                   help="directory of canonical JSON files written by prepro (default: %(default)s)")
    g.add_argument("--task_def", default=DEFAULT_TASK_DEF, help="task definition YAML")
    g.add_argument("--train_datasets", default="mnli",
                   help="comma-separated tasks to train on; the first is the main task for --mix_opt/--ratio")
    g.add_argument("--test_datasets", default="mnli_matched,mnli_mismatched",
                   help="comma-separated datasets to evaluate (dev and test splits), e.g. mnli_matched,rte")
    g.add_argument("--max_seq_len", type=int, default=512,
                   help="truncate training and evaluation sequences to this many tokens")
    g.add_argument("--mix_opt", type=int, default=0,
                   help="0: shuffle batches of all tasks together; >0: auxiliary tasks first, main task last")
    g.add_argument("--ratio", type=float, default=0.0,
                   help="if > 0, use only ratio x (main-task batches) auxiliary batches per epoch")

    resumed += [action.dest for action in g._group_actions if action.dest not in NOT_TRAINING]
    g = p.add_argument_group("model")
    g.add_argument("--init_checkpoint", default=pretrained.BUNDLED_MODEL,
                   help="encoder to start from: the bundled model name, a HF directory (e.g. one written by "
                        "train.py), a hub id, or an MT-DNN .pt file (default: %(default)s)")
    g.add_argument("--dropout_p", type=float, default=0.1,
                   help="encoder dropout (hidden and attention) and head dropout of tasks whose definition sets none")

    resumed += [action.dest for action in g._group_actions if action.dest not in NOT_TRAINING]
    g = p.add_argument_group("optimisation")
    g.add_argument("--batch_size", type=int, default=8, help="training batch size (per process)")
    g.add_argument("--batch_size_eval", type=int, default=8, help="evaluation batch size")
    g.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16", "auto"),
                   help="autocast the forward pass in bf16 or fp16 (fp16 with dynamic loss scaling); weights, "
                        "optimizer and pruner state stay fp32. auto: bf16 where the device has bf16 arithmetic "
                        "(a CPU with AVX-512 BF16 or AMX, a CUDA GPU with bf16), fp32 elsewhere; config.json "
                        "records what ran")
    g.add_argument("--eval_test_during_training", action="store_true",
                   help="predict the test splits at every evaluation (default: only with the final model, at the "
                        "last update; dev splits are scored at every evaluation either way)")
    g.add_argument("--optimizer", default="adamax", choices=OPTIMIZERS, help="optimizer (default: adamax)")
    g.add_argument("--optimizer_impl", default="auto", choices=OPTIMIZER_IMPLS,
                   help="how adamax/adam run their step, bit for bit the same: auto (numba's fused loop on CPU for "
                        "adamax, torch._foreach_* on GPU, each where a check at start-up matches the loop), loop "
                        "(one tensor at a time), numba, foreach (default: auto; the log says which ran)")
    g.add_argument("--learning_rate", type=float, default=5e-5, help="peak learning rate")
    g.add_argument("--epochs", type=int, default=5, help="training epochs")
    g.add_argument("--warmup", type=float, default=0.1, help="fraction of the updates spent warming up the LR")
    g.add_argument("--warmup_schedule", default="warmup_linear", choices=WARMUP_SCHEDULES,
                   help="LR shape after warmup: linear decay, constant or cosine")
    g.add_argument("--weight_decay", type=float, default=0.01,
                   help="decoupled weight decay on weights (never biases or LayerNorm); sgd adds it to the gradient")
    g.add_argument("--grad_clipping", type=float, default=0.0,
                   help="inside the optimizer's step, clip each parameter tensor's gradient norm to this value (0: off)")
    g.add_argument("--global_grad_clipping", type=float, default=1.0,
                   help="before the optimizer's step, clip the norm of all gradients together to this value (0: off)")
    g.add_argument("--grad_accumulation_step", type=int, default=1,
                   help="batches whose gradients are summed into one update")
    g.add_argument("--seed", type=int, default=2018, help="random seed (data order, dropout, heads)")
    g.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                   help="where to train: CUDA when present (auto), or forced")
    g.add_argument("--num_threads", type=int, default=0,
                   help="CPU threads of torch's intra-op pool and of numba's loops (the pruners'), set once at "
                        "start-up (default 0: each library's default, one per core); a run is bit for bit "
                        "repeatable for a given thread count")

    resumed += [action.dest for action in g._group_actions if action.dest not in NOT_TRAINING]
    g = p.add_argument_group("logging and output")
    g.add_argument("--output_dir", default="checkpoint", help="where logs, scores and models go")
    g.add_argument("--overwrite_output_dir", action="store_true",
                   help="start afresh in an --output_dir that holds another run's outputs (they are moved aside)")
    g.add_argument("--log_file", default="log.log", help="log file (relative paths are inside --output_dir)")
    g.add_argument("--log_per_updates", type=int, default=500, help="log the running loss every N updates")
    g.add_argument("--eval_per_updates", type=int, default=0,
                   help="also evaluate every N updates (0: only at each epoch end)")
    g.add_argument("--tensorboard", action="store_true", help="write TensorBoard scalars under --output_dir")
    g.add_argument("--tensorboard_logdir", default="tensorboard_logdir",
                   help="TensorBoard directory (relative paths are inside --output_dir)")
    g.add_argument("--glue_format_on", action="store_true",
                   help="also write test predictions as GLUE submission TSV files")
    g.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    g.add_argument("--save_per_updates", type=int, default=0,
                   help="write the full training state to OUTPUT_DIR/checkpoint-<update>/ every N updates (0: off)")
    g.add_argument("--keep_checkpoints", type=int, default=2, help="keep only the newest K checkpoints (0: all)")
    g.add_argument("--resume", action="store_true",
                   help="continue from the newest checkpoint in --output_dir (exactly as if never stopped)")
    g.add_argument("--model_ckpt", default=None, help="continue from this checkpoint-<update> directory")
    g.add_argument("--skip_nan_batches", action="store_true",
                   help="skip a batch whose loss is NaN/inf (with a warning) instead of stopping the run")

    g = p.add_argument_group("pruning and distillation methods (their own flags follow)")
    g.add_argument("--pruner", default="platon", choices=(*pruning_methods(), "none"),
                   help="pruning method (default: platon); gpp is structured; none trains dense")
    resumed += [action.dest for action in g._group_actions]
    resumed += add_method_arguments(p)
    p.resume_flags = tuple(resumed)
    return p


def _require(condition: bool, message: str):
    if not condition:
        raise UserError(message)


def split_names(value: str) -> list:
    return [name.strip() for name in value.split(",") if name.strip()]


def validate(args) -> None:
    """Refuse impossible values before any work is done."""
    _require(split_names(args.train_datasets), "--train_datasets is empty; name at least one task, e.g. rte")
    train_names = split_names(args.train_datasets)
    repeated = sorted({name for name in train_names if train_names.count(name) > 1})
    _require(not repeated, f"--train_datasets names {', '.join(repeated)} more than once; list each task once")
    for flag in ("batch_size", "batch_size_eval", "epochs", "grad_accumulation_step", "max_seq_len"):
        value = getattr(args, flag)
        _require(value >= 1, f"--{flag} {value} must be a positive integer")
    _require(args.max_seq_len >= 8, f"--max_seq_len {args.max_seq_len} is too small; use at least 8")
    _require(0 < args.learning_rate < math.inf,
             f"--learning_rate {args.learning_rate} must be > 0 and finite (e.g. 5e-5)")
    _require(0 <= args.warmup < 1, f"--warmup {args.warmup} must be a fraction in [0, 1) (e.g. 0.1)")
    _require(0 <= args.weight_decay < math.inf, f"--weight_decay {args.weight_decay} must be >= 0 and finite (e.g. 0.01)")
    _require(0 <= args.dropout_p < 1, f"--dropout_p {args.dropout_p} must be in [0, 1)")
    for flag in ("grad_clipping", "global_grad_clipping", "ratio"):
        _require(getattr(args, flag) >= 0, f"--{flag} {getattr(args, flag)} must be >= 0 (0 turns it off)")
    _require(args.mix_opt >= 0, f"--mix_opt {args.mix_opt} must be 0 or a positive integer")
    _require(0 <= args.seed < 2 ** 64, f"--seed {args.seed} must be an integer in [0, 2**64 - 1] (e.g. 2018)")
    test_names = split_names(args.test_datasets)
    repeated = sorted({name for name in test_names if test_names.count(name) > 1})
    _require(not repeated, f"--test_datasets names {', '.join(repeated)} more than once; list each dataset once")
    _check_paths(args)
    for flag in ("log_per_updates", "eval_per_updates", "save_per_updates", "keep_checkpoints", "num_threads"):
        _require(getattr(args, flag) >= 0, f"--{flag} {getattr(args, flag)} must be >= 0")
    check_thread_count(args.num_threads, "--num_threads")
    _check_optimizer_impl(args)
    validate_methods(args)


def _check_optimizer_impl(args) -> None:
    """--optimizer_impl numba/foreach where those kernels cannot run --optimizer, or would not give the loop's
    bits on this machine (training.optim.choose_kernels, on CPU float32; a GPU is checked when the run starts)."""
    if args.optimizer_impl in ("auto", "loop"):
        return
    _require(args.optimizer in ("adamax", "adam"), f"--optimizer_impl {args.optimizer_impl}: --optimizer "
                                                   f"{args.optimizer} runs torch's own step; use --optimizer_impl auto")
    try:
        check_optimizer_impl(args.optimizer, args.optimizer_impl)
    except ValueError as err:
        raise UserError(f"--optimizer_impl {args.optimizer_impl}: {err}") from None


def _blocking_file(path: str):
    """The existing file that keeps `path` from being a directory (`path` itself or a parent), or None."""
    path = os.path.abspath(path)
    while True:
        if os.path.exists(path):
            return None if os.path.isdir(path) else path
        parent = os.path.dirname(path)
        if parent == path:
            return None
        path = parent


def _check_paths(args) -> None:
    """Paths that must be directories (or files) and are not, refused before anything is written. A missing
    --data_dir is left to the data loader (run_GDbert_glue.py validates before preprocessing creates it), and
    --output_dir and --log_file to the start-up, which creates them."""
    _require(args.data_dir != "", "--data_dir is empty; give the directory of canonical JSON files written by "
                                  "prepro")
    _require(not (args.output_dir and os.path.lexists(args.output_dir) and not os.path.isdir(args.output_dir)),
             f"--output_dir {args.output_dir} is a file, not a directory; choose another --output_dir")
    for flag in ("init_checkpoint", "kd_teacher", "teacher_model_path"):
        model_dir = getattr(args, flag, None)
        _require(not (model_dir and os.path.isfile(os.path.join(model_dir, "compression.json"))),
                 f"--{flag} {model_dir} is a compressed copy (python -m mt_dnn.compress), which only evaluate and "
                 "predict read; give the fp32 model directory it was made from")
    _require(not os.path.isfile(args.data_dir),
             f"--data_dir {args.data_dir} is a file, not a directory; give the directory of canonical JSON files "
             "written by prepro")
    _require(not os.path.isdir(args.task_def),
             f"--task_def {args.task_def} is a directory; give the task definition YAML file "
             "(e.g. experiments/glue/glue_task_def.yml)")
    if args.tensorboard:
        logdir = args.tensorboard_logdir if os.path.isabs(args.tensorboard_logdir) \
            else os.path.join(args.output_dir, args.tensorboard_logdir)
        blocking = _blocking_file(logdir)
        _require(blocking is None, f"--tensorboard_logdir {logdir}: cannot be a directory because {blocking} is a file; "
                                   "choose another --tensorboard_logdir")
    checkpoint = args.init_checkpoint
    looks_like_path = os.path.isabs(checkpoint) or checkpoint.startswith((".", "~"))     # not a hub id
    if not checkpoint.endswith(".pt"):
        _require(not os.path.isfile(checkpoint),
                 f"--init_checkpoint {checkpoint} is a file but not an MT-DNN .pt checkpoint; give the bundled "
                 f"'{pretrained.BUNDLED_MODEL}', a local Hugging Face directory, a hub id or an MT-DNN .pt file")
        _require(not looks_like_path or os.path.isdir(checkpoint),
                 f"--init_checkpoint {checkpoint}: directory not found; check the path, or give the bundled "
                 f"'{pretrained.BUNDLED_MODEL}', a hub id or an MT-DNN .pt file")
