"""Evaluation reports of multi-label and hierarchical models.

The report folder holds ``metrics.json``, ``report.txt`` (headline figures, per level for a
hierarchy, per label precision/recall/F1 and 2x2 counts), ``label_confusion.csv`` (one row per
label: tn, fp, fn, tp) and ``label_confusion.png`` (one 2x2 matrix per label, in a grid, with the
label names).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd

from ..fileio import atomic_open, atomic_path, write_json, write_text
from ..tasks.label_sets import format_multilabel_report
from .plots import cjk_font_name

log = logging.getLogger(__name__)


ERROR_COLUMNS = ["row", "label", "error", "prob", "confidence", "gold", "predicted", "text"]


def label_errors(data, y: np.ndarray, probs: np.ndarray, pred: np.ndarray, labels: list[str]) -> pd.DataFrame:
    """One row per wrong (text, label) decision: ``missed`` (a gold label not predicted) or ``extra``
    (predicted, not gold), with the label's probability; most confident mistakes first (``confidence``:
    the probability of an extra label, one minus that of a missed one)."""
    y, pred = np.asarray(y, dtype=bool), np.asarray(pred, dtype=bool)
    rows = []
    for i, j in zip(*np.nonzero(y != pred), strict=True):
        p = float(probs[i, j])
        rows.append({
            "row": data.lines[i] if data.lines is not None else i + 1, "label": labels[j],
            "error": "extra" if pred[i, j] else "missed", "prob": round(p, 6),
            "confidence": round(p if pred[i, j] else 1.0 - p, 6),
            "gold": " | ".join(labels[k] for k in np.flatnonzero(y[i])),
            "predicted": " | ".join(labels[k] for k in np.flatnonzero(pred[i])), "text": data.texts[i],
        })
    frame = pd.DataFrame(rows, columns=ERROR_COLUMNS)
    return frame.sort_values(["confidence", "row"], ascending=[False, True], kind="stable").reset_index(drop=True)


def write_label_set_evaluation(metrics: dict, labels: list[str], out_dir: str | Path, title: str,
                               errors: pd.DataFrame | None = None) -> dict[str, Path]:
    """Write metrics.json, report.txt, label_confusion.csv and label_confusion.png into ``out_dir``;
    with ``errors`` (:func:`label_errors`) also errors.csv, and their count per label in metrics.json."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "metrics": out_dir / "metrics.json",
        "report": out_dir / "report.txt",
        "confusion_csv": out_dir / "label_confusion.csv",
        "confusion_png": out_dir / "label_confusion.png",
    }
    if errors is not None:
        paths["errors"] = out_dir / "errors.csv"
        with atomic_open(paths["errors"], "w", newline="") as fh:
            errors.to_csv(fh, index=False)
        counts = errors.groupby(["label", "error"]).size()
        metrics["label_errors"] = {name: {kind: int(counts.get((name, kind), 0)) for kind in ("missed", "extra")}
                                   for name in labels}
    write_json(paths["metrics"], metrics)
    write_text(paths["report"], format_multilabel_report(metrics, labels) + "\n")
    rows = []
    for name in labels:
        (tn, fp), (fn, tp) = metrics["label_confusion"][name]
        row = metrics["per_class"][name]
        rows.append({"label": name, "tn": tn, "fp": fp, "fn": fn, "tp": tp, "precision": row["precision"],
                     "recall": row["recall"], "f1": row["f1-score"], "support": row["support"]})
    with atomic_open(paths["confusion_csv"], "w", newline="") as fh:
        pd.DataFrame(rows).to_csv(fh, index=False)
    plot_label_confusion_grid(metrics["label_confusion"], labels, paths["confusion_png"], title)
    return paths


def plot_label_confusion_grid(confusion: dict, labels: list[str], path: str | Path, title: str) -> None:
    """One small 2x2 heatmap (true no/yes x predicted no/yes) per label, titled with its name."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    font = cjk_font_name() if any(not n.isascii() for n in labels) else None
    if font:
        plt.rcParams["font.sans-serif"] = [font, "DejaVu Sans"]
    cols = min(5, len(labels))
    grid_rows = math.ceil(len(labels) / cols)
    fig, axes = plt.subplots(grid_rows, cols, figsize=(2.4 * cols, 2.4 * grid_rows + 0.6), squeeze=False)
    for k, ax in enumerate(axes.flat):
        if k >= len(labels):
            ax.axis("off")
            continue
        data = np.asarray(confusion[labels[k]], dtype=float)
        share = data / data.sum(axis=1, keepdims=True).clip(min=1)
        ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
        for i in range(2):
            for j in range(2):
                ax.text(j, i, int(data[i, j]), ha="center", va="center", fontsize=9,
                        color="white" if share[i, j] > 0.5 else "black")
        name = labels[k] if font or labels[k].isascii() else f"label {k}"
        ax.set_title(name, fontsize=9)
        ax.set_xticks([0, 1], ["no", "yes"], fontsize=7)
        ax.set_yticks([0, 1], ["no", "yes"], fontsize=7)
    fig.suptitle(f"{title} (rows: true, columns: predicted)", fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
