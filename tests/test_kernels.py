"""The kernels: the torch operations and the fused numba loops give the same bits, for the shared passes
(pruners.kernels: counting, masking) and for PLATON's own statistics update (pruners.platon.UPDATES)."""
import pytest
import torch
from torch import nn

from pruners import MagnitudePruner, PlatonPruner, PrunerSettingError
from pruners import kernels as fused
from pruners.magnitude import magnitudes
from pruners.platon import UPDATES, NumbaPlatonUpdate, TorchPlatonUpdate
from pruners.threshold import BracketCount
from tests.test_platon import SCHEDULE, tiny_bert, train

pytest.importorskip("numba")
LOOPS = fused.load("numba")
BOTH = [fused.TorchKernels(), LOOPS]        # every pass of either must equal the plain torch reference
NAMES = ["torch", "numba"]
PLATON_BOTH = [TorchPlatonUpdate(), NumbaPlatonUpdate()]   # PLATON's update, likewise
# across block and run boundaries: 1 entry, a part of a run, runs and a tail, several blocks and a tail
SIZES = [1, 31, 32, 33, 1000, 3 * fused.BLOCK + 45]


def randoms(n, count, seed):
    generator = torch.Generator().manual_seed(seed)
    return [torch.rand(n, generator=generator) * 3 for _ in range(count)]


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("uses_uncertainty", [True, False])
@pytest.mark.parametrize("has_grad", [True, False])
@pytest.mark.parametrize("update", PLATON_BOTH, ids=NAMES)
def test_window_close_equals_the_torch_update(n, uses_uncertainty, has_grad, update):
    sensitivity, average, uncertainty, weight, grad = randoms(n, 5, seed=n)
    weight -= 1.5
    want_i, want_a, want_u = sensitivity.clone(), average.clone(), uncertainty.clone()
    want_a.lerp_(want_i, 0.15)
    if uses_uncertainty:
        want_u.lerp_((want_i - want_a).abs(), 0.05)
    want_i = (weight * grad).abs() if has_grad else torch.zeros(n)
    update.close_window(sensitivity, average, uncertainty if uses_uncertainty else None, [weight],
                        [grad if has_grad else None], 0.15, 0.05)
    assert torch.equal(average, want_a), f"n={n}: Ī ← lerp(Ī, I, 1 − β1), bit for bit"
    assert torch.equal(uncertainty, want_u), f"n={n}: U ← lerp(U, |I − Ī|, 1 − β2) (untouched without it)"
    assert torch.equal(sensitivity, want_i), f"n={n}: I ← |p ⊙ g| (0 without a gradient)"


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("w", [1 / 2, 1 / 3, 1 / 7])
@pytest.mark.parametrize("update", PLATON_BOTH, ids=NAMES)
def test_running_mean_equals_the_torch_update(n, w, update):
    sensitivity, weight, grad = randoms(n, 3, seed=n + 1)
    want = sensitivity.clone().lerp_((weight * grad).abs(), w)
    update.inside_window(sensitivity, [weight], [grad], w, out=torch.empty(n))
    assert torch.equal(sensitivity, want), f"n={n}, w={w}: I ← lerp(I, |p ⊙ g|, 1/(j + 1)) bit for bit"


def scores_with_ties_and_nan(n, seed):
    generator = torch.Generator().manual_seed(seed)
    first = torch.randint(0, 50, (n,), generator=generator).float() / 7      # many ties
    second = torch.rand(n, generator=generator)
    second[::5] = 0.0                                                          # zero scores
    if n > 3:
        first[3] = float("nan")
    return first, second


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("two", [True, False])
@pytest.mark.parametrize("lo_tied", [False, True])
@pytest.mark.parametrize("kernels", BOTH, ids=NAMES)
def test_count_equals_the_torch_counts_and_candidates(n, two, lo_tied, kernels):
    first, second = scores_with_ties_and_nan(n, seed=n)
    factors = (first, second) if two else (first,)
    scores = first * second if two else first
    finite = scores[~scores.isnan()].sort().values
    lo = finite[len(finite) // 3] if len(finite) else torch.tensor(0.0)
    hi = finite[2 * len(finite) // 3] if len(finite) else torch.tensor(1.0)
    above_lo = torch.nextafter(lo, hi) if lo_tied else lo
    out = torch.empty(n)
    below, below_candidates, candidates = kernels.count(factors, lo, above_lo, hi, out)
    assert below == int((scores < lo).sum()), f"n={n}: scores below lo"
    assert below_candidates == int((scores < above_lo).sum()), f"n={n}: scores below the candidates"
    want = scores[(scores >= above_lo) & (scores < hi)]
    assert torch.equal(candidates, want), \
        f"n={n}: the candidates in [above_lo, hi), in order ({len(candidates)} vs {len(want)})"


@pytest.mark.parametrize("two", [True, False])
def test_bracket_count_gives_the_same_answer_with_and_without_the_loops(two):
    first, second = scores_with_ties_and_nan(3 * fused.BLOCK + 45, seed=3)
    first[3] = 1.0                              # no NaN: the k-th is then found in the bracket
    scores = first * second if two else first
    k = scores.numel() // 2
    want = torch.kthvalue(scores, k).values
    lo, hi = torch.kthvalue(scores, k - 500).values, torch.kthvalue(scores, k + 500).values
    for kernels in BOTH:
        count = BracketCount(lo, torch.nextafter(hi, torch.tensor(float("inf"))))
        half = scores.numel() // 2
        for part in (slice(0, half), slice(half, None)):
            count.add(((first[part], second[part]) if two else (first[part],), kernels))
        assert count.kth(k) == want, f"kernels={kernels.name}: the k-th smallest of the factors' products"


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("two", [True, False])
@pytest.mark.parametrize("kernels", BOTH, ids=NAMES)
def test_mask_equals_the_torch_mask(n, two, kernels):
    first, second = scores_with_ties_and_nan(n, seed=n + 2)
    weight = torch.randn(n, generator=torch.Generator().manual_seed(n))
    weight[-1] = float("nan")
    scores = first * second if two else first
    threshold = scores[0] if n else torch.tensor(0.5)
    want = weight * torch.ge(scores, threshold).float()
    kernels.mask([weight], (first, second) if two else (first,), threshold)
    assert torch.equal(weight.isnan(), want.isnan()) and torch.equal(weight.nan_to_num(), want.nan_to_num()), \
        f"n={n}: zero where the score is < τ or NaN, ties at τ kept"


def test_passes_over_a_slab_of_several_parts_agree():
    """A slab of several parameter parts (one without a gradient): both kernels give the same bits."""
    sizes = [33, 5, 1000, 64]
    results = []
    for kernels, update in zip(BOTH, PLATON_BOTH):
        sensitivity, average, uncertainty = randoms(sum(sizes), 3, seed=9)
        weights = [torch.rand(n, generator=torch.Generator().manual_seed(n)) - 1.5 for n in sizes]
        grads = [torch.rand(n, generator=torch.Generator().manual_seed(n + 7)) for n in sizes]
        grads[1] = None
        update.close_window(sensitivity, average, uncertainty, weights, grads, 0.15, 0.05)
        update.inside_window(sensitivity, weights, grads, 1 / 3, out=torch.empty(sum(sizes)))
        magnitude = magnitudes(weights, out=torch.empty(sum(sizes)))
        kernels.mask(weights, (average, uncertainty), torch.kthvalue(average * uncertainty, 500).values)
        results.append([sensitivity, average, uncertainty, magnitude, torch.cat(weights)])
    for name, a, b in zip(["I", "Ī", "U", "|p|", "masked weights"], *results):
        assert torch.equal(a, b), f"{name}: torch and numba differ over a slab of several parts"
    assert int((results[0][4] == 0).sum()) == 499, "the 499 entries scored below the 500th smallest are zeroed"


def run_pruner(method, kernels, steps=20):
    torch.manual_seed(0)
    model = tiny_bert()
    dense = model.bert.encoder.layer[1].intermediate.dense       # a non-contiguous parameter: torch path
    dense.weight = nn.Parameter(dense.weight.detach().t().contiguous().t())
    if method == "platon":
        pruner = PlatonPruner(model, steps, beta1=0.85, beta2=0.95, deltaT=3, kernels=kernels, **SCHEDULE)
    else:
        pruner = MagnitudePruner(model, steps, deltaT=3, kernels=kernels, **SCHEDULE)
    returned, _ = train(model, pruner, steps)
    return pruner, returned, [p.detach().clone() for p in pruner.params], pruner.state_dict()["tensors"]


@pytest.mark.parametrize("method", ["platon", "magnitude"])
def test_a_pruned_run_is_identical_with_either_kernels(method, monkeypatch):
    import pruners.layout
    monkeypatch.setattr(pruners.layout, "SLAB_NUMEL", 3000)      # several slabs, one of them with the odd parameter
    fast, slow = run_pruner(method, "numba"), run_pruner(method, "torch")
    assert fast[0].kernel_name == "numba" and slow[0].kernel_name == "torch", "the kernels asked for are used"
    slab_kernels = [kernels.name for kernels in fast[0].slab_kernels]
    assert "numba" in slab_kernels and "torch" in slab_kernels, \
        "fused loops run where they can, torch on the slab of the non-contiguous parameter"
    assert all(kernels.name == "torch" for kernels in slow[0].slab_kernels), "torch asked: torch everywhere"
    if method == "platon":
        picked = [type(update).__name__ for update in fast[0].slab_updates]
        wanted = [{"numba": "NumbaPlatonUpdate", "torch": "TorchPlatonUpdate"}[name] for name in slab_kernels]
        assert picked == wanted, f"each slab's PLATON update is the variant registered for its kernels: {picked}"
        assert all(type(update) is TorchPlatonUpdate for update in slow[0].slab_updates), "torch asked: torch updates"
    assert fast[1] == slow[1], f"{method}: same ratios and thresholds at every step"
    assert all(torch.equal(a, b) for a, b in zip(fast[2], slow[2])), f"{method}: same masked weights"
    assert all(torch.equal(fast[3][key], slow[3][key]) for key in slow[3]), f"{method}: same statistics"


def test_loading_the_loops_leaves_the_global_random_state_alone(monkeypatch):
    monkeypatch.setattr(fused, "_LOADED", None)         # load (and warm up) afresh, as a new process does
    monkeypatch.setattr(fused, "_VARIANTS", {})
    before = torch.get_rng_state()
    assert fused.load("numba") is not None
    assert isinstance(fused.pick_variants(UPDATES, [LOOPS])[0], NumbaPlatonUpdate), "PLATON's loops warm up too"
    assert torch.equal(before, torch.get_rng_state()), "building the loops must not move the RNG (dropout, data order)"


def test_kernel_choice_and_refusals(monkeypatch):
    assert fused.load("torch").name == "torch" and fused.load("auto") is LOOPS, "auto takes numba when it is installed"
    with pytest.raises(PrunerSettingError, match="kernels='fast'"):
        fused.load("fast")
    model = tiny_bert().double()
    assert PlatonPruner(model, 20, beta1=0.85, beta2=0.95, deltaT=3, **SCHEDULE).kernel_name == "torch", \
        "auto falls back to torch operations for float64 parameters"
    with pytest.raises(PrunerSettingError, match="CPU float32 parameters only") as caught:
        PlatonPruner(model, 20, beta1=0.85, beta2=0.95, deltaT=3, kernels="numba", **SCHEDULE)
    assert caught.value.parameter == "kernels" and str(caught.value).startswith("kernels='numba' runs on"), \
        str(caught.value)
    assert caught.value.with_names({"kernels": "--pruner_kernels"}).startswith("--pruner_kernels='numba' runs on")
    monkeypatch.setattr(fused, "numba_available", lambda: False)
    assert fused.load("auto").name == "torch", "without numba, auto means torch operations"
    with pytest.raises(PrunerSettingError, match="pip install numba") as caught:
        fused.load("numba")
    assert caught.value.parameter == "kernels" and "--pruner_kernels" in caught.value.with_names(
        {"kernels": "--pruner_kernels"}), caught.value.with_names({"kernels": "--pruner_kernels"})


def test_a_rule_variant_is_built_once_and_torch_is_the_fallback(monkeypatch):
    """pick_variants: a slab gets the variant named like its kernels, torch's where the rule registered none
    for them, and each variant class is built once per process (its loops compiled then, not in a step)."""
    built = []

    class Counted(TorchPlatonUpdate):
        def __init__(self):
            built.append(self)

    monkeypatch.setattr(fused, "_VARIANTS", {})
    picked = fused.pick_variants({"torch": Counted}, [LOOPS, fused.TorchKernels(), LOOPS])
    assert len(built) == 1 and all(variant is built[0] for variant in picked), \
        f"one torch variant built once and used for every slab, numba's included: {picked}"
    picked = fused.pick_variants(UPDATES, [LOOPS, fused.TorchKernels()])
    assert [type(variant) for variant in picked] == [NumbaPlatonUpdate, TorchPlatonUpdate], \
        f"PLATON's registered variants follow the slab's kernels: {picked}"
    assert fused.pick_variants(UPDATES, [LOOPS])[0] is picked[0], "the numba variant is built once per process"
