#!/bin/sh
# GPP-DFD on one GLUE task with BERT-base: fine-tune a teacher, then prune 50 % of the attention heads and
# FFN neurons progressively while distilling from it (GPP-DFD's published command), and export the
# physically smaller model (OUT/model_pruned, OUT/best_model_pruned). Needs GLUE in data/ (sh download.sh);
# only the task is preprocessed, on first use or when stale. Run from the repository root:
#   sh scripts/gpp_dfd/run.sh TASK [extra flags for run_GDbert_glue.py]
# TASK is one of cola, mnli, mrpc, qnli, qqp, rte, sst, stsb. Override MODEL, OUT, TEACHER, SEED.
set -e
TASK=$1
case "$TASK" in
  cola|mrpc|qnli|qqp|rte|stsb) TASK_NAME=$TASK; TEST_DATASETS=$TASK ;;
  mnli) TASK_NAME=mnli; TEST_DATASETS=mnli_matched,mnli_mismatched ;;   # both dev sets
  sst) TASK_NAME=sst2; TEST_DATASETS=sst ;;                              # GPP-DFD's (transformers') name
  *) printf "error: unknown task '%s'; usage: sh scripts/gpp_dfd/run.sh TASK [flags...], TASK one of %s\n" \
       "$TASK" "cola, mnli, mrpc, qnli, qqp, rte, sst, stsb" >&2
     exit 2 ;;
esac
shift
MODEL=${MODEL:-bert-base-uncased}
TEACHER=${TEACHER:-base/$TASK}
OUT=${OUT:-log/gpp_dfd_$TASK}
SEED=${SEED:-42}
# The canonical folder is named by prepro (data_utils.manifest.canonical_folder_name), as run_GDbert_glue.py
# names it: a local MODEL gets its base name plus a hash of its path. Only TASK is preprocessed, and files
# that prepro's manifest shows to be current are skipped.
DATA=$(python prepro.py --print_output_dir --data_dir data --model "$MODEL")
if [ ! -f "$TEACHER/model/model.safetensors" ]; then
  sh experiments/glue/prepro.sh --data_dir data --model "$MODEL" --max_seq_len 128 --tasks "$TASK"
  python train.py --pruner none --init_checkpoint "$MODEL" \
    --data_dir "$DATA" \
    --train_datasets "$TASK" --test_datasets "$TEST_DATASETS" \
    --max_seq_len 128 --batch_size 32 --optimizer adamw --learning_rate 2e-5 --warmup 0 --weight_decay 0 \
    --epochs 4 --seed "$SEED" --output_dir "$TEACHER"
fi
python run_GDbert_glue.py \
  --model_name_or_path "$MODEL" \
  --task_name "$TASK_NAME" \
  --do_distill \
  --teacher_model_path "$TEACHER" \
  --target_sparsity 0.5 \
  --window_size 3 \
  --logging_steps 50 \
  --eval_steps 50 \
  --logging_first_step True \
  --prepruning_finetune_epochs 0 \
  --prune_epochs 20 \
  --do_train \
  --do_eval \
  --max_seq_length 128 \
  --per_device_train_batch_size 32 \
  --learning_rate 2e-5 \
  --retrain_learning_rate 2e-5 \
  --num_train_epochs 32 \
  --seed "$SEED" \
  --overwrite_output_dir \
  --output_dir "$OUT" "$@"
