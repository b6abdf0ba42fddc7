"""Predictions of multi-label and hierarchical models: label sets, their output columns.

``predict`` writes ``pred_labels`` (the predicted labels joined with the model's ``label_sep``;
hierarchical: the deepest predicted paths) and one ``prob_<label>`` column per label; with
``--top-k K`` (K > 1) the K most likely labels and their probabilities instead of every label.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ..multilabel import LabelSetTask


class LabelSetPrediction(NamedTuple):
    """One text's predicted labels (None for an empty or missing text) and label probabilities, best first."""

    labels: tuple[str, ...] | None
    probs: tuple[tuple[str, float], ...] = ()


def folder_settings(path: str | Path) -> dict:
    """This app's settings a model folder records (BERT ``config.json`` ``cls_app``, or ``baseline.json``),
    read without loading the model; {} when there are none."""
    path = Path(path)
    for name, key in (("baseline.json", None), ("config.json", "cls_app")):
        try:
            info = json.loads((path / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(info, dict):
            section = info.get(key) if key else info
            return section if isinstance(section, dict) else {}
    return {}


def folder_task(path: str | Path) -> LabelSetTask:
    """The :class:`LabelSetTask` a model folder records (single-label when none)."""
    return LabelSetTask.from_settings(folder_settings(path))


def folder_text_pair_col(path: str | Path) -> str | None:
    """The second text's column of a model trained on sentence pairs, else None."""
    return folder_settings(path).get("text_pair_col") or None


def task_of(predictor: Any) -> LabelSetTask:
    """The predictor's :class:`LabelSetTask` (single-label when it records none)."""
    return getattr(predictor, "task", None) or LabelSetTask()


def label_set_predictions(probs: np.ndarray, labels: Sequence[str], task: LabelSetTask,
                          top_k: int | None = None) -> list[LabelSetPrediction]:
    """:class:`LabelSetPrediction` per row; ``probs`` lists every label (or the ``top_k`` best)."""
    pred = task.decide(probs, labels)
    out = []
    for i, row in enumerate(probs):
        if np.isnan(row).all():
            out.append(LabelSetPrediction(None, ()))
            continue
        order = np.argsort(-row, kind="stable")[: top_k or len(labels)]
        out.append(LabelSetPrediction(tuple(labels[j] for j in np.flatnonzero(pred[i])),
                                      tuple((labels[j], float(row[j])) for j in order)))
    return out


def label_set_columns(labels: Sequence[str], top_k: int) -> list[str]:
    """``pred_labels`` then ``prob_<label>`` per label (``top_k`` 1), or ``top1_label, top1_prob, ...``."""
    if top_k <= 1:
        return ["pred_labels", *(f"prob_{name}" for name in labels)]
    return ["pred_labels", *(c for k in range(1, top_k + 1) for c in (f"top{k}_label", f"top{k}_prob"))]


def label_set_values(probs: np.ndarray, labels: Sequence[str], task: LabelSetTask, top_k: int) -> list[list[Any]]:
    """The values of :func:`label_set_columns` per row (all None for an empty text)."""
    cells = task.cells(probs, labels)
    rows: list[list[Any]] = []
    for cell, row in zip(cells, probs, strict=True):
        if cell is None:
            rows.append([None] * len(label_set_columns(labels, top_k)))
        elif top_k <= 1:
            rows.append([cell, *(float(p) for p in row)])
        else:
            order = np.argsort(-row, kind="stable")[:top_k]
            rows.append([cell, *(v for j in order for v in (labels[j], float(row[j])))])
    return rows
