"""PLATON (Zhang et al., ICML 2022) in the loop: scores by the upper confidence bound of importance."""
from methods.base import flag_error
from methods.unstructured import UnstructuredPruning
from pruners.platon import PlatonPruner, validate_betas


class PlatonPruning(UnstructuredPruning):
    name = "platon"
    pruner_class = PlatonPruner
    parameter_flags = {"beta1": "--beta1", "beta2": "--beta2"}

    @classmethod
    def validate(cls, args) -> None:
        try:
            validate_betas(args.beta1, args.beta2)
        except ValueError as err:
            raise flag_error(err, cls.parameter_flags) from None

    @classmethod
    def add_arguments(cls, parser) -> None:
        g = parser.add_argument_group("PLATON's scores")
        g.add_argument("--beta1", type=float, default=0.85, help="PLATON: EMA factor of the sensitivity")
        g.add_argument("--beta2", type=float, default=0.95,
                       help="PLATON: EMA factor of the uncertainty, in [0, 1); 1 disables the uncertainty term")

    def pruner_arguments(self, args) -> dict:
        return {"beta1": args.beta1, "beta2": args.beta2}
