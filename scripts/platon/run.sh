#!/bin/sh
# PLATON on one GLUE task with BERT-base: the published recipe (docs/METHODS.md §1.1), one row per task
# below. Needs GLUE (sh download.sh) preprocessed for the model:
#   sh experiments/glue/prepro.sh --model bert-base-uncased
# Run from the repository root:  sh scripts/platon/run.sh TASK [extra flags for train.py]
# (scripts/platon/TASK.sh does the same). TASK is one of cola, mnli, mrpc, qnli, qqp, rte, sst, stsb.
# Override MODEL (hub id, HF directory or MT-DNN .pt), DATA, OUT, SEED.
set -e
TASK=$1
case "$TASK" in        # the published hyperparameters that differ between tasks
  cola) RATIO=0.10 WARMUP_STEPS=500  FINAL_WARMUP=3 BETA2=0.95 BATCH=32 LR=1e-4 EPOCHS=15 ;;
  mnli) RATIO=0.10 WARMUP_STEPS=5400 FINAL_WARMUP=5 BETA2=0.85 BATCH=32 LR=8e-5 EPOCHS=8 ;;
  mrpc) RATIO=0.10 WARMUP_STEPS=300  FINAL_WARMUP=3 BETA2=0.95 BATCH=8  LR=1e-4 EPOCHS=10 ;;
  qnli) RATIO=0.10 WARMUP_STEPS=2000 FINAL_WARMUP=6 BETA2=0.9  BATCH=32 LR=1e-4 EPOCHS=10 ;;
  qqp)  RATIO=0.20 WARMUP_STEPS=5400 FINAL_WARMUP=5 BETA2=0.85 BATCH=32 LR=1e-4 EPOCHS=10 ;;
  rte)  RATIO=0.20 WARMUP_STEPS=200  FINAL_WARMUP=6 BETA2=0.95 BATCH=16 LR=1e-4 EPOCHS=20 ;;
  sst)  RATIO=0.10 WARMUP_STEPS=1000 FINAL_WARMUP=5 BETA2=0.85 BATCH=32 LR=8e-5 EPOCHS=6 ;;
  stsb) RATIO=0.10 WARMUP_STEPS=500  FINAL_WARMUP=5 BETA2=0.85 BATCH=16 LR=1e-4 EPOCHS=15 ;;
  *) printf "error: unknown task '%s'; usage: sh scripts/platon/run.sh TASK [flags...], TASK one of %s\n" \
       "$TASK" "cola, mnli, mrpc, qnli, qqp, rte, sst, stsb" >&2
     exit 2 ;;
esac
shift
TEST_DATASETS=$TASK
[ "$TASK" = mnli ] && TEST_DATASETS=mnli_matched,mnli_mismatched
MODEL=${MODEL:-bert-base-uncased}
DATA=${DATA:-data/canonical_data/bert-base-uncased}
OUT=${OUT:-log/platon_$TASK}
SEED=${SEED:-7}
python train.py \
  --pruner platon --initial_threshold 1. --final_threshold "$RATIO" \
  --warmup_steps "$WARMUP_STEPS" --initial_warmup 1 --final_warmup "$FINAL_WARMUP" \
  --beta1 0.85 --beta2 "$BETA2" --deltaT 10 \
  --data_dir "$DATA" --train_datasets "$TASK" --test_datasets "$TEST_DATASETS" \
  --init_checkpoint "$MODEL" \
  --batch_size "$BATCH" --batch_size_eval 256 \
  --optimizer adamax --learning_rate "$LR" --epochs "$EPOCHS" --seed "$SEED" \
  --log_per_updates 100 --eval_per_updates 6000 \
  --output_dir "$OUT" --log_file log.log --tensorboard "$@"
