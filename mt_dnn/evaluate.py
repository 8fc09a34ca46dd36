"""Score a saved model on canonical dev or test data, without training.

    python -m mt_dnn.evaluate --model OUT/best_model --data_dir data/canonical_data/MODEL \
        [--datasets rte,mrpc] [--split dev|test] [--output_dir EVAL]

`--model` is a directory written by train.py (`model/`, `best_model/`, or a GPP `model_pruned/`).
`--data_dir` holds prepro's canonical JSON files (`<dataset>_<split>.json`) made with the model's
tokenizer (checked against prepro's manifest, as train.py checks it). `--datasets` defaults to every
dataset of the tasks the model has heads for. The metrics are printed, one line per dataset; with
`--output_dir` each dataset's predictions and scores are written as train.py writes them (tag `eval`),
test splits also in GLUE's submission layout, and all metrics in `evaluation_<split>.json`. Nothing is
written into --model, --data_dir or --task_def, and every output is checked to be writable before
anything is scored. A file of those names already in --output_dir (an earlier evaluation's, or a train.py
run's `glue_submission/<Task>.tsv` when --output_dir is its run directory) is never replaced: it is moved,
under its own relative name, into `previous-<time>/` inside --output_dir, and a line says so.
"""
import os

import transformers

from data_utils.batcher import check_fits_model, load_canonical
from data_utils.errors import ArgumentParser, UserError, run_cli
from data_utils.files import previous_name, refuse_unwritable, refuse_writing_inputs
from data_utils.manifest import check_canonical_data
from data_utils.task_def import DEFAULT_TASK_DEF, load_task_defs, resolve_dataset
from mt_dnn import engines
from modeling import pretrained
from modeling.families import family_of
from training.inference import (dataset_prefix, predict, score_file_name, submission_paths, write_glue_submission,
                              write_json_atomic, write_scores)

TAG = "eval"


def build_parser():
    parser = ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="a model/ or best_model/ directory written by train.py")
    parser.add_argument("--data_dir", required=True, help="directory of canonical JSON files (prepro's output)")
    parser.add_argument("--datasets", default=None,
                        help="comma-separated datasets, e.g. rte,mrpc,mnli_matched (default: all of the model's tasks)")
    parser.add_argument("--split", default="dev", choices=("dev", "test"), help="which split to score")
    parser.add_argument("--output_dir", default=None, help="where to write predictions and metrics (optional)")
    parser.add_argument("--task_def", default=DEFAULT_TASK_DEF, help="task definition YAML")
    parser.add_argument("--batch_size", type=int, default=32, help="evaluation batch size")
    parser.add_argument("--max_seq_len", type=int, default=None, help="truncate longer rows (default: none)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="where to run")
    engines.add_arguments(parser)
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    return parser


def check_output_dir(args) -> None:
    """Before any work: an --output_dir that is, or lies inside, an input (inputs are never written to), or
    that cannot be written, is refused."""
    refuse_writing_inputs([("--output_dir", args.output_dir)], [
        ("--model", args.model), ("--data_dir", args.data_dir), ("--task_def", args.task_def)])
    refuse_unwritable(args.output_dir, "--output_dir", directory=True)


def output_files(output_dir: str, datasets: list, split: str) -> list:
    """Every file evaluate writes into --output_dir: each dataset's scores (and, for test, its GLUE
    submission files), then evaluation_<split>.json."""
    paths = []
    for dataset in datasets:
        paths.append(os.path.join(output_dir, score_file_name(dataset_prefix(dataset), split, TAG)))
        paths += submission_paths(output_dir, dataset, TAG) if split == "test" else []
    return paths + [os.path.join(output_dir, f"evaluation_{split}.json")]


def dataset_names(args, model, task_defs) -> list:
    if args.datasets is None:
        return [name for task in model.heads for name in task_defs[task].dataset_prefixes()]
    names = [name.strip() for name in args.datasets.split(",") if name.strip()]
    if not names:
        raise UserError(f"--datasets '{args.datasets}' names no dataset; e.g. --datasets rte,mrpc")
    repeated = next((name for index, name in enumerate(names) if name in names[:index]), None)
    if repeated is not None:
        raise UserError(f"--datasets names {repeated} more than once; list each dataset once")
    return names


def keep_earlier_outputs(output_dir: str, paths: list) -> list:
    """Move each of `paths` (files in `output_dir` that this evaluation is about to write) that already exists
    into `output_dir/previous-<time>/`, under its path relative to `output_dir`, so that nothing this
    invocation did not write is replaced. Returns one line per file moved."""
    earlier = [path for path in paths if os.path.lexists(path)]
    if not earlier:
        return []
    aside = os.path.join(output_dir, previous_name(output_dir))
    lines = []
    for path in earlier:
        target = os.path.join(aside, os.path.relpath(path, output_dir))
        try:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.rename(path, target)
        except OSError as err:
            raise UserError(f"{path}: could not move the earlier file aside to {target} ({err.strerror or err}); "
                            "nothing was written; choose another --output_dir") from None
        lines.append(f"kept the earlier {path} in {target}")
    return lines


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.output_dir is not None and not args.output_dir.strip():
        raise UserError("--output_dir is empty; give a directory (or leave --output_dir out to only print the "
                        "metrics)")
    engines.check_arguments(args.engine, args.threads, args.device)
    if args.batch_size < 1:
        raise UserError(f"--batch_size {args.batch_size} must be at least 1")
    if args.max_seq_len is not None and args.max_seq_len < 8:
        raise UserError(f"--max_seq_len {args.max_seq_len} is too small; use at least 8 (or leave it out)")
    if os.path.exists(args.data_dir) and not os.path.isdir(args.data_dir):
        raise UserError(f"--data_dir {args.data_dir} is a file, not a directory; give prepro's "
                        "canonical_data/<model> directory")
    if not os.path.isdir(args.data_dir):
        raise UserError(f"--data_dir {args.data_dir}: directory not found; give prepro's canonical_data/<model> "
                        "directory")
    if args.output_dir is not None:
        check_output_dir(args)
    transformers.utils.logging.disable_progress_bar()    # stderr is for one-line errors
    task_defs = load_task_defs(args.task_def)
    model = engines.load_engine(args.model, task_defs, args.engine, args.threads, report=print)
    datasets = []
    for name in dataset_names(args, model, task_defs):
        task = resolve_dataset(name, task_defs, flag="--datasets")
        if task.name not in model.heads:
            raise UserError(f"--datasets {name}: {args.model} has no head for task {task.name} (it has "
                            f"{', '.join(model.heads)}); choose among those")
        dataset = f"{name}_{args.split}"
        if dataset[len(task.name) + 1:] not in task.splits:
            raise UserError(f"--datasets {name}: task {task.name} has no split {dataset[len(task.name) + 1:]} "
                            f"(its splits: {', '.join(task.splits)}); check the name and --split")
        datasets.append(load_canonical(os.path.join(args.data_dir, f"{dataset}.json"), dataset, task,
                                       args.max_seq_len))
    # prepro's manifest, checked as train.py checks it: the data was made with this model's tokenizer (and with at
    # least --max_seq_len tokens, when given); a folder without one is a warning on stdout, as train.py logs it
    check_canonical_data(args.data_dir, pretrained.load_tokenizer(args.model), args.max_seq_len or 0,
                         [d.name for d in datasets], warn=lambda message: print(f"warning: {message}"))
    config = model.encoder.config
    check_fits_model(datasets, config, args.model, flag="--model", max_positions=family_of(config).max_positions(config))
    for path in output_files(args.output_dir, datasets, args.split) if args.output_dir is not None else []:
        refuse_unwritable(path, "--output_dir", inside=True)       # before scoring: no file may fail at the end
    device = engines.device_for(args.engine, args.device)
    model.to(device)
    summary = {"model": args.model, "engine": args.engine, "data_dir": args.data_dir, "split": args.split,
               "metrics": {}}
    results = []
    for dataset in datasets:
        result = predict(model, dataset, args.batch_size, device)
        name = dataset.name.rsplit("_", 1)[0]
        summary["metrics"][name] = result["metrics"]
        shown = " ".join(f"{k}={v:.2f}" for k, v in result["metrics"].items()) or "(unlabelled: predictions only)"
        print(f"{name} {args.split} ({len(dataset)} rows): {shown}")
        results.append((dataset, result))
    if args.output_dir is not None:     # written once everything is scored; earlier files of these names kept aside
        os.makedirs(args.output_dir, exist_ok=True)
        for line in keep_earlier_outputs(args.output_dir, output_files(args.output_dir, datasets, args.split)):
            print(line)
        for dataset, result in results:
            write_scores(args.output_dir, dataset, args.split, TAG, result)
            if args.split == "test":
                write_glue_submission(args.output_dir, dataset, TAG, result)
        path = os.path.join(args.output_dir, f"evaluation_{args.split}.json")
        write_json_atomic(path, summary)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    run_cli(main)
