#!/usr/bin/env bash
# Disk full for real: every writing command is run once into a tiny tmpfs that is full.
#
#   sudo bench/disk_full.sh            # needs root (mount); SIZE=8m FREE_KB=0,40 to change the sizes
#
# First each command writes a good output into the tmpfs (the "previous" output). Then the
# file system is filled up until FREE_KB kilobytes are left (each value in turn) and every
# command runs again, writing over its previous output (train and pretrain: into a new
# folder, as a new run would). One line per run: exit status, the error line, temporary files
# left behind, and whether the previous output is still intact and loadable.
set -uo pipefail
[ "$(id -u)" = 0 ] || { echo "bench/disk_full.sh needs root (it mounts a tmpfs)" >&2; exit 1; }
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
SIZE=${SIZE:-8m}
FREE_KB=${FREE_KB:-0,40,150}
WORK=$(mktemp -d)
MNT=$WORK/mnt
mkdir -p "$MNT" "$WORK/data"
mount -t tmpfs -o "size=$SIZE" tmpfs "$MNT" || exit 1
trap 'umount "$MNT"; rm -rf "$WORK"' EXIT
export PYTHONPATH="$ROOT" OMP_NUM_THREADS=1
python - "$WORK/data" <<'PY'
import sys
from pathlib import Path
sys.path.insert(0, ".")
from tests.conftest import toy_texts, write_csv
for split, n, seed in (("train", 200, 1), ("dev", 60, 2), ("test", 60, 3)):
    write_csv(Path(sys.argv[1]) / f"{split}.csv", *toy_texts(n, seed))
Path(sys.argv[1], "corpus.txt").write_text("\n".join(toy_texts(300, 4)[0]) + "\n", encoding="utf-8")
PY
D=$WORK/data
TINY=(--layers 1 --hidden 32 --heads 2 --min-freq 1)
train()    { python run.py -q train --train "$D/train.csv" --dev "$D/dev.csv" --out "$1" --epochs 1 --save-every 2 \
               --threads 1 --no-cache "${TINY[@]}"; }
baseline() { python run.py -q baseline --train "$D/train.csv" --dev "$D/dev.csv" --out "$1" --models char_lr; }
predict()  { python run.py -q predict --model "$MNT/bert" --input "$D/test.csv" --output "$1" --threads 1; }
evaluate() { python run.py -q evaluate --model "$MNT/bert" --data "$D/test.csv" --out "$1"; }
pretrain() { python run.py -q pretrain --corpus "$D/corpus.txt" --out "$1" --steps 4 --save-every 2 --batch-size 4 \
               --max-len 32 --layers 1 --hidden 32 --heads 2 --intermediate 64 --min-freq 1 --threads 1; }
loadable() {  # folder or file -> "yes"/"NO"
  python - "$1" <<'PY'
import sys, logging
logging.disable(logging.CRITICAL)
from pathlib import Path
p = Path(sys.argv[1])
try:
    if p.suffix == ".csv":
        import pandas as pd
        ok = len(pd.read_csv(p)) == 60
    elif (p / "metrics.json").is_file() and not (p / "config.json").exists():
        import json
        ok = json.loads((p / "metrics.json").read_text())["n"] == 60
    elif (p / "pretrain_summary.json").is_file():
        from transformers import BertModel
        BertModel.from_pretrained(p); ok = True
    else:
        from cls_app.inference.predictor import load_predictor
        load_predictor(str(p), 8, threads=1).predict_proba(["这个好"]); ok = True
except Exception as exc:
    ok = False
print("yes" if ok else "NO")
PY
}
echo "# previous outputs (written while the disk had room)"
train "$MNT/bert" >/dev/null 2>&1; echo "train: rc $?"
baseline "$MNT/base" >/dev/null 2>&1; echo "baseline: rc $?"
predict "$MNT/pred.csv" >/dev/null 2>&1; echo "predict: rc $?"
evaluate "$MNT/eval" >/dev/null 2>&1; echo "evaluate: rc $?"
pretrain "$MNT/pre" >/dev/null 2>&1; echo "pretrain: rc $?"
df -k "$MNT" | tail -1
printf '\n| free KB | command | exit | error line | temporary files left | previous output loadable |\n|---:|---|---:|---|---|---|\n'
IFS=, read -r -a FREES <<<"$FREE_KB"
for free in "${FREES[@]}"; do
  for cmd in train baseline predict evaluate pretrain; do
    rm -f "$MNT/filler"
    rm -rf "$MNT/bert2" "$MNT/pre2"
    avail=$(df -k --output=avail "$MNT" | tail -1)
    fill=$((avail - free))
    [ "$fill" -gt 0 ] && { dd if=/dev/zero of="$MNT/filler" bs=1k count="$fill" status=none 2>/dev/null || true; }
    case $cmd in
      train) target=$MNT/bert2; prev=$MNT/bert ;;
      pretrain) target=$MNT/pre2; prev=$MNT/pre ;;
      baseline) target=$MNT/base; prev=$MNT/base/char_lr ;;
      predict) target=$MNT/pred.csv; prev=$MNT/pred.csv ;;
      evaluate) target=$MNT/eval; prev=$MNT/eval ;;
    esac
    err=$("$cmd" "$target" 2>&1 >/dev/null); rc=$?
    line=$(printf '%s\n' "$err" | tr '\r' '\n' | grep -E '^error:|^Traceback|^[A-Za-z_.]*(Error|Exception)' | tail -1 | sed "s#$MNT#MNT#g" | cut -c1-110)
    temps=$(find "$MNT" \( -name '.*.tmp' -o -name '.save.*' -o -name '.*.old' -o -name '.*.lock' \) | sed "s#$MNT/##" | tr '\n' ' ')
    rm -f "$MNT/filler"
    echo "| $free | $cmd | $rc | ${line:-(none)} | ${temps:-none} | $(loadable "$prev" 2>/dev/null) |"
  done
done
