"""Pruners shaped like optimizers: PLATON, magnitude, movement (unstructured) and GPP (structured).

Unstructured pruners (this package's top level; GPP lives in `pruners.gpp`):

    CubicSchedule(total_steps, initial_threshold, final_threshold, warmup_steps, initial_warmup,
                  final_warmup, deltaT)                  the remaining-ratio schedule, validated once
        .remaining_ratio(t), .is_masking_step(t), .final_phase_start, .phase(t)
    PlatonPruner(model, schedule, *, beta1, beta2,
                 target_substrings=DEFAULT_TARGET_SUBSTRINGS, num_threads=None, kernels="auto")
    MagnitudePruner(model, schedule, *, <the same without beta1, beta2>)
        (the older form still works: total_steps in the schedule's place and its other
        settings as keywords, PlatonPruner(model, total_steps, initial_threshold=..., ...))
        .step(global_step) -> (remaining_ratio, mask_threshold or None)   once per optimizer update
        .last_step_stats                                                  what the last step did (PruneStepStats)
        .summary()                                                        the last step in one line, for logs
        .state_dict() / .load_state_dict(state)                           format in pruners.base
        .kernel_name                                                      "numba" (fused CPU loops) or "torch"
    MovementPruner(model, schedule, *, score_learning_rate=1e-2, global_topk=False, global_topk_frequency=25,
                   target_substrings=...)             movement pruning as published (pruners.movement):
    SoftMovementPruner(model, schedule, *, initial_sigmoid_threshold=0, final_sigmoid_threshold=0.1,
                       final_lambda=400, score_learning_rate=1e-2, target_substrings=...)
        learned scores with their own Adam, a mask at every forward pass (the weights are never zeroed
        while training); .step(t, lr_scale) after optimizer.step(), .score_parameters() to clip with the
        weights, .regularization() (soft: add it to the loss), .masks_applied() (save inside it),
        .finalize(), .remaining_ratios(), .state_dict() / .load_state_dict(state)
    sparsity_report(model, target_substrings) -> dict, format_report(report) -> str
    PrunerSettingError       a ValueError naming the refused parameter (`.parameter`); its message is a
                             template whose parameter names a front end can render as its own
                             (`.with_names({"final_threshold": "--final_threshold"})`)
    PrunerSettingTypeError   the same for a value that is not a number at all, also a TypeError
    Any other bad input (a model, target_substrings, a step, a state) is a ValueError or TypeError of one
    sentence, raised before anything changes (docs/ERRORS.md, "The pruner library").

Modules: base (the optimizer-shaped API), platon and magnitude (the scoring rules, each with its
statistics update: PLATON's in torch and in numba, platon_loops), movement (hard and soft movement,
their own API), schedule (the cubic
schedule and the settings' validation), threshold (the exact global threshold), layout (flat
buffers and slabs), kernels (the rule-agnostic passes, counting and masking, in torch and numba:
numba_loops; how a rule's variant is picked), anatomy (an encoder's layout: `Anatomy`, BERT's by
default; another family's is given as `target_substrings=anatomy.prunable_substrings` to the unstructured
pruners and `anatomy=` to GPPPruner and StructuredMask), report (sparsity report), gpp.

Example, a plain Hugging Face training loop::

    import torch
    from transformers import AutoModelForSequenceClassification
    from pruners import CubicSchedule, PlatonPruner

    model = AutoModelForSequenceClassification.from_pretrained("bert-base-uncased", num_labels=2)
    optimizer = torch.optim.Adamax(model.parameters(), lr=1e-4)
    schedule = CubicSchedule(total_steps=3 * len(loader), initial_threshold=1.0, final_threshold=0.1,
                             warmup_steps=300, initial_warmup=1, final_warmup=3, deltaT=10)
    pruner = PlatonPruner(model, schedule, beta1=0.85, beta2=0.95)
    t = 0
    for epoch in range(3):
        for batch in loader:
            model(**batch).loss.backward()
            optimizer.step()
            t += 1
            pruner.step(t)            # after optimizer.step(), before zero_grad()
            optimizer.zero_grad()
"""
from pruners.base import DEFAULT_TARGET_SUBSTRINGS, PruneStepStats, UnstructuredPruner
from pruners.magnitude import MagnitudePruner
from pruners.movement import MovementPruner, SoftMovementPruner
from pruners.platon import PlatonPruner
from pruners.report import format_report, sparsity_report
from pruners.schedule import (CubicSchedule, PrunerSettingError, PrunerSettingTypeError, is_masking_step,
                              remaining_ratio, validate_schedule)

__all__ = ["DEFAULT_TARGET_SUBSTRINGS", "CubicSchedule", "MagnitudePruner", "MovementPruner", "PlatonPruner",
           "PruneStepStats", "PrunerSettingError", "PrunerSettingTypeError", "SoftMovementPruner", "UnstructuredPruner",
           "format_report", "is_masking_step", "remaining_ratio", "sparsity_report", "validate_schedule"]
