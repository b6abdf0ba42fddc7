"""How well does ``run.py audit`` find wrong labels? Plant them and count.

Flips the labels of a known share (default 5 %) of the rows of a labeled file (default:
THUCNews ``dev.txt``) to a random *other* class, runs the audit's label-issue search
(K-fold TF-IDF + LogisticRegression out-of-fold probabilities -> cleanlab
``find_label_issues``) on the noisy copy, and reports precision and recall of the flagged
rows against the planted flips, beside a simpler ranking: the rows with the lowest
out-of-fold probability of their given label, as many as were planted.

    python bench/audit_noise.py [--data ../shared/data/thucnews/dev.txt] [--noise 0.05] [--seed 0]

Prints one JSON object. Nothing is written.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cls_app.evaluation.audit import AuditOptions, label_issues, out_of_fold_proba  # noqa: E402
from cls_app.io.records import LabeledData, label_list, load_labeled  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "thucnews" / "dev.txt"


def plant_noise(data: LabeledData, share: float, seed: int) -> tuple[LabeledData, np.ndarray]:
    """A copy of ``data`` with ``share`` of its labels flipped to a random other class; the flipped rows."""
    labels = label_list(data)
    rng = np.random.default_rng(seed)
    flipped = np.sort(rng.choice(len(data), int(round(share * len(data))), replace=False))
    noisy = list(data.labels)
    for i in flipped:
        noisy[i] = str(rng.choice([name for name in labels if name != data.labels[i]]))
    return LabeledData(list(data.texts), noisy, data.source, data.lines), flipped


def precision_recall(found: np.ndarray, truth: np.ndarray) -> dict:
    hit = len(set(found.tolist()) & set(truth.tolist()))
    return {"flagged": int(len(found)), "correct": hit, "precision": round(hit / max(len(found), 1), 4),
            "recall": round(hit / max(len(truth), 1), 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--noise", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--folds", type=int, default=AuditOptions().folds)
    ap.add_argument("--rows", type=int, default=0, help="audit only the first N rows (0: all)")
    ap.add_argument("--model-kind", default=AuditOptions().model_kind)
    args = ap.parse_args()
    clean = load_labeled(args.data)
    if args.rows:
        clean = clean.subset(list(range(min(args.rows, len(clean)))))
    noisy, truth = plant_noise(clean, args.noise, args.seed)
    labels = label_list(noisy)
    index = {name: i for i, name in enumerate(labels)}
    y = np.array([index[name] for name in noisy.labels])
    t0 = time.perf_counter()
    oof = out_of_fold_proba(noisy, labels, AuditOptions(folds=args.folds, seed=args.seed, model_kind=args.model_kind))
    oof_seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    flagged = label_issues(y, oof)
    cleanlab_seconds = time.perf_counter() - t1
    simple = np.argsort(oof[np.arange(len(y)), y], kind="stable")[: len(truth)]
    print(json.dumps({
        "data": args.data, "rows": len(noisy), "model_kind": args.model_kind, "planted": int(len(truth)),
        "noise": args.noise, "seed": args.seed,
        "folds": args.folds, "out_of_fold_accuracy_vs_noisy": round(float(np.mean(oof.argmax(1) == y)), 4),
        "cleanlab_find_label_issues": precision_recall(flagged, truth),
        "cleanlab_top_n_planted": precision_recall(flagged[: len(truth)], truth),
        "lowest_given_label_probability_top_n": precision_recall(simple, truth),
        "seconds": {"out_of_fold": round(oof_seconds, 1), "cleanlab": round(cleanlab_seconds, 2)},
    }, indent=2))


if __name__ == "__main__":
    main()
