"""Evaluation reports: score a saved model (BERT or baseline folder) on a labeled file.

The report folder holds ``metrics.json``, ``report.txt`` (per-class precision, recall, F1),
``confusion_matrix.csv`` and ``confusion_matrix.png`` (class names on the axes); given the scored
rows (:class:`~cls_app.evaluation.analysis.Scored`) also ``errors.csv``, ``confused_pairs.csv``,
``reliability.png`` and top-k / calibration figures (see :mod:`cls_app.evaluation.analysis`); and
always ``report.html``, the whole report on one self-contained page.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..fileio import atomic_files, atomic_open, write_json, write_text
from ..inference.defaults import EVAL_BATCH_SIZE
from ..inference.multilabel import folder_text_pair_col, task_of
from ..inference.predictor import load_predictor
from ..io.records import DataOptions, label_ids, load_labeled
from ..metrics import compute_metrics, format_report
from ..multilabel import MULTI_TASKS
from .analysis import (
    ReportOptions,
    Scored,
    error_highlights,
    format_analysis,
    write_analysis,
    write_report_html,
)
from .multilabel import evaluate_label_sets, write_label_set_evaluation
from .plots import plot_confusion_matrix

log = logging.getLogger(__name__)


def write_evaluation(
    metrics: dict, labels: list[str], out_dir: str | Path, title: str, scored: Scored | None = None,
    model_dir: str | Path | None = None, options: ReportOptions | None = None,
) -> dict[str, Path]:
    """Write metrics.json, report.txt, confusion_matrix.csv and .png, report.html into ``out_dir``.

    With ``scored`` (the rows behind ``metrics``) also the error analysis and calibration (added
    to ``metrics`` in place); with ``model_dir`` report.html highlights the top errors' characters.
    The files are written aside first and moved in together (metrics.json last), so a failed
    write leaves an earlier report in ``out_dir`` whole.
    """
    if metrics.get("task") in MULTI_TASKS:  # label-set tasks: see :mod:`cls_app.evaluation.multilabel`
        return write_label_set_evaluation(metrics, labels, out_dir, title)
    options = options or ReportOptions()
    out_dir = Path(out_dir)
    names = {"report": "report.txt", "confusion_csv": "confusion_matrix.csv", "confusion_png": "confusion_matrix.png"}
    if scored is not None:
        names.update(errors="errors.csv", pairs="confused_pairs.csv", reliability="reliability.png")
    names.update(html="report.html", metrics="metrics.json")
    with atomic_files(out_dir, list(names.values())) as tmp:
        paths = {key: tmp / name for key, name in names.items()}
        errors = None
        if scored is not None:
            _, errors = write_analysis(tmp, metrics, labels, scored, title, options.errors)
        text = format_report(metrics, labels)
        if scored is not None:
            text += "\n\n" + format_analysis(metrics, options.errors)
        write_text(paths["report"], text + "\n")
        frame = pd.DataFrame(metrics["confusion_matrix"], index=labels, columns=labels)
        frame.index.name = "true\\pred"
        with atomic_open(paths["confusion_csv"], "w", newline="") as fh:
            frame.to_csv(fh)
        mode = plot_confusion_matrix(metrics["confusion_matrix"], labels, paths["confusion_png"], title)
        highlights = error_highlights(model_dir, errors, options.explain_top) if errors is not None else {}
        write_report_html(paths["html"], metrics, labels, title, paths, errors, highlights, options)
        write_json(paths["metrics"], metrics)
    if mode != "names":
        log.warning("confusion_matrix.png shows label indices with a legend (no CJK font found)")
    return {key: out_dir / name for key, name in names.items()}


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
    backend: str = "torch",
    options: ReportOptions | None = None,
    follow: bool = False,
    label_sep: str | None = None,
    path_sep: str | None = None,
    text_pair_col: str | None = None,
) -> Evaluation:
    """Score ``model_dir`` (BERT, baseline or ensemble folder) on ``data_path`` and write the report.

    With ``follow``, a folder holding ``best.json`` is scored as the model it recommends (the report
    goes into that model's folder by default).

    A BERT model truncates or chunks long texts as it was trained (its folder's settings);
    ``long_text`` overrides some of those settings (keys of :class:`LongTextOptions`); ``backend``
    ``onnx`` scores the folder's exported ``model.onnx`` in ONNX Runtime. ``options``: what the
    report adds (errors, highlights; :class:`ReportOptions`). A multi-label or hierarchical model
    reads label cells with its own separators unless ``label_sep`` / ``path_sep`` say otherwise.
    """
    predictor = load_predictor(model_dir, batch_size=batch_size, progress=True, long_text=long_text,
                               backend=backend, follow=follow)
    model_dir = str(predictor.path)
    task = task_of(predictor)
    text_pair_col = text_pair_col or folder_text_pair_col(model_dir)
    if task.multi:
        opts = DataOptions(train=data_path, text_col=text_col, label_col=label_col, encoding=encoding, fmt=fmt,
                           on_bad_row=on_bad_row, task=task.task, label_sep=label_sep or task.label_sep,
                           path_sep=path_sep or task.path_sep, text_pair_col=text_pair_col)
        metrics, errors = evaluate_label_sets(predictor, opts)
        out = Path(out_dir) if out_dir else Path(model_dir) / f"eval_{Path(data_path).stem}"
        title = f"{Path(model_dir).name} on {Path(data_path).name}"
        paths = write_label_set_evaluation(metrics, predictor.labels, out, title, errors)
        return Evaluation(metrics, list(predictor.labels), out, paths)
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
    scored = Scored(list(data.texts), np.asarray(y_true), proba, data.lines)
    paths = write_evaluation(metrics, predictor.labels, out, f"{Path(model_dir).name} on {Path(data_path).name}",
                             scored=scored, model_dir=model_dir, options=options)
    return Evaluation(metrics, list(predictor.labels), out, paths)
