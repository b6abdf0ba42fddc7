"""Self-training on unlabeled text (``train --unlabeled``), kept only where dev says it helps.

A model is fitted on the labeled rows; it labels the unlabeled texts; the texts whose answer is at
least as confident as the threshold at which its **dev** answers are :data:`PRECISION` accurate
(calibrated probabilities, honest dev decisions) join the training rows with that answer; a new model
is fitted; it replaces the old one only when its dev score is higher by more than :data:`MIN_GAIN`.
Up to :data:`ROUNDS` rounds, stopping at the first that does not help. Single-label tasks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ..io.records import LabeledData
from ..models.base import TextClassifier
from ..tasks.abstain import precision_threshold

log = logging.getLogger(__name__)

PRECISION = 0.95
MIN_GAIN = 0.002
ROUNDS = 3


def self_train(make: Callable[[], TextClassifier], train: LabeledData, dev: LabeledData, task: Any,
               unlabeled: list[str], metric: str) -> tuple[TextClassifier, dict]:
    """The model ``make()`` fitted on ``train``, then self-trained on ``unlabeled`` while dev improves;
    and a report (rounds kept, texts added, dev scores)."""
    model = make().fit_records(train, dev, task)
    best = float(model.dev_scores(dev)[metric])
    report: dict = {"dev_without": round(best, 6), "rounds": [], "kept_rounds": 0, "added": 0}
    pool = [t for t in unlabeled if t and t.strip()]
    rows = train
    for r in range(ROUNDS):
        if not pool or model.dev_probs is None:
            break
        y_dev = task.encode(dev, model.labels)
        conf_dev, pred_dev = task.answer(model.dev_probs, model.labels, model.dev_pred)
        threshold = precision_threshold(conf_dev, pred_dev == y_dev, PRECISION)
        probs = model.predict_proba(pool)
        conf, pred = task.answer(probs, model.labels)
        take = (conf >= threshold) & (pred >= 0)
        if not take.any():
            report["rounds"].append({"round": r + 1, "threshold": round(threshold, 4), "added": 0})
            break
        added = LabeledData([t for t, k in zip(pool, take, strict=True) if k],
                            [model.labels[int(p)] for p in pred[take]], "pseudo-labels")
        rows = LabeledData([*rows.texts, *added.texts], [*rows.labels, *added.labels], "train + pseudo-labels")
        candidate = make().fit_records(rows, dev, task)
        score = float(candidate.dev_scores(dev)[metric])
        kept = score > best + MIN_GAIN
        report["rounds"].append({"round": r + 1, "threshold": round(threshold, 4), "added": int(take.sum()),
                                 "dev": round(score, 6), "kept": kept})
        log.info("%s self-training round %d: %d pseudo-labels above %.3f, dev %s %.4f (%s)", model.kind, r + 1,
                 int(take.sum()), threshold, metric, score, "kept" if kept else "not better: stopped")
        if not kept:
            break
        model, best = candidate, score
        report["kept_rounds"] += 1
        report["added"] += int(take.sum())
        pool = [t for t, k in zip(pool, take, strict=True) if not k]
    report["dev_with"] = round(best, 6)
    meta = getattr(model, "meta", None)
    if isinstance(meta, dict):
        meta["self_training"] = report
    return model, report
