"""GPP-DFD's command line, mapped onto train.py (no second training loop).

    python run_GDbert_glue.py --model_name_or_path bert-base-uncased --task_name cola \\
      --do_distill --teacher_model_path base/cola --target_sparsity 0.5 --window_size 3 \\
      --logging_steps 50 --eval_steps 50 --logging_first_step True \\
      --prepruning_finetune_epochs 0 --prune_epochs 20 --do_train --do_eval \\
      --max_seq_length 128 --per_device_train_batch_size 32 --learning_rate 2e-5 \\
      --retrain_learning_rate 2e-5 --num_train_epochs 32 --overwrite_output_dir --output_dir OUT

The GLUE TSV folders are read from --data_dir (default `data`, as download.sh
writes them); the task is preprocessed with the model's tokenizer into
DATA_DIR/canonical_data/<name> (modeling.pretrained.canonical_folder_name) and
redone when stale (another --max_seq_length, tokenizer or changed TSVs; prepro's
manifest decides). transformers' saving, resuming and reporting flags map onto
train.py's: --save_steps N (--save_per_updates), --save_total_limit K
(--keep_checkpoints), --resume_from_checkpoint [PATH] (PATH: --model_ckpt; bare
or True: --resume, the newest checkpoint in --output_dir), --report_to
tensorboard|none (--tensorboard), --overwrite_output_dir. --teacher_model_path
takes a teacher run's output directory as well as its model/.
Hugging Face Trainer defaults that GPP-DFD relied on carry over: AdamW, no
warmup, no weight decay, gradient-norm clipping at 1.0. `--print_train_args`
shows the train.py command this maps to.
"""
import argparse
import math
import os
import re
import sys

from data_utils.errors import ArgumentParser, UserError, run_cli
from data_utils.files import refuse_writing_inputs
from training import options
from modeling import pretrained
from pruners.gpp import PRUNING_TYPES

# transformers' GLUE task names -> the task definition's (MT-DNN's) names and evaluation datasets
TASKS = {
    "cola": ("cola", "cola"), "sst2": ("sst", "sst"), "sst-2": ("sst", "sst"), "mrpc": ("mrpc", "mrpc"),
    "stsb": ("stsb", "stsb"), "sts-b": ("stsb", "stsb"), "qqp": ("qqp", "qqp"),
    "mnli": ("mnli", "mnli_matched,mnli_mismatched"), "qnli": ("qnli", "qnli"), "rte": ("rte", "rte"),
    "wnli": ("wnli", "wnli"),
}


# train.py flags that errors may name -> the GPP-DFD flag the user typed
FLAG_NAMES = {"--init_checkpoint": "--model_name_or_path", "--epochs": "--num_train_epochs",
              "--batch_size": "--per_device_train_batch_size", "--batch_size_eval": "--per_device_eval_batch_size",
              "--max_seq_len": "--max_seq_length", "--log_per_updates": "--logging_steps",
              "--eval_per_updates": "--eval_steps", "--warmup": "--warmup_ratio",
              "--global_grad_clipping": "--max_grad_norm", "--train_datasets": "--task_name",
              "--save_per_updates": "--save_steps", "--keep_checkpoints": "--save_total_limit",
              "--model_ckpt": "--resume_from_checkpoint", "--resume": "--resume_from_checkpoint"}
REPORT_TO = ("tensorboard", "none", "all")        # "all": every integration this toolkit has, i.e. TensorBoard


def in_our_flags(err: UserError) -> UserError:
    """The same error with train.py's flag names replaced by this front end's."""
    return UserError(re.sub(r"(?<![\w/.-])--\w+", lambda m: FLAG_NAMES.get(m.group(0), m.group(0)), str(err)))


def boolean(value: str) -> bool:
    """transformers-style boolean flag values ('True'/'False'); anything else is refused."""
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected True or False, got {value!r}")


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(description="GPP-DFD's run_GDbert_glue.py flags on top of train.py.")
    p.add_argument("--model_name_or_path", default=pretrained.BUNDLED_MODEL, help="student model to prune")
    p.add_argument("--task_name", required=True, help=f"GLUE task: {', '.join(sorted(set(TASKS)))}")
    p.add_argument("--data_dir", default="data", help="GLUE TSV folders written by download.sh (default: data)")
    p.add_argument("--output_dir", required=True, help="where the run writes")
    p.add_argument("--overwrite_output_dir", action="store_true", help="allow writing into a non-empty output_dir")
    p.add_argument("--do_train", action="store_true", help="train (required: this front end only trains)")
    p.add_argument("--do_eval", action="store_true", help="evaluate on dev during and after training")
    p.add_argument("--do_distill", action="store_true", help="DFD distillation from --teacher_model_path")
    p.add_argument("--teacher_model_path", default=None, help="fine-tuned teacher written by train.py")
    p.add_argument("--target_sparsity", type=float, default=0.5, help="fraction of heads/neurons removed")
    p.add_argument("--pruning_type", default="structured_heads+structured_mlp",
                   choices=PRUNING_TYPES,
                   help="which units GPP prunes")
    p.add_argument("--window_size", type=int, default=3, help="DFD student fusion window")
    p.add_argument("--flooding_b", type=float, default=0.01, help="flooding level of the task loss")
    p.add_argument("--dfd_fusion", default="magnitude", choices=("magnitude", "signed"),
                   help="DFD fusion weights: magnitude (default, stays convex) or signed (as published)")
    p.add_argument("--prepruning_finetune_epochs", type=int, default=1, help="dense epochs before pruning")
    p.add_argument("--prune_epochs", type=int, default=2, help="epochs over which sparsity ramps up")
    p.add_argument("--num_train_epochs", type=float, default=3.0, help="total epochs (a whole number)")
    p.add_argument("--learning_rate", type=float, default=2e-5, help="learning rate before and during pruning")
    p.add_argument("--retrain_learning_rate", type=float, default=None, help="learning rate after pruning")
    p.add_argument("--per_device_train_batch_size", "--per_gpu_train_batch_size", dest="train_batch_size",
                   type=int, default=8, help="training batch size per process")
    p.add_argument("--per_device_eval_batch_size", "--per_gpu_eval_batch_size", dest="eval_batch_size",
                   type=int, default=64, help="evaluation batch size")
    p.add_argument("--max_seq_length", type=int, default=128, help="truncate sequences to this many tokens")
    p.add_argument("--logging_steps", type=int, default=50, help="log every N updates")
    p.add_argument("--eval_steps", type=int, default=0, help="evaluate every N updates (with --do_eval)")
    p.add_argument("--logging_first_step", type=boolean, default=False,
                   help="accepted for compatibility (train.py always logs its start-up summary)")
    p.add_argument("--seed", type=int, default=42, help="random seed")
    p.add_argument("--weight_decay", type=float, default=0.0, help="weight decay (Trainer default 0)")
    p.add_argument("--warmup_ratio", type=float, default=0.0, help="LR warmup fraction (Trainer default 0)")
    p.add_argument("--max_grad_norm", type=float, default=1.0, help="global gradient-norm clipping")
    p.add_argument("--save_steps", type=int, default=0,
                   help="write a resumable checkpoint every N updates (train.py --save_per_updates; 0: off)")
    p.add_argument("--save_total_limit", type=int, default=None,
                   help="keep only the newest K checkpoints (train.py --keep_checkpoints)")
    p.add_argument("--resume_from_checkpoint", nargs="?", const="True", default=None, metavar="PATH",
                   help="continue from checkpoint PATH (a checkpoint-<update> folder), or, bare or True, from the "
                        "newest checkpoint in --output_dir")
    p.add_argument("--report_to", nargs="+", default=["none"], metavar="{tensorboard,none,all}",
                   help="where to report: tensorboard (train.py --tensorboard) or none (default)")
    p.add_argument("--print_train_args", action="store_true", help="print the mapped train.py flags and exit")
    p.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    return p


def to_train_args(args) -> list:
    """The train.py flags that mean what the GPP-DFD flags mean."""
    if args.task_name.lower() not in TASKS:
        raise UserError(f"--task_name {args.task_name}: unknown; use one of {', '.join(sorted(set(TASKS)))}")
    if not args.do_train:
        raise UserError("--do_train is required: this front end runs GPP training (evaluation comes with --do_eval)")
    # a whole number here (int() of nan or inf would fail); its range is options.validate's, as --epochs
    if not math.isfinite(args.num_train_epochs) or args.num_train_epochs != int(args.num_train_epochs):
        raise UserError(f"--num_train_epochs {args.num_train_epochs}: use a whole number of epochs")
    task, eval_sets = TASKS[args.task_name.lower()]
    data = pretrained.default_canonical_dir(args.data_dir, args.model_name_or_path)
    argv = ["--data_dir", data, "--train_datasets", task, "--test_datasets", eval_sets if args.do_eval else "",
            "--init_checkpoint", args.model_name_or_path, "--output_dir", args.output_dir,
            "--pruner", "gpp", "--target_sparsity", str(args.target_sparsity), "--pruning_type", args.pruning_type,
            "--prepruning_finetune_epochs", str(args.prepruning_finetune_epochs),
            "--prune_epochs", str(args.prune_epochs), "--epochs", str(int(args.num_train_epochs)),
            "--learning_rate", str(args.learning_rate), "--batch_size", str(args.train_batch_size),
            "--batch_size_eval", str(args.eval_batch_size), "--max_seq_len", str(args.max_seq_length),
            "--log_per_updates", str(args.logging_steps),
            "--eval_per_updates", str(args.eval_steps if args.do_eval else 0),
            "--seed", str(args.seed), "--optimizer", "adamw", "--weight_decay", str(args.weight_decay),
            "--warmup", str(args.warmup_ratio), "--global_grad_clipping", str(args.max_grad_norm),
            "--window_size", str(args.window_size), "--flooding_b", str(args.flooding_b),
            "--dfd_fusion", args.dfd_fusion]
    if args.retrain_learning_rate is not None:
        argv += ["--retrain_learning_rate", str(args.retrain_learning_rate)]
    if args.do_distill:
        argv += ["--do_distill", "--teacher_model_path", teacher_model(args.teacher_model_path)]
    if args.save_steps:
        argv += ["--save_per_updates", str(args.save_steps)]
    if args.save_total_limit is not None:
        argv += ["--keep_checkpoints", str(args.save_total_limit)]
    argv += resume_args(args.resume_from_checkpoint)
    reports = {r.lower() for r in args.report_to}
    unknown = sorted(reports - set(REPORT_TO))
    if unknown:
        raise UserError(f"--report_to {' '.join(unknown)}: not available here; use tensorboard or none")
    if reports & {"tensorboard", "all"}:
        if "none" in reports:
            raise UserError(f"--report_to {' '.join(args.report_to)}: 'none' cannot go with another; pick one")
        argv.append("--tensorboard")
    if args.overwrite_output_dir and not resume_args(args.resume_from_checkpoint):
        # not when resuming: train.py's --overwrite_output_dir moves the run's outputs, checkpoints included,
        # aside (transformers' Trainer resumes with both flags, as scripts/gpp_dfd/run.sh passes them)
        argv.append("--overwrite_output_dir")
    if args.debug:
        argv.append("--debug")
    return argv


def teacher_model(path: str | None) -> str:
    """The teacher's model directory: a teacher run's output directory DIR stands for DIR/model."""
    if not path:
        return ""
    # a run directory has a config.json of its own (train.py's settings), but no weights
    weights = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
    if not any(os.path.isfile(os.path.join(path, name)) for name in weights) and \
            os.path.isfile(os.path.join(path, "model", "config.json")):
        model = os.path.join(path, "model")
        print(f"note: --teacher_model_path {path} is a run's output directory; using its model {model}",
              file=sys.stderr)
        return model
    return path


def resume_args(value: str | None) -> list:
    """--resume_from_checkpoint: bare or True -> --resume; False -> nothing; a path -> --model_ckpt PATH."""
    if value is None or value.strip().lower() in ("false", "0", "no"):
        return []
    if value.strip().lower() in ("true", "1", "yes"):
        return ["--resume"]
    if not os.path.isdir(value):
        raise UserError(f"--resume_from_checkpoint {value}: no such directory; pass a checkpoint-<update> folder "
                        "written with --save_steps, or True for the newest one in --output_dir")
    return ["--model_ckpt", value]


def refuse_writing_our_inputs(args) -> None:
    """--output_dir may not be, lie inside, or contain an input this front end reads: the GLUE --data_dir
    (prepro reads its task folders and writes DATA_DIR/canonical_data/), --model_name_or_path and
    --teacher_model_path when they are local directories. Checked before prepro writes anything: a run
    there would write into the input, and a rerun with --overwrite_output_dir move it into previous-<time>/."""
    model = args.model_name_or_path
    if model == pretrained.BUNDLED_MODEL and not os.path.exists(model):
        try:
            model = pretrained.bundled_model_path()
        except UserError:       # not installed: train.py says so
            pass
    refuse_writing_inputs([("dir:--output_dir", args.output_dir)], [
        ("--data_dir", args.data_dir), ("--model_name_or_path", model),
        ("--teacher_model_path", args.teacher_model_path)])


def ensure_canonical(args, train_argv: list) -> None:
    """Preprocess the task with the model's tokenizer; prepro's manifest skips files that are current and
    redoes stale ones (another --max_seq_length or tokenizer, changed TSVs)."""
    import prepro

    data = train_argv[train_argv.index("--data_dir") + 1]
    task = train_argv[train_argv.index("--train_datasets") + 1]
    prepro.main(["--data_dir", args.data_dir, "--model", args.model_name_or_path, "--tasks", task,
                 "--max_seq_len", str(args.max_seq_length), "--output_dir", data])


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if not args.output_dir.strip():
        raise UserError("--output_dir is empty; give a directory")
    refuse_writing_our_inputs(args)
    train_argv = to_train_args(args)
    if args.print_train_args:
        print(" ".join(train_argv))
        return 0
    resuming = bool(resume_args(args.resume_from_checkpoint))
    if os.path.isdir(args.output_dir) and os.listdir(args.output_dir) and not args.overwrite_output_dir \
            and not resuming:
        raise UserError(f"--output_dir {args.output_dir} is not empty; pass --overwrite_output_dir, "
                        "--resume_from_checkpoint to continue its run, or choose another")
    import train
    try:
        options.validate(options.build_parser().parse_args(train_argv))     # before preprocessing writes anything
        ensure_canonical(args, train_argv)
        return train.main(train_argv)
    except UserError as err:
        raise in_our_flags(err) from None


if __name__ == "__main__":
    run_cli(main, sys.argv[1:])
