"""Evaluation reports: score a model (any kind) on labeled records.

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
from typing import Any

import numpy as np
import pandas as pd

from ..fileio import atomic_files, atomic_open, write_json, write_text
from ..models.base import Outputs, TextClassifier
from ..tasks import compute_metrics, format_report
from .analysis import (
    ReportOptions,
    Scored,
    error_highlights,
    format_analysis,
    write_analysis,
    write_report_html,
)
from .label_set_report import label_errors, write_label_set_evaluation
from .plots import drawn, plot_confusion_matrix
from .scripts import by_script, format_by_script, scores_of
from .selective import Selective, format_selective

log = logging.getLogger(__name__)


def write_evaluation(
    metrics: dict, labels: list[str], out_dir: str | Path, title: str, scored: Scored | None = None,
    model: TextClassifier | None = None, options: ReportOptions | None = None, selective: Selective | None = None,
) -> dict[str, Path]:
    """Write metrics.json, report.txt, confusion_matrix.csv and .png, report.html into ``out_dir``.

    With ``scored`` (the rows behind ``metrics``) also the error analysis and calibration (added
    to ``metrics`` in place); with ``model`` report.html highlights the top errors' characters.
    The files are written aside first and moved in together (metrics.json last), so a failed
    write leaves an earlier report in ``out_dir`` whole.
    """
    options = options or ReportOptions()
    out_dir = Path(out_dir)
    names = {"report": "report.txt", "confusion_csv": "confusion_matrix.csv", "confusion_png": "confusion_matrix.png"}
    if scored is not None:
        names.update(errors="errors.csv", pairs="confused_pairs.csv", reliability="reliability.png")
    if selective is not None:
        names.update(risk_coverage="risk_coverage.png")
        if selective.has_ood:
            names.update(ood_histogram="ood_histogram.png")
    names.update(html="report.html", metrics="metrics.json")
    optional = [n for n in names.values() if n.endswith((".png", ".html"))]  # drawings: the report goes on without
    with atomic_files(out_dir, list(names.values()), optional=optional) as tmp:
        paths = {key: tmp / name for key, name in names.items()}
        errors = None
        if scored is not None:
            _, errors = write_analysis(tmp, metrics, labels, scored, title, options.errors)
        text = format_report(metrics, labels)
        if metrics.get("by_script"):
            text += "\n\n" + format_by_script(metrics["by_script"])
        if scored is not None:
            text += "\n\n" + format_analysis(metrics, options.errors)
        if selective is not None:
            metrics["selective"] = selective.report
            selective.write_plots(paths["risk_coverage"], paths.get("ood_histogram"), title)
            text += "\n\n" + format_selective(selective.report)
        write_text(paths["report"], text + "\n")
        frame = pd.DataFrame(metrics["confusion_matrix"], index=labels, columns=labels)
        frame.index.name = "true\\pred"
        with atomic_open(paths["confusion_csv"], "w", newline="") as fh:
            frame.to_csv(fh)
        mode = drawn("the confusion matrix (confusion_matrix.png)", plot_confusion_matrix, metrics["confusion_matrix"],
                     labels, paths["confusion_png"], title)
        highlights = drawn("the error highlights", error_highlights, model, errors, options.explain_top) \
            if errors is not None else {}
        drawn("the report page (report.html)", write_report_html, paths["html"], metrics, labels, title, paths, errors,
              highlights or {}, options)
        write_json(paths["metrics"], metrics)
    if mode not in ("names", None):
        log.warning("confusion_matrix.png shows label indices with a legend (no CJK font found)")
    return {key: out_dir / name for key, name in names.items() if (out_dir / name).is_file()}


@dataclass
class Evaluation:
    """What :func:`evaluate` measured and wrote."""

    metrics: dict
    labels: list[str]
    out: Path
    paths: dict[str, Path]


PROBLEM = "are not known to the model (it knows: {known}); remove those rows or retrain with them"


def evaluate(model: TextClassifier, data: Any, out: str | Path, options: ReportOptions | None = None,
             outputs: Outputs | None = None) -> Evaluation:
    """Score ``model`` on the records ``data`` (its task's) and write the report into ``out``.

    ``outputs``: the model's probabilities and ood scores on ``data`` when the caller has them already
    (no second prediction). Single-label reports add the error analysis, calibration, selective
    prediction (:mod:`.selective`) and report.html.
    """
    out = Path(out)
    y = model.task.encode(data, model.labels, PROBLEM)
    if outputs is None:
        outputs = model.score(data.texts)
    probs = outputs.probs
    metrics = model.task.metrics(y, probs, model.labels)
    if not model.task.multi:  # accuracy and macro-F1 per script when the file mixes them
        decided = model.task.decide(probs, model.labels)
        mixed = by_script(data.texts, lambda rows: scores_of(compute_metrics(np.asarray(y)[rows], decided[rows],
                                                                             list(model.labels))))
        if mixed:
            metrics["by_script"] = mixed
    title = f"{Path(str(model.path or model.kind)).name} on {Path(data.source).name}"
    if model.task.multi:
        errors = label_errors(data, y, probs, model.task.decide(probs, model.labels), model.labels)
        paths = write_label_set_evaluation(metrics, model.labels, out, title, errors)
    else:
        temperature = getattr(model.task, "temperature", None)
        scored = Scored(list(data.texts), np.asarray(y), probs, data.lines, model.task.uncalibrate(probs), temperature)
        confidence, pred = model.task.answer(probs, model.labels)
        rule = model.abstainer.rule if model.abstainer is not None else None
        selective = Selective.of(confidence, pred == np.asarray(y), model.abstention(outputs),
                                 rule.ood_threshold if rule is not None and rule.mode != "off" else None)
        paths = write_evaluation(metrics, model.labels, out, title, scored=scored, model=model, options=options,
                                 selective=selective)
    return Evaluation(metrics, list(model.labels), out, paths)
