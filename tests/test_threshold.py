"""The exact k-th smallest of many tensors equals torch.kthvalue over their concatenation."""
import pytest
import torch

from pruners.threshold import BracketCount, bracket_from_sample, kth_smallest, kth_smallest_of


def reference(tensors, k):
    return torch.kthvalue(torch.cat([t.flatten() for t in tensors]), k).values


def pieces(seed, sizes=((300, 7), (50,), (1000, 3), (1,), (2048,))):
    generator = torch.Generator().manual_seed(seed)
    return [torch.rand(size, generator=generator) for size in sizes]


def check(tensors, k, **kwargs):
    got, want = kth_smallest_of(tensors, k, **kwargs), reference(tensors, k)
    assert got.item() == want.item(), f"k={k}: got {got.item()!r}, torch.kthvalue says {want.item()!r}"


@pytest.mark.parametrize("seed", range(5))
def test_random_scores_every_kind_of_k(seed):
    tensors = pieces(seed)
    total = sum(t.numel() for t in tensors)
    for k in (1, 2, 17, total // 10, total // 2, int(total * 0.9), total - 1, total):
        check(tensors, k, sample_size=256)


def test_ties_everywhere():
    generator = torch.Generator().manual_seed(3)
    tensors = [torch.randint(0, 5, (4000,), generator=generator).float(), torch.full((500,), 2.0)]
    for k in (1, 800, 1500, 2250, 3000, 4499, 4500):
        check(tensors, k, sample_size=64)


def test_mostly_zeros_resolved_by_counting():
    tensors = [torch.zeros(9000), torch.rand(1000, generator=torch.Generator().manual_seed(0)) + 1]
    for k in (1, 4500, 9000, 9001, 9500, 10000):
        check(tensors, k, sample_size=128)
    lo, hi, lo_tied = bracket_from_sample(torch.zeros(100), 4500, 10000)
    count = BracketCount(lo, hi, lo_tied)
    assert lo_tied and not count.collects, "a sample of one value gives a one-value bracket, decided by counts"
    for tensor in tensors:
        count.add(tensor)
    assert count.kth(4500).item() == 0.0 and not count._candidates, "a tie mass is decided by counts alone"


def test_tie_mass_below_the_answer_is_counted_not_collected():
    zeros_then_values = [torch.zeros(9000), torch.rand(1000, generator=torch.Generator().manual_seed(1)) + 1]
    sample = torch.cat([t[::10] for t in zeros_then_values])
    for k in (9001, 9500):
        count = BracketCount(*bracket_from_sample(sample, k, 10000))
        if k == 9001:
            assert count.lo_tied and count.lo.item() == 0.0, f"k={k}: the bracket starts in the zeros and knows it"
        for tensor in zeros_then_values:
            count.add(tensor)
        assert count.kth(k).item() == reference(zeros_then_values, k).item(), f"k={k}: exact"
        kept = sum(c.numel() for c in count._candidates)
        assert kept < 1000, f"k={k}: the 9000 zeros must not become candidates, kept {kept}"


def test_misleading_sample_falls_back_and_stays_exact():
    tensors = pieces(7)
    total = sum(t.numel() for t in tensors)
    for sample in (torch.full((10,), 5.0), torch.full((10,), -5.0), torch.linspace(0.5, 0.6, 1000)):
        for k in (1, total // 3, total):
            got = kth_smallest(lambda: iter(tensors), k, total, sample)
            assert got.item() == reference(tensors, k).item(), f"sample {sample[:2]}…, k={k}: fallback must be exact"


def test_bracket_hit_reads_few_candidates():
    tensors = pieces(11, sizes=((200_000,),))
    k = 180_000
    stride = 4
    count = BracketCount(*bracket_from_sample(tensors[0][::stride], k, 200_000))
    count.add(tensors[0])
    assert count.kth(k).item() == reference(tensors, k).item(), "bracketed selection is exact"
    kept = sum(c.numel() for c in count._candidates)
    assert 0 < kept < 20_000, f"a 50 000-score sample should leave a few thousand candidates, kept {kept}"


def test_scores_reused_buffer_and_other_shapes():
    tensors = pieces(2)
    buffer = torch.empty(3000)

    def chunks():            # the same buffer for every chunk, as the pruner does
        for tensor in tensors:
            view = buffer[:tensor.numel()].view(tensor.shape)
            view.copy_(tensor)
            yield view

    total = sum(t.numel() for t in tensors)
    sample = torch.cat([t.flatten()[::5] for t in tensors])
    for k in (1, 1234, total):
        assert kth_smallest(chunks, k, total, sample).item() == reference(tensors, k).item(), \
            f"k={k}: chunks living in one reused buffer must give the same answer"


def test_nan_and_inf_follow_kthvalue():
    tensors = [torch.tensor([0.5, float("inf"), 0.1, float("nan"), 0.3]), torch.rand(20)]
    for k in range(1, 26):
        got, want = kth_smallest_of(tensors, k, sample_size=4), reference(tensors, k)
        assert torch.equal(got, want) or (got.isnan() and want.isnan()), f"k={k}: {got} vs {want}"


def test_k_outside_range_is_refused():
    with pytest.raises(ValueError, match="k=0"):
        kth_smallest_of([torch.rand(5)], 0)
    with pytest.raises(ValueError, match="k=6"):
        kth_smallest_of([torch.rand(5)], 6)
