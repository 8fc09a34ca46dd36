"""Evaluation: predictions, scores and metrics of one dataset, plus the files they are written to."""
import csv
import os

import torch

from data_utils.batcher import TaskDataset, collate
from data_utils.files import write_json_atomic, write_output_file  # noqa: F401 - write_json_atomic re-exported
from data_utils.metrics import calc_metrics


def predict(model, dataset: TaskDataset, batch_size: int, device, dist_info=None) -> dict:
    """Run the model over a dataset; metrics only when it has labels. Results come back in the dataset's
    order.

    Batches are formed from the examples sorted by length (longest first), so a batch pads to the length
    of rows like its own rather than to the longest row of a random slice; every result is written back
    to its example's position. Runs in inference mode. Under torchrun each rank predicts every
    world_size-th example and the results are gathered back into dataset order, so every example is
    predicted exactly once.
    """
    from data_utils.distributed import DistInfo, all_gather_objects

    dist_info = dist_info or DistInfo()
    was_training = model.training
    model.eval()
    task = dataset.task
    examples = dataset.examples[dist_info.rank::dist_info.world_size]
    order = sorted(range(len(examples)), key=lambda i: -example_length(examples[i]))
    predictions, scores, golds, uids = ([None] * len(examples) for _ in range(4))
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            positions = order[start:start + batch_size]
            batch = collate([examples[i] for i in positions], task)
            logits = model(batch["input_ids"].to(device), batch["token_type_ids"].to(device),
                           batch["attention_mask"].to(device), task=task.name).logits.float().cpu()
            if task.is_regression:
                batch_predictions = batch_scores = logits.view(-1).tolist()
            else:
                batch_predictions = logits.argmax(dim=-1).tolist()
                batch_scores = torch.softmax(logits, dim=-1).tolist()
            for row, position in enumerate(positions):
                predictions[position], scores[position] = batch_predictions[row], batch_scores[row]
                golds[position], uids[position] = batch["labels"][row].item(), batch["uids"][row]
    model.train(was_training)
    if dist_info.enabled:
        parts = all_gather_objects(dist_info, (predictions, scores, golds, uids))
        merged = [[], [], [], []]
        for position in range(len(dataset)):
            rank, offset = position % dist_info.world_size, position // dist_info.world_size
            for column in range(4):
                merged[column].append(parts[rank][column][offset])
        predictions, scores, golds, uids = merged
    metrics = calc_metrics(task.metric_meta, predictions, golds) if dataset.has_labels else {}
    return {"metrics": metrics, "predictions": predictions, "uids": uids, "scores": scores}


def example_length(example) -> int:
    """The number of tokens of a canonical example (what its row pads to)."""
    return len(example["token_id"])


# Evaluation tags whose number is zero-padded in file names, so that a directory listing sorts them in order
# (epoch_002 before epoch_010, updates_000050 before updates_000120).
TAG_PADDING = {"epoch": 3, "updates": 6}


def sortable_tag(tag: str) -> str:
    """'epoch_2' -> 'epoch_002', 'updates_50' -> 'updates_000050'; other tags unchanged."""
    kind, _, number = tag.rpartition("_")
    if kind in TAG_PADDING and number.isdigit():
        return f"{kind}_{int(number):0{TAG_PADDING[kind]}d}"
    return tag


def score_file_name(prefix: str, split: str, tag: str) -> str:
    """`<dataset>_<dev|test>_scores_<tag, zero-padded>.json`."""
    return f"{prefix}_{split}_scores_{sortable_tag(tag)}.json"


def write_scores(output_dir: str, dataset: TaskDataset, split: str, tag: str, result: dict) -> str:
    """`<dataset>_<dev|test>_scores_<tag>.json` with metrics, predictions, uids, scores; the tag's number
    zero-padded (score_file_name). Returns the path."""
    path = os.path.join(output_dir, score_file_name(dataset_prefix(dataset), split, tag))
    write_json_atomic(path, result)
    return path


def write_glue_submission(output_dir: str, dataset: TaskDataset, tag: str, result: dict) -> str:
    """GLUE's submission layout: `index<TAB>prediction`, labels as the task names them, written to
    `<dataset>_test_predictions_<tag>.tsv` and, under the name GLUE's server expects (the split's
    `submission` in the task definition), to `glue_submission/` (the latest evaluation; zip that folder)."""
    path, *submission = submission_paths(output_dir, dataset, tag)

    def write(handle):
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(["index", "prediction"])
        for uid, prediction in zip(result["uids"], result["predictions"]):
            writer.writerow([uid, dataset.task.id_to_label(prediction)])
    write_output_file(path, write)
    for copy in submission:
        os.makedirs(os.path.dirname(copy), exist_ok=True)
        write_output_file(copy, write)
    return path


def submission_paths(output_dir: str, dataset: TaskDataset, tag: str) -> list:
    """The files write_glue_submission writes: `<dataset>_test_predictions_<tag>.tsv`, then
    `glue_submission/<the split's submission name>` when the task definition gives one."""
    paths = [os.path.join(output_dir, f"{dataset_prefix(dataset)}_test_predictions_{sortable_tag(tag)}.tsv")]
    submission = dataset.task.split_of(dataset.name).submission
    return paths + ([os.path.join(output_dir, "glue_submission", submission)] if submission else [])


def dataset_prefix(dataset: TaskDataset) -> str:
    """'mnli_matched_dev' -> 'mnli_matched'; 'cola_test' -> 'cola'."""
    return dataset.name.rsplit("_", 1)[0]
