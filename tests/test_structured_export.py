"""Export of a GPP-masked BERT to a smaller PrunedBertModel, reloading it two ways, and the
StructuredMask that masks the dense model and owns the indicator file."""
import copy
import os

import pytest
import torch
from safetensors.torch import save as save_bytes
from torch import nn
from transformers import AutoModel, BertConfig, BertModel

from modeling.structured import (PrunedBertConfig, PrunedBertModel, count_parameters, export_pruned_encoder, load,
                               save)
from pruners.structured_mask import INDICATOR_FILE, StructuredMask, read_indicators

LAYERS, HIDDEN, HEADS, FFN = 3, 32, 4, 64


def tiny_bert(pooler=True):
    torch.manual_seed(0)
    config = BertConfig(num_hidden_layers=LAYERS, hidden_size=HIDDEN, num_attention_heads=HEADS,
                        intermediate_size=FFN, vocab_size=100)
    return BertModel(config, add_pooling_layer=pooler).eval()


def indicators():
    """Random 0/1 indicators with one layer without heads and one without FFN neurons."""
    generator = torch.Generator().manual_seed(4)
    heads = (torch.rand(LAYERS, HEADS, generator=generator) > 0.5).float()
    heads[0] = torch.tensor([0.0, 1.0, 1.0, 0.0])
    heads[1] = 0.0  # every head removed
    neurons = (torch.rand(LAYERS, FFN, generator=generator) > 0.5).float()
    neurons[2] = 0.0  # every FFN neuron removed
    return heads, neurons


def batch():
    generator = torch.Generator().manual_seed(1)
    input_ids = torch.randint(0, 100, (3, 10), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 4:] = 0
    return dict(input_ids=input_ids, attention_mask=attention_mask)


def masked_outputs(model, heads, neurons):
    mask = StructuredMask(model, head=heads, ffn=neurons)
    with torch.no_grad():
        outputs = model(**batch(), output_hidden_states=True)
    mask.remove()
    return outputs


def assert_same_outputs(expected, actual, what):
    diff = (expected.last_hidden_state - actual.last_hidden_state).abs().max().item()
    assert diff <= 1e-4, f"{what}: last hidden state differs by {diff}"
    if expected.pooler_output is not None:
        diff = (expected.pooler_output - actual.pooler_output).abs().max().item()
        assert diff <= 1e-4, f"{what}: pooler output differs by {diff}"
    for index, (e, a) in enumerate(zip(expected.hidden_states, actual.hidden_states)):
        diff = (e - a).abs().max().item()
        assert diff <= 1e-4, f"{what}: hidden state {index} differs by {diff}"


def test_export_equals_masked_model_including_empty_layers():
    model = tiny_bert()
    heads, neurons = indicators()
    expected = masked_outputs(model, heads, neurons)
    exported = export_pruned_encoder(model, heads, neurons)
    assert isinstance(exported, PrunedBertModel) and not exported.training, "an eval-mode PrunedBertModel"
    assert exported.config.layer_heads == heads.sum(1).int().tolist(), "kept heads per layer"
    assert exported.config.layer_intermediate_sizes == neurons.sum(1).int().tolist(), "kept neurons per layer"
    layer0 = exported.encoder.layer[0]
    assert layer0.attention.self.query.weight.shape == (2 * 8, HIDDEN), "query keeps the rows of 2 heads"
    assert layer0.attention.output.dense.weight.shape == (HIDDEN, 2 * 8), "output keeps the columns of 2 heads"
    assert exported.encoder.layer[2].intermediate.dense.weight.shape == (0, HIDDEN), "an emptied FFN"
    with torch.no_grad():
        actual = exported(**batch(), output_hidden_states=True)
    assert_same_outputs(expected, actual, "exported vs masked")
    with torch.no_grad():
        dense = model(**batch()).last_hidden_state
    assert (dense - actual.last_hidden_state).abs().max() > 1e-3, "the masks must actually change the output"


def test_export_keeps_the_exact_rows_of_kept_heads():
    model = tiny_bert()
    heads, neurons = indicators()
    exported = export_pruned_encoder(model, heads, neurons)
    source, target = model.encoder.layer[0], exported.encoder.layer[0]
    rows = torch.cat([torch.arange(8, 16), torch.arange(16, 24)])  # heads 1 and 2, head size 8
    assert torch.equal(target.attention.self.value.weight, source.attention.self.value.weight[rows]), \
        "value rows of heads 1 and 2"
    kept = torch.nonzero(neurons[0]).flatten()
    assert torch.equal(target.output.dense.weight, source.output.dense.weight[:, kept]), \
        "output.dense columns of the kept neurons"


def test_fractional_indicators_are_folded():
    model = tiny_bert()
    heads, neurons = indicators()
    heads[0, 1] = 0.4
    neurons[0, :5] = 0.25
    expected = masked_outputs(model, heads, neurons)
    with torch.no_grad():
        actual = export_pruned_encoder(model, heads, neurons)(**batch(), output_hidden_states=True)
    assert_same_outputs(expected, actual, "export with fractional indicators")


def test_reload_through_loader_and_automodel(tmp_path):
    model = tiny_bert()
    heads, neurons = indicators()
    exported = export_pruned_encoder(model, heads, neurons)
    save(exported, str(tmp_path))
    with torch.no_grad():
        expected = exported(**batch(), output_hidden_states=True)
    for name, reloaded in (("load", load(str(tmp_path))), ("AutoModel", AutoModel.from_pretrained(str(tmp_path)))):
        assert type(reloaded) is PrunedBertModel, f"{name} must give a PrunedBertModel, got {type(reloaded)}"
        assert isinstance(reloaded.config, PrunedBertConfig), f"{name} must give a PrunedBertConfig"
        assert reloaded.config.layer_heads == exported.config.layer_heads, f"{name} keeps layer_heads"
        reloaded.eval()
        with torch.no_grad():
            actual = reloaded(**batch(), output_hidden_states=True)
        assert_same_outputs(expected, actual, f"reloaded through {name}")


def test_parameter_count_and_no_pooler(tmp_path):
    model = tiny_bert(pooler=False)
    heads, neurons = indicators()
    exported = export_pruned_encoder(model, heads, neurons)
    assert exported.pooler is None and exported.config.add_pooling_layer is False, "no pooler when the source has none"
    head_size = HIDDEN // HEADS
    removed_heads = int((heads == 0).sum())
    removed_neurons = int((neurons == 0).sum())
    expected_removed = (removed_heads * head_size * (3 * HIDDEN + 3 + HIDDEN)
                        + removed_neurons * (HIDDEN + 1 + HIDDEN))
    assert count_parameters(model) - count_parameters(exported) == expected_removed, \
        "each removed head row frees q/k/v rows with biases and an output column; each neuron a row, bias, column"
    save(exported, str(tmp_path))
    assert load(str(tmp_path)).pooler is None, "the reloaded model has no pooler either"


def test_export_from_container_and_bad_shapes():
    class Container(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = tiny_bert()
            self.heads = nn.ModuleDict({"sst": nn.Linear(HIDDEN, 2)})

    container = Container()
    exported = export_pruned_encoder(container, None, None)
    assert exported.config.layer_heads == [HEADS] * LAYERS, "None keeps every head"
    with torch.no_grad():
        torch.testing.assert_close(exported(**batch()).last_hidden_state,
                                   container.encoder(**batch()).last_hidden_state,
                                   msg="an export without removals equals the dense encoder")
    with pytest.raises(ValueError, match="head_indicator must have shape"):
        export_pruned_encoder(container, torch.ones(LAYERS, HEADS + 1), None)


# --- StructuredMask and the indicator file ------------------------------------

def test_mask_save_load_round_trip_masks_alike(tmp_path):
    model = tiny_bert()
    heads, neurons = indicators()
    heads[0, 1] = 0.4  # fractional values survive the file too
    expected = masked_outputs(model, heads, neurons)
    mask = StructuredMask(model, head=heads, ffn=neurons)
    mask.remove()
    saved = mask.save(str(tmp_path))
    assert saved == os.path.join(str(tmp_path), INDICATOR_FILE), "save writes INDICATOR_FILE in the directory"
    assert not [name for name in os.listdir(tmp_path) if name != INDICATOR_FILE], "no temporary file is left"
    read = read_indicators(saved)
    assert set(read) == {"head", "ffn"} and torch.equal(read["head"], heads) and torch.equal(read["ffn"], neurons), \
        "the file holds the indicators as given"
    for source in (str(tmp_path), saved):  # the directory or the file itself
        loaded = StructuredMask.load(model, source)
        assert not loaded.head.requires_grad and torch.equal(loaded.indicators()["ffn"], neurons), \
            f"load({source}) gives plain tensors equal to the saved ones"
        with torch.no_grad():
            actual = model(**batch(), output_hidden_states=True)
        loaded.remove()
        assert_same_outputs(expected, actual, f"masked through StructuredMask.load({source})")
    with torch.no_grad():
        dense = model(**batch()).last_hidden_state
    assert (dense - expected.last_hidden_state).abs().max() > 1e-3, "after remove() the model is dense again"


def test_mask_of_one_unit_type(tmp_path):
    model = tiny_bert()
    heads, _ = indicators()
    mask = StructuredMask(model, ffn=None, head=heads)
    assert set(mask.indicators()) == {"head"}, "only the given unit type is active"
    mask.save(str(tmp_path))
    mask.remove()
    assert set(read_indicators(str(tmp_path / INDICATOR_FILE))) == {"head"}, "the file holds z_head only"
    loaded = StructuredMask.load(model, str(tmp_path))
    assert loaded.ffn is None and torch.equal(loaded.head, heads), "z_ffn stays absent after loading"
    loaded.remove()


def test_mask_passes_gradients_to_a_parameter_and_deepcopies_inert():
    model = tiny_bert()
    z_ffn = nn.Parameter(torch.ones(LAYERS, FFN))
    mask = StructuredMask(model, ffn=z_ffn)
    model(**batch()).last_hidden_state.pow(2).sum().backward()
    assert z_ffn.grad is not None and z_ffn.grad.abs().sum() > 0, "a Parameter indicator gets its gradient"
    with torch.no_grad():
        z_ffn.zero_()  # in place: the hooks read the indicators at every forward
        masked = model(**batch()).last_hidden_state
        clone = copy.deepcopy(model)
        copied = clone(**batch()).last_hidden_state
    mask.remove()
    with torch.no_grad():
        dense = model(**batch()).last_hidden_state
    assert (masked - dense).abs().max() > 1e-3, "changing the indicator in place changes the masking"
    torch.testing.assert_close(copied, dense, msg="the hooks of a deep copy must not mask the copy")


def test_mask_refusals(tmp_path):
    model = tiny_bert()
    with pytest.raises(ValueError, match="head and/or ffn"):
        StructuredMask(model)
    with pytest.raises(ValueError, match=r"z_head has shape \(3, 5\), the encoder needs \(3, 4\)"):
        StructuredMask(model, head=torch.ones(LAYERS, HEADS + 1))
    with pytest.raises(ValueError, match="floating-point"):
        StructuredMask(model, head=torch.ones(LAYERS, HEADS, dtype=torch.long))
    with pytest.raises(ValueError, match="no BERT-family encoder"):
        StructuredMask(nn.Linear(2, 2), head=torch.ones(LAYERS, HEADS))

    path = str(tmp_path / INDICATOR_FILE)
    with pytest.raises(FileNotFoundError, match=f"{path}: no such file"):
        StructuredMask.load(model, str(tmp_path))
    StructuredMask(tiny_bert(), head=torch.ones(LAYERS, HEADS)).save(str(tmp_path))
    data = open(path, "rb").read()
    cases = {"truncated": (data[:20], "unreadable"),
             "other keys": ({"z_head": torch.ones(LAYERS, HEADS), "mask": torch.ones(2)},
                            "expected z_head and/or z_ffn"),
             "no keys": ({}, "expected z_head and/or z_ffn"),
             "integers": ({"z_ffn": torch.ones(LAYERS, FFN, dtype=torch.long)}, "2-D floating-point"),
             "1-D": ({"z_ffn": torch.ones(FFN)}, "2-D floating-point"),
             "non-finite": ({"z_head": torch.full((LAYERS, HEADS), float("nan"))}, "non-finite"),
             "shape": ({"z_head": torch.ones(LAYERS + 1, HEADS)}, r"z_head has shape \(4, 4\), the encoder needs")}
    for case, (content, needle) in cases.items():
        with open(path, "wb") as handle:
            handle.write(content if isinstance(content, bytes) else save_bytes(content))
        with pytest.raises(ValueError, match=needle) as caught:
            StructuredMask.load(model, path)
        assert str(caught.value).startswith(f"{path}: "), f"{case}: the message names the file: {caught.value}"


def test_folding_binary_indicators_into_the_weights_keeps_the_outputs():
    model = tiny_bert()
    heads, neurons = indicators()
    expected = masked_outputs(model, heads, neurons)
    mask = StructuredMask(model, head=heads, ffn=neurons)
    mask.fold_into_weights()
    with torch.no_grad():
        folded_hooked = model(**batch(), output_hidden_states=True)
    mask.remove()
    with torch.no_grad():
        folded = model(**batch(), output_hidden_states=True)
    assert_same_outputs(expected, folded, "folded weights without hooks")
    assert_same_outputs(expected, folded_hooked, "folded weights with the hooks still on")
    layer = model.encoder.layer[0]          # heads 0 and 3 of layer 0 are pruned
    head_size = HIDDEN // HEADS
    for name in ("query", "key", "value"):
        linear = getattr(layer.attention.self, name)
        assert not linear.weight[:head_size].any() and not linear.bias[3 * head_size:].any(), \
            f"pruned heads' {name} rows and biases are exact zeros"
        assert linear.weight[head_size:3 * head_size].any(), f"kept heads' {name} rows are untouched"
    assert not layer.attention.output.dense.weight[:, :head_size].any(), "pruned head's output columns are zeros"
    gone = torch.nonzero(neurons[0] == 0).flatten()
    assert not layer.intermediate.dense.weight[gone].any() and not layer.output.dense.weight[:, gone].any(), \
        "pruned FFN neurons' rows and columns are zeros"


def test_folding_refuses_indicators_still_pruning():
    model = tiny_bert()
    heads, neurons = indicators()
    mask = StructuredMask(model, head=heads * 0.5, ffn=neurons)
    with pytest.raises(ValueError, match="other than 0 and 1"):
        mask.fold_into_weights()
