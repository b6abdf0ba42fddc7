"""Evaluation reports: score a saved model (BERT or baseline folder) on a labeled file.

The report folder holds ``metrics.json``, ``report.txt`` (per-class precision, recall, F1),
``confusion_matrix.csv`` and ``confusion_matrix.png`` (class names on the axes).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..fileio import atomic_open, write_json, write_text
from ..inference.defaults import EVAL_BATCH_SIZE
from ..inference.multilabel import folder_text_pair_col, task_of
from ..inference.predictor import load_predictor
from ..io.records import DataOptions, label_ids, load_labeled
from ..metrics import compute_metrics, format_report
from ..multilabel import MULTI_TASKS
from .multilabel import evaluate_label_sets, write_label_set_evaluation
from .plots import plot_confusion_matrix

log = logging.getLogger(__name__)


def write_evaluation(metrics: dict, labels: list[str], out_dir: str | Path, title: str) -> dict[str, Path]:
    """Write metrics.json, report.txt, confusion_matrix.csv and .png into ``out_dir``
    (label-set tasks: see :mod:`cls_app.evaluation.multilabel`)."""
    if metrics.get("task") in MULTI_TASKS:
        return write_label_set_evaluation(metrics, labels, out_dir, title)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "metrics": out_dir / "metrics.json",
        "report": out_dir / "report.txt",
        "confusion_csv": out_dir / "confusion_matrix.csv",
        "confusion_png": out_dir / "confusion_matrix.png",
    }
    write_json(paths["metrics"], metrics)
    write_text(paths["report"], format_report(metrics, labels) + "\n")
    frame = pd.DataFrame(metrics["confusion_matrix"], index=labels, columns=labels)
    frame.index.name = "true\\pred"
    with atomic_open(paths["confusion_csv"], "w", newline="") as fh:
        frame.to_csv(fh)
    mode = plot_confusion_matrix(metrics["confusion_matrix"], labels, paths["confusion_png"], title)
    if mode != "names":
        log.warning("confusion_matrix.png shows label indices with a legend (no CJK font found)")
    return paths


@dataclass
class Evaluation:
    """What :func:`evaluate_model` measured and wrote."""

    metrics: dict
    labels: list[str]
    out: Path
    paths: dict[str, Path]


def evaluate_model(
    model_dir: str,
    data_path: str,
    out_dir: str | None = None,
    text_col: str | None = None,
    label_col: str | None = None,
    encoding: str | None = None,
    fmt: str | None = None,
    batch_size: int = EVAL_BATCH_SIZE,
    on_bad_row: str = "error",
    long_text: dict | None = None,
    label_sep: str | None = None,
    path_sep: str | None = None,
    text_pair_col: str | None = None,
) -> Evaluation:
    """Score ``model_dir`` (BERT or baseline folder) on ``data_path`` and write the report.

    A BERT model truncates or chunks long texts as it was trained (its folder's settings);
    ``long_text`` overrides some of those settings (keys of :class:`LongTextOptions`). A
    multi-label or hierarchical model reads label cells with its own separators unless
    ``label_sep`` / ``path_sep`` say otherwise.
    """
    predictor = load_predictor(model_dir, batch_size=batch_size, progress=True, long_text=long_text)
    task = task_of(predictor)
    text_pair_col = text_pair_col or folder_text_pair_col(model_dir)
    if task.multi:
        opts = DataOptions(train=data_path, text_col=text_col, label_col=label_col, encoding=encoding, fmt=fmt,
                           on_bad_row=on_bad_row, task=task.task, label_sep=label_sep or task.label_sep,
                           path_sep=path_sep or task.path_sep, text_pair_col=text_pair_col)
        metrics = evaluate_label_sets(predictor, opts)
        out = Path(out_dir) if out_dir else Path(model_dir) / f"eval_{Path(data_path).stem}"
        title = f"{Path(model_dir).name} on {Path(data_path).name}"
        return Evaluation(metrics, list(predictor.labels), out, write_evaluation(metrics, predictor.labels, out, title))
    data = load_labeled(
        data_path, text_col=text_col, label_col=label_col, encoding=encoding, fmt=fmt,
        on_bad_row=on_bad_row, text_pair_col=text_pair_col,
    )
    label2id = {name: i for i, name in enumerate(predictor.labels)}
    y_true = label_ids(data, label2id, "are not known to the model (it knows: {known}); remove those rows "
                       "or retrain with them")
    proba = predictor.predict_proba(data.texts)
    metrics = compute_metrics(y_true, proba.argmax(axis=1), predictor.labels)
    out = Path(out_dir) if out_dir else Path(model_dir) / f"eval_{Path(data_path).stem}"
    paths = write_evaluation(metrics, predictor.labels, out, title=f"{Path(model_dir).name} on {Path(data_path).name}")
    return Evaluation(metrics, list(predictor.labels), out, paths)
