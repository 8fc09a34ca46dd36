"""Export a saved masked GPP model as a physically smaller one.

    python -m mt_dnn.export --checkpoint OUT/model --output_dir OUT/model_pruned

`--checkpoint` is a directory written by `train.py --pruner gpp` (`model/` or
`best_model/`): the dense encoder, the task heads and `gpp_indicators.safetensors`.
Heads and FFN neurons whose indicator is 0 are removed; the result loads with
`import modeling.structured; AutoModel.from_pretrained(DIR)`. The exported model's
logits are compared with the masked model's on real rows (`--check_data`, a
canonical JSON file) or on a few built-in sentences, and the largest absolute
difference and the parameter counts are printed and saved in
`structured_export.json`. `--quantize int8` also writes `<output_dir>_int8`, the smaller
model with int8 linear layers for serving (mt_dnn.compress, which checks its reload).
A non-empty --output_dir (or `<output_dir>_int8`) is refused unless `--overwrite_output_dir`, which keeps
what it held in `previous-<time>/` inside the new directory; the export is written whole or not at all.
"""
import argparse
import os

import transformers

from data_utils.errors import ArgumentParser, UserError, run_cli
from data_utils.files import claim_output_dir, refuse_writing_inputs
from data_utils.task_def import DEFAULT_TASK_DEF, load_task_defs
from modeling import pretrained, structured
from modeling.model import (
    check_batch,
    export_structured,
    load_encoder,
    read_head_specs,
    with_saved_heads,
)
from pruners.structured_mask import INDICATOR_FILE, StructuredMask, read_indicators


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", required=True, help="a model/ or best_model/ directory of a GPP run")
    parser.add_argument("--output_dir", required=True, help="where to write the smaller model")
    parser.add_argument("--check_data", default=None,
                        help="canonical JSON file whose first rows check the export (default: built-in sentences)")
    parser.add_argument("--task_def", default=DEFAULT_TASK_DEF, help="task definition YAML")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="largest allowed |masked - exported| logit")
    parser.add_argument("--quantize", choices=("none", "int8"), default="none",
                        help="int8: also write OUTPUT_DIR_int8, the export with int8 dynamic quantization of its "
                             "linear layers (python -m mt_dnn.compress)")
    parser.add_argument("--overwrite_output_dir", action="store_true",
                        help="write into a non-empty --output_dir (and OUTPUT_DIR_int8): what they held is kept in "
                             "previous-<time>/ inside them (nothing is deleted)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    return parser


def masked_model(checkpoint: str, task_def: str):
    """The dense model of a GPP run with its saved indicators applied (pruners.structured_mask), the
    StructuredMask doing it, and the task definitions."""
    indicators_path = os.path.join(checkpoint, INDICATOR_FILE)
    if os.path.exists(checkpoint) and not os.path.isdir(checkpoint):
        raise UserError(f"--checkpoint {checkpoint} is a file, not a directory; give the model/ or best_model/ "
                        "directory of a train.py --pruner gpp run")
    if not os.path.isdir(checkpoint):
        raise UserError(f"--checkpoint {checkpoint}: directory not found; give the model/ or best_model/ "
                        "directory of a train.py --pruner gpp run")
    if not os.path.isfile(indicators_path):
        raise UserError(f"--checkpoint {checkpoint}: no {INDICATOR_FILE}; export needs a directory written by "
                        "train.py --pruner gpp (model/ or best_model/)")
    try:  # read before the encoder is loaded: a broken file is refused at once
        indicators = read_indicators(indicators_path)
    except (FileNotFoundError, ValueError) as err:  # the message starts with the file's path
        raise UserError(f"--checkpoint {err}; re-save it with train.py") from None
    task_defs = load_task_defs(task_def)
    specs = read_head_specs(checkpoint, task_defs, flag="--checkpoint")
    model = with_saved_heads(load_encoder(checkpoint, flag="--checkpoint"), checkpoint, specs, task_defs,
                             flag="--checkpoint")
    try:      # a family without a structured export, or an export exported again, is refused before any write
        structured.pruned_classes(model.encoder)
    except UserError as err:
        raise UserError(f"--checkpoint {checkpoint}: {err}") from None
    try:
        mask = StructuredMask(model.encoder, **indicators, anatomy=model.family.anatomy)
    except ValueError as err:
        raise UserError(f"--checkpoint {indicators_path}: {err}; it does not belong to this encoder, re-save the "
                        "model with train.py") from None
    return model.eval(), mask, task_defs


def about_int8_copy(err: UserError, output_dir: str, int8_dir: str) -> UserError:
    """A refusal of <output_dir>_int8, which refuse_writing_inputs and claim_output_dir word as
    `--output_dir <output_dir>_int8 ...`, said of the --output_dir the user gave."""
    text, shown = str(err), f"--output_dir {int8_dir}"
    text = text[len(shown):] if text.startswith(shown) else f": {text}"
    return UserError(f"--output_dir {output_dir}: its int8 copy {int8_dir} (--quantize int8){text}")


def claim_int8_dir(output_dir: str, int8_dir: str, overwrite: bool) -> str:
    """claim_output_dir for <output_dir>_int8: how write_directory may treat it; refused, naming --output_dir
    and --overwrite_output_dir (the flags that choose it), when it is in the way."""
    if os.path.lexists(int8_dir) and (os.path.islink(int8_dir) or not os.path.isdir(int8_dir)):
        raise UserError(f"--output_dir {output_dir}: its int8 copy {int8_dir} (--quantize int8) is in the way: "
                        "a file or link stands there; move it aside or choose another --output_dir")
    try:
        return claim_output_dir(int8_dir, overwrite)
    except UserError as err:
        raise about_int8_copy(err, output_dir, int8_dir) from None


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if not args.output_dir.strip():
        raise UserError("--output_dir is empty; give a directory")
    if not args.tolerance >= 0:
        raise UserError(f"--tolerance {args.tolerance} must be >= 0 (e.g. 1e-4)")
    transformers.utils.logging.disable_progress_bar()  # stderr is for one-line errors
    model, mask, task_defs = masked_model(args.checkpoint, args.task_def)
    # after the checkpoint is found valid, before any write: every output against every input
    int8_dir = args.output_dir.rstrip("/") + "_int8"
    inputs = [("--checkpoint", args.checkpoint), ("--task_def", args.task_def), ("--check_data", args.check_data)]
    refuse_writing_inputs([("dir:--output_dir", args.output_dir)], inputs)
    if args.quantize == "int8":
        try:
            refuse_writing_inputs([("dir:--output_dir", int8_dir)], inputs)
        except UserError as err:
            raise about_int8_copy(err, args.output_dir, int8_dir) from None
    existing = claim_output_dir(args.output_dir, args.overwrite_output_dir)
    int8_existing = claim_int8_dir(args.output_dir, int8_dir, args.overwrite_output_dir) \
        if args.quantize == "int8" else None
    indicators = mask.indicators()
    tokenizer = pretrained.load_tokenizer(args.checkpoint)
    report = export_structured(model, indicators.get("head"), indicators.get("ffn"), tokenizer, args.output_dir,
                               check_batch=check_batch(model, tokenizer, args.check_data), existing=existing)
    layers_before, layers_after = report["encoder_layer_parameters_before"], report["encoder_layer_parameters_after"]
    print(f"exported {args.checkpoint} -> {args.output_dir}: encoder parameters {report['parameters_before']} -> "
          f"{report['parameters_after']} ({report['parameters_after'] / report['parameters_before']:.1%}) in all; "
          f"in the transformer layers (what pruning removes) {layers_before} -> {layers_after} "
          f"({layers_after / max(layers_before, 1):.1%}); embeddings {report['embedding_parameters']} and pooler "
          f"{report['pooler_parameters']} kept; "
          f"heads per layer {report['layer_heads']}; FFN width per layer {report['layer_intermediate_sizes']}; "
          f"max |masked - exported| = {report['max_abs_difference']:.2e}")
    if report["max_abs_difference"] > args.tolerance:
        raise UserError(f"the exported model differs from the masked one by {report['max_abs_difference']:.2e} "
                        f"> --tolerance {args.tolerance}; {args.output_dir} is kept for inspection: raise "
                        "--tolerance only if that difference is acceptable")
    if args.quantize == "int8":
        from mt_dnn.compress import compress_model

        print(compress_model(args.output_dir, int8_dir, task_defs, quantize="int8", existing=int8_existing))
    return 0


if __name__ == "__main__":
    run_cli(main)
