"""Movement pruning (Sanh, Wolf and Rush, NeurIPS 2020) in the loop: scores −Σ w·∂L/∂w, PLATON's schedule."""
from methods.unstructured import UnstructuredPruning
from pruners.movement import MovementPruner


class MovementPruning(UnstructuredPruning):
    name = "movement"
    pruner_class = MovementPruner
