"""GPP (GPP-DFD, Neural Networks 2024) in the loop: heads and FFN neurons pruned by indicator gradients.

A run has three phases (docs/METHODS.md §2; pruners.gpp.phase_of): P updates of
pre-pruning fine-tuning (--prepruning_finetune_epochs), Tp updates of pruning
(--prune_epochs) and retraining for the rest. The optimizer and a linear-decay
LR schedule restart at the first update of pruning (--learning_rate) and of
retraining (--retrain_learning_rate, or --learning_rate): phases this method
declares (`optimizer_phases`) and the LR schedule applies (training.optim.PhasedLR,
which a checkpoint saves, so a resume continues in its phase). The pruner is built
when pruning starts; while it prunes, its L1 indicator penalty joins the loss
and the indicators' gradients are summed after every backward pass (averaged
over processes first). When the indicators freeze at exact 0/1 they are folded
into the weights (pruned heads and neurons become zeros), so a saved model
computes what was evaluated wherever it is loaded (AutoModel, --init_checkpoint,
--teacher_model_path). Saved model directories also carry the indicators
(gpp_indicators.safetensors) and get a structurally pruned export beside them
(`<directory>_pruned`). best_model/ waits for the freeze.
"""
import hashlib
import math

from data_utils.distributed import average_gradients
from data_utils.errors import UserError
from methods.base import LRPhase, TrainingMethod
from modeling.families import family_of
from pruners.gpp import PRUNING_TYPES, GPPPruner, is_phase_start, phase_of


class GPPPruning(TrainingMethod):
    name = "gpp"
    parameter_flags = {"target_sparsity": "--target_sparsity", "pruning_type": "--pruning_type"}

    @classmethod
    def add_arguments(cls, parser) -> None:
        g = parser.add_argument_group("structured pruning (GPP)")
        g.add_argument("--target_sparsity", type=float, default=0.5, help="GPP: fraction of units removed, in (0, 1)")
        g.add_argument("--pruning_type", default="structured_heads+structured_mlp", choices=PRUNING_TYPES,
                       help="GPP: which units to prune")
        g.add_argument("--prepruning_finetune_epochs", type=int, default=1, help="GPP: dense epochs before pruning")
        g.add_argument("--prune_epochs", type=int, default=2, help="GPP: epochs over which sparsity ramps up")
        g.add_argument("--retrain_learning_rate", type=float, default=None,
                       help="GPP: learning rate after pruning (default: --learning_rate)")

    @classmethod
    def validate(cls, args) -> None:
        if not 0 < args.target_sparsity < 1:
            raise UserError(f"--target_sparsity {args.target_sparsity} must be in (0, 1), e.g. 0.5")
        if args.prune_epochs < 1:
            raise UserError(f"--prune_epochs {args.prune_epochs} must be >= 1")
        if args.prepruning_finetune_epochs < 0:
            raise UserError(f"--prepruning_finetune_epochs {args.prepruning_finetune_epochs} must be >= 0")
        needed = args.prepruning_finetune_epochs + args.prune_epochs
        if needed > args.epochs:
            raise UserError(f"--epochs {args.epochs} is shorter than --prepruning_finetune_epochs + --prune_epochs = "
                            f"{needed}; raise --epochs to at least {needed}")
        if args.retrain_learning_rate is not None and not 0 < args.retrain_learning_rate < math.inf:
            raise UserError(f"--retrain_learning_rate {args.retrain_learning_rate} must be > 0 and finite")

    def __init__(self, context):
        super().__init__(context)
        args, total_steps = context.args, context.total_steps
        per_epoch = total_steps // args.epochs
        self.phases = (args.prepruning_finetune_epochs * per_epoch, args.prune_epochs * per_epoch, total_steps)
        try:
            phase_of(1, *self.phases)
        except ValueError as err:
            raise UserError(f"--prune_epochs/--prepruning_finetune_epochs: {err}") from None
        self.args = args
        self.pruner = None        # built when pruning starts
        self.phase = None         # of the update in progress

    def optimizer_phases(self) -> tuple:
        """Pruning and retraining each start with a fresh optimizer, their LR decaying linearly to 0 at the
        end of the run (a phase that would start after the last update never does)."""
        prepruning, pruning, _ = self.phases
        return (LRPhase("pruning", prepruning + 1, self.args.learning_rate),
                LRPhase("retraining", prepruning + pruning + 1,
                        self.args.retrain_learning_rate or self.args.learning_rate))

    def start_update(self, t: int) -> None:
        self.phase = phase_of(t, *self.phases)
        if not is_phase_start(t, *self.phases) or self.phase.name == "prepruning":
            return
        if self.phase.name == "pruning":
            self.pruner = self._new_pruner()
        rate = {phase.name: phase.learning_rate for phase in self.optimizer_phases()}[self.phase.name]
        self.context.logger.info("GPP %s phase starts at update %d (lr %g)", self.phase.name, t, rate)

    def _new_pruner(self) -> GPPPruner:
        encoder = self.context.model.encoder
        return GPPPruner(encoder, pruning_type=self.args.pruning_type, target_sparsity=self.args.target_sparsity,
                         prune_steps=self.phases[1], anatomy=family_of(encoder.config).anatomy)

    @property
    def pruning(self) -> bool:
        """Whether the update in progress prunes (the pruning phase, before the indicators froze)."""
        return self.phase is not None and self.phase.name == "pruning" and not self.pruner.is_done

    def loss(self, loss, inputs, output):
        if not self.pruning:
            return loss
        penalty = self.pruner.indicator_loss()
        self.loss_parts = {"indicator_penalty": penalty.detach()}
        return loss + penalty

    def after_backward(self) -> None:
        if self.pruning:
            average_gradients(self.context.dist_info, self.pruner.indicators().values())
            self.pruner.accumulate_gradients(self.context.grad_scale() if self.context.grad_scale else 1.0)

    def skip_batch(self) -> None:
        if self.pruner is not None:
            for z in self.pruner.indicators().values():
                z.grad = None

    def after_update(self, t: int) -> dict:
        if not self.pruning:
            return {}
        sparsity = self.pruner.step(self.phase.pruning_step)
        if self.pruner.is_done:
            # From now on the weights themselves hold the pruning: a saved model computes what was
            # evaluated wherever it is loaded, without the indicators (which stay in the file, for the
            # structured export). The zeroed units get no gradient, and retraining restarts the optimizer.
            self.pruner.mask.fold_into_weights()
            self.context.logger.info("%s; pruned units folded into the weights as zeros", self.pruner.summary())
        return {"Prune/structured_sparsity": sparsity}

    def at_target(self, t: int) -> bool:
        return self.pruner is not None and self.pruner.is_done

    def write_model_files(self, directory: str) -> None:
        if self.pruner is not None:
            self.pruner.mask.save(directory)

    def after_model_saved(self, directory: str, tokenizer, check_batch) -> None:
        if self.pruner is None:
            return
        from modeling.model import export_structured
        from modeling.structured import pruned_classes

        try:
            pruned_classes(self.context.model.encoder)
        except UserError as err:          # a family (or a setting of one) the export cannot slice yet
            self.context.logger.info("no %s: %s", directory + "_pruned", err)
            return

        indicators = self.pruner.indicators()
        report = export_structured(self.context.model, indicators.get("head"), indicators.get("ffn"), tokenizer,
                                   directory + "_pruned", check_batch=check_batch)
        self.context.logger.info("exported %s: encoder layers %d -> %d parameters (%.1f %%), all parameters "
                                 "%d -> %d, max |masked - exported| = %.2e", directory + "_pruned",
                                 report["encoder_layer_parameters_before"], report["encoder_layer_parameters_after"],
                                 100 * report["encoder_layer_parameters_after"] / report["encoder_layer_parameters_before"],
                                 report["parameters_before"], report["parameters_after"], report["max_abs_difference"])

    def checksums(self) -> dict:
        if self.pruner is None:
            return {}
        digest = hashlib.sha256()
        for _, z in sorted(self.pruner.indicators().items()):
            digest.update(z.detach().cpu().numpy().tobytes())
        return {"gpp_indicators": digest.hexdigest()[:16]}

    def describe(self) -> str:
        return f"{self.args.pruning_type}, target sparsity {self.args.target_sparsity}"

    def state_dict(self):
        return self.pruner.state_dict() if self.pruner is not None else None

    def load_state_dict(self, state) -> None:
        if state is not None:
            self.pruner = self._new_pruner()
            self.pruner.load_state_dict(state)
