"""Each task of a saved model as a standard transformers sequence-classification model.

`save_model` writes, inside its atomic replacement, one directory per task head:

    DIRECTORY/hf/<task>/config.json                     the encoder's config + num_labels, id2label, label2id,
                                                        problem_type, classifier_dropout, architectures
    DIRECTORY/hf/<task>/model.safetensors.index.json    a standard sharded checkpoint of two shards:
    DIRECTORY/hf/<task>/encoder.safetensors               bert.* (the encoder, under its family's prefix; one file
                                                          hard-linked between the tasks where the file system
                                                          allows, else copied)
    DIRECTORY/hf/<task>/classifier.safetensors            classifier.weight, classifier.bias (the task head, as
                                                          the family's stock head names it)
    DIRECTORY/hf/<task>/tokenizer files

so that `pipeline("text-classification", model="DIRECTORY/hf/rte")` or
`AutoModelForSequenceClassification.from_pretrained(...)` gives the toolkit's logits, with the task
definition's label names (regression tasks: one output "score", problem_type "regression", so the
pipeline returns the raw value).

Why this is exact: MTDNNModel classifies `TaskHead(pooler_output)` = Linear(Dropout(pooler_output)), and
BertForSequenceClassification computes `classifier(dropout(bert(...)[1]))`, [1] being the same pooler
output (tanh(dense([CLS]))): the toolkit's `heads.<task>.proj` is the `classifier`, the pooler is the
encoder's own. Every family (modeling.families) says how its stock head is filled: RoBERTa's
classifier.dense is the encoder's pooler.dense and classifier.out_proj the task's linear layer; ELECTRA,
DistilBERT and DeBERTa classify the [CLS] state with the stock head's own dense layer and activation,
which the toolkit's task head then has too (modeling/heads.py), written to classifier.dense,
pre_classifier and pooler.dense. A structurally pruned encoder (model_type "pruned-bert", "pruned-roberta",
...) gets its Pruned*ForSequenceClassification, the same computation, with its modeling code copied into
the directory (`trust_remote_code=True`). A BERT or RoBERTa encoder without a pooling layer (MTDNNModel
then classifies the [CLS] hidden state) has no exact stock equivalent (the stock head always applies
dense+tanh): for those no hf/ directory is written, with a warning.
"""
import copy
import json
import os
import shutil
import warnings

from safetensors.torch import save_file

from modeling.families import family_of, is_pruned_export

HF_DIR = "hf"
ENCODER_SHARD = "encoder.safetensors"
CLASSIFIER_SHARD = "classifier.safetensors"
INDEX_FILE = "model.safetensors.index.json"
REGRESSION_LABEL = "score"


def label_names(task_def, n_class: int) -> list:
    """The names of a head's outputs: the task definition's labels, "score" for regression,
    LABEL_i when the task is unknown."""
    if task_def is not None and task_def.is_regression and n_class == 1:
        return [REGRESSION_LABEL]
    if task_def is not None and task_def.labels is not None and len(task_def.labels) == n_class:
        return list(task_def.labels)
    return [f"LABEL_{i}" for i in range(n_class)]


def classification_class(encoder) -> str | None:
    """The sequence-classification architecture computing MTDNNModel's function on this encoder, or None."""
    family = family_of(encoder.config, f"the {type(encoder).__name__} encoder")
    pruned = is_pruned_export(encoder.config)
    if pruned and family.head_dense_key is None:
        return family.pruned.classification_class     # PrunedBert's: its pooler, or the [CLS] state without one
    if family.uses_pooler and getattr(encoder, "pooler", None) is None:
        return None          # the stock head would put dense+tanh where the toolkit uses the raw [CLS] state
    return family.pruned.classification_class if pruned else family.classification_class


def _pooler_in_head(family) -> bool:
    """Whether the stock head's dense layer is the encoder's pooler (RoBERTa): the stock model has no pooler."""
    return family.uses_pooler and family.head_dense_key is not None


def stock_encoder_state(encoder) -> dict:
    """The encoder's tensors as the family's stock sequence-classification model names them ("bert.", ...)."""
    family = family_of(encoder.config)
    return {f"{family.key_prefix}.{k}": v.detach().contiguous().cpu() for k, v in encoder.state_dict().items()
            if not (_pooler_in_head(family) and k.startswith("pooler."))}


def stock_head_state(encoder, head) -> dict:
    """The task head's tensors as the family's stock head names them (modeling.families.base: how each family's
    head maps; RoBERTa's classifier.dense is the encoder's pooler.dense)."""
    family = family_of(encoder.config)
    dense = encoder.pooler.dense if _pooler_in_head(family) else head.dense
    layers = ([(family.head_dense_key, dense)] if dense is not None else []) + [(family.head_proj_key, head.proj)]
    return {f"{key}.{kind}": getattr(layer, kind).detach().contiguous().cpu()
            for key, layer in layers for kind in ("weight", "bias")}


def write_task_models(encoder, heads, task_defs: dict, tokenizer, directory: str) -> list:
    """Write `directory/hf/<task>/` for every head (see the module docstring); returns the task names
    written. `heads` maps task names to TaskHead modules, `task_defs` task names to TaskDefs."""
    architecture = classification_class(encoder)
    if architecture is None:
        warnings.warn(f"no standard sequence-classification model is written for a "
                      f"{type(encoder).__name__} ({getattr(encoder.config, 'model_type', '?')}, pooler "
                      f"{'present' if getattr(encoder, 'pooler', None) is not None else 'absent'}): only BERT "
                      "encoders with a pooling layer map exactly onto BertForSequenceClassification")
        return []
    family = family_of(encoder.config)
    root = os.path.join(directory, HF_DIR)
    os.makedirs(root, exist_ok=True)
    encoder_state = stock_encoder_state(encoder)
    encoder_bytes = sum(v.numel() * v.element_size() for v in encoder_state.values())
    shared_shard = None
    written = []
    for name, head in heads.items():
        task_dir = os.path.join(root, name)
        os.makedirs(task_dir)
        labels = label_names(task_defs.get(name), head.proj.out_features)
        config = copy.deepcopy(encoder.config)
        config.architectures = [architecture]
        config.id2label = dict(enumerate(labels))
        config.label2id = {label: i for i, label in enumerate(labels)}
        config.num_labels = len(labels)
        task = task_defs.get(name)
        config.problem_type = ("regression" if task is not None and task.is_regression
                               else "single_label_classification")
        for key in family.classifier_dropout_keys:
            setattr(config, key, head.dropout.p)
        config.save_pretrained(task_dir)
        if architecture.startswith("Pruned"):
            from modeling.structured import add_remote_code
            add_remote_code(task_dir)
        shard = os.path.join(task_dir, ENCODER_SHARD)
        if shared_shard is None:
            save_file(encoder_state, shard, metadata={"format": "pt"})
            shared_shard = shard
        else:
            try:
                os.link(shared_shard, shard)       # the same bytes: one copy on disk for all tasks
            except OSError:
                shutil.copyfile(shared_shard, shard)
        classifier = stock_head_state(encoder, head)
        save_file(classifier, os.path.join(task_dir, CLASSIFIER_SHARD), metadata={"format": "pt"})
        weight_map = {key: ENCODER_SHARD for key in encoder_state}
        weight_map.update({key: CLASSIFIER_SHARD for key in classifier})
        total = encoder_bytes + sum(v.numel() * v.element_size() for v in classifier.values())
        with open(os.path.join(task_dir, INDEX_FILE), "w", encoding="utf-8") as handle:
            json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, handle, indent=2)
        if tokenizer is not None:
            tokenizer.save_pretrained(task_dir)
        written.append(name)
    return written
