#!/usr/bin/env python3
"""Drift detection (docs/monitoring.md): false alarms on windows like the dev reference, and how often a shift is
caught.

THUCNews with two classes held out of training (``game`` and ``realty``): each kind is fitted on 2,000
headlines of each of the other eight classes (``train_100k``) with 250 of each from ``dev.txt`` as
dev (the folder's drift reference), then every headline of ``test.txt`` is scored once. Windows of
``--window`` texts (default 1,000) are drawn from the scored rows:

* ``iid``: test headlines of the eight trained classes (what false alarms are measured on);
* ``held_out_5/10/20``: that share of the window from the two held-out classes;
* ``junk_10``: a tenth random characters, digits and punctuation of headline length;
* ``traditional_20/100``: that share of the window converted to traditional script (OpenCC s2t).

Each scenario gets ``--windows`` windows (default 100, rows drawn without replacement within a window);
a window drifts when :func:`cls_app.evaluation.drift.compare` says so (alpha 0.05 split among the signals).
Results go to ``OUT/drift.json``; ``--table`` prints them.

    python bench/drift.py --out bench/results/drift
    python bench/drift.py --out bench/results/drift --kinds char_svm --windows 200
    python bench/drift.py --out bench/results/drift --table
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sys
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TQDM_DISABLE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402
from task_sets import headlines  # noqa: E402

from cls_app import TextClassifier  # noqa: E402
from cls_app.evaluation.drift import compare, stats_of_records  # noqa: E402
from cls_app.inference.prediction_log import log_records  # noqa: E402

HELD_OUT = ("game", "realty")
KINDS = ("char_svm", "fasttext", "textcnn")
SCENARIOS = ("iid", "held_out_5", "held_out_10", "held_out_20", "junk_10", "traditional_20", "traditional_100")
JUNK = "abcdefghijklmnopqrstuvwxyz0123456789!@#$%^&*()_+-=[]{};:,.<>?/~"


def pools(seed: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]], dict[str, list[str]]]:
    """Training rows, dev rows and the test texts of each pool."""
    rng = random.Random(seed)
    by: dict[str, list[str]] = {}
    for text, label in headlines("train_100k"):
        by.setdefault(label, []).append(text)
    train = [(t, c) for c, texts in by.items() if c not in HELD_OUT for t in rng.sample(texts, 2000)]
    dev_by: dict[str, list[str]] = {}
    for text, label in headlines("dev"):
        dev_by.setdefault(label, []).append(text)
    dev = [(t, c) for c, texts in dev_by.items() if c not in HELD_OUT for t in rng.sample(texts, 250)]
    test = headlines("test")
    kept = [t for t, c in test if c not in HELD_OUT]
    held = [t for t, c in test if c in HELD_OUT]
    lengths = [len(t) for t in kept]
    junk = ["".join(rng.choice(JUNK) for _ in range(rng.choice(lengths))) for _ in range(2000)]
    import opencc

    s2t = opencc.OpenCC("s2t").convert
    traditional = [s2t(t) for t in kept]
    return train, dev, {"kept": kept, "held": held, "junk": junk, "traditional": traditional}


def window(rng: np.random.Generator, records: dict[str, list[dict]], scenario: str, size: int) -> list[dict]:
    name, _, share = scenario.rpartition("_")
    if scenario == "iid":
        name, share = "kept", "0"
    other = {"held_out": "held", "junk": "junk", "traditional": "traditional"}.get(name, "kept")
    n_other = int(round(size * int(share) / 100))
    picked = [records["kept"][i] for i in rng.choice(len(records["kept"]), size - n_other, replace=False)]
    if n_other:
        # traditional: converted copies of test headlines (one may also be in the window as it was)
        picked += [records[other][i] for i in rng.choice(len(records[other]), n_other, replace=False)]
    return picked


def run_kind(kind: str, train: list, dev: list, texts: dict[str, list[str]], args: argparse.Namespace) -> dict:
    start = time.perf_counter()
    model = TextClassifier(kind=kind, seed=args.seed).fit([t for t, _ in train], [c for _, c in train],
                                                          dev=([t for t, _ in dev], [c for _, c in dev]))
    fit_s = time.perf_counter() - start
    assert model.reference is not None
    records = {}
    for name, pool in texts.items():
        scored = model.score(pool)
        records[name] = log_records(model, pool, scored.probs, scored.ood, model.abstention(scored), "none")
    rng = np.random.default_rng(args.seed)
    out = {"fit_seconds": round(fit_s, 1), "reference_texts": model.reference.stats.texts, "scenarios": {}}
    for scenario in SCENARIOS:
        reports = [compare(model.reference, stats_of_records(window(rng, records, scenario, args.window)))
                   for _ in range(args.windows)]
        signals: Counter[str] = Counter(s for r in reports for s in r.drifting)
        out["scenarios"][scenario] = {"windows": len(reports), "drift": sum(r.drift for r in reports) / len(reports),
                                      "by_signal": {k: v / len(reports) for k, v in sorted(signals.items())}}
        logging.warning("  %-9s %-16s drift in %5.1f %% of %d windows  %s", kind, scenario,
                        100 * out["scenarios"][scenario]["drift"], len(reports),
                        ", ".join(f"{k} {100 * v:.0f}%" for k, v in out["scenarios"][scenario]["by_signal"].items()))
    return out


def table(results: dict) -> str:
    lines = [f"windows of {results['window']} texts, {results['windows']} per scenario; share of windows flagged",
             "", "| kind | " + " | ".join(SCENARIOS) + " |", "|---|" + "---:|" * len(SCENARIOS)]
    for kind, rec in results["kinds"].items():
        lines.append(f"| {kind} | " + " | ".join(f"{100 * rec['scenarios'][s]['drift']:.0f} %" for s in SCENARIOS)
                     + " |")
    lines += ["", "signals flagged (share of windows):", ""]
    for kind, rec in results["kinds"].items():
        for s in SCENARIOS:
            parts = ", ".join(f"{k} {100 * v:.0f} %" for k, v in rec["scenarios"][s]["by_signal"].items())
            lines.append(f"- {kind}, {s}: {parts or 'none'}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--kinds", nargs="+", default=list(KINDS))
    ap.add_argument("--window", type=int, default=1000)
    ap.add_argument("--windows", type=int, default=100)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--table", action="store_true")
    args = ap.parse_args()
    path = args.out / "drift.json"
    if args.table:
        print(table(json.loads(path.read_text(encoding="utf-8"))))
        return
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    train, dev, texts = pools(args.seed)
    results = {"window": args.window, "windows": args.windows, "held_out": list(HELD_OUT), "kinds": {}}
    for kind in args.kinds:
        results["kinds"][kind] = run_kind(kind, train, dev, texts, args)
        path.write_text(json.dumps(results, indent=1), encoding="utf-8")
    print(table(results))


if __name__ == "__main__":
    main()
