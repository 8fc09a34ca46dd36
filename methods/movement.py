"""Movement pruning as published (`--pruner movement`) and soft movement (`--pruner soft_movement`) in the loop.

The rule is pruners.movement's (scores trained by their own Adam, a mask from them
at every forward pass, the straight-through gradient; docs/METHODS.md §6). This
method wires it into train.py's loop:

- the pruner is built over the shared encoder with the unstructured schedule flags:
  hard movement keeps --initial_threshold → --final_threshold of each matrix (the
  remaining ratio; --global_topk for one threshold over all matrices), soft movement
  ramps τ from --initial_sigmoid_threshold to --final_sigmoid_threshold over the same
  warm-ups (--warmup_steps, --initial_warmup, --final_warmup; --deltaT is not used);
- the scores join the loop's global gradient clipping (`trainable_tensors`), their
  gradients averaged over processes after each backward pass, and step after every
  update with AdamW at --mask_scores_learning_rate times the weights' learning-rate
  multiplier (the same warm-up and decay), whatever --optimizer the weights use;
- soft movement adds its penalty λ·mean(sigmoid(S)) to the loss (TensorBoard
  train/loss_regularization);
- while a model directory is written (`saving`), the weights are masked in place, so
  model/, best_model/ and hf/<task>/ hold the zeros and give exactly the evaluated
  outputs wherever they are loaded; the live weights are restored afterwards (a
  pruned weight can come back);
- the reports count the masks: sparsity_report.json, Sparsity/* and Prune/remaining_ratio;
  how they move, at every update: Prune/mask_changed (the share of the pruned matrices'
  weights whose mask changed) and Prune/mask_returned (of those, the ones that came back),
  and their means per phase in sparsity_report.json's "mask_flips" and the final log.
"""
import math

from data_utils.distributed import average_gradients
from data_utils.errors import UserError
from methods.base import flag_error
from methods.unstructured import UnstructuredPruning
from pruners.movement import MovementPruner, SoftMovementPruner, validate_soft_settings


class MovementPruning(UnstructuredPruning):
    name = "movement"
    pruner_class = MovementPruner
    parameter_flags = {"score_learning_rate": "--mask_scores_learning_rate",
                       "global_topk_frequency": "--global_topk_frequency"}

    @classmethod
    def add_arguments(cls, parser) -> None:
        g = parser.add_argument_group("movement pruning (hard and soft): the scores")
        g.add_argument("--mask_scores_learning_rate", type=float, default=1e-2,
                       help="movement: learning rate of the scores, trained by their own AdamW (no weight decay, eps "
                            "1e-8) whatever --optimizer the weights use, under the weights' warm-up and decay")
        g.add_argument("--global_topk", action="store_true",
                       help="movement: one threshold over the scores of all matrices instead of the top-k of each")
        g.add_argument("--global_topk_frequency", type=int, default=25,
                       help="movement with --global_topk: updates between recomputations of the threshold")

    @classmethod
    def validate(cls, args) -> None:
        if not 0 < args.mask_scores_learning_rate < math.inf:
            raise UserError(f"--mask_scores_learning_rate {args.mask_scores_learning_rate} must be > 0 and finite "
                            "(published: 1e-2)")
        if args.global_topk_frequency < 1:
            raise UserError(f"--global_topk_frequency {args.global_topk_frequency} must be >= 1 (published: 25)")

    def build_pruner(self, schedule, args):
        return MovementPruner(self.encoder, schedule, score_learning_rate=args.mask_scores_learning_rate,
                              global_topk=args.global_topk, global_topk_frequency=args.global_topk_frequency,
                              target_substrings=self.target_substrings)

    def after_backward(self) -> None:
        average_gradients(self.context.dist_info, self.pruner.scores)

    def skip_batch(self) -> None:
        for scores in self.pruner.scores:
            scores.grad = None

    def trainable_tensors(self) -> list:
        return self.pruner.score_parameters()

    def after_update(self, t: int) -> dict:
        scale = self.context.lr_multiplier(t) if self.context.lr_multiplier is not None else 1.0
        value, threshold = self.pruner.step(t, scale)
        weights = self.pruner.total_weights
        scalars = {"Prune/ratio": value, "Prune/mask_changed": self.pruner.last_flips["changed"] / weights,
                   "Prune/mask_returned": self.pruner.last_flips["returned"] / weights}
        if threshold is not None:
            scalars["Prune/threshold"] = threshold
        return scalars

    def periodic_scalars(self) -> dict:
        """The masks' sparsity overall, per layer and per module type (the weights masked while counted)."""
        with self.pruner.masks_applied():
            scalars = super().periodic_scalars()
        scalars["Prune/remaining_ratio"] = self.pruner.remaining_ratios()["overall"]
        return scalars

    def saving(self):
        return self.pruner.masks_applied()

    def report_extras(self) -> dict:
        return {"mask_flips": self.pruner.flip_summary()}

    def final_report(self, output_dir: str) -> None:
        super().final_report(output_dir)
        summary = self.pruner.flip_summary()
        self.context.logger.info("mask changes per update (share of the %s pruned weights; of which came back): %s",
                                 f"{summary['weights']:,}", "; ".join(
                                     f"{phase} {row['changed_per_update']:.3%} ({row['returned_per_update']:.3%}) over "
                                     f"{row['updates']} updates" for phase, row in summary.items() if phase != "weights"))

    def describe(self) -> str:
        ranking = (f"one threshold over all matrices, recomputed every {self.args.global_topk_frequency} updates"
                   if self.args.global_topk else "top-k of each matrix")
        return (f"movement pruning to remaining ratio {self.args.final_threshold} ({ranking}); scores by AdamW at "
                f"lr {self.args.mask_scores_learning_rate}")


class SoftMovementPruning(MovementPruning):
    name = "soft_movement"
    pruner_class = SoftMovementPruner
    parameter_flags = {"initial_sigmoid_threshold": "--initial_sigmoid_threshold",
                       "final_sigmoid_threshold": "--final_sigmoid_threshold", "final_lambda": "--final_lambda"}

    @classmethod
    def add_arguments(cls, parser) -> None:
        g = parser.add_argument_group("soft movement pruning: threshold on sigmoid(score) and L1 penalty")
        g.add_argument("--initial_sigmoid_threshold", type=float, default=0.0,
                       help="soft movement: tau before pruning starts (keep sigmoid(S) > tau; published 0)")
        g.add_argument("--final_sigmoid_threshold", type=float, default=0.1,
                       help="soft movement: tau at the end, in (0, 1) (published 0.1); the remaining ratio it "
                            "reaches is an outcome, reported per matrix and overall")
        g.add_argument("--final_lambda", type=float, default=400.0,
                       help="soft movement: weight of the L1 penalty on sigmoid(S) at the end, ramped with tau "
                            "(published 400)")

    @classmethod
    def validate(cls, args) -> None:
        try:
            validate_soft_settings(args.initial_sigmoid_threshold, args.final_sigmoid_threshold, args.final_lambda)
        except ValueError as err:
            raise flag_error(err, cls.parameter_flags) from None

    def build_pruner(self, schedule, args):
        return SoftMovementPruner(self.encoder, schedule, initial_sigmoid_threshold=args.initial_sigmoid_threshold,
                                  final_sigmoid_threshold=args.final_sigmoid_threshold,
                                  final_lambda=args.final_lambda, score_learning_rate=args.mask_scores_learning_rate,
                                  target_substrings=self.target_substrings)

    def loss(self, loss, inputs, output):
        penalty = self.pruner.regularization()
        self.loss_parts = {"regularization": penalty.detach()}
        return loss + penalty

    def after_update(self, t: int) -> dict:
        scalars = super().after_update(t)
        scalars["Prune/lambda"] = self.pruner.regularization_weight
        return scalars

    def target_description(self) -> str:
        return (f"final tau {self.args.final_sigmoid_threshold} on sigmoid(score); the remaining ratio is what it "
                f"reached: {self.pruner.remaining_ratios()['overall']:.4f} of the pruned matrices' weights")

    def describe(self) -> str:
        return (f"soft movement pruning: keep sigmoid(S) > tau, tau {self.args.initial_sigmoid_threshold} -> "
                f"{self.args.final_sigmoid_threshold}, final lambda {self.args.final_lambda}; scores by AdamW at "
                f"lr {self.args.mask_scores_learning_rate}")
