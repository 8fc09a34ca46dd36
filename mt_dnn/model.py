"""MTDNNModel: one shared Hugging Face encoder plus one head per task.

Saved models are Hugging Face directories: the encoder's config.json and
model.safetensors (loadable with `AutoModel.from_pretrained`), the tokenizer,
and the task heads in `heads.safetensors` described by `heads.json`.
"""
import json
import os
import shutil
from typing import NamedTuple

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from data_utils.errors import UserError
from module.heads import TaskHead
from mt_dnn import pretrained

HEADS_WEIGHTS = "heads.safetensors"
HEADS_CONFIG = "heads.json"
EXPORT_REPORT = "structured_export.json"


class MTDNNOutput(NamedTuple):
    logits: torch.Tensor               # (batch, n_class)
    hidden_states: tuple | None        # embedding output then one per layer, when asked for


class MTDNNModel(nn.Module):
    def __init__(self, encoder: nn.Module, task_defs: dict, default_dropout: float = 0.1):
        super().__init__()
        self.encoder = encoder
        hidden = encoder.config.hidden_size
        self.heads = nn.ModuleDict({
            name: TaskHead(hidden, task.n_class,
                           task.dropout_p if task.dropout_p is not None else default_dropout)
            for name, task in task_defs.items()
        })

    def forward(self, input_ids, token_type_ids, attention_mask, task: str,
                output_hidden_states: bool = False) -> MTDNNOutput:
        out = self.encoder(input_ids=input_ids, token_type_ids=token_type_ids, attention_mask=attention_mask,
                           output_hidden_states=output_hidden_states)
        pooled = out.pooler_output if getattr(out, "pooler_output", None) is not None \
            else out.last_hidden_state[:, 0]
        return MTDNNOutput(self.heads[task](pooled), out.hidden_states if output_hidden_states else None)


def _register_structured():
    """Make structurally pruned checkpoints loadable through the Auto classes, if that module exists."""
    try:
        from mt_dnn import structured
    except ImportError:
        return
    structured.register()


def load_encoder(init_checkpoint: str, dropout_p: float | None = None, flag: str = "--init_checkpoint") -> nn.Module:
    """The encoder from a bundled name, HF directory, hub id, or MT-DNN `.pt` file (weights only)."""
    from transformers import AutoConfig, AutoModel, BertConfig, BertModel

    overrides = {} if dropout_p is None else {"hidden_dropout_prob": dropout_p,
                                              "attention_probs_dropout_prob": dropout_p}
    if pretrained.is_mtdnn_checkpoint(init_checkpoint):
        return _load_mtdnn_pt(init_checkpoint, overrides, BertConfig, BertModel, flag)
    source = pretrained.resolve(init_checkpoint)
    # safetensors only: a pytorch_model.bin is a pickle, and pickles from users are never opened
    if os.path.isdir(source) and not any(name.endswith(".safetensors") for name in os.listdir(source)):
        found = [name for name in ("pytorch_model.bin", "tf_model.h5", "flax_model.msgpack")
                 if os.path.exists(os.path.join(source, name))]
        raise UserError(f"{flag} {init_checkpoint}: no model.safetensors in this directory"
                        f"{' (its ' + ', '.join(found) + ' is never loaded: pickles can run code)' if found else ''}; "
                        "save the weights with save_pretrained(..., safe_serialization=True) or point the flag at "
                        "a directory written by train.py")
    _register_structured()
    try:
        config = AutoConfig.from_pretrained(source, **overrides)
        return AutoModel.from_pretrained(source, config=config, use_safetensors=True)
    except (OSError, ValueError, SafetensorError) as err:
        raise UserError(f"{flag} {init_checkpoint}: cannot load a model with safetensors weights "
                        f"({' '.join(str(err).split())[:200]}); give the bundled "
                        f"'{pretrained.BUNDLED_MODEL}', a local Hugging Face directory or an MT-DNN .pt file") from None


def _load_mtdnn_pt(path: str, overrides: dict, config_cls, model_cls, flag: str) -> nn.Module:
    if not os.path.isfile(path):
        raise UserError(f"{flag} {path}: file not found; check the path (MT-DNN checkpoints end in .pt)")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling refusal or corruption is the user's file
        raise UserError(f"{flag} {path}: refused or unreadable as a weights-only checkpoint "
                        f"({type(err).__name__}); only tensors and plain values are loaded, never code") from None
    if not isinstance(checkpoint, dict) or "state" not in checkpoint or "config" not in checkpoint:
        raise UserError(f"{flag} {path}: not an MT-DNN checkpoint (expected keys 'state' and 'config')")
    known = set(config_cls().to_dict())
    config = config_cls(**{k: v for k, v in checkpoint["config"].items() if k in known}, **overrides)
    state = {k[len("bert."):]: v for k, v in checkpoint["state"].items() if k.startswith("bert.")}
    encoder = model_cls(config)
    missing, unexpected = encoder.load_state_dict(state, strict=False)
    if unexpected or len(missing) > 2:     # the pooler may be absent from some MT-DNN files
        raise UserError(f"{flag} {path}: weights do not fit a BERT encoder "
                        f"({len(missing)} missing, {len(unexpected)} unexpected, e.g. "
                        f"{(missing or unexpected)[0]})")
    return encoder


def load_heads(model: MTDNNModel, directory: str) -> list:
    """Copy the saved heads of the tasks this model has; returns the loaded task names."""
    weights, spec = os.path.join(directory, HEADS_WEIGHTS), os.path.join(directory, HEADS_CONFIG)
    if not (os.path.isfile(weights) and os.path.isfile(spec)):
        return []
    try:
        state = load_file(weights)
    except (OSError, SafetensorError) as err:
        raise UserError(f"{weights}: corrupt or unreadable task heads ({' '.join(str(err).split())[:120]}); "
                        f"delete it to start with fresh heads, or save the model again with train.py") from None
    loaded = []
    for name, head in model.heads.items():
        own = {k[len(name) + 1:]: v for k, v in state.items() if k.startswith(name + ".")}
        if own and all(own[k].shape == v.shape for k, v in head.state_dict().items() if k in own):
            head.load_state_dict(own)
            loaded.append(name)
    return loaded


def save_model(model: MTDNNModel, tokenizer, directory: str, write_extra=None) -> None:
    """Write the model as a Hugging Face directory, replacing `directory` atomically.

    `write_extra(tmp_directory)` adds files (a training method's indicators or reports) inside the
    same atomic replacement."""
    tmp = directory.rstrip("/") + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    encoder = model.module.encoder if hasattr(model, "module") else model.encoder
    heads = model.module.heads if hasattr(model, "module") else model.heads
    try:
        encoder.save_pretrained(tmp, safe_serialization=True)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        state = {f"{name}.{k}": v.detach().contiguous().cpu() for name, head in heads.items()
                 for k, v in head.state_dict().items()}
        save_file(state, os.path.join(tmp, HEADS_WEIGHTS))
        if write_extra is not None:
            write_extra(tmp)
        with open(os.path.join(tmp, HEADS_CONFIG), "w", encoding="utf-8") as handle:
            json.dump({name: {"n_class": head.proj.out_features, "dropout_p": head.dropout.p}
                       for name, head in heads.items()}, handle, indent=2)
    except (OSError, SafetensorError) as err:     # safetensors reports a full disk as SafetensorError
        shutil.rmtree(tmp, ignore_errors=True)
        raise UserError(f"could not write the model to {directory} ({getattr(err, 'strerror', None) or err}); "
                        f"{'its previous content is intact' if os.path.isdir(directory) else 'nothing was written'}"
                        "; free space or choose another --output_dir") from None
    old = directory.rstrip("/") + ".old"
    if os.path.exists(directory):
        os.replace(directory, old)
    os.replace(tmp, directory)
    shutil.rmtree(old, ignore_errors=True)


@torch.no_grad()
def export_structured(model: MTDNNModel, head_indicator, ffn_indicator, tokenizer, directory: str,
                      check_batch=None) -> dict:
    """Save the structurally pruned model (heads/neurons with indicator 0 removed) with its task heads.

    `check_batch` = (task, collated batch): the exported model's logits are compared with the
    masked model's on it. Returns and saves (structured_export.json) parameter counts and that difference.
    """
    from mt_dnn import structured

    exported = structured.export_pruned_encoder(model.encoder, head_indicator, ffn_indicator)
    pruned = MTDNNModel(exported, {})
    pruned.heads = model.heads
    report = {"parameters_before": structured.count_parameters(model.encoder),
              "parameters_after": structured.count_parameters(exported),
              "layer_heads": exported.config.layer_heads,
              "layer_intermediate_sizes": exported.config.layer_intermediate_sizes,
              "max_abs_difference": None}
    if check_batch is not None:
        task, batch = check_batch
        device = next(model.parameters()).device
        inputs = [batch[k].to(device) for k in ("input_ids", "token_type_ids", "attention_mask")]
        was_training = model.training
        model.eval()
        masked = model(*inputs, task=task).logits
        smaller = pruned.eval()(*inputs, task=task).logits
        model.train(was_training)          # the heads are shared with `pruned`: restore their mode
        report["max_abs_difference"] = float((masked - smaller).abs().max())
    save_model(pruned, tokenizer, directory)
    from mt_dnn.inference import write_json_atomic
    write_json_atomic(os.path.join(directory, EXPORT_REPORT), report)
    return report
