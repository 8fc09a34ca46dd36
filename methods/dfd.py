"""DFD (GPP-DFD's dual feature distillation) in the loop: the student matches a fine-tuned teacher.

The teacher (--teacher_model_path, a train.py output's model directory) is
loaded once, frozen and kept in eval mode; only its hidden states are used. The
loss of every micro-batch becomes

    flooded(task loss, --flooding_b) + --dfd_weight · DFD(teacher states, student states)

(module.distill; docs/METHODS.md §3), before any pruning method adds its terms.
"""
import torch

from data_utils.errors import UserError
from methods.base import TrainingMethod
from module.distill import dfd_loss, flooded
from mt_dnn.model import load_encoder


class DFDDistillation(TrainingMethod):
    name = "dfd"
    kind = "distillation"
    needs_hidden_states = True

    @classmethod
    def enabled(cls, args) -> bool:
        return args.do_distill

    def __init__(self, context):
        super().__init__(context)
        self.args = context.args
        self.teacher = load_teacher(context.args.teacher_model_path, context.model.encoder.config, context.device)

    def loss(self, loss, inputs, output):
        with torch.no_grad():
            teacher_hidden = self.teacher(input_ids=inputs[0], token_type_ids=inputs[1], attention_mask=inputs[2],
                                          output_hidden_states=True).hidden_states
        task = flooded(loss, self.args.flooding_b)
        distillation = self.args.dfd_weight * dfd_loss(teacher_hidden, output.hidden_states, self.args.window_size,
                                                       self.args.dfd_fusion)
        self.loss_parts = {"flooding": task.item() - loss.item(), "distillation": distillation.item()}
        return task + distillation

    def describe(self) -> str:
        return f"DFD from {self.args.teacher_model_path} (weight {self.args.dfd_weight}, {self.args.dfd_fusion} fusion)"


def load_teacher(path: str, student, device):
    """The fine-tuned teacher's encoder, frozen, in eval mode (its task heads are not needed)."""
    teacher = load_encoder(path, flag="--teacher_model_path")
    for field in ("num_hidden_layers", "hidden_size", "vocab_size"):
        if getattr(student, field) != getattr(teacher.config, field):
            raise UserError(f"--teacher_model_path {path}: teacher has {field}={getattr(teacher.config, field)} "
                            f"but the student has {getattr(student, field)}; DFD needs the same layer count and "
                            "hidden size, and the same vocabulary (the teacher reads the student's token ids): "
                            "fine-tune the teacher from the student's model")
    teacher.to(device).eval()
    for param in teacher.parameters():
        param.requires_grad_(False)
    return teacher
