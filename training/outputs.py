"""What a run leaves behind: evaluations, best_model/ and model/, reports, rank checksums.

    evaluate(run, state, tag)            dev scores of every --test_datasets entry (and test predictions at
                                         the last update, or at every evaluation with
                                         --eval_test_during_training), one line of
                                         metrics.jsonl, the dev metrics and Sparsity/* in TensorBoard
    record_evaluation(run, state, m)     remember them; best_model/ when the main metric improves
                                         once every method has reached its target
    save_outputs(run, directory)         a model directory, with what the methods add to it
    finish_run(run, state)               model/, the methods' reports, dev_metrics.json, best_metrics.json,
                                         Sparsity/* at the last update, checksums

metrics.jsonl (HISTORY_FILE) is the run's whole evaluation history, one JSON object a line, appended
(write, flush, fsync) after every evaluation:

    {"tag": "epoch_0", "update": 7, "epoch": 0, "metrics": {"rte": {"ACC": 61.3}, ...},
     "main_metric": "rte ACC", "best": true, "time": "2024-05-01T12:00:00+00:00"}

"best" marks an evaluation that became the new best_model/. A fresh run starts the file anew; a resumed
run (--resume, --model_ckpt) keeps the lines before its first evaluation's tag or update and drops the
rest (what the stopped run did after its checkpoint; a half-written last line too), so the file stays one
consistent history.
"""
import datetime
import hashlib
import json
import logging
import os

from data_utils.distributed import all_gather_objects, barrier, shutdown
from training.inference import predict, write_glue_submission, write_json_atomic, write_scores
from modeling.model import save_model

logger = logging.getLogger("train")
HISTORY_FILE = "metrics.jsonl"
BEST_FILE = "best_metrics.json"


def evaluate(run, state, tag: str) -> dict:
    """Score every dev split, and predict the test splits when the run is at its last update (or at every
    evaluation with --eval_test_during_training); returns {dataset: dev metrics}."""
    args, dev_metrics = run.args, {}
    for dev, test in run.eval_sets:
        result = predict(run.model, dev, args.batch_size_eval, run.device, run.dist_info)
        name = dev.name.rsplit("_", 1)[0]
        dev_metrics[name] = result["metrics"]
        if run.dist_info.is_main:
            write_scores(args.output_dir, dev, "dev", tag, result)
            logger.info("[%s] %s dev %s", tag, name, " ".join(f"{k}={v:.2f}" for k, v in result["metrics"].items()))
            if run.writer is not None:
                for metric, value in result["metrics"].items():
                    run.writer.add_scalar(f"dev/{name}/{metric}", value, state.global_step)
        if test is not None and (args.eval_test_during_training or state.global_step >= run.total_steps):
            result = predict(run.model, test, args.batch_size_eval, run.device, run.dist_info)
            if run.dist_info.is_main:
                write_scores(args.output_dir, test, "test", tag, result)
                if args.glue_format_on:
                    write_glue_submission(args.output_dir, test, tag, result)
    if run.dist_info.is_main:
        main_metric, _, improves = _main_metric(run, state, dev_metrics)
        append_history(run, state, {"tag": tag, "update": state.global_step, "epoch": state.epoch,
                                    "metrics": dev_metrics, "main_metric": main_metric, "best": improves,
                                    "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")})
        write_sparsity_scalars(run, state)
    return dev_metrics


def _main_metric(run, state, dev_metrics: dict):
    """('<dataset> <metric>' of the first test dataset, its value, whether this evaluation becomes the new
    best: the main metric improved once every method reached its target). evaluate() and
    record_evaluation() both ask, before record_evaluation updates state.best_metric."""
    if not run.eval_sets:
        return None, None, False
    dev = run.eval_sets[0][0]
    name = dev.name.rsplit("_", 1)[0]
    value = dev_metrics[name][dev.task.main_metric]
    improves = run.methods.at_target(state.global_step) and (state.best_metric is None or value > state.best_metric)
    return f"{name} {dev.task.main_metric}", value, improves


def write_sparsity_scalars(run, state) -> None:
    """The methods' Sparsity/* scalars (achieved sparsity overall, per layer, per module type) at this update."""
    if run.writer is not None:
        for tag, value in run.methods.periodic_scalars().items():
            run.writer.add_scalar(tag, value, state.global_step)


def read_history(path: str) -> list:
    """The entries of a metrics.jsonl file, in order; a line that is not a JSON object (a half-written last line
    of a killed run) ends the history."""
    entries = []
    if not os.path.exists(path):
        return entries
    with open(path, "rb") as handle:
        for raw in handle:
            try:
                entry = json.loads(raw)
            except (ValueError, RecursionError):
                break
            if not isinstance(entry, dict):
                break
            entries.append(entry)
    return entries


def append_history(run, state, entry: dict) -> None:
    """One line of metrics.jsonl, flushed and fsynced. The first line of this process starts the file anew
    (a fresh run) or cuts a resumed run's history back to what came before this evaluation."""
    from data_utils.errors import UserError
    from data_utils.files import write_output_file

    path = os.path.join(run.args.output_dir, HISTORY_FILE)
    if HISTORY_FILE not in run.started_files:
        kept = []
        if run.args.resume or run.args.model_ckpt:
            for old in read_history(path):
                if old.get("tag") == entry["tag"] or (old.get("update") or 0) > entry["update"]:
                    break
                kept.append(old)
        write_output_file(path, lambda handle: handle.write("".join(json.dumps(e) + "\n" for e in kept)))
        run.started_files.add(HISTORY_FILE)
    try:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as err:
        raise UserError(f"{path}: could not append the evaluation {entry['tag']} ({err.strerror or err}); the "
                        "lines before it are intact; free space or choose another --output_dir") from None


def record_evaluation(run, state, dev_metrics: dict) -> None:
    """Remember the metrics; save best_model/ when the main metric of the first test dataset
    improves once every method has reached its target."""
    state.last_metrics = dev_metrics
    label, value, improves = _main_metric(run, state, dev_metrics)
    if not improves:
        return
    state.best_metric = value
    if run.dist_info.is_main:
        save_outputs(run, os.path.join(run.args.output_dir, "best_model"))
        logger.info("new best %s %.2f at update %d", label, value, state.global_step)


def save_outputs(run, directory: str) -> None:
    """The model as trained (masked for pruning runs), with what each method adds (indicators,
    reports) inside the same atomic write, then what it derives from it (GPP's smaller export)."""
    with run.methods.saving():        # movement: the weights masked while they are written
        save_model(run.model, run.tokenizer, directory, write_extra=run.methods.write_model_files)
    run.methods.after_model_saved(directory, run.tokenizer, run.check_batch)


def model_checksums(model) -> dict:
    """Checksums of the weights and of their zero pattern (unstructured masks)."""
    weights, zeros = hashlib.sha256(), hashlib.sha256()
    for _, param in sorted(model.state_dict().items()):
        data = param.detach().cpu().contiguous()
        weights.update(data.numpy().tobytes())
        zeros.update((data == 0).numpy().tobytes())
    return {"weights": weights.hexdigest()[:16], "zero_mask": zeros.hexdigest()[:16]}


def final_and_best(output_dir: str, state) -> dict:
    """best_metrics.json: {"final": the last evaluation, "best": the one saved as best_model/ (null when none
    was, e.g. a pruning run that never reached its target)}, each a metrics.jsonl entry."""
    history = read_history(os.path.join(output_dir, HISTORY_FILE))
    final = history[-1] if history else {"tag": None, "update": state.global_step, "epoch": state.epoch,
                                         "metrics": state.last_metrics}
    best = next((entry for entry in reversed(history) if entry.get("best")), None)
    return {"final": final, "best": best}


def finish_run(run, state) -> None:
    """After the last update: every rank must hold the same weights and masks; the main process
    writes model/, the methods' final reports, dev_metrics.json (the last evaluation's dev metrics,
    {dataset: {metric: value}}) and best_metrics.json (final_and_best)."""
    args = run.args
    checksums = all_gather_objects(run.dist_info, {**model_checksums(run.model), **run.methods.checksums()})
    if run.dist_info.is_main:
        write_json_atomic(os.path.join(args.output_dir, "rank_checksums.json"), checksums)
        if any(c != checksums[0] for c in checksums):
            logger.warning("warning: ranks disagree on weights or masks: %s", checksums)
        model_dir = os.path.join(args.output_dir, "model")
        save_outputs(run, model_dir)
        logger.info("saved the final model to %s", model_dir)
        run.methods.final_report(args.output_dir)
        write_json_atomic(os.path.join(args.output_dir, "dev_metrics.json"), state.last_metrics)
        write_json_atomic(os.path.join(args.output_dir, BEST_FILE), final_and_best(args.output_dir, state))
        write_sparsity_scalars(run, state)
        logger.info("final dev metrics:")
        for name, metrics in state.last_metrics.items():
            logger.info("  %-20s %s", name, "  ".join(f"{k} {v:6.2f}" for k, v in metrics.items()))
    if run.writer is not None:
        run.writer.close()
    barrier(run.dist_info)
    shutdown(run.dist_info)
