"""MTDNNModel: one shared Hugging Face encoder plus one head per task.

Saved models are Hugging Face directories: the encoder's config.json and
model.safetensors (loadable with `AutoModel.from_pretrained`), the tokenizer,
the task heads in `heads.safetensors` described by `heads.json`, and every task
as a standard sequence-classification model in `hf/<task>/` (modeling/hf_export.py).
`load_model` reads such a directory back for evaluation and prediction.
"""
import contextlib
import json
import os
from typing import NamedTuple

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from data_utils.errors import UserError
from data_utils.files import write_directory
from data_utils.jsonio import read_json
from modeling.families import family_of, is_pruned_export
from modeling.heads import TaskHead
from modeling import pretrained
from modeling.hf_export import label_names, write_task_models

HEADS_WEIGHTS = "heads.safetensors"
HEADS_CONFIG = "heads.json"
EXPORT_REPORT = "structured_export.json"


class MTDNNOutput(NamedTuple):
    logits: torch.Tensor               # (batch, n_class)
    hidden_states: tuple | None        # embedding output then one per layer, when asked for
    task: str | None = None            # the task whose head gave the logits (a method's loss asks its teacher for it)


class MTDNNModel(nn.Module):
    """The encoder of a supported family (modeling.families) with one TaskHead per task; the forward pass takes
    the toolkit's input triple and hands the encoder the inputs its family takes."""

    def __init__(self, encoder: nn.Module, task_defs: dict, default_dropout: float = 0.1):
        super().__init__()
        self.encoder = encoder
        self.family = family_of(encoder.config, f"the {type(encoder).__name__} encoder")
        self.task_defs = dict(task_defs)     # label names for the saved standard models
        hidden = encoder.config.hidden_size
        activation = self.family.task_head_activation(encoder.config)
        self.heads = nn.ModuleDict({
            name: TaskHead(hidden, task.n_class,
                           task.dropout_p if task.dropout_p is not None else default_dropout, activation)
            for name, task in task_defs.items()
        })

    def forward(self, input_ids, token_type_ids, attention_mask, task: str,
                output_hidden_states: bool = False) -> MTDNNOutput:
        out = self.encoder(**self.family.encoder_inputs(input_ids, token_type_ids, attention_mask),
                           output_hidden_states=output_hidden_states)
        pooled = out.pooler_output if getattr(out, "pooler_output", None) is not None \
            else out.last_hidden_state[:, 0]
        return MTDNNOutput(self.heads[task](pooled), out.hidden_states if output_hidden_states else None, task)


def _register_structured():
    """Make structurally pruned checkpoints loadable through the Auto classes, if that module exists."""
    try:
        from modeling import structured
    except ImportError:
        return
    structured.register()


def read_config(directory: str, flag: str = "--model"):
    """The encoder config of a saved or exported model directory (pruned-bert included), or a one-line
    UserError naming the directory."""
    from transformers import AutoConfig

    _register_structured()
    try:
        return AutoConfig.from_pretrained(directory)
    except (OSError, ValueError) as err:
        raise UserError(f"{flag} {directory}: config.json cannot be read ({' '.join(str(err).split())[:120]})") \
            from None


def load_encoder(init_checkpoint: str, dropout_p: float | None = None, flag: str = "--init_checkpoint") -> nn.Module:
    """The encoder from a bundled name, HF directory, hub id, or MT-DNN `.pt` file (weights only)."""
    from transformers import AutoConfig, AutoModel

    if pretrained.is_mtdnn_checkpoint(init_checkpoint):
        return _load_mtdnn_pt(init_checkpoint, dropout_p, flag)
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

    def refused(err: Exception) -> UserError:    # a config.json or weights file that cannot make a model is the user's
        detail = " ".join(str(err).split())[:200]
        if not isinstance(err, (OSError, ValueError, SafetensorError)) or not detail:
            detail = f"{type(err).__name__}: {detail}"
        return UserError(f"{flag} {init_checkpoint}: cannot load a model with safetensors weights "
                         f"({detail}); give the bundled "
                         f"'{pretrained.BUNDLED_MODEL}', a local Hugging Face directory or an MT-DNN .pt file")

    try:
        with _transformers_quiet():      # its load report would be many lines; refuse_unfit_weights says it in one
            config = AutoConfig.from_pretrained(source)
    except Exception as err:  # noqa: BLE001 - see refused()
        raise refused(err) from None
    family = family_of(config, f"{flag} {init_checkpoint}")      # an unsupported family stops here, in one line
    for key in family.dropout_keys if dropout_p is not None else ():
        setattr(config, key, dropout_p)
    try:
        with _transformers_quiet():
            encoder, info = AutoModel.from_pretrained(source, config=config, use_safetensors=True,
                                                      ignore_mismatched_sizes=True, output_loading_info=True)
    except Exception as err:  # noqa: BLE001 - see refused()
        raise refused(err) from None
    refuse_unfit_weights(info["mismatched_keys"], info["missing_keys"], info["unexpected_keys"], config,
                         f"{flag} {init_checkpoint}")
    return encoder


@contextlib.contextmanager
def _transformers_quiet():
    """transformers' warnings off for a while (stderr is for one-line errors)."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


# Weights an encoder may lack without being another model: some checkpoints are saved without the pooler.
OPTIONAL_WEIGHTS = ("pooler.",)
# Weights of the encoder itself (its other weights, e.g. a pretraining head's cls.*, are not its business):
# BERT's, RoBERTa's and DeBERTa's embeddings/encoder/pooler, ELECTRA's embeddings_project, DistilBERT's transformer.
ENCODER_WEIGHTS = ("embeddings.", "encoder.", "pooler.", "embeddings_project.", "transformer.")


def refuse_unfit_weights(mismatched, missing, unexpected, config, source: str, config_name: str = "config.json"):
    """Refuse weights that do not fit the model their config describes (another hidden_size, layer count,
    vocabulary, ...): a weight of another shape, a weight the model needs and the file lacks, or an encoder
    weight the model has no place for. `mismatched` holds (key, shape in the file, shape in the model)."""
    shapes = ", ".join(f"{key} {getattr(config, key)}" for key in (
        "hidden_size", "num_hidden_layers", "intermediate_size", "vocab_size", "max_position_embeddings")
        if isinstance(getattr(config, key, None), int))
    missing = sorted(key for key in missing if not key.startswith(OPTIONAL_WEIGHTS))
    unexpected = sorted(key for key in unexpected if key.startswith(ENCODER_WEIGHTS))
    if mismatched:
        key, saved, wanted = sorted(mismatched, key=lambda item: item[0])[0]
        detail = f"{key} is {tuple(saved)} in the weights but {tuple(wanted)} by {config_name}"
    elif missing:
        detail = f"the weights lack {missing[0]}{f' and {len(missing) - 1} more' if len(missing) > 1 else ''}"
    elif unexpected:
        detail = (f"the weights hold {unexpected[0]}{f' and {len(unexpected) - 1} more' if len(unexpected) > 1 else ''}"
                  f", which the model {config_name} describes has no place for")
    else:
        return
    raise UserError(f"{source}: {config_name} does not fit the weights: {detail} ({config_name} says {shapes}); "
                    f"restore {config_name} saved with these weights, or give a model saved whole")


# MT-DNN's EncoderModelType numbers (its data_utils/task_def.py) of the families the toolkit has; a checkpoint
# whose 'config' names neither a model_type nor an encoder_type is BERT's, like MT-DNN's released .pt files
MTDNN_ENCODER_TYPES = {1: "bert", 2: "roberta", 7: "electra"}


def _mtdnn_model_type(config: dict) -> str:
    """The transformers model_type of an MT-DNN checkpoint's 'config' (its own key, else MT-DNN's encoder_type)."""
    if isinstance(config.get("model_type"), str) and config["model_type"]:
        return config["model_type"]
    encoder_type = config.get("encoder_type", 1)
    if isinstance(encoder_type, int) and not isinstance(encoder_type, bool):
        return MTDNN_ENCODER_TYPES.get(encoder_type, f"MT-DNN encoder_type {encoder_type}")
    return "bert"


def _load_mtdnn_pt(path: str, dropout_p: float | None, flag: str) -> nn.Module:
    """The encoder of an MT-DNN `.pt` checkpoint ({'state': ..., 'config': ...}, read weights-only): MT-DNN keeps
    the encoder under 'bert.' whatever its family, and the 'config' entry holds the encoder's config keys (plus
    MT-DNN's own options, ignored); the family comes from that config (modeling.families)."""
    from transformers import AutoConfig, AutoModel

    if not os.path.isfile(path):
        raise UserError(f"{flag} {path}: file not found; check the path (MT-DNN checkpoints end in .pt)")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling refusal or corruption is the user's file
        raise UserError(f"{flag} {path}: refused or unreadable as a weights-only checkpoint "
                        f"({type(err).__name__}); only tensors and plain values are loaded, never code") from None
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("state"), dict) or \
            not isinstance(checkpoint.get("config"), dict):
        raise UserError(f"{flag} {path}: not an MT-DNN checkpoint (expected keys 'state' and 'config', each a "
                        "mapping)")
    model_type = _mtdnn_model_type(checkpoint["config"])
    family = family_of(model_type, f"{flag} {path}")         # an unsupported family stops here, in one line
    config_cls = type(AutoConfig.for_model(family.model_type))
    saved = checkpoint["config"]
    # a config that names its model_type is a transformers config dict: all of it (DeBERTa keeps some settings only
    # as extra keys); otherwise MT-DNN's options are mixed in, and only the keys the config class knows are taken
    known = set(saved) if saved.get("model_type") == family.model_type else set(config_cls().to_dict())
    known -= {"model_type", "architectures", "transformers_version", "encoder_type"}
    overrides = {} if dropout_p is None else {key: dropout_p for key in family.dropout_keys}
    state = {k[len("bert."):]: v for k, v in checkpoint["state"].items()
             if isinstance(k, str) and k.startswith("bert.") and isinstance(v, torch.Tensor)}
    try:
        config = config_cls(**{**{k: v for k, v in saved.items() if k in known}, **overrides})
        with _transformers_quiet():
            encoder = AutoModel.from_config(config)
    except Exception as err:  # noqa: BLE001 - a config that cannot make the encoder is the user's file
        raise UserError(f"{flag} {path}: its 'config' cannot make a {family.model_type} encoder "
                        f"({type(err).__name__}: {' '.join(str(err).split())[:160]}); give an MT-DNN checkpoint "
                        "saved whole") from None
    own, source = encoder.state_dict(), f"{flag} {path}"
    mismatched = [(key, value.shape, own[key].shape) for key, value in state.items()
                  if key in own and value.shape != own[key].shape]
    refuse_unfit_weights(mismatched, [], [], config, source, config_name="the 'config' entry")  # load_state_dict raises
    missing, unexpected = encoder.load_state_dict(state, strict=False)
    refuse_unfit_weights([], missing, unexpected, config, source, config_name="the 'config' entry")
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


def save_model(model: MTDNNModel, tokenizer, directory: str, write_extra=None, existing: str = "replace",
               flag: str = "--output_dir") -> None:
    """Write the model as a Hugging Face directory, replacing `directory` atomically
    (data_utils.files.write_directory: `existing` says what happens to what was there).

    `write_extra(tmp_directory)` adds files (a training method's indicators or reports) inside the
    same atomic replacement."""
    inner = model.module if hasattr(model, "module") else model
    encoder, heads, task_defs = inner.encoder, inner.heads, getattr(inner, "task_defs", {})

    def fill(tmp):
        encoder.save_pretrained(tmp, safe_serialization=True)
        if is_pruned_export(encoder.config):
            from modeling.structured import add_remote_code
            add_remote_code(tmp)          # loadable with trust_remote_code=True without the toolkit
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        state = {f"{name}.{k}": v.detach().contiguous().cpu() for name, head in heads.items()
                 for k, v in head.state_dict().items()}
        save_file(state, os.path.join(tmp, HEADS_WEIGHTS))
        write_task_models(encoder, heads, task_defs, tokenizer, tmp)
        if write_extra is not None:
            write_extra(tmp)
        specs = {}
        for name, head in heads.items():
            specs[name] = {"n_class": head.proj.out_features, "dropout_p": head.dropout.p}
            if name in task_defs:
                specs[name].update(task_type=task_defs[name].task_type,
                                   labels=label_names(task_defs[name], head.proj.out_features))
        with open(os.path.join(tmp, HEADS_CONFIG), "w", encoding="utf-8") as handle:
            json.dump(specs, handle, indent=2)

    write_directory(directory, fill, existing=existing, what="the model", flag=flag)


# Sentence pairs a saved or exported model is checked on when no --check_data rows are given.
CHECK_SENTENCES = [("The committee approved the new budget.", "The budget was approved."),
                   ("A man is playing a guitar on stage.", "Nobody is playing music."),
                   ("Prices rose sharply last year.", None)]


def check_batch(model: MTDNNModel, tokenizer, check_data: str | None = None) -> tuple:
    """(task, collated batch) on which a written copy of `model` (an export, a compressed or ONNX copy) is
    compared with it: the first 32 rows of `check_data` (a canonical JSON file of the model's first task),
    else CHECK_SENTENCES through `tokenizer`."""
    from data_utils.batcher import check_fits_model, collate, load_canonical

    name = next(iter(model.heads))
    task = model.task_defs[name]
    if check_data:
        if not os.path.isfile(check_data):
            raise UserError(f"--check_data {check_data}: file not found; give a canonical JSON file "
                            "(prepro's output) or leave the flag out")
        rows = load_canonical(check_data, os.path.basename(check_data), task)
        # both models see the same rows, so any tokenizer's will do, but they must fit the embedding tables
        config = model.encoder.config
        check_fits_model([rows], config, getattr(config, "_name_or_path", "") or "?",
                         max_positions=family_of(config).max_positions(config),
                         flag="the model", data_flag="--check_data")
        return name, collate(rows.examples[:32], task)
    examples = []
    for uid, (a, b) in enumerate(CHECK_SENTENCES):
        encoded = tokenizer(a, b, return_token_type_ids=True)     # zeros for families without token types
        examples.append({"uid": str(uid), "label": 0.0 if task.is_regression else 0,
                         "token_id": encoded["input_ids"], "type_id": encoded["token_type_ids"]})
    return name, collate(examples, task)


@torch.no_grad()
def export_structured(model: MTDNNModel, head_indicator, ffn_indicator, tokenizer, directory: str,
                      check_batch=None, existing: str = "replace") -> dict:
    """Save the structurally pruned model (heads/neurons with indicator 0 removed) with its task heads.

    `check_batch` = (task, collated batch): the exported model's logits are compared with the
    masked model's on it. Returns and saves (structured_export.json) parameter counts (totals,
    and the encoder layers' alone, what pruning removes, beside the embeddings and pooler) and that difference.
    """
    from modeling import structured

    exported = structured.export_pruned_encoder(model.encoder, head_indicator, ffn_indicator)
    pruned = MTDNNModel(exported, {})
    pruned.heads = model.heads
    pruned.task_defs = dict(getattr(model, "task_defs", {}))
    before, after = structured.parameter_counts(model.encoder), structured.parameter_counts(exported)
    report = {"parameters_before": before["total"],
              "parameters_after": after["total"],
              "encoder_layer_parameters_before": before["encoder_layers"],   # what pruning removes
              "encoder_layer_parameters_after": after["encoder_layers"],
              "embedding_parameters": after["embeddings"],                   # never pruned
              "pooler_parameters": after["pooler"],
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

    def write_report(tmp):
        with open(os.path.join(tmp, EXPORT_REPORT), "w", encoding="utf-8") as handle:
            json.dump(report, handle)

    save_model(pruned, tokenizer, directory, write_extra=write_report, existing=existing)
    return report


def load_model(directory: str, task_defs: dict, flag: str = "--model") -> MTDNNModel:
    """A model saved by `save_model` (train.py's `model/` or `best_model/`, or an export) with every saved
    head, in eval mode. `task_defs` are the task definitions; each saved head must match one."""
    if not os.path.isdir(directory):
        raise UserError(f"{flag} {directory}: directory not found; give a model/ or best_model/ directory "
                        "written by train.py")
    specs = read_head_specs(directory, task_defs, flag)
    if is_pruned_export(_model_type_of_directory(directory)):
        _register_structured()
    return with_saved_heads(load_encoder(directory, flag=flag), directory, specs, task_defs, flag)


def read_head_specs(directory: str, task_defs: dict, flag: str = "--model") -> dict:
    """The toolkit's one reader of a saved model's heads.json: {task: {"n_class": ..., ...}}, checked (a
    whole n_class >= 1 per head, every task in `task_defs` with that n_class, heads.safetensors beside it);
    a one-line UserError naming the directory or file otherwise."""
    spec_path = os.path.join(directory, HEADS_CONFIG)
    if not os.path.isfile(spec_path) or not os.path.isfile(os.path.join(directory, HEADS_WEIGHTS)):
        raise UserError(f"{flag} {directory}: no {HEADS_CONFIG} and {HEADS_WEIGHTS}, so no task heads; give a "
                        "model/ or best_model/ directory written by train.py")
    try:
        specs = read_json(spec_path, "valid JSON", "re-save the model with train.py")
    except UserError as err:                    # the message starts with the file's path
        raise UserError(f"{flag} {err}") from None
    if not isinstance(specs, dict) or not all(
            isinstance(s, dict) and type(s.get("n_class")) is int and s["n_class"] >= 1 for s in specs.values()):
        raise UserError(f"{flag} {spec_path}: not a valid heads file (expected {{task: {{\"n_class\": a whole "
                        "number >= 1, ...}}); save the model again with train.py")
    unknown = [name for name in specs if name not in task_defs]
    if unknown:
        raise UserError(f"{flag} {directory}: heads for tasks {unknown} are not in the task definition; pass the "
                        "--task_def the model was trained with")
    for name, spec in specs.items():
        if int(spec["n_class"]) != task_defs[name].n_class:
            raise UserError(f"{flag} {directory}: the {name} head has {spec['n_class']} outputs but the task "
                            f"definition says n_class {task_defs[name].n_class}; pass the --task_def the model "
                            "was trained with")
    return specs


def with_saved_heads(encoder, directory: str, specs: dict, task_defs: dict, flag: str = "--model") -> MTDNNModel:
    """An MTDNNModel of `encoder` with the heads `specs` names, loaded from `directory`, in eval mode."""
    model = MTDNNModel(encoder, {name: task_defs[name] for name in specs})
    loaded = load_heads(model, directory)
    missing = [name for name in specs if name not in loaded]
    if missing:
        raise UserError(f"{flag} {directory}: {HEADS_WEIGHTS} lacks weights of the right shape for {missing}; "
                        "save the model again with train.py")
    return model.eval()


def _model_type_of_directory(directory: str) -> str | None:
    try:
        with open(os.path.join(directory, "config.json"), encoding="utf-8") as handle:
            return json.load(handle).get("model_type")
    except (OSError, ValueError, AttributeError, RecursionError):
        return None          # load_encoder reports an unreadable config.json
