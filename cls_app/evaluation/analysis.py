"""The error-and-confidence part of an evaluation report (``evaluate`` and ``train``'s test report).

From the scored rows (:class:`Scored`: texts, gold ids, probabilities, file lines) it adds to
``metrics`` (so to ``metrics.json``):

* ``top2_accuracy``, ``top3_accuracy`` (each k below the number of classes);
* ``calibration``: ECE / MCE over 15 equal-width confidence bins and the bin table
  (see :mod:`cls_app.evaluation.calibration`);
* ``errors``: how many rows are wrong, and ``confused_pairs``: the most confused
  (gold, predicted) pairs with counts and examples;

and writes ``errors.csv`` (every wrong row, most confident first), ``confused_pairs.csv``,
``reliability.png`` and ``report.html`` (see :mod:`cls_app.evaluation.html_report`), whose
error table shows explain's character highlights for the most confident errors.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..fileio import atomic_open, write_text
from ..io.pairs import PAIR_SEP
from ..models.base import TextClassifier
from ..settings import setting
from .calibration import calibration, format_calibration, plot_reliability
from .errors import ErrorOptions, confused_pairs, error_table, format_pairs, pairs_frame, top_k_accuracy
from .plots import drawn

log = logging.getLogger(__name__)


@dataclass
class Scored:
    """The rows behind a set of metrics, in file order."""

    texts: list[str]
    y_true: np.ndarray
    proba: np.ndarray
    rows: list[int] | None = None  # each row's line in the data file (1-based)
    raw_proba: np.ndarray | None = None  # the probabilities before calibration (a calibrated model's)
    temperature: float | None = None  # the calibration's temperature


@dataclass(frozen=True)
class ReportOptions:
    """What the evaluation report adds beyond the metrics."""

    errors: ErrorOptions = setting(factory=ErrorOptions, cli=False)
    explain_top: int = setting(10, "report.html: highlight the characters of the N most confident errors with "
                               "explain's scores (0: none; default: %(default)s)", flag="--explain-errors",
                               metavar="N")
    """Errors (the most confident ones) shown with explain's character highlights in report.html
    (0: none; BERT explanations take about 0.1-1 s each on a CPU)."""
    html_errors: int = setting(50, cli=False)
    """Errors listed in report.html (errors.csv has them all)."""


def analyse(metrics: dict, labels: list[str], scored: Scored, options: ErrorOptions | None = None):
    """Add top-k accuracy, calibration, error count and confused pairs to ``metrics`` (in place);
    return the error table and every confused pair."""
    options = options or ErrorOptions()
    errors = error_table(scored.texts, scored.y_true, scored.proba, labels, scored.rows)
    pairs = confused_pairs(errors, scored.y_true, labels, options.pair_examples)
    for k in options.top_k:
        if k < len(labels):
            metrics[f"top{k}_accuracy"] = round(top_k_accuracy(scored.y_true, scored.proba, k), 6)
    metrics["calibration"] = calibration(scored.y_true, scored.proba)
    if scored.raw_proba is not None and scored.temperature:
        before = calibration(scored.y_true, scored.raw_proba)
        metrics["calibration"]["before"] = {k: before[k] for k in ("ece", "mce", "mean_confidence")}
        metrics["calibration"]["temperature"] = round(float(scored.temperature), 6)
    metrics["errors"] = {"count": int(len(errors)), "file": "errors.csv"}
    metrics["confused_pairs"] = pairs[: options.top_pairs]
    return errors, pairs


def format_analysis(metrics: dict, options: ErrorOptions | None = None) -> str:
    """The lines report.txt (and the printed report) add after the confusion matrix."""
    options = options or ErrorOptions()
    lines = []
    tops = [f"top-{k} accuracy={metrics[f'top{k}_accuracy']:.4f}" for k in options.top_k
            if f"top{k}_accuracy" in metrics]
    if tops:
        lines.append("  ".join(tops))
    if "calibration" in metrics:
        lines.append(format_calibration(metrics["calibration"]))
    if "errors" in metrics:
        lines.append(f"errors: {metrics['errors']['count']} of {metrics['n']} rows (all in errors.csv)")
    if "confused_pairs" in metrics:
        lines.append(format_pairs(metrics["confused_pairs"], options.top_pairs))
    return "\n".join(lines)


def write_analysis(out_dir: Path, metrics: dict, labels: list[str], scored: Scored, title: str,
                   options: ErrorOptions | None = None) -> tuple[dict[str, Path], pd.DataFrame]:
    """Write errors.csv, confused_pairs.csv and reliability.png; ``metrics`` must be :func:`analyse`d."""
    paths = {"errors": out_dir / "errors.csv", "pairs": out_dir / "confused_pairs.csv",
             "reliability": out_dir / "reliability.png"}
    errors, pairs = analyse(metrics, labels, scored, options)
    with atomic_open(paths["errors"], "w", newline="") as fh:
        errors.to_csv(fh, index=False)
    with atomic_open(paths["pairs"], "w", newline="") as fh:
        pairs_frame(pairs).to_csv(fh, index=False)
    drawn("the reliability diagram (reliability.png)", plot_reliability, metrics["calibration"],
          paths["reliability"], title)
    return paths, errors


def error_highlights(model: TextClassifier | None, errors: pd.DataFrame, top: int) -> dict[int, str]:
    """explain's character highlights (toward the predicted class) of the ``top`` most confident
    errors, as HTML by row; empty when there is no model or ``top`` is 0, and for sentence
    pairs (explain scores the characters of single texts)."""
    if model is None or top <= 0 or not len(errors):
        return {}
    if any(PAIR_SEP in text for text in errors["text"]):
        return {}
    from ..inference.explain import explain_texts, explainer_for, highlight_html

    head = errors.head(top)
    explainer = explainer_for(model)
    explained = explain_texts(explainer, list(head["text"]), progress=False)
    return {int(row): highlight_html(e) for row, e in zip(head["row"], explained, strict=True)}


def write_report_html(path: Path, metrics: dict, labels: list[str], title: str, images: dict[str, Path],
                      errors: pd.DataFrame | None, highlights: dict[int, str], options: ReportOptions) -> Path:
    """``report.html`` of one evaluation: headline cards, per-class table, confusion heatmap,
    calibration, confused pairs, the most confident errors with highlights."""
    from . import html_report as h

    cal = metrics.get("calibration")
    sections = [
        ("metrics", h.metric_cards(metrics) + h.per_class_table(metrics, labels)),
        ("confusion matrix", h.figure(images.get("confusion_png"), "confusion matrix (rows gold, columns predicted)")),
    ]
    if cal:
        note = (f"<p>{h.esc(format_calibration(cal))}. ECE: the average gap between confidence and accuracy over "
                f"{cal['bins']} equal-width confidence bins, weighted by rows.</p>")
        sections.append(("calibration", note + h.figure(images.get("reliability"), "reliability diagram")))
    sel = metrics.get("selective")
    if sel:
        rule = sel["rule"]
        note = (f"<p>AURC {sel['aurc']:.4f} (mean error rate over every coverage, most confident rows first); "
                f"accuracy {sel['accuracy']:.4f} on every row, {sel['selective_accuracy_at_90']:.4f} on the 90% "
                f"most confident. The model's rule answers {rule['coverage']:.1%} of these rows with accuracy "
                f"{rule['accuracy_answered']:.4f}; it abstains on {rule['out_of_domain']:.1%} as out of domain and "
                f"{rule['low_confidence']:.1%} for low confidence.</p>")
        body = note + h.figure(images.get("risk_coverage"), "risk-coverage curve")
        if images.get("ood_histogram"):
            body += h.figure(images.get("ood_histogram"), "out-of-domain scores of these rows")
        sections.append(("abstaining", body))
    if "confused_pairs" in metrics:
        sections.append(("confused pairs", h.pairs_table(metrics["confused_pairs"])))
    if errors is not None:
        sections.append(("errors", h.errors_table(errors, highlights, options.html_errors)))
    write_text(path, h.page(title, f"{metrics['n']} texts, {len(labels)} classes", sections))
    return path
