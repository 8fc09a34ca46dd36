"""PLATON (Zhang et al., ICML 2022) in the loop: scores by the upper confidence bound of importance."""
from methods.unstructured import UnstructuredPruning
from pruners.platon import PlatonPruner


class PlatonPruning(UnstructuredPruning):
    name = "platon"
    pruner_class = PlatonPruner

    def pruner_arguments(self, args) -> dict:
        return {"beta1": args.beta1, "beta2": args.beta2}
