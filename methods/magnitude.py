"""Magnitude pruning in the loop: PLATON's baseline, scores |w| on the same schedule."""
from methods.unstructured import UnstructuredPruning
from pruners.magnitude import MagnitudePruner


class MagnitudePruning(UnstructuredPruning):
    name = "magnitude"
    pruner_class = MagnitudePruner
