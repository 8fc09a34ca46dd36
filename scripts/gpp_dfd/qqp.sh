#!/bin/sh
# GPP-DFD on QQP with BERT-base: fine-tune a teacher, then prune 50 % of the attention heads and
# FFN neurons progressively while distilling from it (GPP-DFD's published command), and export the
# physically smaller model (OUT/model_pruned, OUT/best_model_pruned). Needs GLUE in data/ (sh download.sh);
# the task is preprocessed on first use. Override MODEL, OUT, TEACHER, SEED; extra flags go to run_GDbert_glue.py.
set -e
MODEL=${MODEL:-bert-base-uncased}
TEACHER=${TEACHER:-base/qqp}
OUT=${OUT:-log/gpp_dfd_qqp}
SEED=${SEED:-42}
if [ ! -f "$TEACHER/model/model.safetensors" ]; then
  sh experiments/glue/prepro.sh --model "$MODEL" --max_seq_len 128
  python train.py --pruner none --init_checkpoint "$MODEL" \
    --data_dir data/canonical_data/"$(echo "$MODEL" | tr / -)" --train_datasets qqp --test_datasets qqp \
    --max_seq_len 128 --batch_size 32 --optimizer adamw --learning_rate 2e-5 --warmup 0 --weight_decay 0 \
    --epochs 4 --seed "$SEED" --output_dir "$TEACHER"
fi
python run_GDbert_glue.py \
  --model_name_or_path "$MODEL" \
  --task_name qqp \
  --do_distill \
  --teacher_model_path "$TEACHER/model" \
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
