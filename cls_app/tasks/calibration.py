"""Honest probabilities and decisions for the metric, fitted on dev (single-label models).

* **Calibration** (Guo et al. 2017): one temperature ``T`` per model, fitted on dev by minimising
  the log-loss of ``softmax(log p / T)``. It keeps every ranking (argmax, top-k) and turns
  over-confident scores (a BERT, Naive Bayes) and flat ones (LinearSVC's softmax of margins) into
  probabilities that mean what they say. Quality: the expected calibration error (ECE, below).
* **Decisions for the metric**: an offset per class added to the log-probabilities before the
  argmax, fitted on dev by coordinate ascent on the selection metric (macro-F1 by default). A
  class the argmax under-predicts (a minority class that macro-F1 weighs as much as the others)
  gets a positive offset. The offsets are kept only when they raise the **cross-fitted** dev
  score (each dev fold decided by offsets fitted on the other folds) above the plain argmax's;
  that cross-fitted score is the model's honest dev score.

ECE (expected calibration error): each row's confidence is its highest class probability; rows
go into :data:`ECE_BINS` equal-width bins over [0, 1] (bin ``b`` holds ``(b/B, (b+1)/B]``, the
first also 0); ECE is the row-weighted mean of ``|accuracy - mean confidence|`` over the bins,
MCE the largest gap. Rows with NaN probabilities are left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

ECE_BINS = 15
"""Equal-width confidence bins for ECE and the reliability diagram (Guo et al. use 15)."""
EPS = 1e-12
T_RANGE = (0.01, 100.0)
OFFSET_GRID = tuple(round(x, 2) for x in np.linspace(-3.0, 3.0, 31))  # log-probability offsets tried per class
MIN_DECISION_ROWS = 100  # fewer dev rows: no offsets (they would fit noise)
FOLDS = 5
MIN_GAIN = 0.002  # offsets are kept when the cross-fitted metric beats the plain argmax by more than this
DECISION_METRICS = ("macro_f1", "weighted_f1", "accuracy")


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64 (stable)."""
    z = np.asarray(logits, dtype=np.float64)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def log_probs(probs: np.ndarray) -> np.ndarray:
    """``log(p)`` with zeros clipped to ``1e-12`` (a model certain of a wrong class is not -inf)."""
    return np.log(np.clip(probs, EPS, 1.0))


def log_loss(probs: np.ndarray, y: np.ndarray) -> float:
    """Mean negative log-likelihood of the true classes."""
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(y)), y], EPS, 1.0))))


def fit_temperature(logp: np.ndarray, y: np.ndarray) -> float:
    """The temperature in [0.01, 100] that minimises the log-loss of ``softmax(logp / T)`` (6 decimals,
    as model folders record it)."""
    from scipy.optimize import minimize_scalar

    res = minimize_scalar(lambda lt: log_loss(softmax(logp / np.exp(lt)), y),
                          bounds=tuple(np.log(T_RANGE)), method="bounded")
    return round(float(np.exp(res.x)), 6)


def calibrate(probs: np.ndarray, temperature: float | None) -> np.ndarray:
    """``softmax(log p / T)`` row by row (NaN rows stay NaN); ``T`` None or 1: unchanged."""
    probs = np.asarray(probs, dtype=np.float64)
    if temperature is None or temperature == 1.0 or not len(probs):
        return probs
    out = np.full_like(probs, np.nan)
    ok = ~np.isnan(probs).any(axis=1)
    if ok.any():  # log with the smallest positive float as floor: tiny probabilities keep their value
        out[ok] = softmax(np.log(np.maximum(probs[ok], np.finfo(np.float64).tiny)) / temperature)
    return out


def calibration(y_true: npt.ArrayLike, proba: np.ndarray, bins: int = ECE_BINS) -> dict:
    """ECE, MCE and the per-bin table ``{"lower", "upper", "count", "confidence", "accuracy"}``."""
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    proba = np.asarray(proba, dtype=np.float64)
    ok = ~np.isnan(proba).any(axis=1)
    y = np.asarray(y_true, dtype=int)[ok]
    p = proba[ok]
    conf = p.max(axis=1) if len(y) else np.empty(0)
    correct = (p.argmax(axis=1) == y) if len(y) else np.empty(0, dtype=bool)
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, bins - 1)
    table, ece, mce = [], 0.0, 0.0
    for b in range(bins):
        sel = idx == b
        count = int(sel.sum())
        row = {"lower": float(edges[b]), "upper": float(edges[b + 1]), "count": count,
               "confidence": None, "accuracy": None}
        if count:
            c, a = float(conf[sel].mean()), float(correct[sel].mean())
            row["confidence"], row["accuracy"] = round(c, 6), round(a, 6)
            gap = abs(a - c)
            ece += count / len(y) * gap
            mce = max(mce, gap)
        table.append(row)
    return {"bins": bins, "n": int(len(y)), "ece": round(ece, 6), "mce": round(mce, 6),
            "mean_confidence": round(float(conf.mean()), 6) if len(y) else None,
            "accuracy": round(float(correct.mean()), 6) if len(y) else None, "table": table}


# --------------------------------------------------------------------------- decisions for the metric


def metric_of(y: np.ndarray, pred: np.ndarray, k: int, metric: str) -> float:
    """Accuracy, macro-F1 or weighted-F1 of class ids ``pred`` against ``y`` (``k`` classes), from counts."""
    if not len(y):
        return 0.0
    if metric == "accuracy":
        return float(np.mean(pred == y))
    tp = np.bincount(y[pred == y], minlength=k).astype(np.float64)
    support = np.bincount(y, minlength=k).astype(np.float64)
    predicted = np.bincount(pred[pred >= 0], minlength=k).astype(np.float64)
    denom = support + predicted
    f1 = np.divide(2 * tp, denom, out=np.zeros(k), where=denom > 0)
    if metric == "weighted_f1":
        return float((f1 * support).sum() / support.sum())
    return float(f1.mean())


def decide(logp: np.ndarray, offsets: np.ndarray | None) -> np.ndarray:
    """``argmax(logp + offsets)`` per row."""
    return (logp if offsets is None else logp + offsets).argmax(axis=1)


def fit_offsets(logp: np.ndarray, y: np.ndarray, metric: str, grid: Sequence[float] = OFFSET_GRID,
                passes: int = 3) -> np.ndarray:
    """Per-class offsets maximising ``metric`` of ``argmax(logp + b)`` (coordinate ascent over ``grid``,
    ties to the smaller offset), centred to mean 0. A class with no row in ``y`` keeps offset 0 (before
    centring): dev says nothing about it, and pushing it away would only hide it."""
    k = logp.shape[1]
    b = np.zeros(k)
    best = metric_of(y, decide(logp, b), k, metric)
    order = sorted(grid, key=abs)
    present = np.bincount(y, minlength=k)[:k] > 0
    for _ in range(passes):
        moved = False
        for c in np.flatnonzero(present):
            for v in order:
                if v == b[c]:
                    continue
                trial = b.copy()
                trial[c] = v
                score = metric_of(y, decide(logp, trial), k, metric)
                if score > best + 1e-12:
                    best, b, moved = score, trial, True
        if not moved:
            break
    return np.round(b - b.mean(), 6)


def folds_of(y: np.ndarray, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified folds when every class has enough rows, else plain shuffled folds."""
    from sklearn.model_selection import KFold, StratifiedKFold

    counts = np.bincount(y)
    n = len(y)
    folds = min(folds, n)
    stratify = counts[counts > 0].min() >= folds
    splitter = (StratifiedKFold(folds, shuffle=True, random_state=seed) if stratify
                else KFold(folds, shuffle=True, random_state=seed))
    return list(splitter.split(np.zeros(n), y))


@dataclass
class DecisionFit:
    """What fitting on dev chose: a temperature, maybe offsets, and the honest dev figures."""

    temperature: float | None
    offsets: np.ndarray | None
    dev_pred: np.ndarray  # cross-fitted decisions on dev (offsets fitted on the other folds; argmax without them)
    report: dict = field(default_factory=dict)


def fit_decisions(y: np.ndarray, probs: np.ndarray, metric: str, seed: int = 42) -> DecisionFit:
    """Temperature, then (for ``metric``) per-class offsets kept when their cross-fitted dev score wins.

    ``probs`` are the model's uncalibrated dev probabilities (rows of the dev set, no NaN).
    """
    y = np.asarray(y, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    k = probs.shape[1]
    logp = log_probs(probs)
    temperature = fit_temperature(logp, y) if len(y) >= 2 else 1.0
    cal = calibrate(probs, temperature)
    report: dict = {"rows": int(len(y)), "temperature": round(temperature, 6),
                    "ece_before": calibration(y, probs)["ece"], "ece_after": calibration(y, cal)["ece"],
                    "log_loss_before": round(log_loss(probs, y), 6), "log_loss_after": round(log_loss(cal, y), 6)}
    plain = decide(log_probs(cal), None)
    report["metric"] = metric
    report["plain"] = round(metric_of(y, plain, k, metric), 6)
    absent = [int(c) for c in np.flatnonzero(np.bincount(y, minlength=k)[:k] == 0)]
    if absent:
        report["absent_classes"] = absent
    if len(y) >= 2 and temperature <= T_RANGE[0]:
        report["separated"] = True  # the log-loss keeps falling as T does: dev is perfectly separated
    if metric not in DECISION_METRICS or len(y) < MIN_DECISION_ROWS:
        report["offsets"] = f"not fitted ({len(y)} dev rows)" if len(y) < MIN_DECISION_ROWS else "not fitted"
        return DecisionFit(temperature, None, plain, report)
    cal_logp = log_probs(cal)
    crossed = np.empty(len(y), dtype=np.int64)
    for fit_rows, held_rows in folds_of(y, FOLDS, seed):
        b = fit_offsets(cal_logp[fit_rows], y[fit_rows], metric)
        crossed[held_rows] = decide(cal_logp[held_rows], b)
    report["cross_fitted"] = round(metric_of(y, crossed, k, metric), 6)
    if report["cross_fitted"] <= report["plain"] + MIN_GAIN:
        report["offsets"] = "not kept (the cross-fitted dev score did not improve)"
        return DecisionFit(temperature, None, plain, report)
    offsets = fit_offsets(cal_logp, y, metric)
    report["offsets"] = [round(float(v), 4) for v in offsets]
    return DecisionFit(temperature, offsets, crossed, report)
