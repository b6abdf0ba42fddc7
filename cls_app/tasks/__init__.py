"""Tasks: single-label and label-set (multi-label, hierarchical) classification in one place.

Each task owns its label encoding, training loss, decision rule (argmax / thresholds), metrics,
model-folder fields and output columns; the layers above ask the task (:class:`Task`) instead of
branching on its name. ``task_named`` and ``task_from_settings`` give the task of a flag or a folder.
"""

from __future__ import annotations

from typing import Any

from ..io.labels import LABEL_SET_TASKS, TASKS, check_task
from .abstain import AbstainSettings, Abstention, DevEvidence, RejectRule, fit_rule
from .base import ABSTAIN_COLUMNS, LabelSetPrediction, Prediction, Task, check_top_k, empty_rows, headline, top_classes
from .calibration import DecisionFit, calibration, softmax
from .label_sets import LabelSets
from .single import SingleLabel, compute_metrics, format_report

__all__ = [
    "ABSTAIN_COLUMNS", "AbstainSettings", "Abstention", "DevEvidence", "RejectRule", "fit_rule",
    "LABEL_SET_TASKS", "TASKS", "DecisionFit", "LabelSetPrediction", "LabelSets", "Prediction", "SingleLabel",
    "Task", "calibration", "check_top_k", "compute_metrics", "default_metrics", "empty_rows", "format_report",
    "headline", "softmax", "task_from_settings", "task_named", "top_classes",
]


def task_named(name: str, label_sep: str = ",", path_sep: str = "##", thresholds: dict | None = None) -> Task:
    """The task of ``--task NAME`` (a :class:`UserError` for an unknown name)."""
    check_task(name)
    if name in LABEL_SET_TASKS:
        return LabelSets(name, label_sep, path_sep, thresholds)
    return SingleLabel()


def default_metrics() -> dict[str, str]:
    """Each task's model-selection metric when ``--metric`` is not given."""
    return {name: task_named(name).default_metric for name in TASKS}


def task_from_settings(settings: dict[str, Any] | None) -> Task:
    """The task a model folder records (``config.json`` ``cls_app`` or ``baseline.json``); single-label when none."""
    settings = settings or {}
    name = str(settings.get("task") or "single-label")
    if name.startswith("single-label"):  # an ensemble.json says "single-label classification"
        cal, dec = settings.get("calibration") or {}, settings.get("decision") or {}
        offsets = dec.get("offsets") if isinstance(dec, dict) else None
        temperature = cal.get("temperature") if isinstance(cal, dict) else None
        return SingleLabel(float(temperature) if isinstance(temperature, int | float) else None,
                           tuple(float(v) for v in offsets) if isinstance(offsets, list) else None,
                           dec.get("metric") if isinstance(dec, dict) else None)
    return task_named(name, settings.get("label_sep") or ",", settings.get("path_sep") or "##",
                      settings.get("thresholds"))
