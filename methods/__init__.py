"""Training methods that plug into train.py's loop: pruning (PLATON, magnitude, movement, soft movement, GPP) and
distillation (logit distillation, DFD).

The protocol is in `methods.base`. Adding a method: write its file (a
`TrainingMethod` subclass declaring its flags, checks and state, and for a new
pruner its scoring rule in `pruners/`) and add one line below. train.py's parser
is the core flags plus every method's (`add_method_arguments`); `--pruner` offers
every pruning method listed here; checkpoints store each enabled method's state
under its name.

The order below is the order in which the hooks run: distillation first (its
flooding applies to the task loss alone), then the pruning method.
"""
from methods.base import MethodContext, MethodStack, TrainingMethod, flag_error
from methods.dfd import DFDDistillation
from methods.gpp import GPPPruning
from methods.kd import KDDistillation
from methods.magnitude import MagnitudePruning
from methods.movement import MovementPruning, SoftMovementPruning
from methods.platon import PlatonPruning

REGISTRY = {method.name: method for method in (
    KDDistillation,   # first: it scales the task loss by 1 - α, which DFD then floods and its terms must not get
    DFDDistillation,
    PlatonPruning,
    MagnitudePruning,
    MovementPruning,
    SoftMovementPruning,
    GPPPruning,
)}
RESERVED = ("loop", "config", "model", "optimizer", "lr_schedule", "rng", "rng_per_rank")  # checkpoint entries
if set(REGISTRY) & set(RESERVED):
    raise RuntimeError(f"a method's name would shadow a checkpoint entry: {set(REGISTRY) & set(RESERVED)}")


def pruning_methods() -> tuple:
    """The --pruner choices besides 'none'."""
    return tuple(name for name, method in REGISTRY.items() if method.kind == "pruning")


def _own(attribute: str) -> list:
    """[(class, its own value of `attribute`)] for every class of the registered methods' MROs that defines
    `attribute` itself, each class once, parents before children (TrainingMethod's defaults left out)."""
    found, seen = [], set()
    for method in REGISTRY.values():
        for klass in reversed(method.__mro__):
            if klass in seen or klass is TrainingMethod or attribute not in vars(klass):
                continue
            seen.add(klass)
            value = vars(klass)[attribute]
            found.append((klass, value.__func__ if isinstance(value, classmethod) else value))
    return found


def add_method_arguments(parser) -> list:
    """Add every registered method's flags to `parser`; returns the destinations of those a --resume
    restores from the checkpoint (all but each class's `not_resumed`)."""
    resumed = []
    for klass, add in _own("add_arguments"):
        before = {action.dest for action in parser._actions}
        add(klass, parser)
        added = [action.dest for action in parser._actions if action.dest not in before]
        resumed += [dest for dest in added if dest not in vars(klass).get("not_resumed", ())]
    return resumed


def validate_methods(args) -> None:
    """Each enabled method's checks of its own flags (and its parents'), before any work."""
    for klass, check in _own("validate"):
        if any(issubclass(method, klass) and method.enabled(args) for method in REGISTRY.values()):
            check(klass, args)


def parameter_flags() -> dict:
    """The methods' library parameter names -> the flags that set them."""
    return {name: flag for _, flags in _own("parameter_flags") for name, flag in flags.items()}


def build_methods(context: MethodContext) -> MethodStack:
    """The methods the flags enable, built over the model; a library's ValueError about a setting
    becomes the one-line error naming the flag (flag_error)."""
    built = []
    for method in REGISTRY.values():
        if method.enabled(context.args):
            try:
                built.append(method(context))
            except ValueError as err:
                raise flag_error(err, parameter_flags()) from None
    return MethodStack(built)


__all__ = ["MethodContext", "MethodStack", "REGISTRY", "TrainingMethod", "add_method_arguments", "build_methods",
           "flag_error", "parameter_flags", "pruning_methods", "validate_methods"]
