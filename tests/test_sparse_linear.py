"""mt_dnn.sparse_linear: the sparse CPU layer equals the dense masked layer to float tolerance (random shapes,
densities 0-100 %, empty rows, one token and many, inputs that are transposed views), and `sparsify` times
each layer, switches only where sparse is faster, and logs the choice."""
import logging

import pytest
import torch
from torch.nn import functional as F

pytest.importorskip("numba", reason="the sparse engine's kernel is a numba loop")

from mt_dnn import sparse_linear
from mt_dnn.sparse_linear import SparseLinear, sparsify
from tests.test_compress import inputs, tiny_model


def pruned_linear(out_features, in_features, density, seed, bias=True, empty_rows=0):
    """An nn.Linear with about `density` of its weights kept (the rest exactly 0) and `empty_rows` output
    rows with no weight at all."""
    generator = torch.Generator().manual_seed(seed)
    linear = torch.nn.Linear(in_features, out_features, bias=bias)
    with torch.no_grad():
        linear.weight.copy_(torch.randn(out_features, in_features, generator=generator))
        linear.weight[torch.rand(out_features, in_features, generator=generator) >= density] = 0.0
        linear.weight[:empty_rows] = 0.0
        if bias:
            linear.bias.copy_(torch.randn(out_features, generator=generator))
    return linear.eval()


CASES = [  # (out, in, density, tokens, empty rows): tiles of 128 tokens and blocks of 16 rows cut mid-way
    (1, 1, 1.0, 1, 0),
    (7, 5, 0.0, 3, 0),
    (16, 384, 0.1, 1, 3),
    (37, 29, 0.5, 130, 5),
    (384, 384, 0.1, 128, 0),
    (50, 200, 0.9, 257, 50),
    (33, 64, 1.0, 300, 0),
    (96, 40, 0.02, 1000, 10),
]


@pytest.mark.parametrize("out_features,in_features,density,tokens,empty_rows", CASES)
@pytest.mark.parametrize("bias,transposed_out", [(True, False), (False, False), (True, True)])
def test_sparse_layer_equals_the_dense_masked_layer(out_features, in_features, density, tokens, empty_rows, bias,
                                                    transposed_out):
    linear = pruned_linear(out_features, in_features, density, seed=out_features + tokens, bias=bias,
                           empty_rows=empty_rows)
    x = torch.randn(tokens, in_features, generator=torch.Generator().manual_seed(tokens))
    sparse = SparseLinear(linear, transposed_out=transposed_out)
    kept = int((linear.weight != 0).sum())
    assert sparse.values.size == kept, f"CSR holds {sparse.values.size} values for {kept} kept weights"
    with torch.inference_mode():
        expected, got = F.linear(x, linear.weight, linear.bias), sparse(x)
    assert got.shape == expected.shape, f"output shape {tuple(got.shape)}, expected {tuple(expected.shape)}"
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5 * max(1.0, in_features ** 0.5),
                               msg=lambda m: f"{out_features}x{in_features} at {density:.0%}, {tokens} tokens: {m}")
    if empty_rows:
        rows = got[:, :empty_rows]
        want = linear.bias[:empty_rows].expand_as(rows) if bias else torch.zeros_like(rows)
        assert torch.equal(rows, want), "an output row without kept weights is exactly its bias"


@pytest.mark.parametrize("batch,length", [(1, 100), (3, 50), (2, 200)])
def test_batched_and_transposed_inputs(batch, length):
    """(batch, seq, in) inputs, and the transposed view one SparseLinear hands on (one tile per sequence of
    up to 128 tokens), through a GELU into the next, give the dense result; the handed-on view is a
    transposed one whose transpose needs no copy, and the last output has rows."""
    first, second = pruned_linear(48, 24, 0.2, seed=1), pruned_linear(20, 48, 0.3, seed=2)
    x = torch.randn(batch, length, 24, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        hidden = SparseLinear(first, transposed_out=True)(x)
        assert hidden.shape == (batch, length, 48), f"batched output shape {tuple(hidden.shape)}"
        assert hidden.is_contiguous() == (length > 128), "sequences of one tile are handed on as a transposed view"
        assert length > 128 or hidden.transpose(1, 2).is_contiguous(), \
            "the next layer reads the handed-on view without a copy"
        expected = F.linear(F.gelu(F.linear(x, first.weight, first.bias)), second.weight, second.bias)
        got = SparseLinear(second)(F.gelu(hidden))
    assert got.is_contiguous(), "a layer that is not transposed_out gives contiguous rows"
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5,
                               msg=lambda m: f"two sparse layers with a GELU between: {m}")


def test_nan_and_inf_in_the_input_propagate_as_in_the_dense_layer():
    linear = pruned_linear(8, 8, 1.0, seed=4)
    x = torch.randn(2, 8)
    x[0, 3], x[1, 5] = float("nan"), float("inf")
    with torch.inference_mode():
        expected, got = F.linear(x, linear.weight, linear.bias), SparseLinear(linear)(x)
    assert torch.equal(torch.isnan(got), torch.isnan(expected)), "NaN where the dense layer gives NaN"


def test_refuses_what_it_cannot_compute():
    sparse = SparseLinear(pruned_linear(4, 4, 0.5, seed=5))
    with pytest.raises(TypeError, match="float32"):
        sparse(torch.randn(2, 4, dtype=torch.float64))
    with pytest.raises(RuntimeError, match="inference"):
        sparse(torch.randn(2, 4, requires_grad=True))


def test_sparsify_switches_where_faster_and_logs_the_choice(caplog, monkeypatch):
    """Every pruned layer is timed once and its choice logged; the layer runs what the timing picked, and
    the model's outputs stay those of the dense masked model."""
    model = tiny_model(seed=2, sparsity=0.9)
    batch = inputs()
    with torch.inference_mode():
        expected = {task: model(**batch, task=task).logits for task in model.heads}
    # a timing in which sparse wins on every layer but the FFN's second, so both outcomes occur and the FFN's
    # first layer hands its transposed result to a dense layer
    monkeypatch.setattr(sparse_linear, "measure",
                        lambda linear, sparse, tokens, repeats: (1.0, 0.5 if linear.in_features == 32 else 2.0))
    with caplog.at_level(logging.INFO, logger="mt_dnn.sparse_linear"):
        choices = sparsify(model.encoder)
    assert len(choices) == 12, f"2 layers x 6 linear layers timed, got {len(choices)}"
    by_name = {choice.name: choice for choice in choices}
    for name, choice in by_name.items():
        module = model.encoder.get_submodule(name)
        assert isinstance(module, SparseLinear) == choice.sparse, f"{name} runs {type(module).__name__} " \
                                                                   f"but the choice was {choice.describe()}"
        assert choice.describe() in caplog.text, f"the choice for {name} is logged"
        if choice.sparse:
            assert module.transposed_out == name.endswith("intermediate.dense"), \
                f"{name}: only the FFN's first layer hands its result on transposed"
    assert any(c.sparse for c in choices) and not all(c.sparse for c in choices), "both outcomes occurred"
    assert "linear layers run the sparse kernel" in caplog.text, "a summary line is logged"
    with torch.inference_mode():
        for task, logits in expected.items():
            torch.testing.assert_close(model(**batch, task=task).logits, logits, rtol=1e-5, atol=1e-5,
                                       msg=lambda m, task=task: f"{task} logits after sparsify: {m}")


def test_dense_layers_are_not_timed(monkeypatch):
    """Above MAX_DENSITY a layer stays dense without a timing (the kernel cannot win there)."""
    model = tiny_model(seed=3, sparsity=0.0)
    monkeypatch.setattr(sparse_linear, "measure", lambda *a, **k: pytest.fail("a dense layer was timed"))
    choices = sparsify(model.encoder)
    assert choices and not any(c.sparse or c.sparse_ms is not None for c in choices), \
        "an unpruned model keeps every dense layer, untimed"


def test_real_timing_runs():
    """`measure` times both kernels on this machine (positive, finite milliseconds)."""
    linear = pruned_linear(64, 64, 0.1, seed=6)
    dense_ms, sparse_ms = sparse_linear.measure(linear, SparseLinear(linear), tokens=16, repeats=2)
    assert 0 < dense_ms < 1e4 and 0 < sparse_ms < 1e4, f"timings {dense_ms} ms, {sparse_ms} ms"
