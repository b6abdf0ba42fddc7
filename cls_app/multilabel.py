"""Multi-label decisions and scores: thresholds (tuned on dev), hierarchy consistency, metrics.

A base module (numpy and scikit-learn only) because training, the baselines (peers) and
evaluation all decide and score label sets the same way. ``Y`` matrices are ``(texts, labels)``
of 0/1; probabilities are independent per label (sigmoid outputs), NaN rows for empty texts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MULTI_TASKS = ("multi-label", "hierarchical")
THRESHOLD_GRID = tuple(round(0.05 * i, 2) for i in range(1, 20))  # 0.05 .. 0.95
MIN_POSITIVES_PER_LABEL = 5  # fewer dev positives: the label keeps the global threshold
DEFAULT_THRESHOLD = 0.5
# the figures of a label-set metrics dict that metrics.json files keep (besides n, accuracy, macro/weighted F1)
MULTI_LABEL_HEADLINE = ("micro_f1", "samples_f1", "subset_accuracy", "hamming_loss", "per_level", "thresholds")


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Element-wise logistic function, numerically stable."""
    logits = np.asarray(logits, dtype=np.float64)
    e = np.exp(-np.abs(logits))
    return np.where(logits >= 0, 1 / (1 + e), e / (1 + e))


def _f1_counts(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    denom = 2 * tp + fp + fn
    return np.divide(2 * tp, denom, out=np.zeros_like(denom, dtype=np.float64), where=denom > 0)


def tune_thresholds(probs: np.ndarray, y: np.ndarray, grid: Sequence[float] = THRESHOLD_GRID) -> dict:
    """One global threshold (best dev micro-F1) and one per label (best F1 of that label).

    A label with fewer than :data:`MIN_POSITIVES_PER_LABEL` positives keeps the global one.
    Ties go to the threshold closest to 0.5. Returns ``{"global": t, "per_label": [t, ...]}``.
    """
    probs = np.nan_to_num(np.asarray(probs, dtype=np.float64), nan=0.0)
    y = np.asarray(y, dtype=bool)
    n_labels = y.shape[1] if y.ndim == 2 else 0
    grid = sorted(grid, key=lambda t: (abs(t - DEFAULT_THRESHOLD), t))
    best_global, best_micro = DEFAULT_THRESHOLD, -1.0
    per_label_f1 = np.full((len(grid), n_labels), -1.0)
    for g, t in enumerate(grid):
        pred = probs >= t
        tp = (pred & y).sum(axis=0).astype(np.float64)
        fp = (pred & ~y).sum(axis=0).astype(np.float64)
        fn = (~pred & y).sum(axis=0).astype(np.float64)
        micro = float(_f1_counts(tp.sum(keepdims=True), fp.sum(keepdims=True), fn.sum(keepdims=True))[0])
        if micro > best_micro:
            best_global, best_micro = float(t), micro
        per_label_f1[g] = _f1_counts(tp, fp, fn)
    positives = y.sum(axis=0) if n_labels else np.zeros(0)
    per_label = [
        float(grid[int(np.argmax(per_label_f1[:, j]))]) if positives[j] >= MIN_POSITIVES_PER_LABEL else best_global
        for j in range(n_labels)
    ]
    return {"global": best_global, "per_label": per_label}


def threshold_vector(thresholds: dict | None, n_labels: int, mode: str = "per_label") -> np.ndarray:
    """The threshold of each label: per label (default) or the global one; 0.5 when none are stored."""
    if not thresholds:
        return np.full(n_labels, DEFAULT_THRESHOLD)
    if mode == "global" or not thresholds.get("per_label"):
        return np.full(n_labels, float(thresholds.get("global", DEFAULT_THRESHOLD)))
    vec = np.asarray(thresholds["per_label"], dtype=np.float64)
    if vec.shape != (n_labels,):
        raise ValueError(f"{len(vec)} per-label thresholds for {n_labels} labels")
    return vec


def decide(probs: np.ndarray, thresholds: np.ndarray, parents: Sequence[int] | None = None) -> np.ndarray:
    """0/1 decisions ``probs >= thresholds`` (NaN rows: none); with ``parents`` (hierarchy: the
    index of each label's parent, -1 for a root) every predicted child also predicts its parent."""
    pred = np.nan_to_num(np.asarray(probs, dtype=np.float64), nan=-1.0) >= np.asarray(thresholds)[None, :]
    if parents is not None:
        pred = close_upwards(pred, parents)
    return pred


def close_upwards(pred: np.ndarray, parents: Sequence[int]) -> np.ndarray:
    """Add every ancestor of each predicted label (a child implies its parent)."""
    pred = np.array(pred, dtype=bool, copy=True)
    parents = list(parents)
    depth = [_depth(j, parents) for j in range(len(parents))]
    for j in sorted(range(len(parents)), key=lambda k: -depth[k]):
        if parents[j] >= 0:
            pred[:, parents[j]] |= pred[:, j]
    return pred


def _depth(j: int, parents: Sequence[int]) -> int:
    d = 0
    while parents[j] >= 0:
        j, d = parents[j], d + 1
    return d


def multilabel_metrics(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str]) -> dict:
    """Micro/macro/weighted/samples F1, subset accuracy, Hamming loss, per-label P/R/F1 and each
    label's 2x2 confusion matrix ``[[tn, fp], [fn, tp]]``.

    ``accuracy`` is the subset accuracy (every label of the text right), so reports and the
    training log read the same keys as for single-label models. A text with no true and no
    predicted label scores a samples-F1 of 1.
    """
    yt = np.asarray(y_true, dtype=bool).reshape(-1, len(labels))
    yp = np.asarray(y_pred, dtype=bool).reshape(-1, len(labels))
    tp = (yt & yp).sum(axis=0).astype(np.float64)
    fp = (~yt & yp).sum(axis=0).astype(np.float64)
    fn = (yt & ~yp).sum(axis=0).astype(np.float64)
    tn = (~yt & ~yp).sum(axis=0).astype(np.float64)
    support = yt.sum(axis=0)
    f1 = _f1_counts(tp, fp, fn)
    precision = np.divide(tp, tp + fp, out=np.zeros_like(tp), where=(tp + fp) > 0)
    recall = np.divide(tp, tp + fn, out=np.zeros_like(tp), where=(tp + fn) > 0)
    row_tp = (yt & yp).sum(axis=1)
    row_sizes = yt.sum(axis=1) + yp.sum(axis=1)
    samples = np.divide(2 * row_tp, row_sizes, out=np.ones(len(yt)), where=row_sizes > 0)
    n = int(len(yt))
    subset = float((yt == yp).all(axis=1).mean()) if n else 0.0
    micro = float(_f1_counts(tp.sum(keepdims=True), fp.sum(keepdims=True), fn.sum(keepdims=True))[0])
    return {
        "task": "multi-label",
        "n": n,
        "accuracy": subset,
        "subset_accuracy": subset,
        "micro_f1": micro,
        "micro_precision": float(tp.sum() / max(tp.sum() + fp.sum(), 1.0)),
        "micro_recall": float(tp.sum() / max(tp.sum() + fn.sum(), 1.0)),
        "macro_f1": float(f1.mean()) if len(f1) else 0.0,
        "weighted_f1": float((f1 * support).sum() / support.sum()) if support.sum() else 0.0,
        "samples_f1": float(samples.mean()) if n else 0.0,
        "hamming_loss": float((yt != yp).mean()) if yt.size else 0.0,
        "per_class": {
            name: {"precision": float(precision[j]), "recall": float(recall[j]), "f1-score": float(f1[j]),
                   "support": int(support[j])}
            for j, name in enumerate(labels)
        },
        "label_confusion": {
            name: [[int(tn[j]), int(fp[j])], [int(fn[j]), int(tp[j])]] for j, name in enumerate(labels)
        },
    }


def hierarchy_parents(labels: Sequence[str], path_sep: str) -> list[int]:
    """The index of each path's parent path among ``labels`` (-1 for a top-level label)."""
    index = {name: i for i, name in enumerate(labels)}
    out = []
    for name in labels:
        head, sep, _ = name.rpartition(path_sep)
        out.append(index.get(head, -1) if sep else -1)
    return out


def hierarchical_metrics(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str], path_sep: str) -> dict:
    """:func:`multilabel_metrics` over every path prefix, plus the same figures per level."""
    m = multilabel_metrics(y_true, y_pred, labels)
    m["task"] = "hierarchical"
    levels = np.array([name.count(path_sep) + 1 for name in labels])
    yt, yp = np.asarray(y_true, dtype=bool), np.asarray(y_pred, dtype=bool)
    m["per_level"] = {}
    for level in sorted(set(levels.tolist())):
        cols = np.flatnonzero(levels == level)
        sub = multilabel_metrics(yt[:, cols], yp[:, cols], [labels[c] for c in cols])
        m["per_level"][str(level)] = {k: sub[k] for k in ("micro_f1", "macro_f1", "subset_accuracy", "hamming_loss")}
    return m


def task_metrics(task: str, y_true: np.ndarray, probs: np.ndarray, labels: Sequence[str], thresholds: dict | None,
                 path_sep: str = "##") -> dict:
    """Decide with the stored thresholds (and the hierarchy) and score: what every caller uses."""
    parents = hierarchy_parents(labels, path_sep) if task == "hierarchical" else None
    pred = decide(probs, threshold_vector(thresholds, len(labels)), parents)
    if task == "hierarchical":
        return hierarchical_metrics(y_true, pred, labels, path_sep)
    return multilabel_metrics(y_true, pred, labels)


def format_multilabel_report(metrics: dict, labels: Sequence[str]) -> str:
    """Headline figures, then per label precision/recall/F1/support and its 2x2 counts."""
    lines = [
        f"samples={metrics['n']}  micro_f1={metrics['micro_f1']:.4f}  macro_f1={metrics['macro_f1']:.4f}  "
        f"samples_f1={metrics['samples_f1']:.4f}  subset_accuracy={metrics['subset_accuracy']:.4f}  "
        f"hamming_loss={metrics['hamming_loss']:.4f}",
    ]
    for level, row in metrics.get("per_level", {}).items():
        lines.append(f"level {level}: micro_f1={row['micro_f1']:.4f}  macro_f1={row['macro_f1']:.4f}  "
                     f"subset_accuracy={row['subset_accuracy']:.4f}")
    lines += ["", f"{'label':<20}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}"
              f"{'tn':>8}{'fp':>8}{'fn':>8}{'tp':>8}"]
    for name in labels:
        row = metrics["per_class"][name]
        (tn, fp), (fn, tp) = metrics["label_confusion"][name]
        lines.append(f"{name:<20}{row['precision']:>10.4f}{row['recall']:>10.4f}{row['f1-score']:>10.4f}"
                     f"{int(row['support']):>10d}{tn:>8d}{fp:>8d}{fn:>8d}{tp:>8d}")
    return "\n".join(lines)


def join_labels(names: Sequence[str], task: str, label_sep: str, path_sep: str) -> str:
    """A predicted label set as one cell; hierarchical: only the deepest paths (their prefixes are implied)."""
    if task == "hierarchical":
        names = [n for n in names if not any(o != n and o.startswith(n + path_sep) for o in names)]
    return label_sep.join(names)


@dataclass(frozen=True)
class LabelSetTask:
    """What a model folder says about its labels: the task, separators and decision thresholds.

    A folder that records no task is single-label (``multi`` False), as every folder written
    before label sets existed.
    """

    task: str = "single-label"
    label_sep: str = ","
    path_sep: str = "##"
    thresholds: dict | None = None

    @classmethod
    def from_settings(cls, settings: dict | None) -> LabelSetTask:
        settings = settings or {}
        return cls(task=str(settings.get("task") or "single-label"), label_sep=settings.get("label_sep") or ",",
                   path_sep=settings.get("path_sep") or "##", thresholds=settings.get("thresholds"))

    @property
    def multi(self) -> bool:
        return self.task in MULTI_TASKS

    def decide(self, probs: np.ndarray, labels: Sequence[str]) -> np.ndarray:
        """0/1 decisions with the stored per-label thresholds (hierarchy: made consistent)."""
        parents = hierarchy_parents(labels, self.path_sep) if self.task == "hierarchical" else None
        return decide(probs, threshold_vector(self.thresholds, len(labels)), parents)

    def cells(self, probs: np.ndarray, labels: Sequence[str]) -> list[str | None]:
        """The predicted labels of each row joined as in the training file; None for NaN rows (empty text)."""
        pred = self.decide(probs, labels)
        empty = np.isnan(np.asarray(probs, dtype=np.float64)).all(axis=1) if len(labels) else np.zeros(len(probs))
        return [None if empty[i] else join_labels([labels[j] for j in np.flatnonzero(pred[i])], self.task,
                                                  self.label_sep, self.path_sep)
                for i in range(len(pred))]

    def metrics(self, y_true: np.ndarray, probs: np.ndarray, labels: Sequence[str]) -> dict:
        return task_metrics(self.task, y_true, probs, labels, self.thresholds, self.path_sep)
