#!/usr/bin/env bash
# How often the main job (`train --with-baselines`) opens each input file and loads the finished
# BERT's weights, counted with strace (docs/architecture.md, "The main job").
#
#   bash bench/strace_main_job.sh [REPO]      # REPO: a checkout of this project (default: this one)
#
# The run uses the default data (written by `prepare-data` into a temporary folder) and a small BERT
# (1 epoch, 1 layer): the counts do not depend on the model's size. An "open" of an input file is a
# successful openat() of it by any process; a "load" of the weights is a successful openat() of
# OUT/model.safetensors (training writes it under a temporary name and renames it into place, so
# every open of that name is a read).
set -euo pipefail
REPO=$(cd "${1:-$(dirname "$0")/..}" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
command -v strace >/dev/null || { echo "strace is not installed (apt-get install strace)"; exit 1; }
(cd "$REPO" && python run.py -q prepare-data --out "$WORK/data" >/dev/null)
start=$(date +%s)
(cd "$REPO" && strace -f -qq -e trace=openat -o "$WORK/trace" python run.py -q train \
    --train "$WORK/data/train.csv" --dev "$WORK/data/dev.csv" --test "$WORK/data/test.csv" \
    --out "$WORK/out" --with-baselines --epochs 1 --layers 1 --no-cache > "$WORK/stdout" 2> "$WORK/stderr")
end=$(date +%s)
count() { grep -F "\"$1\"" "$WORK/trace" | grep -vc "= -1 E" || true; }
echo "repo: $REPO ($(git -C "$REPO" rev-parse --short HEAD))"
for split in train dev test; do
    echo "opens of $split.csv: $(count "$WORK/data/$split.csv")"
done
echo "loads of OUT/model.safetensors: $(count "$WORK/out/model.safetensors")"
echo "wall time under strace: $((end - start)) s"
