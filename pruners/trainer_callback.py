"""Unstructured pruning inside a stock `transformers.Trainer`: `PruningCallback`.

    from pruners import CubicSchedule, PlatonPruner
    from pruners.trainer_callback import PruningCallback

    schedule = CubicSchedule(total_steps=1000, initial_threshold=1.0, final_threshold=0.3, warmup_steps=100,
                             initial_warmup=1, final_warmup=3, deltaT=10)
    callback = PruningCallback(PlatonPruner, schedule=schedule, beta1=0.85, beta2=0.95)
    trainer = Trainer(model=model, args=args, train_dataset=data, callbacks=[callback])
    callback.add_to(trainer)             # optional: first among the callbacks, so reporters get its scalars
    trainer.train()                      # or trainer.train(resume_from_checkpoint=True)
    callback.pruner                      # the pruner of the last train() call (sparsity_report(model) etc.)

`pruner_factory` is a pruner class (PlatonPruner, MagnitudePruner, any pruner with the same
constructor) or any callable; it is called once per `train()`, at train begin, with the Trainer's
(unwrapped) model: `pruner_factory(model, schedule, **pruner_kwargs)` when a `schedule` is given,
whose total_steps must then be the run's `state.max_steps` (the number of optimizer updates,
checked then); without one, `pruner_factory(model, state.max_steps, **pruner_kwargs)`, the
schedule's other settings among the keywords (initial_threshold=..., ..., deltaT=...): the pruner
builds its schedule over the run's length, known only at train begin.

Where it acts (transformers 5.x, `Trainer._run_epoch`): per optimizer update, once all the
micro-batches of gradient accumulation are summed,

    clip gradients → on_pre_optimizer_step → optimizer.step() → on_optimizer_step
    → lr_scheduler.step() → model.zero_grad() → state.global_step += 1 → on_step_end → save (on_save)

so `on_optimizer_step` is the one event with the update's weights and gradients both present
(the pruners' contract: after `optimizer.step()`, before the gradients are zeroed). It fires once
per update, never per micro-batch, and `state.global_step` still counts the updates before this
one there: the pruner steps with t = state.global_step + 1 (1, 2, ..., max_steps). It sees the
gradients after the Trainer's clipping (`max_grad_norm`), as `train.py`'s pruners do.

State across the Trainer's checkpoints: at `on_save`, right after the Trainer wrote
`args.output_dir/checkpoint-<global_step>/`, the pruner's `state_dict()` (format in
`pruners.base`) goes into that directory as

    pruner_state.safetensors   its "tensors" (the statistics: PLATON's I, Ī, U; none for magnitude)
    pruner_state.json          everything else, plus the global step and the callback's file format

(each written to a temporary name, then renamed; the JSON last). No pickle is written or read.
The zeroed weights themselves are in the Trainer's model checkpoint. When `train()` resumes (the
state it loaded has global_step > 0 at train begin), the callback reads the pruner state of the
checkpoint the run resumes from: `resume_from_checkpoint` given to the callback, else
`args.output_dir/checkpoint-<state.global_step>`. Callbacks are not told which checkpoint
`train(resume_from_checkpoint=...)` loaded; that is the directory the Trainer itself picks for
`resume_from_checkpoint=True` (its newest checkpoint) and writes to, so only a checkpoint kept
outside `output_dir` needs the callback's argument. The state must be of the same step, method,
parameters and hyperparameters (total_steps = the resumed run's max_steps included); anything else
is refused with a ValueError, as is a resumed run without a pruner state: the masks and statistics
then continue exactly (tests/test_trainer_callback.py: the same zero patterns and final weights as
an uninterrupted run).

Movement pruning (pruners.MovementPruner, SoftMovementPruner) trains its scores itself: at
on_optimizer_step the callback clips their gradients to `max_grad_norm` (their own norm: the
Trainer has already clipped the model's) and steps them at the pruner's score learning rate times
the Trainer's current learning-rate multiplier (the optimizer's first group's lr / args.learning_rate).
Soft movement's L1 penalty λ·mean(sigmoid(S)) is not part of the loss the Trainer computes, so the
callback adds its gradient to the scores' there, before their clipping, once per update: what train.py
gets from adding penalty / accumulation steps to every micro-batch's loss.
The Trainer's checkpoints hold the unmasked weights (a masked weight can come back), the pruner
state the scores and their Adam moments; at on_train_end the masks go into the weights for good
(`finalize()`), so `trainer.save_model()` after `train()` writes the zeros.

Logging: every Trainer training log (the ones with "loss", every `logging_steps`) gets the pruner's
scalars of the last update: `prune/ratio` (the scheduled remaining ratio; soft movement: τ),
`prune/threshold` (PLATON's and magnitude's score threshold, global top-k movement's), for movement
`prune/remaining_ratio` (from the masks), `prune/mask_changed` and `prune/mask_returned` (the share
of the selected weights whose mask changed, and came back, per update: means since the previous
log), for soft movement `prune/regularization` (the penalty) and `prune/lambda`. They go into
`trainer.state.log_history` (and trainer_state.json) whatever the callback's place; the reporters
(TensorBoard as `train/prune/...`, W&B, the printer) see them only when the callback comes before
them: the Trainer puts the callbacks given to it after its reporters, `callback.add_to(trainer)`
moves it first.

Not covered: hyperparameter search (`Trainer.hyperparameter_search` writes its checkpoints under
`output_dir/run-<trial>/`; on_save refuses when the checkpoint directory is not where it looks),
DeepSpeed ZeRO-3 and FSDP (parameters sharded: the pruner would see shards), and fp16 updates that
the gradient scaler skips (the pruner still steps with that update's inf/NaN gradients).
"""
import json
import os
from typing import Any, Callable, Optional

import torch
from safetensors.torch import load_file, save_file
from transformers import TrainerCallback

from pruners.files import replace_file
from pruners.schedule import CubicSchedule

STATE_JSON = "pruner_state.json"
STATE_TENSORS = "pruner_state.safetensors"
CALLBACK_FORMAT = 1
AVERAGED = ("prune/mask_changed", "prune/mask_returned")      # logged as means over the updates since the last log


class PruningCallback(TrainerCallback):
    """Runs one of the toolkit's unstructured pruners in a `transformers.Trainer` (module docstring)."""

    def __init__(self, pruner_factory: Callable[..., Any], *, schedule: Optional[CubicSchedule] = None,
                 resume_from_checkpoint: Optional[str] = None, **pruner_kwargs):
        if not callable(pruner_factory):
            raise ValueError(f"pruner_factory={pruner_factory!r} must be a pruner class (PlatonPruner, "
                             "MagnitudePruner, ...) or a callable (model, total_steps, **pruner_kwargs) -> pruner")
        if getattr(pruner_factory, "__name__", "") == "GPPPruner":
            raise ValueError("pruner_factory=GPPPruner: PruningCallback runs the unstructured pruners (PlatonPruner, "
                             "MagnitudePruner, MovementPruner, SoftMovementPruner); GPP's structured pruning runs in "
                             "train.py --pruner gpp or run_GDbert_glue.py")
        if resume_from_checkpoint is not None and not isinstance(resume_from_checkpoint, (str, os.PathLike)):
            raise ValueError(f"resume_from_checkpoint={resume_from_checkpoint!r} must be None or the path of the "
                             "Trainer checkpoint directory the run resumes from")
        if schedule is not None and not isinstance(schedule, CubicSchedule):
            raise TypeError(f"schedule={schedule!r} must be a pruners.CubicSchedule (or None: the schedule's "
                            "settings among the keyword arguments, over the Trainer's max_steps)")
        self.pruner_factory, self.schedule = pruner_factory, schedule
        self.pruner_kwargs = pruner_kwargs
        self.resume_from_checkpoint = None if resume_from_checkpoint is None else os.fspath(resume_from_checkpoint)
        self.pruner = None                  # built at train begin
        self._latest: dict = {}             # scalars for the next log (_record, on_log)
        self._sums: dict = {}
        self.resumed_from: Optional[str] = None     # the checkpoint directory whose pruner state was loaded

    # ---- Trainer events
    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if model is None:
            raise ValueError("PruningCallback got no model at train begin: pass the model to the Trainer "
                             "(model= or model_init=)")
        if not (isinstance(state.max_steps, int) and state.max_steps >= 1):
            raise ValueError(f"state.max_steps={state.max_steps!r}: the Trainer must know the number of optimizer "
                             "updates at train begin (set max_steps or give a sized train_dataset)")
        if self.schedule is None:
            pruner = self.pruner_factory(model, state.max_steps, **self.pruner_kwargs)
        elif self.schedule.total_steps != state.max_steps:
            raise ValueError(f"schedule.total_steps={self.schedule.total_steps} but the Trainer runs "
                             f"max_steps={state.max_steps} optimizer updates; build the CubicSchedule with "
                             f"total_steps={state.max_steps}")
        else:
            pruner = self.pruner_factory(model, self.schedule, **self.pruner_kwargs)
        missing = [name for name in ("step", "state_dict", "load_state_dict") if not callable(getattr(pruner, name, None))]
        if missing:
            raise ValueError(f"pruner_factory={self.pruner_factory!r} returned {type(pruner).__name__}, which has no "
                             f"{', '.join(missing)}: it must return a pruner shaped like pruners.base.UnstructuredPruner")
        self.pruner, self.resumed_from = pruner, None
        self._latest, self._sums = {}, {}
        if state.global_step > 0:
            directory = self.resume_from_checkpoint or os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
            saved = read_pruner_state(directory, state.global_step)
            check_same_settings(self.pruner, saved)
            self.pruner.load_state_dict(saved)
            self.resumed_from = directory

    def on_optimizer_step(self, args, state, control, **kwargs):
        if self.pruner is None:
            raise ValueError("PruningCallback.on_optimizer_step before on_train_begin: the callback must be "
                             "passed to a transformers.Trainer (callbacks=[...])")
        t = state.global_step + 1           # the Trainer increments global_step after this event
        last = getattr(self.pruner, "last_step", None)
        if last is not None and t != last + 1:
            raise ValueError(f"the pruner last stepped at update {last} but the Trainer is at update {t}: "
                             "its state does not belong to this run (resume_from_checkpoint)")
        scores = getattr(self.pruner, "score_parameters", None)
        if scores is None:
            stepped = self.pruner.step(t)
            value, threshold = stepped if isinstance(stepped, tuple) and len(stepped) == 2 else (None, None)
            self._record({"prune/ratio": value, "prune/threshold": threshold})
            return
        # movement: the scores are the pruner's own to train; the Trainer clipped only the model's gradients
        penalty = self._add_regularization_gradient()
        if args.max_grad_norm and args.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_([s for s in scores() if s.grad is not None], args.max_grad_norm)
        optimizer = kwargs.get("optimizer")
        lr = optimizer.param_groups[0]["lr"] if optimizer is not None else args.learning_rate
        value, threshold = self.pruner.step(t, lr / args.learning_rate if args.learning_rate else 1.0)
        weights = self.pruner.total_weights
        self._record({"prune/ratio": value, "prune/threshold": threshold,
                      "prune/mask_changed": self.pruner.last_flips["changed"] / weights,
                      "prune/mask_returned": self.pruner.last_flips["returned"] / weights,
                      "prune/regularization": penalty,
                      "prune/lambda": getattr(self.pruner, "regularization_weight", None) if penalty is not None
                      else None})

    def _add_regularization_gradient(self) -> Optional[float]:
        """Soft movement's L1 penalty λ·mean(sigmoid(S)): the Trainer computes the loss, so its gradient is
        added to the scores' here, once per update (train.py adds penalty/accumulation to each micro-batch's
        loss: the same sum). Returns the penalty's value, None for a pruner without one."""
        regularization = getattr(self.pruner, "regularization", None)
        with torch.enable_grad():
            penalty = regularization() if regularization is not None else None
            if penalty is None:
                return None
            scores = self.pruner.score_parameters()
            gradients = torch.autograd.grad(penalty, scores)
        for score, gradient in zip(scores, gradients):
            score.grad = gradient if score.grad is None else score.grad + gradient
        return float(penalty.detach())

    def _record(self, scalars: dict) -> None:
        """Keep update t's scalars for the Trainer's next log: the latest value of each, the mean over the
        updates since that log for the mask-change shares."""
        for key, value in scalars.items():
            if value is None:
                continue
            if key in AVERAGED:
                total, count = self._sums.get(key, (0.0, 0))
                self._sums[key] = (total + float(value), count + 1)
            else:
                self._latest[key] = float(value)

    def on_log(self, args, state, control, logs=None, **kwargs):
        """Adds the pruner's scalars (module docstring) to the Trainer's training logs (those with "loss") and
        to the matching `state.log_history` entry."""
        if self.pruner is None or logs is None or "loss" not in logs or not (self._latest or self._sums):
            return
        extra = dict(self._latest)
        extra.update({key: total / count for key, (total, count) in self._sums.items()})
        if callable(getattr(self.pruner, "remaining_ratios", None)) and getattr(self.pruner, "attached", False):
            extra["prune/remaining_ratio"] = self.pruner.remaining_ratios()["overall"]      # from the masks
        self._sums = {}
        logs.update(extra)
        entry = state.log_history[-1] if state.log_history else None
        if isinstance(entry, dict) and entry.get("step") == state.global_step and "loss" in entry:
            entry.update(extra)

    def add_to(self, trainer) -> "PruningCallback":
        """Put this callback first among `trainer`'s callbacks (adding it if absent), so that the scalars its
        on_log adds reach the reporters (TensorBoard, W&B, the progress printer), which the Trainer places
        before the callbacks given to it. Returns the callback."""
        callbacks = trainer.callback_handler.callbacks
        if self in callbacks:
            callbacks.remove(self)
        callbacks.insert(0, self)
        return self

    def on_train_end(self, args, state, control, **kwargs):
        finalize = getattr(self.pruner, "finalize", None)
        if finalize is not None and getattr(self.pruner, "attached", False):
            finalize()              # movement: the masks into the weights, so that save_model() holds the zeros

    def on_save(self, args, state, control, **kwargs):
        if self.pruner is None or not args.should_save:
            return
        directory = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
        if not os.path.isdir(directory):
            raise ValueError(f"the Trainer's checkpoint {directory} does not exist (args.output_dir="
                             f"{args.output_dir!r}); PruningCallback saves only into output_dir/checkpoint-<step> "
                             "(no hyperparameter search)")
        write_pruner_state(directory, self.pruner.state_dict(), state.global_step)


def write_pruner_state(directory: str, state: dict, global_step: int) -> None:
    """Write a pruner `state_dict()` into a checkpoint directory: tensors as safetensors, the rest as JSON."""
    tensors = {name: tensor.detach().cpu().contiguous() for name, tensor in state["tensors"].items()}
    record = {"format": CALLBACK_FORMAT, "global_step": int(global_step), "tensors_file": STATE_TENSORS,
              "pruner": {key: value for key, value in state.items() if key != "tensors"}}
    tensors_path, json_path = os.path.join(directory, STATE_TENSORS), os.path.join(directory, STATE_JSON)
    replace_file(tensors_path, lambda tmp: save_file(tensors, tmp))
    replace_file(json_path, lambda tmp: _dump_json(record, tmp))       # last: it names the tensors file


def _dump_json(record: dict, path: str) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(record, handle, indent=1)


def read_pruner_state(directory: str, global_step: int) -> dict:
    """The pruner `state_dict()` saved in a checkpoint directory at `global_step` (ValueError otherwise)."""
    json_path, tensors_path = os.path.join(directory, STATE_JSON), os.path.join(directory, STATE_TENSORS)
    if not os.path.isfile(json_path) or not os.path.isfile(tensors_path):
        raise ValueError(f"resume_from_checkpoint: {directory} holds no pruner state ({STATE_JSON} and "
                         f"{STATE_TENSORS}, written by PruningCallback at on_save); pass the callback "
                         "resume_from_checkpoint=<the checkpoint the Trainer resumes from>")
    try:
        with open(json_path, encoding="utf-8") as handle:
            record = json.load(handle)
    except (OSError, ValueError, RecursionError) as error:
        raise ValueError(f"resume_from_checkpoint: {json_path} is not readable JSON ({error})") from None
    if not isinstance(record, dict) or record.get("format") != CALLBACK_FORMAT or not isinstance(record.get("pruner"), dict):
        raise ValueError(f"resume_from_checkpoint: {json_path} is not a PruningCallback state of format {CALLBACK_FORMAT}")
    if record.get("global_step") != global_step:
        raise ValueError(f"resume_from_checkpoint: the pruner state in {directory} is of update "
                         f"{record.get('global_step')}, the Trainer resumes at update {global_step}")
    try:
        tensors = load_file(tensors_path)
    except Exception as error:        # safetensors raises its own error types for corrupt files
        raise ValueError(f"resume_from_checkpoint: {tensors_path} is not a readable safetensors file ({error})") from None
    return dict(record["pruner"], tensors=tensors)


def check_same_settings(pruner, state: dict) -> None:
    """Refuse a saved state whose hyperparameters differ from the pruner's (ValueError naming the first)."""
    method = getattr(pruner, "method", None)
    if state.get("method") != method:
        raise ValueError(f"method: the pruner state of the resumed checkpoint is of method {state.get('method')!r}, "
                         f"this run's pruner of method {method!r}; resume with the pruner of the interrupted run")
    if not callable(getattr(pruner, "hyperparameters", None)):
        return
    mine = json.loads(json.dumps(pruner.hyperparameters()))       # as it reads back from the JSON
    saved = state.get("hyperparameters") or {}
    for name in sorted(set(mine) | set(saved)):
        if mine.get(name) != saved.get(name):
            raise ValueError(f"{name}: the pruner state of the resumed checkpoint has {name}={saved.get(name)!r}, "
                             f"this run's pruner {name}={mine.get(name)!r} (total_steps is the Trainer's max_steps); "
                             "resume with the settings of the interrupted run")
