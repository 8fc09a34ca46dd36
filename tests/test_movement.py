"""Movement pruning as published, and soft movement: a few updates computed by hand against the library,
a pruned weight that comes back, saved models that hold the zeros, the CLI and the Trainer callback."""
import glob
import json
import math
import os
import re

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

import train
from mt_dnn import evaluate as evaluate_cli
from pruners import CubicSchedule
from pruners.movement import MovementPruner, SoftMovementPruner
from tests.conftest import run_main


class TwoLayers(nn.Module):
    """A small MLP whose two matrices the default target substrings select (…intermediate.dense…,
    …output.dense…), and a head they do not (never pruned)."""

    def __init__(self, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.intermediate = nn.Module()
        self.intermediate.dense = nn.Linear(5, 7)
        self.output = nn.Module()
        self.output.dense = nn.Linear(7, 4)
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(torch.relu(self.output.dense(torch.relu(self.intermediate.dense(x)))))


def reference_forward(weights, biases, head, x):
    """The same network computed from the given (masked) matrices."""
    hidden = torch.relu(torch.relu(x @ weights[0].T + biases[0]) @ weights[1].T + biases[1])
    return head(hidden)


def by_hand_top_k(scores, ratio):
    """1 at the ⌈ratio·n⌉ largest scores, by a full sort (independent of the library's topk)."""
    n = scores.numel()
    keep = math.ceil(ratio * n - 1e-9)
    order = torch.argsort(scores.reshape(-1), descending=True, stable=True)
    mask = torch.zeros(n)
    mask[order[:keep]] = 1
    return mask.view_as(scores)


def by_hand_threshold(scores, tau):
    mask = (torch.sigmoid(scores) > tau).float()
    minimum = int(0.005 * scores.numel()) + 1
    if mask.sum() < minimum:
        order = torch.argsort(scores.reshape(-1), descending=True, stable=True)
        mask = torch.zeros(scores.numel())
        mask[order[:minimum]] = 1
        mask = mask.view_as(scores)
    return mask


def by_hand_schedule(step, start, end, total=8, warmup=2, final=2):
    """The cubic schedule after `step` updates: `start` through the warm-up, `end` in the final phase."""
    if step <= warmup:
        return start
    if step > total - final:
        return end
    return end + (start - end) * (1 - (step - warmup) / (total - warmup - final)) ** 3


SCHEDULE = CubicSchedule(total_steps=8, initial_threshold=1.0, final_threshold=0.3, warmup_steps=2,
                         initial_warmup=1, final_warmup=1, deltaT=1)
LR_SCALES = [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3]


def run_both(soft: bool, final_lambda: float = 3.0):
    """Eight updates of the library and of the hand computation from the same start; returns what each
    update produced on both sides."""
    torch.manual_seed(1)
    x, target = torch.randn(16, 5), torch.randint(0, 2, (16,))
    model = TwoLayers()
    reference = TwoLayers()          # the same initial weights (same seed)
    if soft:
        pruner = SoftMovementPruner(model, SCHEDULE, initial_sigmoid_threshold=0.0, final_sigmoid_threshold=0.45,
                                    final_lambda=final_lambda, score_learning_rate=0.05)
    else:
        pruner = MovementPruner(model, SCHEDULE, score_learning_rate=0.05)
    weights_optimizer = torch.optim.SGD(model.parameters(), lr=0.2)

    modules = [reference.intermediate.dense, reference.output.dense]
    ref_scores = [torch.zeros_like(m.weight, requires_grad=True) for m in modules]
    ref_weights_optimizer = torch.optim.SGD(reference.parameters(), lr=0.2)
    ref_scores_optimizer = torch.optim.AdamW(ref_scores, lr=0.05, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    steps = []
    for t in range(1, SCHEDULE.total_steps + 1):
        # the toolkit
        loss = nn.functional.cross_entropy(model(x), target)
        if soft:
            loss = loss + pruner.regularization()
        loss.backward()
        got_score_grads = [s.grad.clone() for s in pruner.scores]
        masks = [pruner.mask(i).clone() for i in range(2)]
        weights_optimizer.step()
        pruner.step(t, LR_SCALES[t - 1])
        weights_optimizer.zero_grad()

        # by hand: the schedule of update t - 1, masks from the scores, W ⊙ M as a leaf to get ∂L/∂(W ⊙ M)
        if soft:
            tau = by_hand_schedule(t - 1, 0.0, 0.45)
            ref_masks = [by_hand_threshold(s.detach(), tau) for s in ref_scores]
        else:
            ref_masks = [by_hand_top_k(s.detach(), by_hand_schedule(t - 1, 1.0, 0.3)) for s in ref_scores]
        masked = [(m.weight * mask).detach().requires_grad_(True) for m, mask in zip(modules, ref_masks)]
        ref_loss = nn.functional.cross_entropy(
            reference_forward(masked, [m.bias for m in modules], reference.head, x), target)
        if soft:
            penalty = sum(torch.sigmoid(s).sum() / s.numel() for s in ref_scores) / 2
            ref_loss = ref_loss + final_lambda * tau / 0.45 * penalty
        ref_loss.backward()
        for m, w, mask, s in zip(modules, masked, ref_masks, ref_scores):
            m.weight.grad = w.grad * mask                     # ∂L/∂W = M ⊙ ∂L/∂W'
            straight_through = w.grad * m.weight.detach()     # ∂L/∂S = ∂L/∂W' ⊙ W
            s.grad = straight_through if s.grad is None else s.grad + straight_through
        ref_weights_optimizer.step()
        for group in ref_scores_optimizer.param_groups:
            group["lr"] = 0.05 * LR_SCALES[t - 1]
        ref_scores_optimizer.step()
        ref_weights_optimizer.zero_grad()
        ref_scores_optimizer.zero_grad()
        steps.append(dict(loss=(loss.item(), ref_loss.item()), masks=(masks, ref_masks),
                          score_grads=(got_score_grads, None),
                          scores=([s.detach().clone() for s in pruner.scores], [s.detach().clone() for s in ref_scores]),
                          weights=([model.intermediate.dense.weight.detach().clone(),
                                    model.output.dense.weight.detach().clone()],
                                   [m.weight.detach().clone() for m in modules])))
    return pruner, model, steps


@pytest.mark.parametrize("soft", [False, True], ids=["movement", "soft_movement"])
def test_updates_match_a_hand_computation(soft):
    pruner, model, steps = run_both(soft)
    pruned_some = False
    for t, step in enumerate(steps, start=1):
        got, want = step["loss"]
        assert got == pytest.approx(want, abs=1e-6), f"update {t}: loss {got} vs by hand {want}"
        for index, (mask, ref) in enumerate(zip(*step["masks"])):
            assert torch.equal(mask, ref), f"update {t}, matrix {index}: the mask differs from the hand computation"
            pruned_some |= bool((mask == 0).any())
        for index, (scores, ref) in enumerate(zip(*step["scores"])):
            assert torch.allclose(scores, ref, atol=1e-6), \
                f"update {t}, matrix {index}: scores differ by {(scores - ref).abs().max():.3g} from AdamW by hand"
        for index, (weight, ref) in enumerate(zip(*step["weights"])):
            assert torch.allclose(weight, ref, atol=1e-6), \
                f"update {t}, matrix {index}: weights differ by {(weight - ref).abs().max():.3g}"
    assert pruned_some, "the schedule masked some weights within the eight updates (else the test proves little)"
    final = steps[-1]["masks"][0]
    if not soft:
        for index, mask in enumerate(final):
            assert mask.sum().item() == math.ceil(0.3 * mask.numel() - 1e-9), \
                f"matrix {index}: top-k keeps exactly ceil(0.3 n) at the end"
    weights = steps[-1]["weights"][0]
    assert all(bool((w != 0).all()) for w in weights), "training never zeroes W itself (the mask is separate)"


def by_hand_phase(t, total=8, warmup=2, final=2):
    return "warmup" if t <= warmup else ("final" if t > total - final else "cubic")


@pytest.mark.parametrize("soft", [False, True], ids=["movement", "soft_movement"])
def test_mask_flips_match_a_hand_count(soft):
    """What the pruner counts of its masks' moves: changed and returned entries between the masks of
    consecutive updates, by phase, counted here from the hand-computed masks."""
    pruner, _, steps = run_both(soft)
    last_scores = steps[-1]["scores"][1]
    if soft:
        after_last = [by_hand_threshold(s, by_hand_schedule(8, 0.0, 0.45)) for s in last_scores]
    else:
        after_last = [by_hand_top_k(s, by_hand_schedule(8, 1.0, 0.3)) for s in last_scores]
    sequence = [step["masks"][1] for step in steps] + [after_last]
    want = {phase: {"updates": 0, "changed": 0, "returned": 0} for phase in ("warmup", "cubic", "final")}
    for t in range(1, 9):
        counts = want[by_hand_phase(t)]
        changed = sum(int((new != old).sum()) for old, new in zip(sequence[t - 1], sequence[t]))
        returned = sum(int((new > old).sum()) for old, new in zip(sequence[t - 1], sequence[t]))
        counts["updates"] += 1
        counts["changed"] += changed
        counts["returned"] += returned
    assert pruner.mask_flips == want, f"the pruner's counts {pruner.mask_flips} vs by hand {want}"
    assert pruner.last_flips == {"changed": changed, "returned": returned}, "last_flips: update 8's counts"
    assert want["cubic"]["changed"] > 0, "the ramp changed some masks (else the test proves little)"
    if not soft:
        assert want["final"]["changed"] == 2 * want["final"]["returned"], \
            "at a constant ratio the top-k swaps: as many return as leave"
    weights = sum(s.numel() for s in last_scores)
    summary = pruner.flip_summary()
    assert summary["weights"] == weights, f"flip_summary counts the selected weights: {summary}"
    assert summary["cubic"]["changed_per_update"] == pytest.approx(want["cubic"]["changed"] / (weights * 4)), \
        f"the ramp's mean share per update: {summary}"


def train_with_score_lr(score_learning_rate: float, soft: bool):
    """Eight updates of the toolkit alone; returns [(masks, scores, weights)] after each."""
    torch.manual_seed(1)
    x, target = torch.randn(16, 5), torch.randint(0, 2, (16,))
    model = TwoLayers()
    pruner = SoftMovementPruner(model, SCHEDULE, final_sigmoid_threshold=0.45, final_lambda=0.0,
                                score_learning_rate=score_learning_rate) if soft else \
        MovementPruner(model, SCHEDULE, score_learning_rate=score_learning_rate)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.2)
    history = []
    for t in range(1, SCHEDULE.total_steps + 1):
        nn.functional.cross_entropy(model(x), target).backward()
        optimizer.step()
        pruner.step(t, LR_SCALES[t - 1])
        optimizer.zero_grad()
        history.append(([pruner.mask(i).clone() for i in range(2)], [s.detach().clone() for s in pruner.scores],
                        [model.intermediate.dense.weight.detach().clone(), model.output.dense.weight.detach().clone()]))
    return history


def test_hard_movement_does_not_depend_on_the_score_learning_rate():
    """Scores start at 0 and Adam's step is proportional to the lr, so at 4x the lr every score is 4x (exactly: a
    power of two), the top-k ranking, the masks and the weights the same: the score lr cannot change hard movement
    (docs and README say so); soft movement's fixed threshold on sigmoid(S) does depend on it."""
    base, faster = train_with_score_lr(0.05, soft=False), train_with_score_lr(0.2, soft=False)
    for t, ((masks, scores, weights), (masks4, scores4, weights4)) in enumerate(zip(base, faster), start=1):
        for index in range(2):
            assert torch.equal(masks[index], masks4[index]), f"update {t}, matrix {index}: masks differ at 4x score lr"
            assert torch.equal(scores[index] * 4, scores4[index]), \
                f"update {t}, matrix {index}: the scores at 4x the lr are not exactly 4x"
            assert torch.equal(weights[index], weights4[index]), f"update {t}, matrix {index}: the weights differ"
    assert (base[-1][0][0] == 0).any(), "the runs pruned something (else equal masks prove little)"
    soft, soft4 = train_with_score_lr(0.05, soft=True), train_with_score_lr(0.2, soft=True)
    assert any(not torch.equal(a, b) for (m, _, _), (m4, _, _) in zip(soft, soft4) for a, b in zip(m, m4)), \
        "soft movement's masks change with the score lr (its threshold is on sigmoid(S), not a rank)"


def test_straight_through_gradient_reaches_pruned_scores():
    model = TwoLayers()
    pruner = MovementPruner(model, SCHEDULE, score_learning_rate=0.05)
    pruner.value = 0.3                       # as if in the final phase: most entries masked
    x = torch.randn(8, 5)
    out = model(x)
    out.sum().backward()
    # ∂L/∂W' by a separate autograd pass over W ⊙ M as a leaf
    masks = [pruner.mask(i) for i in range(2)]
    leafs = [(m.weight * mask).detach().requires_grad_(True) for m, mask in
             zip((model.intermediate.dense, model.output.dense), masks)]
    reference_forward(leafs, [model.intermediate.dense.bias, model.output.dense.bias], model.head, x).sum().backward()
    for index, (module, leaf, mask) in enumerate(zip((model.intermediate.dense, model.output.dense), leafs, masks)):
        expected = leaf.grad * module.weight.detach()
        assert torch.allclose(pruner.scores[index].grad, expected, atol=1e-6), \
            f"matrix {index}: ∂L/∂S = ∂L/∂(W ⊙ M) ⊙ W"
        pruned = mask == 0
        assert pruned.any() and pruner.scores[index].grad[pruned].abs().sum() > 0, \
            f"matrix {index}: pruned entries receive a score gradient too"
        assert torch.equal(module.weight.grad[pruned], torch.zeros_like(module.weight.grad[pruned])), \
            f"matrix {index}: pruned weights get no gradient (∂L/∂W = M ⊙ ∂L/∂W')"


def test_a_pruned_weight_comes_back():
    """Two weights, half kept: the loss first favours weight 0, then weight 1; the pruned one returns."""
    module = nn.Module()
    module.output = nn.Module()
    module.output.dense = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        module.output.dense.weight.copy_(torch.tensor([[1.0, 1.0]]))
    schedule = CubicSchedule(total_steps=60, initial_threshold=1.0, final_threshold=0.5, warmup_steps=1,
                             initial_warmup=1, final_warmup=55, deltaT=1)     # one weight of two kept from t = 5
    pruner = MovementPruner(module, schedule, score_learning_rate=0.1)
    history = []
    for t in range(1, 61):
        direction = torch.tensor([[1.0, -1.0]]) if t <= 20 else torch.tensor([[-1.0, 1.0]])
        loss = -(module.output.dense(direction)).sum()     # rewards the first weight, then the second
        loss.backward()
        module.output.dense.weight.grad = None              # W fixed: only the scores move
        pruner.step(t)
        history.append(pruner.mask(0)[0, 1].item())
    assert 0.0 in history[:25], f"weight 1 is pruned while the loss favours weight 0: {history[:25]}"
    assert history[-1] == 1.0, f"weight 1 comes back once its score rises again: {history}"
    assert module.output.dense.weight[0, 1].item() == 1.0, "its value was kept while it was pruned"


def test_global_top_k_uses_one_threshold():
    model = TwoLayers()
    pruner = MovementPruner(model, SCHEDULE, score_learning_rate=0.05, global_topk=True, global_topk_frequency=1)
    with torch.no_grad():
        pruner.scores[0].copy_(torch.randn(7, 5) + 1.0)       # the first matrix scores higher overall
        pruner.scores[1].copy_(torch.randn(4, 7) - 1.0)
    for t in range(1, 9):
        pruner.step(t)
    ratios = pruner.remaining_ratios()
    total = sum(s.numel() for s in pruner.scores)
    kept = sum(pruner.mask(i).sum().item() for i in range(2))
    assert abs(kept - math.ceil(0.3 * total)) <= 1, f"about ceil(0.3 N) kept over all matrices: {kept} of {total}"
    names = pruner.names
    assert ratios[names[0]] > ratios[names[1]], f"the matrices keep different fractions under one threshold: {ratios}"


def test_a_mask_first_computed_in_inference_mode_trains_afterwards():
    model = TwoLayers()
    pruner = MovementPruner(model, SCHEDULE, score_learning_rate=0.05)
    pruner.value = 0.5
    x = torch.randn(3, 5)
    with torch.inference_mode():          # an evaluation computes (and caches) the masks first
        model(x)
    model(x).sum().backward()             # training reuses them: they must not be inference tensors
    assert all(s.grad is not None for s in pruner.scores), "the scores got their gradient after an evaluation"


def test_masks_applied_and_finalize():
    model = TwoLayers()
    pruner = MovementPruner(model, SCHEDULE, score_learning_rate=0.05)
    with torch.no_grad():
        pruner.scores[0].copy_(torch.randn(7, 5))
        pruner.scores[1].copy_(torch.randn(4, 7))
    pruner.value = 0.3
    x = torch.randn(3, 5)
    expected = model(x).detach()
    before = model.intermediate.dense.weight.detach().clone()
    with pruner.masks_applied():
        zeros = int((model.intermediate.dense.weight == 0).sum())
        assert zeros == 35 - math.ceil(0.3 * 35), f"inside, the weights hold the zeros: {zeros}"
        assert torch.allclose(model(x), expected), "the masked weights compute what the masked forward did"
    assert torch.equal(model.intermediate.dense.weight, before), "afterwards the weights are restored"
    pruner.finalize()
    assert "forward" not in vars(model.intermediate.dense), "finalize detaches the masked forward"
    assert torch.allclose(model(x), expected), "a finalized model computes as the masked one did"


def test_state_round_trip_continues_identically():
    torch.manual_seed(3)
    x = torch.randn(6, 5)

    def train(model, pruner, steps):
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for t in steps:
            model(x).pow(2).sum().backward()
            optimizer.step()
            pruner.step(t)
            optimizer.zero_grad()

    straight = TwoLayers()
    pruner = MovementPruner(straight, SCHEDULE)
    train(straight, pruner, range(1, 9))

    first = TwoLayers()
    half = MovementPruner(first, SCHEDULE)
    train(first, half, range(1, 5))
    state = json.loads(json.dumps({k: v for k, v in half.state_dict().items() if k != "tensors"}))
    state["tensors"] = {k: v.clone() for k, v in half.state_dict()["tensors"].items()}
    second = TwoLayers()
    second.load_state_dict(first.state_dict())
    resumed = MovementPruner(second, SCHEDULE)
    resumed.load_state_dict(state)
    train(second, resumed, range(5, 9))
    for a, b in zip(pruner.scores, resumed.scores):
        assert torch.equal(a, b), "scores continue identically after a state round trip"
    assert resumed.mask_flips == pruner.mask_flips, "the counts of mask changes continue too"
    older = {**state, "mask_flips": None}
    with pytest.raises(ValueError, match="mask_flips"):
        MovementPruner(TwoLayers(), SCHEDULE).load_state_dict(older)
    del older["mask_flips"]
    before_counts = MovementPruner(TwoLayers(), SCHEDULE)
    before_counts.load_state_dict(older)
    assert before_counts.last_step == 4 and before_counts.mask_flips["cubic"]["updates"] == 0, \
        "a state saved before the counts existed loads with counts from zero"
    assert torch.equal(straight.output.dense.weight, second.output.dense.weight), "weights too"
    with pytest.raises(ValueError, match="soft_movement"):
        SoftMovementPruner(TwoLayers(), SCHEDULE).load_state_dict(state)


@pytest.mark.parametrize("kwargs, message", [
    (dict(score_learning_rate=0), "score_learning_rate=0 is invalid"),
    (dict(score_learning_rate="1e-2"), "must be a number"),
    (dict(global_topk_frequency=0), "global_topk_frequency=0 is invalid"),
    (dict(target_substrings=["nothing"]), "match no nn.Linear weight"),
])
def test_library_refuses_bad_settings(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        MovementPruner(TwoLayers(), SCHEDULE, **kwargs)


@pytest.mark.parametrize("lr_scale", ["1", None, True, -1.0, float("nan")])
def test_step_refuses_a_learning_rate_multiplier_that_is_no_number(lr_scale):
    pruner = MovementPruner(TwoLayers(), SCHEDULE)
    with pytest.raises(ValueError, match="lr_scale must be a finite number") as info:
        pruner.step(1, lr_scale)
    assert repr(lr_scale) in str(info.value), f"the message names the value: {info.value}"


def test_soft_settings_refused():
    with pytest.raises(ValueError, match="final_sigmoid_threshold=1.5 is invalid"):
        SoftMovementPruner(TwoLayers(), SCHEDULE, final_sigmoid_threshold=1.5)
    with pytest.raises(ValueError, match="final_lambda=-1 is invalid"):
        SoftMovementPruner(TwoLayers(), SCHEDULE, final_lambda=-1)


# ---- the CLI

def cli_args(canonical_dir, tiny_model_dir, out, *extra):
    return ["--data_dir", canonical_dir, "--init_checkpoint", tiny_model_dir, "--train_datasets", "rte,stsb",
            "--test_datasets", "rte,stsb", "--epochs", "3", "--batch_size", "8", "--max_seq_len", "64",
            "--learning_rate", "1e-3", "--log_per_updates", "5", "--seed", "5", "--output_dir", str(out),
            "--warmup_steps", "8", "--initial_warmup", "1", "--final_warmup", "1", *extra]


def weight_rows(report):
    return [row for row in report["rows"] if row["name"].endswith(".weight")]


def test_movement_run_saves_the_zeros_and_the_evaluated_outputs(canonical_dir, tiny_model_dir, tmp_path):
    out = tmp_path / "run"
    args = cli_args(canonical_dir, tiny_model_dir, out, "--pruner", "movement", "--initial_threshold", "1",
                    "--final_threshold", "0.2", "--tensorboard")
    assert run_main(train.main, args) == 0, "--pruner movement runs"
    report = json.load(open(out / "sparsity_report.json"))
    for row in weight_rows(report):
        kept = row["numel"] - row["zeros"]
        assert kept <= math.ceil(0.2 * row["numel"]), f"{row['name']}: top-k of each matrix keeps 20 %: {row}"
        assert kept >= math.ceil(0.2 * row["numel"]) - 2, f"{row['name']}: and not fewer: {row}"
    weights = load_file(str(out / "model" / "model.safetensors"))
    embeddings = [name for name in weights if "embeddings" in name and name.endswith("weight")]
    zero_fractions = {name: float((weights[name] == 0).float().mean()) for name in embeddings}
    assert embeddings and max(zero_fractions.values()) < 0.05, f"embeddings are never pruned: {zero_fractions}"

    # the saved model gives exactly the evaluated outputs: evaluate model/ and compare with the last dev scores
    scored = tmp_path / "scored"
    assert run_main(evaluate_cli.main, ["--model", str(out / "model"), "--data_dir", canonical_dir,
                                        "--datasets", "rte,stsb", "--output_dir", str(scored)]) == 0
    for dataset in ("rte", "stsb"):
        last = sorted(glob.glob(str(out / f"{dataset}_dev_scores_epoch_*.json")))[-1]
        during = json.load(open(last))
        after = json.load(open(glob.glob(str(scored / f"{dataset}_dev*.json"))[0]))
        assert after["predictions"] == during["predictions"], f"{dataset}: model/ predicts what was evaluated"
        assert torch.allclose(torch.tensor(after["scores"]), torch.tensor(during["scores"]), atol=1e-5), \
            f"{dataset}: model/ scores what was evaluated"

    # and through the standard Hugging Face loader of the per-task copy
    from transformers import AutoModelForSequenceClassification
    hf = AutoModelForSequenceClassification.from_pretrained(str(out / "model" / "hf" / "rte")).eval()
    hf_weights = {name: p for name, p in hf.named_parameters() if "layer.0.intermediate.dense.weight" in name}
    assert hf_weights and all(float((p == 0).float().mean()) >= 0.79 for p in hf_weights.values()), \
        "hf/<task>/ holds the zeros too"
    log = open(out / "log.log").read()
    assert "movement pruning to remaining ratio 0.2" in log, "the start-up summary names the method"
    events = glob.glob(str(out / "**" / "events.out.tfevents*"), recursive=True)
    assert events, "TensorBoard was written"
    assert scalar_tags(out) >= {"Prune/mask_changed", "Prune/mask_returned"}, "TensorBoard has the masks' moves"
    flips = report["mask_flips"]
    total_updates = sum(flips[phase]["updates"] for phase in ("warmup", "cubic", "final"))
    assert total_updates == int(re.search(r"; (\d+) updates", log).group(1)), \
        f"every update's mask changes are counted, by phase: {flips}"
    assert flips["warmup"]["changed_per_update"] == 0 and flips["cubic"]["changed_per_update"] > 0, \
        f"the dense warm-up changes no mask, the ramp does: {flips}"
    assert "mask changes per update" in log, "the final log gives the masks' moves"


def scalar_tags(out) -> set:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    tags = set()
    for path in glob.glob(str(out / "**" / "events.out.tfevents*"), recursive=True):
        accumulator = EventAccumulator(path)
        accumulator.Reload()
        tags |= set(accumulator.Tags()["scalars"])
    return tags


def test_soft_movement_run_reports_what_it_reached(canonical_dir, tiny_model_dir, tmp_path):
    out = tmp_path / "run"
    args = cli_args(canonical_dir, tiny_model_dir, out, "--pruner", "soft_movement", "--final_lambda", "50",
                    "--final_sigmoid_threshold", "0.3", "--mask_scores_learning_rate", "0.1", "--tensorboard")
    assert run_main(train.main, args) == 0, "--pruner soft_movement runs"
    report = json.load(open(out / "sparsity_report.json"))
    overall = 1 - sum(r["zeros"] for r in weight_rows(report)) / sum(r["numel"] for r in weight_rows(report))
    assert overall < 0.95, f"soft movement pruned something with a strong penalty: {overall:.3f} remaining"
    assert all(row["numel"] - row["zeros"] >= int(0.005 * row["numel"]) + 1 for row in weight_rows(report)), \
        "every matrix keeps at least 0.5 %"
    tags = scalar_tags(out)
    log = open(out / "log.log").read()
    assert "the remaining ratio is what it reached: 0." in log, "the final report says what soft movement reached"
    for tag in ("Prune/remaining_ratio", "Prune/lambda", "train/loss_regularization", "Sparsity/overall"):
        assert tag in tags, f"TensorBoard has {tag}: {sorted(tags)[:20]}"


@pytest.mark.parametrize("flags, message", [
    (["--pruner", "movement", "--mask_scores_learning_rate", "0"], "--mask_scores_learning_rate 0.0 must be > 0"),
    (["--pruner", "movement", "--global_topk_frequency", "0"], "--global_topk_frequency 0 must be >= 1"),
    (["--pruner", "soft_movement", "--final_sigmoid_threshold", "1.5"], "--final_sigmoid_threshold=1.5 is invalid"),
    (["--pruner", "soft_movement", "--final_lambda", "nan"], "--final_lambda=nan is invalid"),
])
def test_cli_refuses_bad_movement_flags(canonical_dir, tiny_model_dir, tmp_path, capsys, flags, message):
    code = run_main(train.main, cli_args(canonical_dir, tiny_model_dir, tmp_path / "run", *flags))
    err = capsys.readouterr().err
    assert code == 2, f"exit status 2: {err}"
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not os.path.exists(tmp_path / "run" / "model"), "nothing trained"
