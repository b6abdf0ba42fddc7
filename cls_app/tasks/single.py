"""Single-label classification: one class per text, softmax probabilities (calibrated by a temperature
fitted on dev), argmax decisions (with per-class offsets fitted on dev for the selection metric, when
they help: :mod:`.calibration`), accuracy / macro-F1 / per-class report / confusion matrix."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import numpy.typing as npt

from ..errors import UserError
from .base import ABSTAIN_COLUMNS, Prediction, Task, abstain_cells, abstain_row, check_top_k, empty_rows
from .calibration import T_RANGE, DecisionFit, calibrate, fit_decisions, log_probs, softmax

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from ..io.records import LabeledData, ReadOptions
    from .abstain import Abstention
    from .loss import TaskLoss


def compute_metrics(y_true: npt.ArrayLike, y_pred: npt.ArrayLike, labels: list[str]) -> dict:
    """Metrics for integer label ids ``0..len(labels)-1``, counted from the confusion matrix.

    Returns accuracy, macro/weighted F1, the per-class report (precision, recall, F1, support per
    class name, as scikit-learn's ``classification_report`` gives them, 0 where undefined) and the
    confusion matrix (rows = true, columns = predicted; a prediction outside the ids is wrong and in
    no column).
    """
    k = len(labels)
    yt, yp = np.asarray(y_true, dtype=np.int64).ravel(), np.asarray(y_pred, dtype=np.int64).ravel()
    inside = (yp >= 0) & (yp < k) & (yt >= 0) & (yt < k)
    cm = np.bincount(yt[inside] * k + yp[inside], minlength=k * k).reshape(k, k)
    tp = np.diag(cm).astype(np.float64)
    support = np.bincount(yt[(yt >= 0) & (yt < k)], minlength=k).astype(np.float64)
    predicted = cm.sum(axis=0).astype(np.float64)
    precision = np.divide(tp, predicted, out=np.zeros(k), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros(k), where=support > 0)
    denom = support + predicted
    f1 = np.divide(2 * tp, denom, out=np.zeros(k), where=denom > 0)
    total = support.sum()
    return {
        "n": int(len(yt)),
        "accuracy": float(np.mean(yt == yp)) if len(yt) else 0.0,
        "macro_f1": float(f1.mean()) if k else 0.0,
        "weighted_f1": float((f1 * support).sum() / total) if total > 0 else 0.0,
        "per_class": {name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1-score": float(f1[i]),
                             "support": float(support[i])} for i, name in enumerate(labels)},
        "confusion_matrix": cm.tolist(),
    }


def format_report(metrics: dict, labels: list[str]) -> str:
    """A plain-text report: headline figures, per-class table, labelled confusion matrix."""
    lines = [
        f"samples={metrics['n']}  accuracy={metrics['accuracy']:.4f}  "
        f"macro_f1={metrics['macro_f1']:.4f}  weighted_f1={metrics['weighted_f1']:.4f}",
        "",
        f"{'class':<20}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}",
    ]
    for name in labels:
        row = metrics["per_class"][name]
        lines.append(
            f"{name:<20}{row['precision']:>10.4f}{row['recall']:>10.4f}"
            f"{row['f1-score']:>10.4f}{int(row['support']):>10d}"
        )
    lines += ["", "confusion matrix (rows = true, columns = predicted):", confusion_table(metrics, labels)]
    return "\n".join(lines)


def confusion_table(metrics: dict, labels: list[str]) -> str:
    """The confusion matrix as a labelled text table."""
    import pandas as pd

    frame = pd.DataFrame(metrics["confusion_matrix"], index=labels, columns=labels)
    frame.index.name = "true \\ pred"
    return frame.to_string()


@dataclass(frozen=True)
class SingleLabel(Task):
    """One class per text (the task of every folder that records none).

    ``temperature``: the calibration fitted on dev (None: probabilities as the model gives them);
    ``offsets``: per-class log-probability offsets of the decision (None: plain argmax);
    ``metric``: the metric the offsets were fitted for.
    """

    temperature: float | None = None
    offsets: tuple[float, ...] | None = None
    metric: str | None = None

    multi: ClassVar[bool] = False
    default_metric: ClassVar[str] = "macro_f1"
    metrics_names: ClassVar[tuple[str, ...]] = ("macro_f1", "accuracy", "weighted_f1")

    @property
    def name(self) -> str:
        return "single-label"

    def read(self, path: str, opts: ReadOptions) -> LabeledData:
        return opts.read(path)

    def split(self, data: LabeledData, fraction: float, seed: int) -> tuple[LabeledData, LabeledData]:
        from ..io.records import stratified_split

        return stratified_split(data, fraction, seed)

    def records(self, texts: Sequence[Any], targets: Sequence[Any], source: str = "(in memory)") -> LabeledData:
        from ..io.records import LabeledData, as_text

        if len(texts) != len(targets):
            raise UserError(f"{source}: {len(texts)} texts but {len(targets)} labels")
        values, names = [], []
        for i, (text, label) in enumerate(zip(texts, targets, strict=True)):
            value = as_text(text)
            if value is None:
                raise UserError(f"{source}, item {i + 1}: empty text; give a non-empty string (or a pair of them)")
            if not isinstance(label, str | int) or isinstance(label, bool) or not str(label).strip():
                raise UserError(f"{source}, item {i + 1}: the label must be a non-empty string, got {label!r}")
            values.append(value)
            names.append(str(label).strip())
        return LabeledData(values, names, source, lines=list(range(1, len(values) + 1)))

    def vocabulary(self, train: LabeledData) -> list[str]:
        from ..io.records import label_list

        return label_list(train)

    def encode(self, data: LabeledData, labels: Sequence[str], problem: str | None = None) -> np.ndarray:
        from ..io.records import label_ids

        label2id = {name: i for i, name in enumerate(labels)}
        if problem is None:
            return np.asarray(label_ids(data, label2id), dtype=np.int64)
        return np.asarray(label_ids(data, label2id, problem), dtype=np.int64)

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        return softmax(logits)

    def calibrate(self, probs: np.ndarray) -> np.ndarray:
        return calibrate(probs, self.temperature)

    def uncalibrate(self, probs: np.ndarray) -> np.ndarray:
        return calibrate(probs, 1.0 / self.temperature) if self.temperature else np.asarray(probs, dtype=np.float64)

    def decide(self, probs: np.ndarray, labels: Sequence[str]) -> np.ndarray:
        """The class of each row: ``argmax(log p + offsets)`` (-1 for an empty text's NaN row)."""
        probs = np.asarray(probs, dtype=np.float64)
        if not len(probs):
            return np.zeros(0, dtype=np.int64)
        empty = empty_rows(probs)
        scores = log_probs(np.nan_to_num(probs, nan=0.0))
        if self.offsets is not None:
            scores = scores + np.asarray(self.offsets)
        pred = scores.argmax(axis=1)
        pred[empty] = -1
        return pred

    def fit_decisions(self, y: np.ndarray, probs: np.ndarray, labels: Sequence[str], metric: str | None,
                      seed: int = 42) -> tuple[SingleLabel, DecisionFit | None]:
        """The temperature and (for ``metric``) the offsets fitted on the dev rows ``y`` / ``probs``
        (uncalibrated); :class:`~.calibration.DecisionFit` holds the honest dev decisions and the report."""
        fit = fit_decisions(y, probs, metric or self.default_metric, seed)
        absent = [labels[c] for c in fit.report.get("absent_classes", [])]
        if absent and isinstance(fit.report.get("offsets"), list):
            log.warning("dev has no row of class(es) %s: their decision offsets stay 0", ", ".join(absent))
        if fit.report.get("separated"):
            log.warning("dev is perfectly separated: the calibration temperature stops at its bound %s, so the "
                        "probabilities are close to 0 and 1", T_RANGE[0])
        offsets = None if fit.offsets is None else tuple(float(v) for v in fit.offsets)
        return SingleLabel(fit.temperature, offsets, metric or self.default_metric), fit

    def metrics_of(self, y: np.ndarray, pred: np.ndarray, labels: Sequence[str]) -> dict:
        """Metrics of decided class ids ``pred`` (e.g. the cross-fitted dev decisions)."""
        return compute_metrics(y, pred, list(labels))

    def metrics(self, y: np.ndarray, probs: np.ndarray, labels: Sequence[str]) -> dict:
        return compute_metrics(y, self.decide(probs, labels), list(labels))

    def correct(self, y: np.ndarray, probs: np.ndarray, labels: Sequence[str]) -> np.ndarray:
        return np.asarray(self.decide(probs, labels) == np.asarray(y), dtype=bool)

    def loss(self, y: np.ndarray, labels: Sequence[str], class_weight: str) -> TaskLoss:
        from .loss import ClassLoss

        return ClassLoss(y, len(labels), class_weight)

    def check_training(self, oversample: bool, metric: str) -> None:
        if metric in ("micro_f1", "samples_f1"):
            raise UserError(f"--metric {metric} is for --task multi-label / hierarchical; single-label tasks pick "
                            f"{', '.join(self.metrics_names)}")
        super().check_training(oversample, metric)

    def folder_fields(self) -> dict:
        out: dict[str, Any] = {}
        if self.temperature is not None:
            out["calibration"] = {"temperature": float(self.temperature)}
        if self.metric is not None:
            out["decision"] = {"metric": self.metric,
                               "offsets": None if self.offsets is None else [float(v) for v in self.offsets]}
        return out

    def ranked(self, probs: np.ndarray, labels: Sequence[str], top_k: int) -> tuple[np.ndarray, np.ndarray]:
        """Per row, the ``top_k`` class ids and their probabilities: the decided class first, then the others
        by probability (the same as by probability alone unless offsets moved a decision; -1 for empty rows)."""
        probs = np.asarray(probs, dtype=np.float64)
        filled = np.nan_to_num(probs, nan=-1.0)
        order = np.argsort(-filled, axis=1, kind="stable")
        if self.offsets is not None and len(order):
            pred = self.decide(probs, labels)
            for i in np.flatnonzero((pred >= 0) & (order[:, 0] != pred)):
                row = order[i]
                order[i] = np.concatenate([[pred[i]], row[row != pred[i]]])
        order = order[:, :top_k]
        return order, np.take_along_axis(filled, order, axis=1)

    def answer(self, probs: np.ndarray, labels: Sequence[str], pred: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """The decided class (``pred`` when given) and its probability."""
        probs = np.asarray(probs, dtype=np.float64)
        pred = self.decide(probs, labels) if pred is None else np.asarray(pred, dtype=np.int64)
        if not len(probs):
            return np.zeros(0), pred
        conf = np.take_along_axis(np.nan_to_num(probs, nan=0.0), np.clip(pred, 0, None)[:, None], axis=1)[:, 0]
        return conf, pred

    def row_correct(self, y: np.ndarray, pred: np.ndarray) -> np.ndarray:
        return np.asarray(pred) == np.asarray(y)

    def predictions(self, probs: np.ndarray, labels: Sequence[str], top_k: int = 1,
                    abstention: Abstention | None = None) -> list[Any]:
        top_k = check_top_k(top_k, labels)
        order, best = self.ranked(probs, labels, top_k)
        out: list[Any] = []
        for row in range(len(probs)):
            if best[row, 0] < 0:
                out.append(Prediction(None, None, ()))
                continue
            top = tuple((labels[j], float(p)) for j, p in zip(order[row], best[row], strict=True))
            out.append(Prediction(top[0][0], top[0][1], top, *abstain_row(abstention, row)))
        return out

    def output_columns(self, labels: Sequence[str], top_k: int) -> list[str]:
        cols = ["pred_label", "pred_prob"]
        for k in range(2, top_k + 1):
            cols += [f"top{k}_label", f"top{k}_prob"]
        return cols + list(ABSTAIN_COLUMNS)

    def output_values(self, probs: np.ndarray, labels: Sequence[str], top_k: int,
                      abstention: Abstention | None = None) -> list[list[Any]]:
        order, best = self.ranked(probs, labels, top_k)
        rows: list[list[Any]] = []
        for row in range(len(probs)):
            if best[row, 0] < 0:
                rows.append([None] * (2 * top_k + len(ABSTAIN_COLUMNS)))
                continue
            values: list[Any] = []
            for j, p in zip(order[row], best[row], strict=True):
                values += [labels[j], float(p)]
            rows.append(values + abstain_cells(abstention, row))
        return rows

    def service_items(self, probs: np.ndarray, labels: Sequence[str], top_k: int,
                      abstention: Abstention | None = None) -> list[dict]:
        order, best = self.ranked(probs, labels, min(top_k, len(labels)))
        items = []
        for i, (cols, values) in enumerate(zip(order, best, strict=True)):
            top = [{"label": labels[int(j)], "prob": float(v)} for j, v in zip(cols, values, strict=True)]
            abstained, reason, ood = abstain_row(abstention, i)
            items.append({"label": top[0]["label"], "prob": top[0]["prob"], "top": top, "abstained": abstained,
                          "reason": reason, "ood_score": ood})
        return items

    def format_report(self, metrics: dict, labels: Sequence[str]) -> str:
        return format_report(metrics, list(labels))
