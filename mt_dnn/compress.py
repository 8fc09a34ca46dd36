"""Serving copies of a saved model: int8 dynamic quantization and compact sparse storage.

    python -m mt_dnn.compress --model DIR --output_dir OUT [--quantize none|int8] [--storage auto|dense|sparse]
                              [--embeddings fp32|fp16|int8] [--check_data FILE] [--tolerance 0] [--task_def YAML]

`--model` is any directory written by train.py or mt_dnn.export: a dense or PLATON/magnitude `model/`
(zeros kept in the weights) or a GPP `model_pruned/` (PrunedBertModel). OUT gets

    config.json, tokenizer files         the encoder's config and tokenizer, as in --model
    heads.safetensors, heads.json        the task heads (fp32, as train.py writes them)
    compressed.safetensors               the encoder's weights, each tensor stored one of two ways:
                                           dense     NAME
                                           bitmask   NAME::mask   uint8, one bit per entry (little-endian bit
                                                                  order, row-major), set where the entry's bit
                                                                  pattern is not all zeros (so -0.0 is kept)
                                                     NAME::values the entries whose bit is set, in row-major order
                                         and, for an int8 linear layer's weight, NAME holds the int8 values and
                                         NAME::scales (float64) / NAME::zero_points (int64) the per-output-channel
                                         quantization parameters; an embedding table stored in fp16 holds float16
                                         values, one stored in int8 holds int8 values in NAME and its per-row
                                         scales (float32) in NAME::scales
    compression.json                     format, version, the quantization, the embedding storage, and every
                                         tensor's shape, dtype and encoding (an embedding table's also its
                                         "embedding" storage)

Only safetensors and JSON: nothing is pickled (torch's quantized modules' own state_dicts hold packed
parameter objects; here the int8 values and scales are stored and the quantized modules rebuilt at load).
`--storage auto` (the default) stores a tensor as bitmask + values where that is smaller than the dense
tensor: an fp32 tensor with more than 1/32 of its entries zero, an int8 one with more than 1/8.
`load_compressed(OUT)` gives back the model: bitwise the same weights (embedding tables: as rounded by
`--embeddings`), and for int8 the same quantized modules (its outputs equal the in-memory quantized model's).

`--quantize int8` replaces every nn.Linear of the encoder (query/key/value, attention output, FFN, pooler;
the task heads stay fp32) by torch's dynamic-quantized linear layer, `torch.ao.quantization.quantize_dynamic`
with `per_channel_dynamic_qconfig`: qint8 weights, symmetric per output channel; activations quantized per
batch at run time (fbgemm/x86 kernels on CPU). torch 2.13 marks torch.ao.quantization deprecated in favour
of torchao's `quantize_`; torchao's Int8DynamicActivationInt8WeightConfig runs *slower* than fp32 in eager
mode on this CPU (MiniLM, 32 x 128 tokens: 513 ms against fp32's 379 ms and quantize_dynamic's 262 ms) and is
not installed here, so the toolkit keeps the torch.ao path, in one function (`quantize_encoder`), with its
deprecation warnings silenced there. LayerNorms stay fp32 (quantize_dynamic covers linear layers only), and
so do the embedding tables unless `--embeddings` says otherwise: they are most of an int8 file (MiniLM with 10 %
of its layer weights kept, int8: 47.7 of 50.7 MB; with fp16 tables the file is 26.9 MB, with int8 ones 15.1 MB).

`--embeddings fp16|int8` (the choice names of mt_dnn.onnx_export's flag, whose int8 is ONNX Runtime's, with one
scale per table) stores the embedding tables (every nn.Embedding of the encoder: word, position and token-type)
in half precision, or as int8 with one symmetric scale per row (max |row| / 127; a row of zeros keeps scale 0).
They are turned back into fp32 at load, so the model computes in fp32 on the rounded tables; the in-memory model
the reload is checked against is rounded the same way (`with_embeddings`), and the rounding's effect on the
logits is the printed difference from --model.
Version 1 directories (before this choice existed) have no "embeddings" field and are read as fp32.

The command reloads what it wrote and compares the logits of every head on a check batch (`--check_data`,
a canonical JSON file, else built-in sentences) with the in-memory compressed model (must differ by at
most `--tolerance`, default 0: exact) and, for information, with the fp32 model of --model.
"""
from __future__ import annotations

import copy
import json
import math
import os
import warnings

import numpy as np
import torch
import transformers
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from data_utils.errors import ArgumentParser, UserError, run_cli
from data_utils.files import claim_output_dir, refuse_writing_inputs, write_directory
from data_utils.task_def import DEFAULT_TASK_DEF, load_task_defs
from modeling.model import (
    HEADS_CONFIG,
    HEADS_WEIGHTS,
    MTDNNModel,
    check_batch,
    load_model,
    read_head_specs,
    with_saved_heads,
)

FORMAT = "mt-dnn-compressed"
VERSION = 2                 # 2: the optional embedding storage ("embeddings"); version 1 is read as fp32 tables
READ_VERSIONS = (1, 2)
WEIGHTS_FILE = "compressed.safetensors"
MANIFEST_FILE = "compression.json"
QUANTIZE_CHOICES = ("none", "int8")
EMBEDDING_CHOICES = ("fp32", "fp16", "int8")     # embedding-table storage; mt_dnn.onnx_export takes the same names
STORAGE_CHOICES = ("auto", "dense", "sparse")
SEP = "::"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")

_INT_VIEW = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


# ---------------------------------------------------------------------------
# int8 dynamic quantization


def _dynamic_linear_class():
    return torch.ao.nn.quantized.dynamic.Linear


def quantize_encoder(encoder: nn.Module) -> nn.Module:
    """`encoder` with every non-empty nn.Linear replaced, in place, by torch's int8 dynamic-quantized linear
    layer (qint8 weights, symmetric per output channel); returns it, in eval mode."""
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():     # torch.ao.quantization's deprecation notices (see the module docstring)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*quantiz.*deprecated.*")
        # by name: a GPP layer left with no head or no FFN neuron has an empty Linear, which stays as it is
        spec = {name: per_channel_dynamic_qconfig for name, module in encoder.named_modules()
                if isinstance(module, nn.Linear) and module.weight.numel() > 0}
        quantize_dynamic(encoder.eval(), spec, dtype=torch.qint8, inplace=True)
    return encoder.eval()


def quantize_int8(model: MTDNNModel) -> MTDNNModel:
    """A copy of `model` whose encoder's linear layers are int8 dynamic-quantized (the heads stay fp32)."""
    served = copy.deepcopy(model).eval()
    served.encoder = quantize_encoder(served.encoder)
    return served


def is_quantized(model: nn.Module) -> bool:
    return any(isinstance(m, _dynamic_linear_class()) for m in model.modules())


# ---------------------------------------------------------------------------
# Bitmask storage


def nonzero_mask(tensor: torch.Tensor) -> torch.Tensor:
    """Flat bool mask of the entries whose bit pattern is not all zeros (-0.0 and NaN count as non-zero)."""
    flat = tensor.detach().contiguous().view(-1)
    if flat.is_floating_point():
        flat = flat.view(_INT_VIEW[flat.element_size()])
    return flat != 0


def encode_bitmask(tensor: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(packed mask: uint8, numel/8 rounded up, little-endian bit order; the kept values, row-major)."""
    mask = nonzero_mask(tensor)
    values = tensor.detach().contiguous().view(-1)[mask].clone()
    packed = torch.from_numpy(np.packbits(mask.numpy(), bitorder="little"))
    return packed, values


def decode_bitmask(packed: torch.Tensor, values: torch.Tensor, shape, dtype) -> torch.Tensor:
    """The tensor `encode_bitmask` was given: zeros where the mask bit is 0, `values` in order elsewhere."""
    numel = math.prod(shape)
    if packed.dtype != torch.uint8 or packed.numel() != (numel + 7) // 8:
        raise ValueError(f"mask of {packed.numel()} {packed.dtype} bytes does not fit shape {list(shape)}")
    mask = torch.from_numpy(np.unpackbits(packed.numpy(), count=numel, bitorder="little").astype(bool))
    if int(mask.sum()) != values.numel() or values.dtype != dtype:
        raise ValueError(f"{values.numel()} {values.dtype} values for {int(mask.sum())} set mask bits of {dtype}")
    out = torch.zeros(numel, dtype=dtype)
    out[mask] = values
    return out.view(*shape)


def _bitmask_is_smaller(tensor: torch.Tensor) -> bool:
    nonzero = int(nonzero_mask(tensor).sum())
    return (tensor.numel() + 7) // 8 + nonzero * tensor.element_size() < tensor.numel() * tensor.element_size()


def _encode(name: str, tensor: torch.Tensor, storage: str, out: dict) -> dict:
    tensor = tensor.detach().contiguous().cpu()
    sparse = storage == "sparse" or (storage == "auto" and tensor.numel() > 0 and _bitmask_is_smaller(tensor))
    meta = {"shape": list(tensor.shape), "dtype": str(tensor.dtype).replace("torch.", ""),
            "encoding": "bitmask" if sparse else "dense"}
    if sparse:
        out[name + SEP + "mask"], out[name + SEP + "values"] = encode_bitmask(tensor)
        meta["nonzero"] = int(out[name + SEP + "values"].numel())
    else:
        out[name] = tensor.clone()
    return meta


def stored_dtype(name: str, meta: dict) -> torch.dtype:
    """The torch dtype a manifest entry names ("float32", "int8", ...); ValueError for anything else."""
    dtype = getattr(torch, meta["dtype"], None) if isinstance(meta["dtype"], str) else None
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"dtype {meta['dtype']!r} of {name} is not a torch dtype such as 'float32'")
    return dtype


def _decode(name: str, meta: dict, tensors: dict) -> torch.Tensor:
    dtype = stored_dtype(name, meta)
    if meta["encoding"] == "bitmask":
        return decode_bitmask(tensors[name + SEP + "mask"], tensors[name + SEP + "values"], meta["shape"], dtype)
    if meta["encoding"] != "dense":
        raise ValueError(f"unknown encoding {meta['encoding']!r}")
    tensor = tensors[name]
    if list(tensor.shape) != list(meta["shape"]) or tensor.dtype != dtype:
        raise ValueError(f"stored as {list(tensor.shape)} {tensor.dtype}, manifest says {meta['shape']} {dtype}")
    return tensor


# ---------------------------------------------------------------------------
# Embedding tables in fp16 or int8


def embedding_tables(encoder: nn.Module) -> dict:
    """{state-dict key of the table: nn.Embedding} of every embedding table of `encoder`."""
    return {f"{name}.weight": module for name, module in encoder.named_modules() if isinstance(module, nn.Embedding)}


def quantize_rows(table: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(int8 values, float32 scale per row): symmetric, scale = max |row| / 127 (0 for a row of zeros)."""
    table = table.detach().to(torch.float32)
    scales = table.abs().amax(dim=1) / 127
    divisor = torch.where(scales > 0, scales, torch.ones_like(scales))
    return torch.round(table / divisor[:, None]).clamp(-127, 127).to(torch.int8), scales


def dequantize_rows(values: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """The fp32 table of `quantize_rows`'s int8 values and per-row scales."""
    if values.dim() != 2 or tuple(scales.shape) != tuple(values.shape[:1]):
        raise ValueError(f"{tuple(scales.shape)} scales for a table of shape {tuple(values.shape)}")
    return values.to(torch.float32) * scales.to(torch.float32)[:, None]


def stored_table(table: torch.Tensor, embeddings: str) -> dict:
    """How one fp32 embedding table is stored: {"values": fp32, fp16 or int8 tensor, "scales": per row (int8)}."""
    table = table.detach().contiguous().cpu()
    if embeddings == "fp16":
        return {"values": table.to(torch.float16)}
    if embeddings == "int8":
        values, scales = quantize_rows(table)
        return {"values": values, "scales": scales}
    return {"values": table}


def loaded_table(values: torch.Tensor, scales: torch.Tensor | None) -> torch.Tensor:
    """The fp32 table the model computes on, from what `stored_table` stored."""
    return values.to(torch.float32) if scales is None else dequantize_rows(values, scales)


def check_embedding_range(encoder: nn.Module, embeddings: str, flag: str = "--embeddings") -> None:
    """Refuse to round a table that the storage cannot hold: values beyond fp16's range (they would become
    infinities), or non-finite values (an int8 row's scale would be infinite)."""
    if embeddings == "fp32":
        return
    largest = float(torch.finfo(torch.float16 if embeddings == "fp16" else torch.float32).max)
    for name, module in embedding_tables(encoder).items():
        peak = float(module.weight.detach().abs().max()) if module.weight.numel() else 0.0
        if not peak <= largest:
            raise UserError(f"{flag} {embeddings}: the table {name} holds |values| up to {peak:.3g}, which "
                            f"{embeddings} cannot store; use {flag} {'int8 or ' if embeddings == 'fp16' else ''}fp32")


def with_embeddings(model: MTDNNModel, embeddings: str) -> MTDNNModel:
    """`model` as it computes once its embedding tables are stored as `embeddings` and loaded back: a copy with
    every table rounded through that storage (the model itself for fp32)."""
    if embeddings not in EMBEDDING_CHOICES:
        raise ValueError(f"embeddings must be one of {EMBEDDING_CHOICES}, got {embeddings!r}")
    if embeddings == "fp32":
        return model
    served = copy.deepcopy(model).eval()
    with torch.no_grad():
        for module in embedding_tables(served.encoder).values():
            stored = stored_table(module.weight, embeddings)
            module.weight.copy_(loaded_table(stored["values"], stored.get("scales")))
    return served


# ---------------------------------------------------------------------------
# The encoder's tensors


def _quantized_modules(encoder: nn.Module) -> dict:
    return {name: module for name, module in encoder.named_modules()
            if isinstance(module, _dynamic_linear_class())}


def encoder_tensors(encoder: nn.Module, storage: str = "auto", embeddings: str = "fp32") -> tuple[dict, dict]:
    """(safetensors dict, manifest entries) of an encoder, fp32 or quantized by `quantize_encoder`, with its
    embedding tables stored as `embeddings` (an entry's "embedding" names that storage, when not fp32)."""
    if storage not in STORAGE_CHOICES:
        raise ValueError(f"storage must be one of {STORAGE_CHOICES}, got {storage!r}")
    if embeddings not in EMBEDDING_CHOICES:
        raise ValueError(f"embeddings must be one of {EMBEDDING_CHOICES}, got {embeddings!r}")
    quantized = _quantized_modules(encoder)
    tables = embedding_tables(encoder) if embeddings != "fp32" else {}
    tensors, entries = {}, {}
    for key, value in encoder.state_dict().items():
        if any(key.startswith(prefix + ".") for prefix in quantized) or not isinstance(value, torch.Tensor):
            continue
        if key in tables:
            stored = stored_table(value, embeddings)
            entries[key] = _encode(key, stored["values"], storage, tensors)
            entries[key]["embedding"] = embeddings
            if "scales" in stored:
                tensors[key + SEP + "scales"] = stored["scales"].contiguous().clone()
            continue
        entries[key] = _encode(key, value, storage, tensors)
    for prefix, module in quantized.items():
        weight = module.weight()
        if weight.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
            scales, zero_points = weight.q_per_channel_scales(), weight.q_per_channel_zero_points()
            axis = int(weight.q_per_channel_axis())
        else:
            scales = torch.tensor([weight.q_scale()], dtype=torch.float64)
            zero_points = torch.tensor([weight.q_zero_point()], dtype=torch.int64)
            axis = None
        name = prefix + ".weight"
        entries[name] = _encode(name, weight.int_repr(), storage, tensors)
        entries[name]["quantized"] = {"dtype": "qint8", "axis": axis}
        tensors[name + SEP + "scales"] = scales.to(torch.float64).contiguous().clone()
        tensors[name + SEP + "zero_points"] = zero_points.to(torch.int64).contiguous().clone()
        bias = module.bias()
        if bias is not None:
            entries[prefix + ".bias"] = _encode(prefix + ".bias", bias, storage, tensors)
    return tensors, entries


def _rebuild_quantized(module, ints: torch.Tensor, scales: torch.Tensor, zero_points: torch.Tensor, axis,
                       bias: torch.Tensor | None) -> None:
    if axis is None:
        weight = torch._make_per_tensor_quantized_tensor(ints, float(scales[0]), int(zero_points[0]))
    else:
        weight = torch._make_per_channel_quantized_tensor(ints, scales, zero_points, axis)
    module.set_weight_bias(weight, bias)


# ---------------------------------------------------------------------------
# Saving and loading a model


def _write_heads(model: MTDNNModel, directory: str) -> None:
    from modeling.hf_export import label_names

    state = {f"{name}.{k}": v.detach().contiguous().cpu().clone() for name, head in model.heads.items()
             for k, v in head.state_dict().items()}
    save_file(state, os.path.join(directory, HEADS_WEIGHTS))
    specs = {}
    for name, head in model.heads.items():
        specs[name] = {"n_class": head.proj.out_features, "dropout_p": head.dropout.p}
        task = getattr(model, "task_defs", {}).get(name)
        if task is not None:
            specs[name].update(task_type=task.task_type, labels=label_names(task, head.proj.out_features))
    with open(os.path.join(directory, HEADS_CONFIG), "w", encoding="utf-8") as handle:
        json.dump(specs, handle, indent=2)


def weights_size(directory: str) -> int:
    """Bytes of the model's weights on disk: every .safetensors file directly in `directory`."""
    return sum(os.path.getsize(os.path.join(directory, name)) for name in os.listdir(directory)
               if name.endswith(".safetensors") and os.path.isfile(os.path.join(directory, name)))


def save_compressed(model: MTDNNModel, tokenizer, directory: str, storage: str = "auto", source: str | None = None,
                    check=None, existing: str = "replace", flag: str = "--output_dir",
                    embeddings: str = "fp32") -> dict:
    """Write `model` (fp32, or quantized by `quantize_int8`; its embedding tables fp32, not yet rounded) to
    `directory` in the compressed format, the embedding tables stored as `embeddings`, replacing it atomically
    (data_utils.files.write_directory, with `existing` as there). `check(tmp_directory)`, if given, runs on the
    complete temporary copy before the rename and may raise to keep the old `directory`. Returns the manifest."""
    encoder = model.encoder
    tensors, entries = encoder_tensors(encoder, storage, embeddings)
    manifest = {"format": FORMAT, "version": VERSION,
                "quantize": "int8" if _quantized_modules(encoder) else "none",
                "qconfig": "torch.ao.quantization.per_channel_dynamic_qconfig (qint8, symmetric per output "
                           "channel)" if _quantized_modules(encoder) else None,
                "embeddings": embeddings,
                "embedding_storage": {"fp32": None, "fp16": "float16 tables",
                                      "int8": "int8 tables, symmetric float32 scale per row (max |row| / 127) in "
                                              "NAME::scales"}[embeddings],
                "storage": storage, "source": source, "torch": torch.__version__, "tensors": entries}

    def fill(tmp):
        encoder.config.save_pretrained(tmp)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        save_file(tensors, os.path.join(tmp, WEIGHTS_FILE), metadata={"format": FORMAT})
        _write_heads(model, tmp)
        manifest["weights_bytes"] = weights_size(tmp)
        with open(os.path.join(tmp, MANIFEST_FILE), "w", encoding="utf-8") as handle:
            json.dump(manifest, handle, indent=1)
        if check is not None:
            check(tmp)

    write_directory(directory, fill, existing=existing, what="the compressed model", flag=flag)
    return manifest


def is_compressed(directory: str) -> bool:
    return os.path.isfile(os.path.join(directory, MANIFEST_FILE))


def load_compressed(directory: str, task_defs: dict | None = None, flag: str = "--model") -> MTDNNModel:
    """The model `save_compressed` wrote, in eval mode: int8 linear layers rebuilt from their stored int8
    values and scales, bitmask tensors expanded to exactly the saved weights. `task_defs` default to the
    toolkit's task definitions."""
    from transformers import AutoModel

    from modeling.model import read_config

    manifest_path = os.path.join(directory, MANIFEST_FILE)
    if not os.path.isfile(manifest_path):
        raise UserError(f"{flag} {directory}: no {MANIFEST_FILE}; not a directory written by mt_dnn.compress")
    try:
        with open(manifest_path, encoding="utf-8") as handle:
            manifest = json.load(handle)
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise ValueError(f"format is not {FORMAT!r}")
        if manifest.get("version") not in READ_VERSIONS:
            raise ValueError(f"version {manifest.get('version')!r}, this toolkit reads versions "
                             f"{', '.join(map(str, READ_VERSIONS))}")
        embeddings = manifest.get("embeddings", "fp32")        # absent in version 1: fp32 tables
        if embeddings not in EMBEDDING_CHOICES:
            raise ValueError(f"embeddings {embeddings!r} is not one of {', '.join(EMBEDDING_CHOICES)}")
        entries = manifest["tensors"]
        for name, meta in entries.items():
            stored_dtype(name, meta)
        stored_as = {name: meta.get("embedding", "fp32") for name, meta in entries.items()}
        odd = sorted(name for name, kind in stored_as.items() if kind not in (embeddings, "fp32"))
        if odd:
            raise ValueError(f"{odd[0]} is stored as embedding {stored_as[odd[0]]!r}, the manifest's embeddings "
                             f"are {embeddings!r}")
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError, RecursionError) as err:
        raise UserError(f"{flag} {manifest_path}: not a valid manifest ({' '.join(str(err).split())[:120]}); "
                        "compress the model again with python -m mt_dnn.compress") from None
    task_defs = task_defs if task_defs is not None else load_task_defs(DEFAULT_TASK_DEF)
    specs = read_head_specs(directory, task_defs, flag)
    try:
        tensors = load_file(os.path.join(directory, WEIGHTS_FILE))
    except (OSError, SafetensorError) as err:
        raise UserError(f"{flag} {directory}: {WEIGHTS_FILE} is missing or unreadable "
                        f"({' '.join(str(err).split())[:120]}); compress the model again") from None
    config = read_config(directory, flag)
    encoder = AutoModel.from_config(config).eval()     # every weight is then overwritten from the file
    quantized_names = [name for name, meta in entries.items() if meta.get("quantized")]
    if manifest.get("quantize") == "int8":
        encoder = quantize_encoder(encoder)
    modules = _quantized_modules(encoder)
    expected = {prefix + ".weight" for prefix in modules}
    if set(quantized_names) != expected:
        raise UserError(f"{flag} {directory}: the int8 layers in {MANIFEST_FILE} do not match the encoder of its "
                        "config.json; compress the model again")
    tables = {name for name, kind in stored_as.items() if kind != "fp32"}
    if embeddings != "fp32" and tables != set(embedding_tables(encoder)):     # (fp32: no table is marked)
        raise UserError(f"{flag} {directory}: the {embeddings} embedding tables in {MANIFEST_FILE} do not match the "
                        "encoder of its config.json; compress the model again")
    try:
        state = {}
        for name, meta in entries.items():
            value = _decode(name, meta, tensors)
            if name in tables:          # back to the fp32 table the model computes on
                value = loaded_table(value, tensors[name + SEP + "scales"] if stored_as[name] == "int8" else None)
            state[name] = value
        for prefix, module in modules.items():
            name = prefix + ".weight"
            meta = entries[name]
            _rebuild_quantized(module, state.pop(name), tensors[name + SEP + "scales"],
                               tensors[name + SEP + "zero_points"], meta["quantized"]["axis"],
                               state.pop(prefix + ".bias", None))
    except (ValueError, KeyError, RuntimeError) as err:
        raise UserError(f"{flag} {directory}: {WEIGHTS_FILE} does not match {MANIFEST_FILE} "
                        f"({' '.join(str(err).split())[:160]}); compress the model again") from None
    # copied tensor by tensor: the int8 layers' own loader needs entries (scale, zero_point, a versioned
    # state-dict layout) that are not stored; they are already rebuilt above
    expected = {key for key in encoder.state_dict() if not any(key.startswith(prefix + ".") for prefix in modules)}
    if set(state) != expected:
        odd = sorted(set(state) ^ expected)
        raise UserError(f"{flag} {directory}: weights do not fit the encoder of config.json ({len(odd)} tensors "
                        f"missing or unexpected, e.g. {odd[0]}); compress the model again")
    with torch.no_grad():
        for key, value in state.items():
            module_name, _, attribute = key.rpartition(".")
            target = getattr(encoder.get_submodule(module_name), attribute)
            if target.shape != value.shape or target.dtype != value.dtype:
                raise UserError(f"{flag} {directory}: {key} is {list(value.shape)} {value.dtype} in {WEIGHTS_FILE} "
                                f"but {list(target.shape)} {target.dtype} in the encoder of config.json; compress "
                                "the model again")
            target.copy_(value)
    return with_saved_heads(encoder, directory, specs, task_defs, flag)


# ---------------------------------------------------------------------------
# Command line


def build_parser():
    parser = ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True,
                        help="a model directory written by train.py (model/, best_model/) or mt_dnn.export")
    parser.add_argument("--output_dir", required=True, help="where to write the compressed model")
    parser.add_argument("--quantize", default="none", choices=QUANTIZE_CHOICES,
                        help="int8: dynamic int8 quantization of the encoder's linear layers (default none)")
    parser.add_argument("--storage", default="auto", choices=STORAGE_CHOICES,
                        help="bitmask + non-zero values per tensor: where smaller (auto), never (dense), always "
                             "(sparse)")
    parser.add_argument("--embeddings", default="fp32", choices=EMBEDDING_CHOICES,
                        help="storage of the embedding tables: fp32 (default), fp16 (half the size) or int8 (a "
                             "quarter; one symmetric scale per row); turned back into fp32 at load")
    parser.add_argument("--check_data", default=None,
                        help="canonical JSON file whose first rows check the result (default: built-in sentences)")
    parser.add_argument("--tolerance", type=float, default=0.0,
                        help="largest allowed |reloaded - in-memory| logit (default 0: exact)")
    parser.add_argument("--task_def", default=DEFAULT_TASK_DEF, help="task definition YAML")
    parser.add_argument("--overwrite_output_dir", action="store_true",
                        help="write into a non-empty --output_dir: what it held is kept in "
                             "OUTPUT_DIR/previous-<time>/ (nothing is deleted)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    return parser


def check_inputs(model, tokenizer, check_data=None) -> dict:
    """{'input_ids', 'token_type_ids', 'attention_mask'} of the check batch (modeling.model.check_batch)."""
    _, batch = check_batch(model, tokenizer, check_data)
    return {k: batch[k] for k in ("input_ids", "token_type_ids", "attention_mask")}


@torch.no_grad()
def max_logit_difference(first: MTDNNModel, second: MTDNNModel, inputs: dict) -> float:
    """Largest |first - second| over the logits of every head of `first` on `inputs`."""
    return max(float((first(**inputs, task=task).logits - second(**inputs, task=task).logits).abs().max())
               for task in first.heads)


def compress_model(model_dir: str, output_dir: str, task_defs: dict, *, quantize: str = "none",
                   storage: str = "auto", embeddings: str = "fp32", check_data: str | None = None,
                   tolerance: float = 0.0, existing: str = "replace", flag: str = "--output_dir",
                   model: MTDNNModel | None = None) -> str:
    """Write the compressed copy of the saved model `model_dir` to `output_dir` (checked by reloading it
    before it is renamed into place; `existing` as in data_utils.files.write_directory); returns the
    one-line summary. The caller has checked that `output_dir` may be written; `model` is `model_dir` already
    loaded, if the caller has it."""
    from modeling import pretrained

    model = model if model is not None else load_model(model_dir, task_defs, flag="--model")
    check_embedding_range(model.encoder, embeddings)
    tokenizer = pretrained.load_tokenizer(model_dir)
    inputs = check_inputs(model, tokenizer, check_data)
    served = quantize_int8(model) if quantize == "int8" else model
    expected = with_embeddings(served, embeddings)      # what the reload must give: the tables rounded as stored
    result = {}

    def check(tmp):
        reloaded = load_compressed(tmp, task_defs, flag=flag)
        result["reload"] = max_logit_difference(expected, reloaded, inputs)
        result["source"] = max_logit_difference(model, reloaded, inputs)
        if not result["reload"] <= tolerance:       # a NaN difference is refused too
            raise UserError(f"the reloaded compressed model differs from the in-memory one by {result['reload']:.2e}"
                            f" > --tolerance {tolerance}; nothing was written to {flag} {output_dir}")

    manifest = save_compressed(served, tokenizer, output_dir, storage=storage, source=model_dir, check=check,
                               existing=existing, flag=flag, embeddings=embeddings)
    sparse = sum(1 for meta in manifest["tensors"].values() if meta["encoding"] == "bitmask")
    before = os.path.getsize(os.path.join(model_dir, "model.safetensors")) + \
        os.path.getsize(os.path.join(model_dir, HEADS_WEIGHTS))
    return (f"compressed {model_dir} -> {output_dir}: quantize {quantize}, embeddings {embeddings}, storage {storage} "
            f"({sparse} of {len(manifest['tensors'])} tensors as bitmask + values); weights {before / 1e6:.1f} MB -> "
            f"{manifest['weights_bytes'] / 1e6:.1f} MB ({manifest['weights_bytes'] / before:.1%}); "
            f"max |reloaded - in-memory| = {result['reload']:.2e}; max |compressed - fp32 of --model| = "
            f"{result['source']:.2e} (the error of --quantize and --embeddings; 0 without them)")


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if not args.output_dir.strip():
        raise UserError("--output_dir is empty; give a directory")
    if not args.tolerance >= 0:
        raise UserError(f"--tolerance {args.tolerance} must be >= 0 (e.g. 0 or 1e-6)")
    transformers.utils.logging.disable_progress_bar()
    if os.path.exists(args.model) and not os.path.isdir(args.model):
        raise UserError(f"--model {args.model} is a file, not a directory; give the model directory written by "
                        "train.py (model/, best_model/) or mt_dnn.export")
    if os.path.isdir(args.model) and is_compressed(args.model):
        raise UserError(f"--model {args.model} is already compressed; give the fp32 directory it was made from")
    task_defs = load_task_defs(args.task_def)
    model = load_model(args.model, task_defs, flag="--model")    # --model is found valid before its output is judged
    refuse_writing_inputs([("dir:--output_dir", args.output_dir)],
                          [("--model", args.model), ("--task_def", args.task_def), ("--check_data", args.check_data)])
    existing = claim_output_dir(args.output_dir, args.overwrite_output_dir)
    print(compress_model(args.model, args.output_dir, task_defs, quantize=args.quantize, storage=args.storage,
                         embeddings=args.embeddings, check_data=args.check_data, tolerance=args.tolerance,
                         existing=existing, model=model))
    return 0


if __name__ == "__main__":
    run_cli(main)
