#!/bin/sh
# PLATON on COLA with BERT-base: the published recipe (docs/METHODS.md §1.1), 10 % of the
# encoder's weights remaining. Needs GLUE (sh download.sh) preprocessed for the model:
#   sh experiments/glue/prepro.sh --model bert-base-uncased
# Override MODEL (hub id, HF directory or MT-DNN .pt), DATA, OUT, SEED; extra flags are passed to train.py.
MODEL=${MODEL:-bert-base-uncased}
DATA=${DATA:-data/canonical_data/bert-base-uncased}
OUT=${OUT:-log/platon_cola}
SEED=${SEED:-7}
python train.py \
  --pruner platon --initial_threshold 1. --final_threshold 0.10 \
  --warmup_steps 500 --initial_warmup 1 --final_warmup 3 \
  --beta1 0.85 --beta2 0.95 --deltaT 10 \
  --data_dir "$DATA" --train_datasets cola --test_datasets cola \
  --init_checkpoint "$MODEL" \
  --batch_size 32 --batch_size_eval 256 \
  --optimizer adamax --learning_rate 1e-4 --epochs 15 --seed "$SEED" \
  --log_per_updates 100 --eval_per_updates 6000 \
  --output_dir "$OUT" --log_file log.log --tensorboard "$@"
