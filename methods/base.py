"""How a pruning or distillation method joins the training loop: one small protocol.

train.py's loop names no method. It holds one `MethodStack` (the methods this
run enabled, in registry order) and calls it at fixed points of every update t
(1-based, counted in optimizer updates):

    building the optimizer          optimizer_phases() -> [LRPhase]   the updates before
                                    which the optimizer restarts at another learning rate (GPP's
                                    pruning and retraining); the LR schedule applies them
    first micro-batch of update t   start_update(t)
    every micro-batch               needs_hidden_states     whether the forward pass returns them
                                    loss(loss, inputs, output) -> the loss with the method's terms
                                    (named parts for TensorBoard in `loss_parts`, else one part
                                    named after the method: what it added)
                                    after_backward()        after (loss / accumulation).backward()
    before clipping                 trainable_tensors()     tensors the method trains itself (movement's
                                    scores): clipped with the model's gradients, in one global norm
                                    skip_batch()            instead, when the loss was not finite
    after optimizer.step()          after_update(t) -> {TensorBoard tag: value}
    every --log_per_updates, each   periodic_scalars() -> {tag: value}  (only when TensorBoard is on)
    evaluation and the end
    after each evaluation           at_target(t)            whether best_model/ may be saved
    saving a model directory        saving()                a context manager around the save (movement: the
                                    weights masked in place while it lasts)
                                    write_model_files(directory)   inside its atomic write
                                    after_model_saved(directory, tokenizer, check_batch)
    end of the run                  final_report(output_dir)
    checkpoints                     state_dict() / load_state_dict(state), under the method's name
    distributed runs                checksums() -> {name: hex}, compared across ranks
    start-up summary                describe() -> str

A method also describes its command line (class-level, composed by `methods`):

    add_arguments(parser)   the flags this class introduces (each class of a method's MRO is asked once,
                            so methods sharing a parent share its flags)
    validate(args)          their checks when the method is enabled: a UserError naming the flag
    parameter_flags         its library's parameter names -> the flags that set them, so that a library
                            ValueError is rendered with flag names (methods.flag_error)
    not_resumed             its flags that a --resume takes from the command line (how it runs, not what
                            it trains); every other flag it adds is restored from the checkpoint

A method subclasses `TrainingMethod`, overrides what it needs (every hook has a
do-nothing default) and gets one line in `methods.REGISTRY`; the parser, the loop,
the checkpoint code and the reports need no change.
"""
import contextlib
from dataclasses import dataclass
from typing import Any, Dict, List

import torch

from data_utils.errors import UserError


def flag_error(err: ValueError, names: Dict[str, str]) -> UserError:
    """The CLI's one-line error for a library's ValueError: parameters named as the flags that set them
    (`names`; errors that carry their parameters as placeholders, pruners.schedule.PrunerSettingError, are
    rendered with them; others keep their text)."""
    render = getattr(err, "with_names", None)
    return UserError(render(names) if render else str(err))


@dataclass(frozen=True)
class LRPhase:
    """From update `start` (1-based) on, until the next phase: the optimizer afresh at `learning_rate`
    times training.optim.lr_multiplier over the updates left in the run, `warmup` and `shape` as --warmup and
    --warmup_schedule."""
    name: str
    start: int
    learning_rate: float
    warmup: float = 0.0
    shape: str = "warmup_linear"


@dataclass(frozen=True)
class MethodContext:
    """What a method may use: the parsed flags, the model (not wrapped for DDP), the run's length."""
    args: Any
    model: torch.nn.Module
    total_steps: int
    device: torch.device
    dist_info: Any
    logger: Any
    lr_multiplier: Any = None      # t -> the weights' learning-rate multiplier of update t (warm-up, decay)
    grad_scale: Any = None         # () -> the factor the last backward's loss was scaled by (--precision fp16)


class TrainingMethod:
    """A method that joins the loop through the hooks above (see the module docstring)."""

    name = ""                 # its key in checkpoints and, for a pruning method, its --pruner choice
    kind = "pruning"          # "pruning" (one per run, chosen by --pruner) or "distillation"
    needs_hidden_states = False
    # what `loss` added, by part, at its last call (if it names them): 0-d tensors, detached, so that
    # nothing waits for the device until TensorBoard reads them (one host sync per logged update, none per
    # micro-batch)
    loss_parts: Dict[str, Any] = {}

    parameter_flags: Dict[str, str] = {}
    not_resumed: tuple = ()

    @classmethod
    def add_arguments(cls, parser) -> None:
        """Add the flags this class introduces (see the module's docstring)."""

    @classmethod
    def validate(cls, args) -> None:
        """Refuse impossible values of this class's flags before any work (the method is enabled)."""

    @classmethod
    def enabled(cls, args) -> bool:
        """Whether the parsed flags turn this method on."""
        return cls.kind == "pruning" and args.pruner == cls.name

    def __init__(self, context: MethodContext):
        self.context = context

    def optimizer_phases(self) -> tuple:
        return ()

    def start_update(self, t: int) -> None:
        pass

    def loss(self, loss: torch.Tensor, inputs, output) -> torch.Tensor:
        return loss

    def after_backward(self) -> None:
        pass

    def trainable_tensors(self) -> list:
        return []

    def saving(self):
        return contextlib.nullcontext()

    def skip_batch(self) -> None:
        pass

    def after_update(self, t: int) -> Dict[str, float]:
        return {}

    def periodic_scalars(self) -> Dict[str, float]:
        return {}

    def at_target(self, t: int) -> bool:
        return True

    def write_model_files(self, directory: str) -> None:
        pass

    def after_model_saved(self, directory: str, tokenizer, check_batch) -> None:
        pass

    def final_report(self, output_dir: str) -> None:
        pass

    def checksums(self) -> Dict[str, str]:
        return {}

    def describe(self) -> str:
        return ""

    def state_dict(self):
        return None

    def load_state_dict(self, state) -> None:
        pass


class MethodStack:
    """The enabled methods as one: hooks run in order; a loss passes through each method."""

    def __init__(self, methods: List[TrainingMethod]):
        self.methods = list(methods)
        self.needs_hidden_states = any(method.needs_hidden_states for method in self.methods)
        self.loss_parts: Dict[str, Any] = {}

    def optimizer_phases(self) -> list:
        """Every method's phases, in order of their first updates (stable: registry order at the same one)."""
        return sorted((phase for method in self.methods for phase in method.optimizer_phases()),
                      key=lambda phase: phase.start)

    def start_update(self, t: int) -> None:
        for method in self.methods:
            method.start_update(t)

    def loss(self, loss, inputs, output):
        """The loss with every method's terms; `loss_parts` then holds the task loss and each part."""
        self.loss_parts = {"task": loss.detach()}
        for method in self.methods:
            before = loss
            method.loss_parts = {}
            loss = method.loss(loss, inputs, output)
            if loss is not before:
                self.loss_parts.update(method.loss_parts or {method.name: (loss - before).detach()})
        return loss

    def after_backward(self) -> None:
        for method in self.methods:
            method.after_backward()

    def skip_batch(self) -> None:
        for method in self.methods:
            method.skip_batch()

    def trainable_tensors(self) -> list:
        return [tensor for method in self.methods for tensor in method.trainable_tensors()]

    @contextlib.contextmanager
    def saving(self):
        with contextlib.ExitStack() as stack:
            for method in self.methods:
                stack.enter_context(method.saving())
            yield

    def after_update(self, t: int) -> Dict[str, float]:
        return {tag: value for method in self.methods for tag, value in method.after_update(t).items()}

    def periodic_scalars(self) -> Dict[str, float]:
        return {tag: value for method in self.methods for tag, value in method.periodic_scalars().items()}

    def at_target(self, t: int) -> bool:
        return all(method.at_target(t) for method in self.methods)

    def write_model_files(self, directory: str) -> None:
        for method in self.methods:
            method.write_model_files(directory)

    def after_model_saved(self, directory: str, tokenizer, check_batch) -> None:
        for method in self.methods:
            method.after_model_saved(directory, tokenizer, check_batch)

    def final_report(self, output_dir: str) -> None:
        for method in self.methods:
            method.final_report(output_dir)

    def checksums(self) -> Dict[str, str]:
        return {key: value for method in self.methods for key, value in method.checksums().items()}

    def describe(self) -> str:
        return "; ".join(text for text in (method.describe() for method in self.methods) if text)

    def state_dict(self) -> Dict[str, Any]:
        """{method name: its state}, stored as top-level entries of a checkpoint."""
        return {method.name: method.state_dict() for method in self.methods}

    def load_state_dict(self, states: Dict[str, Any]) -> None:
        for method in self.methods:
            method.load_state_dict(states.get(method.name))
