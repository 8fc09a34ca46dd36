"""Training methods that plug into train.py's loop: pruning (PLATON, magnitude, movement, GPP) and distillation (DFD).

The protocol is in `methods.base`. Adding a method: write its file (a
`TrainingMethod` subclass, and for a new pruner its scoring rule in `pruners/`)
and add one line below. `--pruner` offers every pruning method listed here;
checkpoints store each enabled method's state under its name.

The order below is the order in which the hooks run: distillation first (its
flooding applies to the task loss alone), then the pruning method.
"""
from methods.base import MethodContext, MethodStack, TrainingMethod
from methods.dfd import DFDDistillation
from methods.gpp import GPPPruning
from methods.magnitude import MagnitudePruning
from methods.movement import MovementPruning
from methods.platon import PlatonPruning

REGISTRY = {method.name: method for method in (
    DFDDistillation,
    PlatonPruning,
    MagnitudePruning,
    MovementPruning,
    GPPPruning,
)}
RESERVED = ("loop", "config", "model", "optimizer", "lr_schedule", "rng", "rng_per_rank")  # checkpoint entries
if set(REGISTRY) & set(RESERVED):
    raise RuntimeError(f"a method's name would shadow a checkpoint entry: {set(REGISTRY) & set(RESERVED)}")


def pruning_methods() -> tuple:
    """The --pruner choices besides 'none'."""
    return tuple(name for name, method in REGISTRY.items() if method.kind == "pruning")


def build_methods(context: MethodContext) -> MethodStack:
    """The methods the flags enable, built over the model; a library's ValueError about a setting
    becomes the one-line error naming the flag (mt_dnn.options.flag_error)."""
    from mt_dnn.options import flag_error

    built = []
    for method in REGISTRY.values():
        if method.enabled(context.args):
            try:
                built.append(method(context))
            except ValueError as err:
                raise flag_error(err) from None
    return MethodStack(built)


__all__ = ["MethodContext", "MethodStack", "REGISTRY", "TrainingMethod", "build_methods", "pruning_methods"]
