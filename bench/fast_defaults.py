#!/usr/bin/env python3
"""Choosing the fast kinds' defaults (``textcnn``, ``fasttext``) on the bench of sets, dev splits only.

For each set of ``bench/selection.py`` (run that first: it builds the sets under
``bench/results/selection/NAME/data``) a variant of the kind's settings is fitted on the set's
training rows less a tenth held out (seeded, the same for every variant), that tenth doing what dev
does inside training (the best epoch, calibration, decisions), and is scored on the set's **dev**
split (macro-F1 of its decisions). The test splits are never read. A variant is one change (or a
few) from the current defaults; the table gives each variant's dev macro-F1 per set, its mean, its
change against the defaults (mean, worst and best set) and its training seconds on THUCNews.

    python bench/fast_defaults.py --kind textcnn                      # the default variants (~30 min, 2 cores)
    python bench/fast_defaults.py --kind fasttext
    python bench/fast_defaults.py --kind textcnn --variants "e12:epochs=12" "e12_lr4:epochs=12,lr=4e-3"
    python bench/fast_defaults.py --kind textcnn --table              # the table from the saved results

Results: ``OUT/KIND.json`` (``--out``, default ``bench/results/fast_defaults``), one entry per
variant and set, kept across runs (a variant run again replaces its entry).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TQDM_DISABLE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from load_test import cpu_model  # noqa: E402  (bench/: the script's folder is on sys.path)
from selection import SETS  # noqa: E402

from cls_app import TextClassifier  # noqa: E402
from cls_app.io.records import ReadOptions  # noqa: E402
from cls_app.tasks import SingleLabel  # noqa: E402

SELECTION = ROOT / "bench" / "results" / "selection"
METRIC = "macro_f1"
VARIANTS = {
    "textcnn": ["default", "e12:epochs=12", "e20:epochs=20", "lr1e-3_e12:lr=1e-3,epochs=12", "lr4e-3:lr=4e-3",
                "embed128:embed=128", "dropout0.3:dropout=0.3", "filters256:filters=256", "batch32:batch_size=32"],
    "fasttext": ["default", "epoch50:epoch=50", "lr1.0:lr=1.0", "lr0.25:lr=0.25", "dim100:dim=100",
                 "ngrams3:word_ngrams=3", "chars_only:words=False", "min_count2:min_count=2", "dim32:dim=32"],
}


def parse_variant(spec: str) -> tuple[str, dict]:
    """``name:key=value,key=value`` (or ``default``) -> (name, settings)."""
    name, _, body = spec.partition(":")
    values: dict = {}
    for item in filter(None, body.split(",")):
        key, _, raw = item.partition("=")
        value: object = raw
        for cast in (int, float):
            try:
                value = cast(raw)
                break
            except ValueError:
                continue
        if raw in ("True", "False"):
            value = raw == "True"
        values[key.strip()] = value
    return name, values


def read_set(name: str) -> tuple:
    folder = SELECTION / name / "data"
    if not folder.is_dir():
        raise SystemExit(f"error: {folder} is missing; build the sets first: python bench/selection.py")
    pair_col = "text_b" if "text_b" in (folder / "train.csv").read_text(encoding="utf-8").split("\n", 1)[0] else None
    opts = ReadOptions(text_col="text", label_col="label", text_pair_col=pair_col)
    task = SingleLabel()
    return task, task.read(str(folder / "train.csv"), opts), task.read(str(folder / "dev.csv"), opts), pair_col


def run_variant(kind: str, values: dict, name: str, seed: int = 0) -> dict:
    out = {}
    for set_name in SETS:
        task, train, dev, pair_col = read_set(set_name)
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(train))
        cut = max(1, len(train) // 10)
        inner, rest = sorted(order[:cut].tolist()), sorted(order[cut:].tolist())
        t0 = time.perf_counter()
        model = TextClassifier(kind=kind, **values).fit_records(train.subset(rest), train.subset(inner), task,
                                                                 text_pair_col=pair_col)
        seconds = time.perf_counter() - t0
        probs = model.predict_proba(list(dev.texts))
        y = np.array([model.labels.index(x) for x in dev.labels])
        score = model.task.metrics_of(y, model.task.decide(probs, model.labels), model.labels)[METRIC]
        out[set_name] = {"dev_macro_f1": round(float(score), 4), "train_seconds": round(seconds, 1)}
        print(f"{kind} {name:<14} {set_name:<15} dev macro-F1 {score:.4f}  {seconds:6.1f}s", flush=True)
    return out


def table(results: dict) -> str:
    base = results.get("default")
    lines = ["| variant | " + " | ".join(SETS) + " | mean | vs default: mean / worst / best | THUCNews s |",
             "|---" * (len(SETS) + 4) + "|"]
    rows = []
    for name, per_set in results.items():
        if not all(s in per_set for s in SETS):
            continue
        scores = np.array([per_set[s]["dev_macro_f1"] for s in SETS])
        delta = "" if base is None else (lambda d: f"{d.mean():+.4f} / {d.min():+.4f} / {d.max():+.4f}")(
            scores - np.array([base[s]["dev_macro_f1"] for s in SETS]))
        rows.append((scores.mean(), f"| {name} | " + " | ".join(f"{v:.4f}" for v in scores)
                     + f" | {scores.mean():.4f} | {delta} | {per_set['thucnews']['train_seconds']:.1f} |"))
    return "\n".join(lines + [r for _, r in sorted(rows, key=lambda r: -r[0])])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kind", choices=sorted(VARIANTS), required=True)
    ap.add_argument("--variants", nargs="*", help="name:key=value,... (default: the built-in list)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "fast_defaults")
    ap.add_argument("--table", action="store_true", help="print the saved table only")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{args.kind}.json"
    saved = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {"cpu": cpu_model(), "variants": {}}
    if not args.table:
        for spec in args.variants or VARIANTS[args.kind]:
            name, values = parse_variant(spec)
            saved["variants"][name] = {"settings": values, **run_variant(args.kind, values, name)}
            saved["cpu"] = cpu_model()
            path.write_text(json.dumps(saved, indent=1, ensure_ascii=False), encoding="utf-8")
    print(f"{args.kind} on {saved['cpu']}, dev macro-F1 (fitted on train less a tenth; test never read):")
    print(table({k: {s: v[s] for s in SETS if s in v} for k, v in saved["variants"].items()}))


if __name__ == "__main__":
    main()
