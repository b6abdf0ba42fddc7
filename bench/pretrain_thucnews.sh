#!/usr/bin/env bash
# Pre-train a small Chinese BERT offline (<= 60 min on 2 CPU cores) and fine-tune it on THUCNews.
#
#   bash bench/pretrain_thucnews.sh pretrain      # People's Daily + THUCNews dev.txt texts (never test.txt)
#   bash bench/pretrain_thucnews.sh finetune DIR  # fine-tune DIR (a pretrain folder or snapshot) on dev.txt
#   bash bench/pretrain_thucnews.sh scratch       # the same fine-tuning from scratch, for comparison
#
# Environment knobs: OBJECTIVE (mlm | electra, default mlm), THREADS (pre-training threads,
# default 1), MINUTES (pre-training wall-time limit, default 60), STEPS (length of the
# learning-rate schedule, default 11000), PRETRAIN_OUT, LR, EPOCHS, TAG (suffix of the
# fine-tuned folder), EXTRA (more `train` arguments, e.g. "--threads 1").
# Run it alone on the machine: timings (and, through the time limit, results) depend on a quiet CPU.
#
# Fine-tuning: train on dev.txt (10% held out as model-selection dev), score test.txt.
# Results land in bench/results/ (gitignored); docs/pretraining.md quotes them.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${THUCNEWS:-../shared/data/thucnews}
RES=bench/results/pretrain
OUT=${PRETRAIN_OUT:-saved_models/pt_thucnews}
mkdir -p "$RES"
FT_ARGS=(--train "$DATA/dev.txt" --test "$DATA/test.txt" --max-len 64 --epochs "${EPOCHS:-4}" --batch-size 32)

case "${1:-}" in
  pretrain)
    [ -f data/peoples_daily_199801.txt ] || python run.py prepare-corpus --out data/peoples_daily_199801.txt
    # dev.txt (the fine-tuning texts, no labels) is given three times: in-domain headlines
    # weigh more against People's Daily. test.txt is never read.
    # --threads 1 leaves the other core to fine-tune the snapshots while it runs (the measured run)
    /usr/bin/time -v python run.py pretrain --objective "${OBJECTIVE:-mlm}" \
      --corpus data/peoples_daily_199801.txt "$DATA/dev.txt" "$DATA/dev.txt" "$DATA/dev.txt" \
      --out "$OUT" --layers 4 --hidden 256 --heads 4 --max-len 64 --batch-size 32 --precision bf16 \
      --lr 1e-3 --steps "${STEPS:-11000}" --save-every 500 --snapshot-every "${SNAPSHOT_EVERY:-2000}" \
      --threads "${THREADS:-1}" --time-limit "${MINUTES:-60}" 2>&1 | tee "$RES/pretrain_$(basename "$OUT").log"
    ;;
  finetune)
    dir=$2; name=$(echo "$dir" | tr '/' '_')
    /usr/bin/time -v python run.py train "${FT_ARGS[@]}" --pretrained "$dir" --lr "${LR:-3e-4}" \
      --out "saved_models/ft_$name${TAG:-}" ${EXTRA:-} 2>&1 | tee "$RES/finetune_$name${TAG:-}.log"
    ;;
  scratch)
    /usr/bin/time -v python run.py train "${FT_ARGS[@]}" --lr "${LR:-5e-4}" --out "saved_models/ft_scratch${TAG:-}" \
      ${EXTRA:-} 2>&1 | tee "$RES/finetune_scratch${TAG:-}.log"
    ;;
  *) echo "usage: $0 pretrain | finetune DIR | scratch" >&2; exit 2 ;;
esac
