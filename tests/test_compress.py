"""mt_dnn.compress: bitmask storage (bitwise round trip), int8 dynamic quantization saved as safetensors + JSON
and rebuilt at load (same outputs as the in-memory quantized model), for dense, unstructured-sparse and GPP
(PrunedBertModel) encoders, embedding tables stored in fp16 or int8 (and version-1 directories without that
field), and the command line."""
import hashlib
import json
import math
import os

import pytest
import torch

from tests.conftest import run_main, tiny_bert_config

from mt_dnn import compress  # noqa: E402
from data_utils.errors import UserError  # noqa: E402


def task_defs():
    from data_utils.task_def import DEFAULT_TASK_DEF, load_task_defs
    defs = load_task_defs(DEFAULT_TASK_DEF)
    return {name: defs[name] for name in ("rte", "sst")}


def tiny_model(seed=0, sparsity=0.0):
    """A random 2-layer MTDNNModel (heads rte, sst); `sparsity` of every encoder-layer matrix set to 0 at
    random (what PLATON leaves: zeros inside dense tensors)."""
    from transformers import BertModel

    from modeling.model import MTDNNModel

    torch.manual_seed(seed)
    model = MTDNNModel(BertModel(tiny_bert_config()), task_defs()).eval()
    if sparsity:
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, parameter in model.encoder.encoder.named_parameters():
                if parameter.dim() == 2:
                    parameter[torch.rand(parameter.shape, generator=generator) < sparsity] = 0.0
    return model


def gpp_model(seed=0):
    """A tiny MTDNNModel whose encoder is a GPP export (PrunedBertModel): layer 0 keeps 1 of 4 heads and
    40 of 64 FFN neurons, layer 1 no head at all and 8 neurons."""
    from modeling.model import MTDNNModel
    from modeling.structured import PrunedBertModel, export_pruned_encoder

    dense = tiny_model(seed)
    heads = torch.tensor([[1.0, 0, 0, 0], [0, 0, 0, 0]])
    ffn = torch.zeros(2, 64)
    ffn[0, :40] = 1
    ffn[1, 10:18] = 1
    model = MTDNNModel(export_pruned_encoder(dense.encoder, heads, ffn), {})
    model.heads, model.task_defs = dense.heads, dense.task_defs
    assert isinstance(model.encoder, PrunedBertModel), "the GPP fixture must be a PrunedBertModel"
    return model.eval()


def inputs(batch=3, length=12, seed=1):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000, 20000, (batch, length), generator=generator)
    mask = torch.ones(batch, length, dtype=torch.long)
    mask[0, length // 2:] = 0       # one padded row
    return {"input_ids": ids, "token_type_ids": torch.zeros_like(ids), "attention_mask": mask}


@torch.no_grad()
def logits(model, batch):
    return {task: model(**batch, task=task).logits for task in model.heads}


def assert_same_state(a, b, what):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys(), f"{what}: state-dict keys differ: {sorted(set(sa) ^ set(sb))[:5]}"
    for key in sa:
        x, y = sa[key], sb[key]
        if isinstance(x, torch.Tensor):
            assert x.dtype == y.dtype and x.shape == y.shape, f"{what}: {key} is {y.dtype} {y.shape}, " \
                                                               f"expected {x.dtype} {x.shape}"
            same = torch.equal(x.view(-1).view(torch.int32), y.view(-1).view(torch.int32)) \
                if x.dtype == torch.float32 else torch.equal(x, y)
            assert same, f"{what}: {key} is not bitwise the saved tensor"


# --------------------------------------------------------------------------- bitmask


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.int8])
@pytest.mark.parametrize("pruned", [0.0, 0.3, 0.9, 0.99, 1.0])
def test_bitmask_round_trip_is_bitwise(dtype, pruned):
    generator = torch.Generator().manual_seed(3)
    shape = (37, 13)                                   # 481 entries: not a multiple of 8
    if dtype == torch.int8:
        tensor = torch.randint(1, 128, shape, generator=generator).to(torch.int8)
    else:
        tensor = torch.randn(shape, generator=generator).to(dtype)
    drop = torch.rand(shape, generator=generator) < pruned
    if pruned == 1.0:
        drop[:] = True
    tensor[drop] = 0
    if dtype != torch.int8 and pruned < 1.0:
        tensor[0, 0], tensor[0, 1] = -0.0, float("nan")  # kept bit for bit, not turned into +0.0
    packed, values = compress.encode_bitmask(tensor)
    assert packed.dtype == torch.uint8 and packed.numel() == (tensor.numel() + 7) // 8, \
        f"mask should be one bit per entry, got {packed.numel()} {packed.dtype} bytes"
    kept = tensor != 0
    if dtype != torch.int8:
        kept |= torch.isnan(tensor) | ((tensor == 0) & torch.signbit(tensor))
    expected_nonzero = int(kept.sum())
    assert values.numel() == expected_nonzero, f"{values.numel()} values stored for {expected_nonzero} non-zeros"
    if pruned == 1.0:
        assert values.numel() == 0, "a fully pruned tensor stores no values"
    decoded = compress.decode_bitmask(packed, values, tensor.shape, dtype)
    view = {torch.float32: torch.int32, torch.float16: torch.int16, torch.int8: torch.int8}[dtype]
    assert torch.equal(decoded.view(view), tensor.view(view)), \
        f"bitmask round trip of {dtype} at {pruned:.0%} pruned is not bitwise exact"


def test_bitmask_refuses_a_mask_that_does_not_fit():
    packed, values = compress.encode_bitmask(torch.tensor([1.0, 0.0, 2.0]))
    with pytest.raises(ValueError, match="values for"):
        compress.decode_bitmask(packed, values[:1], (3,), torch.float32)
    with pytest.raises(ValueError, match="does not fit shape"):
        compress.decode_bitmask(packed, values, (30,), torch.float32)


# --------------------------------------------------------------------------- save / load


@pytest.mark.parametrize("sparsity", [0.0, 0.5, 0.9, 1.0])
def test_fp32_sparse_storage_reloads_the_same_weights(tmp_path, sparsity):
    model = tiny_model(sparsity=sparsity)
    out = str(tmp_path / "c")
    manifest = compress.save_compressed(model, None, out)
    reloaded = compress.load_compressed(out, task_defs())
    assert_same_state(model.encoder, reloaded.encoder, f"fp32 at {sparsity:.0%} pruned")
    batch = inputs()
    for task, expected in logits(model, batch).items():
        assert torch.equal(logits(reloaded, batch)[task], expected), f"{task} logits changed by the round trip"
    layer_matrices = [name for name in manifest["tensors"] if name.startswith("encoder.") and name.endswith("weight")
                      and len(manifest["tensors"][name]["shape"]) == 2]
    encodings = {manifest["tensors"][name]["encoding"] for name in layer_matrices}
    assert encodings == ({"dense"} if sparsity == 0 else {"bitmask"}), \
        f"at {sparsity:.0%} pruned the layer matrices should be stored {'dense' if sparsity == 0 else 'as bitmasks'}" \
        f", got {encodings}"
    dense_out = str(tmp_path / "dense")
    dense_manifest = compress.save_compressed(model, None, dense_out, storage="dense")
    if sparsity >= 0.5:
        assert manifest["weights_bytes"] < dense_manifest["weights_bytes"], \
            f"bitmask storage ({manifest['weights_bytes']} B) should beat dense ({dense_manifest['weights_bytes']} B)"
    assert_same_state(model.encoder, compress.load_compressed(dense_out, task_defs()).encoder, "dense storage")


@pytest.mark.parametrize("kind", ["dense", "sparse", "gpp"])
@pytest.mark.parametrize("storage", ["auto", "sparse"])
def test_int8_reloads_to_the_in_memory_quantized_model(tmp_path, kind, storage):
    model = {"dense": lambda: tiny_model(), "sparse": lambda: tiny_model(sparsity=0.9), "gpp": gpp_model}[kind]()
    served = compress.quantize_int8(model)
    assert compress.is_quantized(served) and not compress.is_quantized(model), \
        "quantize_int8 must quantize a copy and leave the fp32 model alone"
    linear = [m for m in served.encoder.modules() if isinstance(m, torch.nn.Linear) and m.weight.numel()]
    assert not linear, f"{len(linear)} non-empty fp32 linear layers left in the quantized encoder"
    out = str(tmp_path / "q")
    manifest = compress.save_compressed(served, None, out, storage=storage)
    assert manifest["quantize"] == "int8", f"manifest says quantize {manifest['quantize']}"
    assert sorted(os.listdir(out)) == sorted(["config.json", "compressed.safetensors", "compression.json",
                                             "heads.json", "heads.safetensors"]), \
        f"only safetensors + JSON expected, got {sorted(os.listdir(out))}"
    reloaded = compress.load_compressed(out, task_defs())
    assert type(reloaded.encoder) is type(model.encoder), \
        f"reloaded encoder is {type(reloaded.encoder).__name__}, expected {type(model.encoder).__name__}"
    for (name, a), (_, b) in zip(compress._quantized_modules(served.encoder).items(),
                                 compress._quantized_modules(reloaded.encoder).items()):
        wa, wb = a.weight(), b.weight()
        assert torch.equal(wa.int_repr(), wb.int_repr()), f"{name}: int8 weights differ after reload"
        assert torch.equal(wa.q_per_channel_scales(), wb.q_per_channel_scales()), f"{name}: scales differ"
    batch = inputs()
    expected, got = logits(served, batch), logits(reloaded, batch)
    for task in expected:
        assert torch.equal(got[task], expected[task]), \
            f"{kind}/{storage}: reloaded int8 {task} logits differ from the in-memory ones by " \
            f"{(got[task] - expected[task]).abs().max():.2e}"
        error = (expected[task] - logits(model, batch)[task]).abs().max()
        assert 0 < error < 0.5, f"int8 vs fp32 {task} logits differ by {error:.3e}: not quantized, or broken"


def test_int8_sparse_weights_keep_their_zeros(tmp_path):
    model = tiny_model(sparsity=0.9)
    served = compress.quantize_int8(model)
    query = served.encoder.encoder.layer[0].attention.self.query.weight().int_repr()
    fp32_zero = model.encoder.encoder.layer[0].attention.self.query.weight == 0
    assert bool((query[fp32_zero] == 0).all()), "a pruned weight must stay exactly 0 in int8"
    out = str(tmp_path / "q")
    manifest = compress.save_compressed(served, None, out)
    meta = manifest["tensors"]["encoder.layer.0.attention.self.query.weight"]
    assert meta["encoding"] == "bitmask" and meta["quantized"]["dtype"] == "qint8", \
        f"a 90 %-sparse int8 matrix should be stored as a bitmask of int8 values, got {meta}"
    dense_int8 = compress.save_compressed(served, None, str(tmp_path / "d"), storage="dense")
    assert manifest["weights_bytes"] < dense_int8["weights_bytes"], "bitmask int8 should be smaller than dense int8"


# --------------------------------------------------------------------------- embedding tables

# the largest |logit| change the rounded tables may cause on the random tiny model (measured: 1.1e-5 for fp16,
# 7.7e-4 for int8), with room to spare but far below a broken table's effect
EMBEDDING_TOLERANCE = {"fp16": 1e-4, "int8": 5e-3}
TABLES = ("embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
          "embeddings.token_type_embeddings.weight")


@pytest.mark.parametrize("quantize", ["none", "int8"])
@pytest.mark.parametrize("embeddings", ["fp16", "int8"])
def test_embeddings_round_trip_within_tolerance_and_smaller(tmp_path, embeddings, quantize):
    model = tiny_model(sparsity=0.9)
    served = compress.quantize_int8(model) if quantize == "int8" else model
    fp32_manifest = compress.save_compressed(served, None, str(tmp_path / "fp32"))
    out = str(tmp_path / embeddings)
    manifest = compress.save_compressed(served, None, out, embeddings=embeddings)
    assert manifest["embeddings"] == embeddings and manifest["version"] == compress.VERSION, \
        f"the manifest should record embeddings {embeddings}: {manifest['embeddings']}, version {manifest['version']}"
    stored = {name: meta.get("embedding") for name, meta in manifest["tensors"].items() if meta.get("embedding")}
    assert stored == dict.fromkeys(TABLES, embeddings), f"tables stored as {embeddings}: {stored}"
    dtype = {"fp16": "float16", "int8": "int8"}[embeddings]
    assert {manifest["tensors"][name]["dtype"] for name in TABLES} == {dtype}, "tables not stored in the chosen dtype"

    reloaded = compress.load_compressed(out, task_defs())
    batch = inputs()
    expected, got, source = logits(compress.with_embeddings(served, embeddings), batch), logits(reloaded, batch), \
        logits(served, batch)
    for task in got:
        assert torch.equal(got[task], expected[task]), \
            f"{embeddings}/{quantize}: the reload differs from the in-memory rounded model ({task})"
        error = float((got[task] - source[task]).abs().max())
        assert 0 < error <= EMBEDDING_TOLERANCE[embeddings], \
            f"{embeddings}/{quantize}: {task} logits moved by {error:.2e} from the fp32-table model " \
            f"(expected in (0, {EMBEDDING_TOLERANCE[embeddings]}])"
    word = model.encoder.embeddings.word_embeddings.weight
    loaded = reloaded.encoder.embeddings.word_embeddings.weight
    assert loaded.dtype == torch.float32, f"tables are computed on in fp32 after load, got {loaded.dtype}"
    if embeddings == "int8":
        half_step = word.abs().amax(dim=1, keepdim=True) / 127 / 2
        assert bool(((loaded - word).abs() <= half_step * 1.001 + 1e-12).all()), \
            "an int8 table entry is off by more than half its row's step"
    else:
        assert torch.equal(loaded, word.half().float()), "an fp16 table should be the fp32 one rounded to half"

    # smaller by what the tables lose: 2 of 4 bytes (fp16), 3 of 4 bytes less a float32 scale per row (int8)
    entries = sum(math.prod(manifest["tensors"][name]["shape"]) for name in TABLES)
    rows = sum(manifest["tensors"][name]["shape"][0] for name in TABLES)
    saved = entries * 2 if embeddings == "fp16" else entries * 3 - rows * 4
    shrink = fp32_manifest["weights_bytes"] - manifest["weights_bytes"]
    assert abs(shrink - saved) < 2048, \
        f"{embeddings} tables should save about {saved} B, saved {shrink} B (fp32 {fp32_manifest['weights_bytes']} B)"


def test_int8_table_keeps_a_row_of_zeros_and_each_rows_peak():
    table = torch.tensor([[0.0, 0.0, 0.0], [1.0, -0.5, 0.25], [-2.0, 1e-9, 0.0]])
    values, scales = compress.quantize_rows(table)
    assert values.dtype == torch.int8 and scales.dtype == torch.float32, f"{values.dtype}, {scales.dtype}"
    assert torch.equal(values[0], torch.zeros(3, dtype=torch.int8)) and float(scales[0]) == 0, \
        f"a row of zeros should stay zeros with scale 0, got {values[0].tolist()}, {float(scales[0])}"
    assert values[1, 0] == 127 and values[2, 0] == -127, f"each row's peak maps to +-127: {values.tolist()}"
    restored = compress.dequantize_rows(values, scales)
    assert torch.allclose(restored, table, atol=2.0 / 127 / 2), f"dequantized {restored.tolist()}"
    with pytest.raises(ValueError, match="scales for a table"):
        compress.dequantize_rows(values, scales[:1])


def test_fp16_refuses_a_table_beyond_its_range():
    model = tiny_model()
    with torch.no_grad():
        model.encoder.embeddings.word_embeddings.weight[5, 0] = 1e5
    with pytest.raises(UserError, match="--embeddings fp16: the table embeddings.word_embeddings.weight .*"
                                        "use --embeddings int8 or fp32"):
        compress.check_embedding_range(model.encoder, "fp16")
    compress.check_embedding_range(model.encoder, "int8")     # int8 scales any finite row


def test_version_1_directory_without_embeddings_still_loads(tmp_path):
    """A directory written before --embeddings existed: version 1, no "embeddings" fields; read as fp32. An
    "embeddings" field that is unknown or does not match the tables is refused in one line."""
    model = tiny_model(sparsity=0.5)
    out = str(tmp_path / "old")
    compress.save_compressed(model, None, out)
    path = os.path.join(out, compress.MANIFEST_FILE)
    manifest = json.load(open(path))
    manifest["version"] = 1
    del manifest["embeddings"], manifest["embedding_storage"]
    json.dump(manifest, open(path, "w"))
    reloaded = compress.load_compressed(out, task_defs())
    assert_same_state(model.encoder, reloaded.encoder, "version-1 directory")
    manifest["embeddings"] = "int4"
    json.dump(manifest, open(path, "w"))
    with pytest.raises(UserError, match="not a valid manifest .*embeddings 'int4'"):
        compress.load_compressed(out, task_defs())
    manifest["embeddings"] = "fp16"         # says fp16, but its tables are stored as fp32
    json.dump(manifest, open(path, "w"))
    with pytest.raises(UserError, match="the fp16 embedding tables in compression.json do not match"):
        compress.load_compressed(out, task_defs())
    int8 = str(tmp_path / "int8")
    manifest = compress.save_compressed(model, None, int8, embeddings="int8")
    manifest["embeddings"] = "fp16"         # says fp16, its tables say int8
    json.dump(manifest, open(os.path.join(int8, compress.MANIFEST_FILE), "w"))
    with pytest.raises(UserError, match="stored as embedding 'int8', the manifest's embeddings are 'fp16'"):
        compress.load_compressed(int8, task_defs())


def test_load_refuses_broken_directories(tmp_path):
    out = str(tmp_path / "c")
    compress.save_compressed(tiny_model(), None, out)
    with pytest.raises(UserError, match="--model .*no compression.json"):
        compress.load_compressed(str(tmp_path), task_defs())
    manifest_path = os.path.join(out, compress.MANIFEST_FILE)
    manifest = json.load(open(manifest_path))
    manifest["version"] = 99
    json.dump(manifest, open(manifest_path, "w"))
    with pytest.raises(UserError, match="version 99"):
        compress.load_compressed(out, task_defs())
    manifest["version"] = compress.VERSION
    name = "encoder.layer.0.attention.self.query.weight"
    manifest["tensors"][name]["shape"] = [3, 3]
    json.dump(manifest, open(manifest_path, "w"))
    with pytest.raises(UserError, match="does not match compression.json"):
        compress.load_compressed(out, task_defs())


# --------------------------------------------------------------------------- command line


def tree_digest(directory):
    digest = hashlib.sha256()
    for root, _, files in sorted(os.walk(directory)):
        for name in sorted(files):
            path = os.path.join(root, name)
            digest.update(os.path.relpath(path, directory).encode() + open(path, "rb").read())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def saved_sparse_model(tmp_path_factory, tiny_model_dir):
    from modeling import pretrained
    from modeling.model import save_model

    directory = str(tmp_path_factory.mktemp("saved") / "model")
    save_model(tiny_model(sparsity=0.9), pretrained.load_tokenizer(tiny_model_dir), directory)
    return directory


def test_cli_int8_writes_a_loadable_model_and_leaves_the_input_alone(tmp_path, saved_sparse_model, capsys):
    before = tree_digest(saved_sparse_model)
    out = str(tmp_path / "served")
    assert run_main(compress.main, ["--model", saved_sparse_model, "--output_dir", out, "--quantize", "int8"]) == 0, \
        f"compress failed: {capsys.readouterr().err}"
    printed = capsys.readouterr().out
    assert "max |reloaded - in-memory| = 0.00e+00" in printed, f"the reload check should be exact: {printed}"
    assert tree_digest(saved_sparse_model) == before, "--model was modified"
    assert not [n for n in os.listdir(out) if n.endswith((".bin", ".pt", ".pkl", ".pth"))], "a pickle was written"
    assert os.path.isfile(os.path.join(out, "tokenizer.json")), "the tokenizer must travel with the model"
    reloaded = compress.load_compressed(out, task_defs())
    assert compress.is_quantized(reloaded), "the CLI's --quantize int8 output is not quantized at load"
    assert [n for n in os.listdir(os.path.dirname(out)) if n.startswith(".")] == [], "temporary directory left behind"
    # a second run into the earlier output is refused; with --overwrite_output_dir the earlier one is kept aside
    first = tree_digest(out)
    assert run_main(compress.main, ["--model", saved_sparse_model, "--output_dir", out]) == 2, \
        "an earlier output must not be replaced without --overwrite_output_dir"
    assert "--overwrite_output_dir" in capsys.readouterr().err, "the refusal should name --overwrite_output_dir"
    assert tree_digest(out) == first, "the refused run changed the earlier output"
    assert run_main(compress.main, ["--model", saved_sparse_model, "--output_dir", out, "--overwrite_output_dir"]) == 0, \
        f"re-compressing with --overwrite_output_dir failed: {capsys.readouterr().err}"
    assert not compress.is_quantized(compress.load_compressed(out, task_defs())), "the second output was not written"
    kept = [n for n in os.listdir(out) if n.startswith("previous-")]
    assert len(kept) == 1 and tree_digest(os.path.join(out, kept[0])) == first, \
        f"the earlier output should be kept whole in previous-<time>/: {os.listdir(out)}"


@pytest.mark.parametrize("embeddings", ["fp16", "int8"])
def test_cli_embeddings_serve_through_the_toolkits_loader(tmp_path, saved_sparse_model, capsys, embeddings):
    """--embeddings: the reload check is exact, the difference from --model is printed, and the directory is
    served by what evaluate and predict use (mt_dnn.engines.load_engine)."""
    from modeling.model import load_model
    from mt_dnn.engines import load_engine

    out = str(tmp_path / "served")
    args = ["--model", saved_sparse_model, "--output_dir", out, "--quantize", "int8", "--embeddings", embeddings]
    assert run_main(compress.main, args) == 0, f"compress --embeddings {embeddings} failed: {capsys.readouterr().err}"
    printed = capsys.readouterr().out
    assert f"embeddings {embeddings}" in printed and "max |reloaded - in-memory| = 0.00e+00" in printed, \
        f"the summary should name the storage and an exact reload check: {printed}"
    assert json.load(open(os.path.join(out, compress.MANIFEST_FILE)))["embeddings"] == embeddings, \
        "compression.json should record the embedding storage"
    served = load_engine(out, task_defs(), "torch")
    original = load_model(saved_sparse_model, task_defs())
    batch = inputs()
    for task, expected in logits(original, batch).items():
        error = float((logits(served, batch)[task] - expected).abs().max())
        assert error < 0.5, f"{task}: the served {embeddings} copy is {error:.2e} away from --model"


def test_cli_embeddings_reload_beyond_tolerance_writes_nothing(tmp_path, saved_sparse_model, capsys, monkeypatch):
    """A reader that does not give back the rounded tables is caught by the check before anything is written."""
    decode = compress._decode

    def off_by_a_bit(name, meta, tensors):
        value = decode(name, meta, tensors)
        return value + 1 if meta.get("embedding") else value

    monkeypatch.setattr(compress, "_decode", off_by_a_bit)
    out = str(tmp_path / "served")
    assert run_main(compress.main, ["--model", saved_sparse_model, "--output_dir", out, "--embeddings", "fp16"]) == 2, \
        "a reload beyond --tolerance must fail"
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--tolerance 0.0; nothing was written" in err, f"got {err!r}"
    assert not os.path.exists(out), "nothing may be written when the check fails"


@pytest.mark.parametrize("case, flag", [("overlap", "--output_dir"), ("missing", "--model"),
                                        ("foreign", "--output_dir"), ("quantize", "--quantize"),
                                        ("tolerance", "--tolerance"), ("check_data", "--check_data"),
                                        ("embeddings", "--embeddings")])
def test_cli_bad_input_is_one_line_naming_the_flag(tmp_path, saved_sparse_model, capsys, case, flag):
    out = str(tmp_path / "served")
    args = {"overlap": ["--model", saved_sparse_model, "--output_dir", os.path.join(saved_sparse_model, "x")],
            "missing": ["--model", str(tmp_path / "nope"), "--output_dir", out],
            "foreign": ["--model", saved_sparse_model, "--output_dir", str(tmp_path)],
            "quantize": ["--model", saved_sparse_model, "--output_dir", out, "--quantize", "int4"],
            "tolerance": ["--model", saved_sparse_model, "--output_dir", out, "--tolerance", "-1"],
            "embeddings": ["--model", saved_sparse_model, "--output_dir", out, "--embeddings", "int4"],
            "check_data": ["--model", saved_sparse_model, "--output_dir", out, "--check_data",
                           str(tmp_path / "none.json")]}[case]
    (tmp_path / "keep.txt").write_text("not a model")
    assert run_main(compress.main, args) == 2, f"{case}: expected exit status 2"
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error:") and flag in err, \
        f"{case}: expected one error line naming {flag}, got {err!r}"
    assert (tmp_path / "keep.txt").read_text() == "not a model", f"{case}: a file the user named was touched"
    assert not os.path.exists(out), f"{case}: {out} was written although the run failed"


def test_structured_export_with_int8(gpp_model_dir, tmp_path, capsys):
    from mt_dnn import export as export_cli
    from mt_dnn.compress import is_quantized, load_compressed
    from tests.conftest import run_main

    out = tmp_path / "exported"
    assert run_main(export_cli.main, ["--checkpoint", gpp_model_dir, "--output_dir", str(out),
                                      "--quantize", "int8"]) == 0, capsys.readouterr().err
    assert (out / "structured_export.json").is_file(), "the fp32 export is written as before"
    quantized = load_compressed(str(tmp_path / "exported_int8"))
    assert is_quantized(quantized.encoder), "--quantize int8 also writes the int8 export beside it"
