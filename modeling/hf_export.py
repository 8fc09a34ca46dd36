"""Each task of a saved model as a standard transformers sequence-classification model.

`save_model` writes, inside its atomic replacement, one directory per task head:

    DIRECTORY/hf/<task>/config.json                     the encoder's config + num_labels, id2label, label2id,
                                                        problem_type, classifier_dropout, architectures
    DIRECTORY/hf/<task>/model.safetensors.index.json    a standard sharded checkpoint of two shards:
    DIRECTORY/hf/<task>/encoder.safetensors               bert.* (the encoder; one file hard-linked between the
                                                          tasks where the file system allows, else copied)
    DIRECTORY/hf/<task>/classifier.safetensors            classifier.weight, classifier.bias (the task head)
    DIRECTORY/hf/<task>/tokenizer files

so that `pipeline("text-classification", model="DIRECTORY/hf/rte")` or
`AutoModelForSequenceClassification.from_pretrained(...)` gives the toolkit's logits, with the task
definition's label names (regression tasks: one output "score", problem_type "regression", so the
pipeline returns the raw value).

Why this is exact: MTDNNModel classifies `TaskHead(pooler_output)` = Linear(Dropout(pooler_output)), and
BertForSequenceClassification computes `classifier(dropout(bert(...)[1]))`, [1] being the same pooler
output (tanh(dense([CLS]))): the toolkit's `heads.<task>.proj` is the `classifier`, the pooler is the
encoder's own. A structurally pruned encoder (model_type "pruned-bert") gets
PrunedBertForSequenceClassification, the same computation, with its modeling code copied into the
directory (`trust_remote_code=True`). An encoder without a pooling layer (MTDNNModel then classifies the
[CLS] hidden state) has no exact stock BERT equivalent (the stock pooler always applies dense+tanh) and
other model types are not mapped: for those no hf/ directory is written, with a warning.
"""
import copy
import json
import os
import shutil
import warnings

from safetensors.torch import save_file

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
    model_type = getattr(encoder.config, "model_type", None)
    if getattr(encoder, "pooler", None) is None and model_type == "bert":
        return None          # stock BERT would put dense+tanh where the toolkit uses the raw [CLS] state
    return {"bert": "BertForSequenceClassification",
            "pruned-bert": "PrunedBertForSequenceClassification"}.get(model_type)


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
    root = os.path.join(directory, HF_DIR)
    os.makedirs(root, exist_ok=True)
    encoder_state = {f"bert.{k}": v.detach().contiguous().cpu() for k, v in encoder.state_dict().items()}
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
        config.classifier_dropout = head.dropout.p
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
        classifier = {"classifier.weight": head.proj.weight.detach().contiguous().cpu(),
                      "classifier.bias": head.proj.bias.detach().contiguous().cpu()}
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
