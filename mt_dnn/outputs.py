"""What a run leaves behind: evaluations, best_model/ and model/, reports, rank checksums.

    evaluate(run, state, tag)            dev (and test) scores of every --test_datasets entry
    record_evaluation(run, state, m)     remember them; best_model/ when the main metric improves
                                         once every method has reached its target
    save_outputs(run, directory)         a model directory, with what the methods add to it
    finish_run(run, state)               model/, the methods' reports, dev_metrics.json, checksums
"""
import hashlib
import logging
import os

from mt_dnn.distributed import all_gather_objects, barrier, shutdown
from mt_dnn.inference import predict, write_glue_submission, write_json_atomic, write_scores
from mt_dnn.model import save_model

logger = logging.getLogger("train")


def evaluate(run, state, tag: str) -> dict:
    """Score every dev and test split; returns {dataset: dev metrics}."""
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
        if test is not None:
            result = predict(run.model, test, args.batch_size_eval, run.device, run.dist_info)
            if run.dist_info.is_main:
                write_scores(args.output_dir, test, "test", tag, result)
                if args.glue_format_on:
                    write_glue_submission(args.output_dir, test, tag, result)
    return dev_metrics


def record_evaluation(run, state, dev_metrics: dict) -> None:
    """Remember the metrics; save best_model/ when the main metric of the first test dataset
    improves once every method has reached its target."""
    state.last_metrics = dev_metrics
    if not run.eval_sets or not run.methods.at_target(state.global_step):
        return
    dev = run.eval_sets[0][0]
    value = dev_metrics[dev.name.rsplit("_", 1)[0]][dev.task.main_metric]
    if state.best_metric is not None and value <= state.best_metric:
        return
    state.best_metric = value
    if run.dist_info.is_main:
        save_outputs(run, os.path.join(run.args.output_dir, "best_model"))
        logger.info("new best %s %s %.2f at update %d", dev.name, dev.task.main_metric, value, state.global_step)


def save_outputs(run, directory: str) -> None:
    """The model as trained (masked for pruning runs), with what each method adds (indicators,
    reports) inside the same atomic write, then what it derives from it (GPP's smaller export)."""
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


def finish_run(run, state) -> None:
    """After the last update: every rank must hold the same weights and masks; the main process
    writes model/, the methods' final reports and dev_metrics.json."""
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
        logger.info("final dev metrics:")
        for name, metrics in state.last_metrics.items():
            logger.info("  %-20s %s", name, "  ".join(f"{k} {v:6.2f}" for k, v in metrics.items()))
    if run.writer is not None:
        run.writer.close()
    barrier(run.dist_info)
    shutdown(run.dist_info)
