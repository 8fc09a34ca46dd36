"""Unstructured pruning (PLATON, magnitude, movement) as a training method: the pruner steps after every update.

The pruner (pruners.PlatonPruner, pruners.MagnitudePruner) selects the shared
encoder's prunable parameters (task heads are never selected), follows the cubic
schedule of --initial_threshold/--final_threshold/--warmup_steps/--initial_warmup/
--final_warmup/--deltaT and masks after `optimizer.step()`. best_model/ is saved
only once the remaining ratio has reached its final value (the last
final_warmup·warmup_steps updates).
"""
import os

from data_utils.errors import UserError
from data_utils.files import write_json_atomic
from methods.base import TrainingMethod
from modeling.families import family_of
from pruners.schedule import CubicSchedule

REPORT_FILE = "sparsity_report.json"


class UnstructuredPruning(TrainingMethod):
    """Any `pruners.base.UnstructuredPruner` subclass, given by `pruner_class`."""

    pruner_class = None
    parameter_flags = {**{name: f"--{name}" for name in ("initial_threshold", "final_threshold", "warmup_steps",
                                                         "initial_warmup", "final_warmup", "deltaT")},
                       "kernels": "--pruner_kernels",
                       "total_steps": "--epochs"}        # the run's updates: --epochs × batches per epoch
    not_resumed = ("pruner_kernels",)       # the same results either way

    @classmethod
    def add_arguments(cls, parser) -> None:
        g = parser.add_argument_group("unstructured pruning (PLATON, magnitude, movement): the cubic schedule")
        g.add_argument("--initial_threshold", type=float, default=1.0, help="remaining ratio before pruning starts")
        g.add_argument("--final_threshold", type=float, default=0.10, help="remaining ratio at the end, in (0, 1]")
        g.add_argument("--warmup_steps", type=int, default=5400, help="unit of the pruning warmups, in updates")
        g.add_argument("--initial_warmup", type=float, default=1,
                       help="updates before pruning starts = initial_warmup x warmup_steps")
        g.add_argument("--final_warmup", type=float, default=5,
                       help="final updates at the final ratio = final_warmup x warmup_steps")
        g.add_argument("--deltaT", type=int, default=10,
                       help="updates between maskings (PLATON: also its sensitivity window)")
        g.add_argument("--pruner_kernels", default="auto", choices=("auto", "numba", "torch"),
                       help="how the pruner's passes run on a CPU: fused numba loops (numba), torch operations "
                            "(torch), or numba when installed (auto); same results, the fused loops are about 2x "
                            "faster")

    def pruner_arguments(self, args) -> dict:
        """The pruner's keyword arguments beyond the shared schedule (PLATON adds its betas)."""
        return {}

    def build_pruner(self, schedule: CubicSchedule, args):
        """The pruner over the shared encoder (movement's takes other arguments than the kernels)."""
        return self.pruner_class(self.encoder, schedule, kernels=args.pruner_kernels,
                                 target_substrings=self.target_substrings, **self.pruner_arguments(args))

    def __init__(self, context):
        super().__init__(context)
        args = context.args
        self.args, self.encoder = args, context.model.encoder
        # what the encoder's family prunes (modeling.families): BERT's query/key/value/attention output/FFN
        self.target_substrings = family_of(self.encoder.config).anatomy.prunable_substrings
        self.saved_report = None          # the sparsity report of the last saved model directory
        schedule = CubicSchedule(context.total_steps, args.initial_threshold, args.final_threshold,
                                 args.warmup_steps, args.initial_warmup, args.final_warmup, args.deltaT)
        self.pruner = self.build_pruner(schedule, args)

    def after_update(self, t: int) -> dict:
        try:
            remaining_ratio, mask_threshold = self.pruner.step(t)
        except ValueError as err:      # e.g. every update before the first masking had a non-finite loss
            raise UserError(f"--pruner {self.args.pruner} could not prune at update {t}: {err}; lower "
                            "--learning_rate or fix the data so that the loss stays finite") from None
        scalars = {"Prune/ratio": remaining_ratio}
        if mask_threshold is not None:
            scalars["Prune/threshold"] = float(mask_threshold)
        return scalars

    def periodic_scalars(self) -> dict:
        """Achieved sparsity overall, per layer and per module type."""
        from pruners.report import sparsity_report

        report = sparsity_report(self.encoder, self.target_substrings)
        scalars = {"Sparsity/overall": 1 - report["overall"]["remaining_ratio"]}
        for group in ("per_layer", "per_module_type"):
            for name, row in report[group].items():
                scalars[f"Sparsity/{group}/{name}"] = 1 - row["remaining_ratio"]
        return scalars

    def at_target(self, t: int) -> bool:
        return t >= self.pruner.schedule.final_phase_start

    def write_model_files(self, directory: str) -> None:
        """Every saved model directory carries the sparsity report of its weights (computed once a save:
        the final one is reused by final_report, which comes right after the final model's save)."""
        from pruners.report import sparsity_report

        self.saved_report = {**sparsity_report(self.encoder, self.target_substrings), **self.report_extras()}
        write_json_atomic(os.path.join(directory, REPORT_FILE), self.saved_report)

    def report_extras(self) -> dict:
        """What the method adds to sparsity_report.json beyond the weights' counts (movement: its masks' moves)."""
        return {}

    def final_report(self, output_dir: str) -> None:
        """The final model's report, also at the top of the output directory, and printed."""
        from pruners.report import format_report, sparsity_report

        report = self.saved_report or {**sparsity_report(self.encoder, self.target_substrings), **self.report_extras()}
        write_json_atomic(os.path.join(output_dir, REPORT_FILE), report)
        self.context.logger.info("sparsity report (%s):\n%s", self.target_description(), format_report(report))

    def target_description(self) -> str:
        return f"target remaining ratio {self.args.final_threshold:.4f}"

    def describe(self) -> str:
        return f"target remaining ratio {self.args.final_threshold}; {self.pruner.kernel_name} kernels"

    def state_dict(self):
        return self.pruner.state_dict()

    def load_state_dict(self, state) -> None:
        if state is not None:
            self.pruner.load_state_dict(state)
