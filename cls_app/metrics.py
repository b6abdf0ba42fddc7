"""Classification metrics: accuracy, F1, per-class report and confusion matrix."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def compute_metrics(y_true: Sequence[int], y_pred: Sequence[int], labels: list[str]) -> dict:
    """Metrics for integer label ids ``0..len(labels)-1``.

    Returns accuracy, macro/weighted F1, sklearn's per-class report (precision, recall,
    F1, support per class name) and the confusion matrix (rows = true, columns = predicted).
    """
    from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, f1_score  # loads in 0.8 s

    ids = list(range(len(labels)))
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    report = classification_report(
        y_true, y_pred, labels=ids, target_names=labels, output_dict=True, zero_division=0
    )
    return {
        "n": int(len(y_true)),
        "accuracy": float(accuracy_score(y_true, y_pred)) if len(y_true) else 0.0,
        "macro_f1": float(f1_score(y_true, y_pred, labels=ids, average="macro", zero_division=0)),
        "weighted_f1": float(
            f1_score(y_true, y_pred, labels=ids, average="weighted", zero_division=0)
        ),
        "per_class": {name: report[name] for name in labels},
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=ids).tolist(),
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
