"""Where a model goes wrong: every wrong row, the class pairs it confuses, top-k accuracy.

All functions take the gold label ids ``y_true`` (shape ``(n,)``) and the class probabilities
``proba`` (shape ``(n, classes)``, column ``j`` is ``labels[j]``); the prediction is the
arg-max of a row. Rows whose probabilities are NaN (no text to score) are left out of the
error list and of top-k accuracy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

ERROR_COLUMNS = ["row", "text", "gold", "predicted", "probability", "gold_probability", "margin"]
"""Columns of ``errors.csv``: ``row`` is the record's line in the data file (1-based, as an
editor shows it), ``probability`` the predicted class's, ``margin`` = probability -
gold_probability (how far the model is from getting the row right)."""

PAIR_COLUMNS = ["gold", "predicted", "count", "share_of_gold", "examples"]


@dataclass(frozen=True)
class ErrorOptions:
    """How much of the error analysis goes into report.txt / metrics.json."""

    top_pairs: int = 10
    """Most confused (gold, predicted) pairs listed in report.txt and metrics.json
    (``confused_pairs.csv`` lists every pair with at least one error)."""
    pair_examples: int = 3
    """Example texts per confused pair: the ones predicted most confidently."""
    top_k: tuple[int, ...] = (2, 3)
    """Top-k accuracies reported (each k below the number of classes)."""


def _valid(proba: np.ndarray) -> np.ndarray:
    return ~np.isnan(proba).any(axis=1)


def row_numbers(n: int, rows: Sequence[int] | None) -> list[int]:
    """The file line of each record; 1..n when the lines are not known."""
    return list(rows) if rows is not None else list(range(1, n + 1))


def error_table(
    texts: Sequence[str], y_true: npt.ArrayLike, proba: np.ndarray, labels: Sequence[str],
    rows: Sequence[int] | None = None,
) -> pd.DataFrame:
    """Every wrongly predicted row (:data:`ERROR_COLUMNS`), most confident error first.

    Ties in probability keep file order.
    """
    proba = np.asarray(proba, dtype=np.float64)
    y = np.asarray(y_true, dtype=int)
    ok = _valid(proba)
    pred = np.where(ok, np.nan_to_num(proba, nan=-1.0).argmax(axis=1), -1)
    wrong = np.flatnonzero(ok & (pred != y))
    line = row_numbers(len(y), rows)
    p_pred = proba[wrong, pred[wrong]]
    p_gold = proba[wrong, y[wrong]]
    frame = pd.DataFrame({
        "row": [line[int(i)] for i in wrong],
        "text": [texts[int(i)] for i in wrong],
        "gold": [labels[int(y[i])] for i in wrong],
        "predicted": [labels[int(pred[i])] for i in wrong],
        "probability": np.round(p_pred, 6),
        "gold_probability": np.round(p_gold, 6),
        "margin": np.round(p_pred - p_gold, 6),
    }, columns=ERROR_COLUMNS)
    order = np.lexsort((np.arange(len(wrong)), -p_pred)) if len(wrong) else np.array([], dtype=int)
    return frame.iloc[order].reset_index(drop=True)


def confused_pairs(errors: pd.DataFrame, y_true: npt.ArrayLike, labels: Sequence[str], examples: int = 3) -> list[dict]:
    """(gold, predicted) pairs by number of errors, most first; ties by class order.

    Each pair has ``count``, ``share_of_gold`` (the share of the gold class's rows that went
    to this wrong class) and ``examples``: up to ``examples`` rows ``{"row", "text",
    "probability"}``, the most confidently wrong first (``errors`` is sorted that way).
    """
    support = np.bincount(np.asarray(y_true, dtype=int), minlength=len(labels))
    index = {name: i for i, name in enumerate(labels)}
    out = []
    for (gold, pred), group in errors.groupby(["gold", "predicted"], sort=False):
        out.append({
            "gold": gold,
            "predicted": pred,
            "count": int(len(group)),
            "share_of_gold": round(len(group) / max(int(support[index[gold]]), 1), 4),
            "examples": [
                {"row": int(r.row), "text": r.text, "probability": float(r.probability)}
                for r in group.head(examples).itertuples()
            ],
        })
    out.sort(key=lambda p: (-p["count"], index[p["gold"]], index[p["predicted"]]))
    return out


def pairs_frame(pairs: list[dict]) -> pd.DataFrame:
    """``confused_pairs.csv``: one row per pair; examples joined as ``row N: text`` by `` | ``."""
    return pd.DataFrame([
        {**{k: p[k] for k in PAIR_COLUMNS[:-1]},
         "examples": " | ".join(f"row {e['row']}: {e['text']}" for e in p["examples"])}
        for p in pairs
    ], columns=PAIR_COLUMNS)


def top_k_accuracy(y_true: npt.ArrayLike, proba: np.ndarray, k: int) -> float:
    """Share of rows whose gold class is among the ``k`` most probable (NaN rows left out)."""
    proba = np.asarray(proba, dtype=np.float64)
    ok = _valid(proba)
    y = np.asarray(y_true, dtype=int)[ok]
    if not len(y):
        return 0.0
    p = proba[ok]
    gold = p[np.arange(len(y)), y]
    # rank = classes strictly more probable than gold; ties count in the gold class's favour
    rank = (p > gold[:, None]).sum(axis=1)
    return float(np.mean(rank < k))


def format_pairs(pairs: list[dict], limit: int, width: int = 60) -> str:
    """The most confused pairs as text for report.txt."""
    if not pairs:
        return "most confused class pairs: none (no errors)"
    lines = [f"most confused class pairs (gold -> predicted), top {min(limit, len(pairs))} of {len(pairs)}:"]
    for p in pairs[:limit]:
        lines.append(f"  {p['gold']} -> {p['predicted']}: {p['count']} ({p['share_of_gold']:.1%} of {p['gold']})")
        for e in p["examples"]:
            text = e["text"] if len(e["text"]) <= width else e["text"][: width - 1] + "…"
            lines.append(f"      row {e['row']} (p={e['probability']:.2f}): {text}")
    return "\n".join(lines)
