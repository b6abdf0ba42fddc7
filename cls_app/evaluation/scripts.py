"""Scores per script: how a model does on the simplified, the traditional and the mixed texts of one file.

:func:`by_script` splits the rows by :func:`cls_app.text.script.script_of` (``simplified``,
``traditional``, ``mixed``, ``none``) and scores each group with the task's metrics; it says
nothing (``{}``) when the rows are all of one script. ``evaluate`` adds it to ``metrics.json`` and
the report, ``compare`` to its tables; :func:`script_mix` is what the audit compares between files.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..text.script import SCRIPT_NAMES, scripts_of

__all__ = ["by_script", "format_by_script", "script_mix", "scores_of"]


def scores_of(metrics: dict) -> dict:
    """The figures a per-script row shows."""
    return {k: round(float(metrics[k]), 6) for k in ("accuracy", "macro_f1") if k in metrics}


def script_mix(texts: Sequence[str | None]) -> dict[str, float]:
    """The share of the texts in each script (those present), in :data:`SCRIPT_NAMES` order."""
    counts = Counter(scripts_of(texts))
    n = max(1, sum(counts.values()))
    return {s: round(counts[s] / n, 4) for s in SCRIPT_NAMES if counts[s]}


def by_script(texts: Sequence[str | None], score: Any, scripts: Sequence[str] | None = None) -> dict[str, dict]:
    """``{script: {"n": rows, **score(rows)}}`` for each script of ``texts`` (``score(rows)``: the metrics of
    those row indices); ``{}`` when every text has the same script."""
    found = list(scripts) if scripts is not None else scripts_of(texts)
    present = [s for s in SCRIPT_NAMES if s in found]
    if len(present) < 2:
        return {}
    where = np.asarray(found)
    return {s: {"n": int((where == s).sum()), **score(np.flatnonzero(where == s))} for s in present}


def format_by_script(report: dict[str, dict]) -> str:
    """The per-script lines of a report (nothing when there is one script)."""
    if not report:
        return ""
    lines = ["by script (as detected):"]
    for script, m in report.items():
        lines.append(f"  {script:<12} {m['n']:>7} rows  accuracy {m['accuracy']:.4f}  macro-F1 {m['macro_f1']:.4f}")
    return "\n".join(lines)
