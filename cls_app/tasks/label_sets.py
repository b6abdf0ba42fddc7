"""Label-set tasks (multi-label and hierarchical): a set of labels per text, maybe empty.

Probabilities are independent per label (sigmoid outputs; NaN rows for empty texts); decisions
are ``probs >= threshold`` with thresholds tuned on dev (one global, one per label), and for a
hierarchy every predicted child also predicts its parent. ``Y`` matrices are ``(texts, labels)``
of 0/1. A hierarchical label is a path (``体育##足球``) that stands for every prefix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..errors import UserError
from ..io.labels import LABEL_SET_TASKS
from .base import ABSTAIN_COLUMNS, LabelSetPrediction, Task, abstain_cells, abstain_row, empty_rows

if TYPE_CHECKING:
    from ..io.labels import LabelSetData
    from ..io.records import ReadOptions
    from .abstain import Abstention
    from .loss import TaskLoss

THRESHOLD_GRID = tuple(round(0.05 * i, 2) for i in range(1, 20))  # 0.05 .. 0.95
MIN_POSITIVES_PER_LABEL = 5  # fewer dev positives: the label keeps the global threshold
DEFAULT_THRESHOLD = 0.5


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
        sub = multilabel_metrics(yt[:, cols], yp[:, cols], [labels[int(c)] for c in cols])
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
class LabelSets(Task):
    """Multi-label or hierarchical (``task``), the separators of a label cell, and the decision thresholds."""

    task: str = "multi-label"
    label_sep: str = ","
    path_sep: str = "##"
    thresholds: dict | None = None

    multi: ClassVar[bool] = True
    default_metric: ClassVar[str] = "micro_f1"
    metrics_names: ClassVar[tuple[str, ...]] = ("micro_f1", "samples_f1", "macro_f1", "accuracy", "weighted_f1")

    def __post_init__(self) -> None:
        if self.task not in LABEL_SET_TASKS:
            raise UserError(f"unknown label-set task {self.task!r}; choose one of {', '.join(LABEL_SET_TASKS)}")

    @property
    def name(self) -> str:
        return self.task

    # ------------------------------------------------------------------ data

    def read(self, path: str, opts: ReadOptions) -> LabelSetData:
        from ..io.labels import load_label_sets

        return load_label_sets(path, replace(opts, task=self.task, label_sep=self.label_sep, path_sep=self.path_sep))

    def split(self, data: LabelSetData, fraction: float, seed: int) -> tuple[LabelSetData, LabelSetData]:
        from ..io.labels import random_split

        return random_split(data, fraction, seed)

    def records(self, texts: Sequence[Any], targets: Sequence[Any], source: str = "(in memory)") -> LabelSetData:
        from ..io.labels import LabelSetData, parse_label_cell
        from ..io.records import as_text

        if len(texts) != len(targets):
            raise UserError(f"{source}: {len(texts)} texts but {len(targets)} label sets")
        values, sets = [], []
        for i, (text, cell) in enumerate(zip(texts, targets, strict=True)):
            value = as_text(text)
            if value is None:
                raise UserError(f"{source}, item {i + 1}: empty text; give a non-empty string (or a pair of them)")
            if isinstance(cell, set | frozenset):
                cell = sorted(cell)
            try:
                sets.append(parse_label_cell(list(cell) if isinstance(cell, tuple) else cell, self.task,
                                             self.label_sep, self.path_sep))
            except ValueError as exc:
                raise UserError(f"{source}, item {i + 1}: {exc}") from None
            values.append(value)
        return LabelSetData(values, sets, source, list(range(1, len(values) + 1)))

    def vocabulary(self, train: LabelSetData) -> list[str]:
        from ..io.labels import label_vocabulary

        return label_vocabulary(train)

    def encode(self, data: LabelSetData, labels: Sequence[str], problem: str | None = None) -> np.ndarray:
        from ..io.labels import indicator_matrix

        if problem is None:
            return indicator_matrix(data, list(labels))
        return indicator_matrix(data, list(labels), problem)

    # ------------------------------------------------------------------ scores and decisions

    def parents(self, labels: Sequence[str]) -> list[int] | None:
        return hierarchy_parents(labels, self.path_sep) if self.task == "hierarchical" else None

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        return sigmoid(logits)

    def decide(self, probs: np.ndarray, labels: Sequence[str]) -> np.ndarray:
        """0/1 decisions with the stored per-label thresholds (hierarchy: made consistent)."""
        return decide(probs, threshold_vector(self.thresholds, len(labels)), self.parents(labels))

    def metrics(self, y: np.ndarray, probs: np.ndarray, labels: Sequence[str]) -> dict:
        return task_metrics(self.task, y, probs, labels, self.thresholds, self.path_sep)

    def metrics_of(self, y: np.ndarray, pred: np.ndarray, labels: Sequence[str]) -> dict:
        if self.task == "hierarchical":
            return hierarchical_metrics(y, pred, labels, self.path_sep)
        return multilabel_metrics(y, pred, labels)

    def dev_metrics(self, y: np.ndarray, probs: np.ndarray, labels: Sequence[str]) -> dict:
        thresholds = tune_thresholds(probs, y)
        m = task_metrics(self.task, y, probs, labels, thresholds, self.path_sep)
        m["thresholds"] = thresholds
        return m

    def fitted(self, dev_metrics: dict) -> LabelSets:
        return replace(self, thresholds=dev_metrics.get("thresholds"))

    def with_separators(self, label_sep: str | None = None, path_sep: str | None = None) -> LabelSets:
        return replace(self, label_sep=label_sep or self.label_sep, path_sep=path_sep or self.path_sep)

    def align(self, labels: Sequence[str], common: Sequence[str]) -> LabelSets:
        """Thresholds over ``common``: a label this model does not know is never predicted."""
        per_label = dict(zip(labels, (self.thresholds or {}).get("per_label") or [], strict=False))
        vector = [per_label.get(n, 2.0) if n in labels else 2.0 for n in common]
        return replace(self, thresholds={"global": 0.5, "per_label": vector})

    def correct(self, y: np.ndarray, probs: np.ndarray, labels: Sequence[str]) -> np.ndarray:
        return np.asarray((self.decide(probs, labels) == np.asarray(y, dtype=bool)).all(axis=1), dtype=bool)

    # ------------------------------------------------------------------ training and the folder

    def loss(self, y: np.ndarray, labels: Sequence[str], class_weight: str) -> TaskLoss:
        from .loss import LabelSetLoss

        return LabelSetLoss(y, class_weight)

    def check_training(self, oversample: bool, metric: str) -> None:
        if oversample:
            raise UserError("--oversample works for single-label tasks only; for label sets use --class-weight "
                            "balanced (a pos_weight per label)")
        super().check_training(oversample, metric)

    def folder_fields(self) -> dict:
        out: dict[str, Any] = {"task": self.task, "label_sep": self.label_sep, "thresholds": self.thresholds}
        if self.task == "hierarchical":
            out["path_sep"] = self.path_sep
        return out

    # ------------------------------------------------------------------ outputs

    def decided(self, probs: np.ndarray, labels: Sequence[str], abstention: Abstention | None) -> np.ndarray:
        """The 0/1 decisions, abstained rows emptied."""
        pred = self.decide(probs, labels)
        if abstention is not None and abstention.abstained.any():
            pred = pred.copy()
            pred[abstention.abstained] = 0
        return pred

    def cells(self, probs: np.ndarray, labels: Sequence[str], abstention: Abstention | None = None
              ) -> list[str | None]:
        """The predicted labels of each row joined as in the training file; None for NaN rows (empty text)."""
        pred = self.decided(probs, labels, abstention)
        empty = empty_rows(probs)
        return [None if empty[i] else join_labels([labels[int(j)] for j in np.flatnonzero(pred[i])], self.task,
                                                  self.label_sep, self.path_sep)
                for i in range(len(pred))]

    def answer(self, probs: np.ndarray, labels: Sequence[str], pred: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """Label sets have no confidence test (their empty set is that): confidence 1, class 0 (-1: empty text)."""
        empty = empty_rows(probs)
        return np.ones(len(empty)), np.where(empty, -1, 0)

    def row_correct(self, y: np.ndarray, pred: np.ndarray) -> np.ndarray:
        return np.ones(len(pred), dtype=bool)

    def predictions(self, probs: np.ndarray, labels: Sequence[str], top_k: int = 1,
                    abstention: Abstention | None = None) -> list[Any]:
        """:class:`LabelSetPrediction` per row; ``probs`` lists every label (``top_k`` > 1: the best K)."""
        keep = top_k if top_k > 1 else None
        pred = self.decided(probs, labels, abstention)
        out: list[Any] = []
        for i, row in enumerate(probs):
            if np.isnan(row).all():
                out.append(LabelSetPrediction(None, ()))
                continue
            order = np.argsort(-row, kind="stable")[: keep or len(labels)]
            out.append(LabelSetPrediction(tuple(labels[int(j)] for j in np.flatnonzero(pred[i])),
                                          tuple((labels[int(j)], float(row[j])) for j in order),
                                          *abstain_row(abstention, i)))
        return out

    def output_columns(self, labels: Sequence[str], top_k: int) -> list[str]:
        """``pred_labels`` then ``prob_<label>`` per label (``top_k`` 1), or ``top1_label, top1_prob, ...``;
        then the abstention columns."""
        if top_k <= 1:
            return ["pred_labels", *(f"prob_{name}" for name in labels), *ABSTAIN_COLUMNS]
        return ["pred_labels", *(c for k in range(1, top_k + 1) for c in (f"top{k}_label", f"top{k}_prob")),
                *ABSTAIN_COLUMNS]

    def output_values(self, probs: np.ndarray, labels: Sequence[str], top_k: int,
                      abstention: Abstention | None = None) -> list[list[Any]]:
        rows: list[list[Any]] = []
        width = len(self.output_columns(labels, top_k))
        for i, (cell, row) in enumerate(zip(self.cells(probs, labels, abstention), probs, strict=True)):
            if cell is None:
                rows.append([None] * width)
            elif top_k <= 1:
                rows.append([cell, *(float(p) for p in row), *abstain_cells(abstention, i)])
            else:
                order = np.argsort(-row, kind="stable")[:top_k]
                rows.append([cell, *(v for j in order for v in (labels[j], float(row[j]))),
                             *abstain_cells(abstention, i)])
        return rows

    def service_items(self, probs: np.ndarray, labels: Sequence[str], top_k: int,
                      abstention: Abstention | None = None) -> list[dict]:
        """``{"labels": [...], "probs": [{"label", "prob"}, ...], "abstained", "reason", "ood_score"}`` per row
        (every label, or the best ``top_k``)."""
        return [{"labels": list(p.labels or ()), "probs": [{"label": n, "prob": v} for n, v in p.probs],
                 "abstained": p.abstained, "reason": p.reason, "ood_score": p.ood_score}
                for p in self.predictions(probs, labels, top_k, abstention)]

    def format_report(self, metrics: dict, labels: Sequence[str]) -> str:
        return format_multilabel_report(metrics, labels)
