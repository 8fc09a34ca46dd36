#!/bin/sh
# PLATON on MRPC with BERT-base: the published recipe (docs/METHODS.md §1.1), 10 % of the
# encoder's weights remaining. Needs GLUE (sh download.sh) preprocessed for the model:
#   sh experiments/glue/prepro.sh --model bert-base-uncased
# Override MODEL (hub id, HF directory or MT-DNN .pt), DATA, OUT, SEED; extra flags are passed to train.py.
MODEL=${MODEL:-bert-base-uncased}
DATA=${DATA:-data/canonical_data/bert-base-uncased}
OUT=${OUT:-log/platon_mrpc}
SEED=${SEED:-7}
python train.py \
  --pruner platon --initial_threshold 1. --final_threshold 0.10 \
  --warmup_steps 300 --initial_warmup 1 --final_warmup 3 \
  --beta1 0.85 --beta2 0.95 --deltaT 10 \
  --data_dir "$DATA" --train_datasets mrpc --test_datasets mrpc \
  --init_checkpoint "$MODEL" \
  --batch_size 8 --batch_size_eval 256 \
  --optimizer adamax --learning_rate 1e-4 --epochs 10 --seed "$SEED" \
  --log_per_updates 100 --eval_per_updates 6000 \
  --output_dir "$OUT" --log_file log.log --tensorboard "$@"
