#!/usr/bin/env python3
"""What the ensemble's member set, combine rule and fitting are worth (docs/ensembles.md).

    python run.py train --train ../shared/data/thucnews/dev.txt --test ../shared/data/thucnews/test.txt \
        --out saved_models/thucnews --threads 1 --with-baselines
    python bench/ensemble_variants.py saved_models/thucnews \
        --train ../shared/data/thucnews/dev.txt --test ../shared/data/thucnews/test.txt

Scores BERT (the folder) and every baseline under OUT/baselines once on the run's dev rows (the
same split as train: --dev, or the held-out part of --train for --seed) and on --test, then fits
each variant on dev only and prints its cross-fitted dev accuracy and its test accuracy.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cls_app.evaluation.compare import mcnemar_exact  # noqa: E402
from cls_app.io.records import DataOptions  # noqa: E402
from cls_app.models import load  # noqa: E402
from cls_app.models.ensemble import (  # noqa: E402
    EnsembleSettings,
    combine,
    cross_fitted_probs,
    fit_ensemble,
    member_scores,
)
from cls_app.tasks import SingleLabel  # noqa: E402

BASELINES = ["char_svm", "char_lr", "char_nb", "word_svm", "word_lr", "word_nb"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path, help="a train --with-baselines output folder")
    ap.add_argument("--train", required=True)
    ap.add_argument("--dev")
    ap.add_argument("--test", required=True)
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()
    _, dev, test = SingleLabel().load_splits(DataOptions(train=args.train, dev=args.dev, test=args.test), args.seed)
    names = ["bert", *BASELINES]
    members = [load(args.out, follow=False), *(load(args.out / "baselines" / n) for n in BASELINES)]
    labels = list(members[0].labels)
    dev_s, test_s = (member_scores(members, d.texts, labels, str(args.out))[:2] for d in (dev, test))
    scores = {n: [a, b] for n, a, b in zip(names, dev_s, test_s, strict=True)}
    yd = np.array([labels.index(x) for x in dev.labels])
    yt = np.array([labels.index(x) for x in test.labels])

    def variant(members: list[str], **kw) -> tuple[float, float, np.ndarray]:
        s = EnsembleSettings(**kw)
        fit = fit_ensemble([scores[m][0] for m in members], yd, s)
        # nothing fitted: the plain dev score is already honest
        cv = (cross_fitted_probs([scores[m][0] for m in members], yd, s, args.seed) if s.fit
              else combine([scores[m][0] for m in members], fit.weights, fit.temperatures, s.combine))
        right = combine([scores[m][1] for m in members], fit.weights, fit.temperatures, s.combine).argmax(1) == yt
        dev_acc = float((cv.argmax(1) == yd).mean())
        return dev_acc, float(right.mean()), right

    rows = [
        ("BERT + all six baselines, logprob, fitted + shrunk (default)", names, {}),
        ("the same, combine prob", names, {"combine": "prob"}),
        ("the same, equal weights and T = 1 (--no-fit)", names, {"fit": False}),
        ("the same, no shrinkage (--shrink-rows 0)", names, {"shrink_rows": 0}),
        ("the six baselines without BERT", BASELINES, {}),
        ("BERT + char_svm + char_lr", ["bert", "char_svm", "char_lr"], {}),
        ("BERT + char_svm", ["bert", "char_svm"], {}),
        ("BERT + char_nb", ["bert", "char_nb"], {}),
    ]
    results = {}
    print("| ensemble | dev (cross-fitted) | test |\n| --- | ---: | ---: |")
    for title, members, kw in rows:
        dev_acc, test_acc, right = variant(members, **kw)
        results[title] = right
        print(f"| {title} | {dev_acc:.3f} | {test_acc:.4f} |")
    first = results[rows[0][0]]
    for title in (rows[4][0], "char_svm"):
        other = results.get(title, scores["char_svm"][1].argmax(1) == yt)
        print(f"default vs {title}: {mcnemar_exact(first, other)}")


if __name__ == "__main__":
    main()
