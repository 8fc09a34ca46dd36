"""DFD (GPP-DFD's dual feature distillation) in the loop: the student matches a fine-tuned teacher.

The teacher (--teacher_model_path, a train.py output's model directory) is
loaded once, frozen and kept in eval mode; only its hidden states are used. The
loss of every micro-batch becomes

    flooded(task loss, --flooding_b) + --dfd_weight · DFD(teacher states, student states)

(methods.distill; docs/METHODS.md §3), before any pruning method adds its terms.
"""
import math
import os

import torch

from data_utils.errors import UserError
from methods.base import TrainingMethod
from methods.distill import dfd_loss, flooded
from modeling.families import family_of
from modeling.model import load_encoder


class DFDDistillation(TrainingMethod):
    name = "dfd"
    kind = "distillation"
    needs_hidden_states = True

    @classmethod
    def add_arguments(cls, parser) -> None:
        g = parser.add_argument_group("feature distillation (DFD)")
        g.add_argument("--teacher_model_path", default=None,
                       help="distillation teacher: a directory written by train.py (encoder and heads)")
        g.add_argument("--do_distill", action="store_true", help="distill hidden states from the teacher (DFD)")
        g.add_argument("--window_size", type=int, default=3, help="DFD: student fusion window")
        g.add_argument("--flooding_b", type=float, default=0.01,
                       help="flooding level b of the task loss when distilling")
        g.add_argument("--dfd_fusion", default="magnitude", choices=("magnitude", "signed"),
                       help="DFD fusion weights: |sum x_j| / sum |sum x| (default; equal to the published weights "
                            "when a group's sums share a sign, convex otherwise) or sum x_j / sum sum x as published "
                            "(signed; explodes when layer sums change sign, as on the bundled MiniLM)")
        g.add_argument("--dfd_weight", type=float, default=1.0,
                       help="DFD: weight of the distillation loss in the total (1: the method as published; smaller "
                            "when its scale swamps the task loss, as with the bundled MiniLM's hidden states)")

    @classmethod
    def validate(cls, args) -> None:
        if not args.teacher_model_path:
            raise UserError("--do_distill needs --teacher_model_path DIR (a model saved by train.py)")
        check_teacher_directory("--teacher_model_path", args.teacher_model_path)
        if args.window_size < 1:
            raise UserError(f"--window_size {args.window_size} must be >= 1")
        if not 0 <= args.flooding_b < math.inf:
            raise UserError(f"--flooding_b {args.flooding_b} must be >= 0 and finite (e.g. 0.01)")
        if not 0 <= args.dfd_weight < math.inf:
            raise UserError(f"--dfd_weight {args.dfd_weight} must be >= 0 and finite (1: as published)")

    @classmethod
    def enabled(cls, args) -> bool:
        return args.do_distill

    def __init__(self, context):
        super().__init__(context)
        self.args = context.args
        self.teacher = load_teacher(context.args.teacher_model_path, context.model.encoder.config, context.device)
        self.teacher_family = family_of(self.teacher.config, "--teacher_model_path")

    def loss(self, loss, inputs, output):
        with torch.no_grad():
            teacher_hidden = self.teacher(**self.teacher_family.encoder_inputs(*inputs),
                                          output_hidden_states=True).hidden_states
        task = flooded(loss, self.args.flooding_b)
        distillation = self.args.dfd_weight * dfd_loss(teacher_hidden, output.hidden_states, self.args.window_size,
                                                       self.args.dfd_fusion)
        self.loss_parts = {"flooding": (task - loss).detach(), "distillation": distillation.detach()}
        return task + distillation

    def describe(self) -> str:
        return f"DFD from {self.args.teacher_model_path} (weight {self.args.dfd_weight}, {self.args.dfd_fusion} fusion)"


def check_teacher_directory(flag: str, path: str) -> None:
    """A teacher flag (DFD's, logit distillation's) names an existing directory, or a UserError names the flag."""
    if os.path.isfile(path):
        raise UserError(f"{flag} {path} is a file, not a directory; give the model/ directory of a fine-tuned "
                        "train.py run")
    if not os.path.isdir(path):
        raise UserError(f"{flag} {path}: directory not found; give the model/ directory of a fine-tuned train.py "
                        "run")


def load_teacher(path: str, student, device):
    """The fine-tuned teacher's encoder, frozen, in eval mode (its task heads are not needed)."""
    teacher = load_encoder(path, flag="--teacher_model_path")
    for field in ("num_hidden_layers", "hidden_size", "vocab_size"):
        if getattr(student, field) != getattr(teacher.config, field):
            raise UserError(f"--teacher_model_path {path}: teacher has {field}={getattr(teacher.config, field)} "
                            f"but the student has {getattr(student, field)}; DFD needs the same layer count and "
                            "hidden size, and the same vocabulary (the teacher reads the student's token ids): "
                            "fine-tune the teacher from the student's model")
    return frozen(teacher, device)


def frozen(teacher: torch.nn.Module, device) -> torch.nn.Module:
    """`teacher` on `device`, in eval mode (no dropout) and without gradients: a fixed target."""
    teacher.to(device).eval()
    for param in teacher.parameters():
        param.requires_grad_(False)
    return teacher
