"""Logit distillation (KD) in the loop: the student's task outputs match a fine-tuned teacher's.

The teacher (--kd_teacher DIR, or with --logit_distill DFD's --teacher_model_path; a
model/ or best_model/ directory of `train.py --pruner none`, with a head for every
task the student trains) is loaded once, frozen and kept in eval mode, and runs
without gradients on each micro-batch through the head of the batch's task. With
α = --kd_alpha and T = --kd_temperature the task loss ℓ of every micro-batch becomes

    classification:  α · T² · KL(softmax(z_t / T) ‖ softmax(z_s / T)) + (1 − α) · ℓ
    regression:      α · MSE(z_s, z_t) + (1 − α) · ℓ          (T plays no part)

(z_s, z_t the student's and the teacher's logits; docs/METHODS.md §7). It scales the
task loss, so it must see the task loss alone: its registry entry precedes DFD,
whose flooding then floods this mix of soft and hard targets, and the pruners,
whose regularizers are added after (neither gets scaled by 1 − α).
"""
import math

import torch
import torch.nn.functional as F

from data_utils.errors import UserError
from data_utils.task_def import load_task_defs
from methods.base import TrainingMethod
from methods.dfd import check_teacher_directory, frozen
from modeling.families import family_of
from modeling.model import load_model


def kd_loss(student: torch.Tensor, teacher: torch.Tensor, task_loss: torch.Tensor, alpha: float,
            temperature: float, regression: bool):
    """(α · KD + (1 − α) · task_loss, KD) for one batch of logits, (batch, n_class) each.

    KD is T² · KL(softmax(teacher / T) ‖ softmax(student / T)) averaged over the batch (the T² keeps its
    gradient's scale independent of T, as in Hinton et al.), or for a regression task (one score per row)
    the MSE between the two scores."""
    if regression:
        kd = F.mse_loss(student.view(-1), teacher.view(-1))
    else:
        kd = F.kl_div(F.log_softmax(student / temperature, dim=-1), F.softmax(teacher / temperature, dim=-1),
                      reduction="batchmean") * temperature ** 2
    return alpha * kd + (1 - alpha) * task_loss, kd


MAX_TEMPERATURE = 1e4        # T² scales the KD term; beyond about 1.8e19 it overflows float32 (inf, then NaN)


class KDDistillation(TrainingMethod):
    name = "kd"
    kind = "distillation"

    @classmethod
    def add_arguments(cls, parser) -> None:
        g = parser.add_argument_group("logit distillation (KD)")
        g.add_argument("--kd_teacher", default=None,
                       help="distill the task outputs of this teacher: the model/ directory of a train.py --pruner "
                            "none run with a head for every trained task")
        g.add_argument("--logit_distill", action="store_true",
                       help="logit distillation from the teacher of --teacher_model_path (DFD's; with or without "
                            "--do_distill)")
        g.add_argument("--kd_alpha", type=float, default=0.5,
                       help="KD: weight α of the distillation term; the task loss gets 1 - α (default 0.5)")
        g.add_argument("--kd_temperature", type=float, default=2.0,
                       help="KD: temperature T of both softmaxes, the term scaled by T² (default 2; classification "
                            "only)")

    @classmethod
    def validate(cls, args) -> None:
        if args.kd_teacher and args.logit_distill:
            raise UserError(f"--logit_distill takes its teacher from --teacher_model_path, but --kd_teacher "
                            f"{args.kd_teacher} names one too; pass only one of them")
        if args.logit_distill and not args.teacher_model_path:
            raise UserError("--logit_distill needs --teacher_model_path DIR (a model saved by train.py --pruner none), "
                            "or name the teacher with --kd_teacher DIR")
        check_teacher_directory(*teacher_of(args))
        if not 0 <= args.kd_alpha <= 1:
            raise UserError(f"--kd_alpha {args.kd_alpha} must be in [0, 1] (the distillation term's weight; 0.5 "
                            "by default)")
        if not 0 < args.kd_temperature <= MAX_TEMPERATURE:
            raise UserError(f"--kd_temperature {args.kd_temperature} must be in (0, {MAX_TEMPERATURE:g}] (2 by default; "
                            "the loss is scaled by T², which overflows float32 far above that)")

    @classmethod
    def enabled(cls, args) -> bool:
        return bool(args.kd_teacher) or args.logit_distill

    def __init__(self, context):
        super().__init__(context)
        self.args = context.args
        self.flag, self.path = teacher_of(context.args)
        self.teacher = load_logit_teacher(self.flag, self.path, context.model, context.args, context.device)
        self.regression = {name: task.is_regression for name, task in context.model.task_defs.items()}

    def loss(self, loss, inputs, output):
        with torch.no_grad():
            teacher_logits = self.teacher(*inputs, task=output.task).logits
        alpha = self.args.kd_alpha
        total, kd = kd_loss(output.logits, teacher_logits, loss, alpha, self.args.kd_temperature,
                            self.regression[output.task])
        # the parts add up to the total: the task loss (the stack's), the KD term, the task loss's share taken
        self.loss_parts = {"kd": alpha * kd.detach(), "kd_task_scaling": -alpha * loss.detach()}
        return total

    def describe(self) -> str:
        return (f"logit distillation from {self.path} (alpha {self.args.kd_alpha}, temperature "
                f"{self.args.kd_temperature}; MSE for regression tasks)")


def teacher_of(args) -> tuple:
    """(flag, directory) of the KD teacher: --kd_teacher's, else --teacher_model_path's (--logit_distill)."""
    return ("--kd_teacher", args.kd_teacher) if args.kd_teacher else ("--teacher_model_path", args.teacher_model_path)


def load_logit_teacher(flag: str, path: str, student, args, device):
    """The teacher model with its task heads, frozen, in eval mode; refused (one line naming `flag` and `path`)
    when a head has another label count than the task definition, which the student's heads follow
    (modeling.model.read_head_specs says so), it lacks a head of a task the student trains, or it cannot read
    the student's inputs."""
    teacher = load_model(path, load_task_defs(args.task_def), flag=flag)
    missing = [name for name in student.heads if name not in teacher.heads]
    if missing:
        raise UserError(f"{flag} {path}: the teacher has no head for task {missing[0]}, which the student trains "
                        f"(its heads: {', '.join(teacher.heads) or 'none'}); give a teacher fine-tuned on every task "
                        "of --train_datasets")
    ours, theirs = student.encoder.config, teacher.encoder.config
    for field in ("vocab_size", "type_vocab_size"):
        if getattr(theirs, field, None) != getattr(ours, field, None):
            raise UserError(f"{flag} {path}: teacher has {field}={getattr(theirs, field, None)} but the student has "
                            f"{getattr(ours, field, None)}; the teacher reads the student's token ids, so both need "
                            "the same tokenizer: fine-tune the teacher from a model with the student's vocabulary")
    ours_longest, theirs_longest = family_of(ours).max_positions(ours), family_of(theirs).max_positions(theirs)
    longest = min(args.max_seq_len, ours_longest)   # rows are cut to both
    if theirs_longest < longest:
        raise UserError(f"{flag} {path}: the teacher embeds at most {theirs_longest} positions but "
                        f"the student's rows run to {longest}; pass --max_seq_len {theirs_longest} or less")
    return frozen(teacher, device)
