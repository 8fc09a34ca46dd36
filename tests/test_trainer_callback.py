"""PruningCallback: the toolkit's unstructured pruners inside a stock transformers.Trainer.

A 2-layer BertForSequenceClassification (hidden 32, built locally) trained by `Trainer` on random
tokens, 24 updates, checkpoints every 6: the pruner steps once per update at the right point
(after optimizer.step(), before zero_grad(), t = 1..max_steps, also with gradient accumulation),
reaches its target remaining ratio, and a run interrupted at a checkpoint and resumed with
`trainer.train(resume_from_checkpoint=...)` ends with the masks, statistics and weights of the
uninterrupted run.
"""
import json
import math
import os

import pytest
import torch

from tests.conftest import tiny_bert_config

import transformers  # noqa: E402,F401 - the Trainer needs accelerate, which requirement.txt lists

from pruners import MagnitudePruner, MovementPruner, PlatonPruner, SoftMovementPruner, sparsity_report  # noqa: E402
from pruners.trainer_callback import STATE_JSON, STATE_TENSORS, PruningCallback  # noqa: E402

MAX_STEPS = 24
SAVE_STEPS = 6
TARGET = 0.3
SCHEDULE = dict(initial_threshold=1.0, final_threshold=TARGET, warmup_steps=4, initial_warmup=1, final_warmup=1,
                deltaT=2)       # no masking for t <= 4, cubic decay, then every update at 0.3 for t > 20
PLATON = dict(SCHEDULE, beta1=0.85, beta2=0.95)


class RandomTokens(torch.utils.data.Dataset):
    """Random token ids of a small vocabulary with random binary labels (fixed by the seed)."""

    def __init__(self, rows=64, length=12, vocab=100, seed=0):
        generator = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(1, vocab, (rows, length), generator=generator)
        self.labels = torch.randint(0, 2, (rows,), generator=generator)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        return {"input_ids": self.ids[index], "attention_mask": torch.ones_like(self.ids[index]),
                "labels": self.labels[index]}


def tiny_model(seed=0):
    torch.manual_seed(seed)
    return transformers.BertForSequenceClassification(tiny_bert_config(vocab_size=100, num_labels=2))


def make_trainer(output_dir, callbacks, model=None, accumulation=1, max_grad_norm=1.0, **arguments):
    settings = dict(output_dir=str(output_dir), use_cpu=True, report_to=[], max_steps=MAX_STEPS,
                    save_strategy="steps", save_steps=SAVE_STEPS, per_device_train_batch_size=4,
                    gradient_accumulation_steps=accumulation, learning_rate=1e-3, seed=0, logging_steps=100,
                    disable_tqdm=True, dataloader_num_workers=0, max_grad_norm=max_grad_norm)
    args = transformers.TrainingArguments(**{**settings, **arguments})
    return transformers.Trainer(model=model if model is not None else tiny_model(), args=args,
                                train_dataset=RandomTokens(), callbacks=callbacks)


class StopAt(transformers.TrainerCallback):
    """Stops the run after update `step` (its checkpoint is still written): an interrupted run."""

    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_training_stop = True
        return control


def selected(model, pruner):
    parameters = dict(model.named_parameters())
    return {name: parameters[name].detach().clone() for name in pruner.parameter_names}


# ---- hook order
class Spy(transformers.TrainerCallback):
    """Records the Trainer's events around each update in a shared list."""

    def __init__(self, events):
        self.events = events

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        weight = model.bert.encoder.layer[0].intermediate.dense.weight
        self.events.append(("pre_optimizer_step", state.global_step, grad_norm(model), weight.detach().clone()))

    def on_substep_end(self, args, state, control, **kwargs):
        self.events.append(("substep_end", state.global_step))

    def on_step_end(self, args, state, control, model=None, **kwargs):
        self.events.append(("step_end", state.global_step, all(p.grad is None or not p.grad.any()
                                                               for p in model.parameters())))


def grad_norm(model):
    return float(torch.sqrt(sum((p.grad.double() ** 2).sum() for p in model.parameters() if p.grad is not None)))


def recording_factory(events):
    """A factory building a PlatonPruner whose step() records t, the gradients and weights it sees."""

    class RecordingPlaton(PlatonPruner):
        def step(self, global_step):
            weight = self.model.bert.encoder.layer[0].intermediate.dense.weight
            events.append(("prune", global_step, grad_norm(self.model), weight.detach().clone(),
                           all(p.grad is not None for p in self.params)))
            return super().step(global_step)

    def factory(model, total_steps, **kwargs):
        events.append(("factory", total_steps))
        pruner = RecordingPlaton(model, total_steps, **kwargs)
        pruner.model = model
        return pruner

    return factory


@pytest.mark.parametrize("accumulation", [1, 2])
def test_pruner_steps_once_per_update_after_the_optimizer_and_before_zero_grad(tmp_path, accumulation):
    events = []
    trainer = make_trainer(tmp_path, [Spy(events), PruningCallback(recording_factory(events), **PLATON)],
                           accumulation=accumulation, max_grad_norm=0.0)    # no clipping: the spy's norm is the step's
    trainer.train()

    assert events[0] == ("factory", MAX_STEPS), f"the factory must get total_steps = max_steps first: {events[0][:2]}"
    prunes = [event for event in events if event[0] == "prune"]
    assert [event[1] for event in prunes] == list(range(1, MAX_STEPS + 1)), \
        f"the pruner must step once per update with t = 1..{MAX_STEPS}: {[event[1] for event in prunes]}"
    substeps = [event for event in events if event[0] == "substep_end"]
    assert len(substeps) == MAX_STEPS * (accumulation - 1), \
        f"{accumulation} micro-batches per update expected, got {len(substeps)} substeps for {MAX_STEPS} updates"
    update_events = [event for event in events if event[0] in ("pre_optimizer_step", "prune", "step_end")]
    for update in range(MAX_STEPS):
        pre, prune, end = update_events[3 * update: 3 * update + 3]
        assert (pre[0], prune[0], end[0]) == ("pre_optimizer_step", "prune", "step_end"), \
            f"update {update + 1}: events in the order {[pre[0], prune[0], end[0]]}"
        assert pre[1] == update and prune[1] == update + 1 and end[1] == update + 1, \
            f"update {update + 1}: global_step {pre[1]} before the optimizer, t={prune[1]}, {end[1]} after"
        assert prune[4], f"update {update + 1}: a selected parameter has no gradient when the pruner steps"
        assert prune[2] == pre[2] and prune[2] > 0, \
            f"update {update + 1}: the pruner saw gradient norm {prune[2]}, the optimizer stepped with {pre[2]} " \
            "(all micro-batches of the update, not zeroed yet)"
        assert not torch.equal(prune[3], pre[3]), \
            f"update {update + 1}: the weights the pruner sees are not yet updated by optimizer.step()"
        assert end[2], f"update {update + 1}: gradients not zeroed after the pruner's step"


# ---- target ratio and resume
def run_uninterrupted(tmp_path, pruner_class, kwargs, accumulation):
    callback = PruningCallback(pruner_class, **kwargs)
    trainer = make_trainer(tmp_path / "full", [callback], accumulation=accumulation)
    trainer.train()
    return trainer, callback


@pytest.mark.parametrize("pruner_class, kwargs, accumulation", [(PlatonPruner, PLATON, 2),
                                                                (MagnitudePruner, SCHEDULE, 1),
                                                                (MovementPruner, SCHEDULE, 2)],
                         ids=["platon-accumulation-2", "magnitude", "movement-accumulation-2"])
def test_reaches_target_and_resume_continues_exactly(tmp_path, pruner_class, kwargs, accumulation):
    full, full_callback = run_uninterrupted(tmp_path, pruner_class, kwargs, accumulation)
    pruner = full_callback.pruner
    assert pruner.last_step == MAX_STEPS, f"the pruner's last step is {pruner.last_step}, not {MAX_STEPS}"
    if isinstance(pruner, MovementPruner):      # top-k of each weight matrix, in the weights after train()
        weights = dict(full.model.named_parameters())
        for name in pruner.parameter_names:
            numel, zeros = weights[name].numel(), int((weights[name] == 0).sum())
            assert zeros == numel - math.ceil(TARGET * numel - 1e-9), \
                f"{name}: {zeros} zeros of {numel} after train(): the masks are in the weights, ceil({TARGET} n) kept"
    else:
        report = sparsity_report(full.model)
        numel = report["overall"]["numel"]
        k = int(numel * (1 - TARGET))
        # τ is the k-th smallest score and masking is strict (score < τ): k − 1 zeros, k if a weight was 0 anyway
        assert report["overall"]["zeros"] in (k - 1, k), \
            f"{report['overall']['zeros']} zeros of {numel}, expected k − 1 or k with k = floor({numel}·(1 − {TARGET})) = {k}"
        assert abs(report["overall"]["remaining_ratio"] - TARGET) < 2 / numel, \
            f"remaining ratio {report['overall']['remaining_ratio']} of {numel} selected entries, target {TARGET}"

    # the state files of every checkpoint: safetensors + JSON, of that step
    for step in range(SAVE_STEPS, MAX_STEPS + 1, SAVE_STEPS):
        directory = tmp_path / "full" / f"checkpoint-{step}"
        with open(directory / STATE_JSON) as handle:
            record = json.load(handle)
        assert record["global_step"] == step and record["pruner"]["last_step"] == step, \
            f"{directory}: the pruner state is of update {record['global_step']}/{record['pruner']['last_step']}"
        assert record["pruner"]["method"] == pruner.method, f"{directory}: method {record['pruner']['method']}"
        assert os.path.isfile(directory / STATE_TENSORS), f"{directory}: no {STATE_TENSORS}"
    final_state = pruner.state_dict()

    # the interrupted run: the same start, stopped after update 12 (its checkpoint written) ...
    interrupted_at = 2 * SAVE_STEPS
    stopped = make_trainer(tmp_path / "resumed", [StopAt(interrupted_at), PruningCallback(pruner_class, **kwargs)],
                           accumulation=accumulation)
    stopped.train()
    assert stopped.state.global_step == interrupted_at, f"the run stopped at {stopped.state.global_step}"
    # ... resumed by a new process-like set-up: a new model (other initial weights), Trainer and callback
    callback = PruningCallback(pruner_class, **kwargs)
    resumed = make_trainer(tmp_path / "resumed", [callback], model=tiny_model(seed=1), accumulation=accumulation)
    resumed.train(resume_from_checkpoint=True)
    assert callback.resumed_from == str(tmp_path / "resumed" / f"checkpoint-{interrupted_at}"), \
        f"the pruner state came from {callback.resumed_from}"
    assert callback.pruner.last_step == MAX_STEPS, f"the resumed pruner ended at {callback.pruner.last_step}"

    full_weights, resumed_weights = full.model.state_dict(), resumed.model.state_dict()
    for name in pruner.parameter_names:
        assert torch.equal(full_weights[name] == 0, resumed_weights[name] == 0), \
            f"{name}: the resumed run's zero pattern differs from the uninterrupted run's " \
            f"({int((full_weights[name] == 0).ne(resumed_weights[name] == 0).sum())} entries)"
    for name, value in full_weights.items():
        torch.testing.assert_close(resumed_weights[name], value, rtol=0, atol=0,
                                   msg=lambda text: f"{name}: resumed weights differ from the uninterrupted run: {text}")
    resumed_state = callback.pruner.state_dict()
    assert resumed_state["tensors"].keys() == final_state["tensors"].keys(), "the statistics differ in names"
    for name, value in final_state["tensors"].items():
        assert torch.equal(resumed_state["tensors"][name], value), \
            f"pruner statistic {name} differs between the resumed and the uninterrupted run"
    assert resumed_state.get("mask_threshold") == final_state.get("mask_threshold"), \
        f"last threshold {resumed_state.get('mask_threshold')} vs {final_state.get('mask_threshold')}"


def test_resume_from_a_checkpoint_outside_output_dir_needs_the_callback_argument(tmp_path):
    full, _ = run_uninterrupted(tmp_path, PlatonPruner, PLATON, accumulation=1)
    checkpoint = str(tmp_path / "full" / "checkpoint-18")

    elsewhere = make_trainer(tmp_path / "elsewhere", [PruningCallback(PlatonPruner, **PLATON)])
    with pytest.raises(ValueError, match="resume_from_checkpoint") as info:
        elsewhere.train(resume_from_checkpoint=checkpoint)
    assert "checkpoint-18" in str(info.value) and STATE_JSON in str(info.value), \
        f"the error must name the directory it looked in and the missing file: {info.value}"

    callback = PruningCallback(PlatonPruner, resume_from_checkpoint=checkpoint, **PLATON)
    resumed = make_trainer(tmp_path / "elsewhere", [callback])
    resumed.train(resume_from_checkpoint=checkpoint)
    assert callback.resumed_from == checkpoint, f"the pruner state came from {callback.resumed_from}"
    for name in callback.pruner.parameter_names:
        assert torch.equal(resumed.model.state_dict()[name], full.model.state_dict()[name]), \
            f"{name}: resumed from {checkpoint} it differs from the uninterrupted run"


def test_refuses_a_state_of_other_settings_and_bad_arguments(tmp_path):
    run_uninterrupted(tmp_path, MagnitudePruner, SCHEDULE, accumulation=1)
    checkpoint = str(tmp_path / "full" / "checkpoint-12")
    other = dict(SCHEDULE, final_threshold=0.5)
    trainer = make_trainer(tmp_path / "other", [PruningCallback(MagnitudePruner, resume_from_checkpoint=checkpoint,
                                                                **other)])
    with pytest.raises(ValueError, match="final_threshold") as info:
        trainer.train(resume_from_checkpoint=checkpoint)
    assert "0.3" in str(info.value) and "0.5" in str(info.value), f"both values must be named: {info.value}"

    platon = make_trainer(tmp_path / "platon", [PruningCallback(PlatonPruner, resume_from_checkpoint=checkpoint,
                                                                **PLATON)])
    with pytest.raises(ValueError, match="method") as info:
        platon.train(resume_from_checkpoint=checkpoint)

    with pytest.raises(ValueError, match="pruner_factory"):
        PruningCallback("PlatonPruner")
    from pruners.gpp import GPPPruner
    with pytest.raises(ValueError, match="pruner_factory=GPPPruner: PruningCallback runs the unstructured"):
        PruningCallback(GPPPruner, total_steps=10)
    with pytest.raises(ValueError, match="pruner_factory"):
        make_trainer(tmp_path / "bad", [PruningCallback(lambda model, total_steps: object())]).train()


# ---- soft movement's penalty and the logged scalars
SOFT = dict(SCHEDULE, final_sigmoid_threshold=0.5, score_learning_rate=0.1)   # scores far enough in 24 updates


class ScoreSpy(transformers.TrainerCallback):
    """Placed before the PruningCallback: at each update, the scores, their (task) gradients and τ before
    the callback adds the penalty's gradient and steps them."""

    def __init__(self, callback, seen):
        self.callback, self.seen = callback, seen

    def on_optimizer_step(self, args, state, control, **kwargs):
        pruner = self.callback.pruner
        self.seen.append({"scores": [s.detach().clone() for s in pruner.scores], "tau": pruner.value,
                          "grads": [None if s.grad is None else s.grad.clone() for s in pruner.scores]})


def recording_soft_factory(stepped):
    """A SoftMovementPruner whose Adam step records the gradients it steps with."""

    class Recording(SoftMovementPruner):
        def _adam_step(self, lr):
            stepped.append([s.grad.clone() for s in self.scores])
            return super()._adam_step(lr)

    return Recording


@pytest.mark.parametrize("accumulation", [1, 2])
def test_soft_movement_adds_the_gradient_of_its_penalty_once_per_update(tmp_path, accumulation):
    seen, stepped = [], []
    final_lambda = 50.0
    callback = PruningCallback(recording_soft_factory(stepped), final_lambda=final_lambda, **SOFT)
    trainer = make_trainer(tmp_path / "soft", [ScoreSpy(callback, seen), callback], accumulation=accumulation,
                           max_grad_norm=0.0)       # no clipping: the gradients compare as they are
    trainer.train()
    assert len(seen) == len(stepped) == MAX_STEPS, f"{len(seen)} spied and {len(stepped)} Adam steps, not {MAX_STEPS}"
    for t, (before, got) in enumerate(zip(seen, stepped), start=1):
        # by hand: λ = final_lambda · τ / final τ, penalty λ · mean over the L matrices of mean(sigmoid(S)),
        # so ∂/∂S = λ / (L · n) · σ(S)(1 − σ(S))
        lam = final_lambda * before["tau"] / SOFT["final_sigmoid_threshold"]
        count = len(before["scores"])
        for index, (scores, task, grad) in enumerate(zip(before["scores"], before["grads"], got)):
            sigma = torch.sigmoid(scores)
            expected = task + lam / (count * scores.numel()) * sigma * (1 - sigma)
            torch.testing.assert_close(grad, expected, rtol=1e-5, atol=1e-9, msg=lambda text: (
                f"update {t}, matrix {index}: the scores' Adam step saw a gradient other than the task's plus the "
                f"penalty's (λ {lam:.3g}): {text}"))
    assert seen[-1]["tau"] > 0, "τ never left 0: the penalty's weight was 0 throughout and the test checked nothing"


def test_soft_movement_penalty_prunes_more_in_the_trainer(tmp_path):
    ratios = {}
    for final_lambda in (0.0, 400.0):
        callback = PruningCallback(SoftMovementPruner, final_lambda=final_lambda, **SOFT)
        trainer = make_trainer(tmp_path / f"lambda{final_lambda:g}", [callback])
        trainer.train()
        weights = dict(trainer.model.named_parameters())
        kept = sum(int((weights[name] != 0).sum()) for name in callback.pruner.parameter_names)
        ratios[final_lambda] = kept / sum(weights[name].numel() for name in callback.pruner.parameter_names)
    assert ratios[400.0] < ratios[0.0] - 0.2, \
        f"remaining {ratios[400.0]:.3f} with final_lambda 400 against {ratios[0.0]:.3f} without the penalty: " \
        "the L1 penalty must push scores below τ in the Trainer as in train.py"


class LogSpy(transformers.TrainerCallback):
    """Records the logs the callbacks after it are given."""

    def __init__(self):
        self.logs = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        self.logs.append(dict(logs))


def test_the_pruners_scalars_reach_the_logs_and_tensorboard(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    spy, callback = LogSpy(), PruningCallback(MovementPruner, **SCHEDULE)
    trainer = make_trainer(tmp_path / "logged", [spy, callback], logging_steps=4, report_to=["tensorboard"])
    assert callback.add_to(trainer) is callback and trainer.callback_handler.callbacks[0] is callback, \
        f"add_to must put the callback first: {[type(c).__name__ for c in trainer.callback_handler.callbacks]}"
    trainer.train()
    training = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert [entry["step"] for entry in training] == list(range(4, MAX_STEPS + 1, 4)), \
        f"training logs at steps {[entry['step'] for entry in training]}"
    for key in ("prune/ratio", "prune/remaining_ratio", "prune/mask_changed", "prune/mask_returned"):
        assert all(key in entry for entry in training), f"{key} missing from the training logs: {training}"
    assert training[0]["prune/remaining_ratio"] == 1.0 and training[-1]["prune/remaining_ratio"] == \
        pytest.approx(TARGET, abs=0.01), f"remaining ratio logged {training[0]['prune/remaining_ratio']} at update 4 " \
        f"(dense warm-up) and {training[-1]['prune/remaining_ratio']} at the end (target {TARGET})"
    assert any(entry["prune/mask_changed"] > 0 for entry in training), "no mask change logged during the ramp"
    assert all("prune/ratio" in logs for logs in spy.logs if "loss" in logs), \
        "a callback after the PruningCallback got training logs without its scalars"
    runs = list((tmp_path / "logged" / "runs").iterdir())       # the Trainer's TensorBoard directory
    assert len(runs) == 1, f"expected one TensorBoard run under output_dir/runs, found {runs}"
    events = EventAccumulator(str(runs[0]))
    events.Reload()
    steps = [event.step for event in events.Scalars("train/prune/remaining_ratio")]
    assert steps == list(range(4, MAX_STEPS + 1, 4)), f"TensorBoard has train/prune/remaining_ratio at {steps}"


def test_the_scalars_reach_log_history_without_add_to(tmp_path):
    callback = PruningCallback(PlatonPruner, **PLATON)
    trainer = make_trainer(tmp_path / "history", [callback], logging_steps=6)
    trainer.train()
    training = [entry for entry in trainer.state.log_history if "loss" in entry]
    ratios = [entry.get("prune/ratio") for entry in training]
    scheduled = [callback.pruner.schedule.remaining_ratio(t) for t in (6, 12, 18, 24)]
    assert ratios == scheduled and ratios[-1] == pytest.approx(TARGET), \
        f"PLATON's ratio in log_history at updates 6, 12, 18, 24: {ratios}, its schedule's {scheduled}"
    assert "prune/threshold" in training[-1], f"no threshold logged at the end: {training[-1]}"
