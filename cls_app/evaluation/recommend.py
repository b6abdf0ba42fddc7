"""The recommended model: the best candidate on dev, and ``OUT/best.json`` pointing at it.

Candidates (after ``train --with-baselines``): the BERT (its dev score is the evaluation that
picked its checkpoint), each baseline but the majority floor (fixed settings: dev only scored),
and their ensemble (its **cross-fitted** dev score: each dev fold scored by weights fitted on the
other folds, so fitting on dev does not flatter it). The highest score on the training metric
(``--metric``, macro-F1 by default) wins; on a tie the cheaper family (baseline, then BERT, then
the ensemble). ``best.json`` holds ``{"path": ..., "name", "kind", "metric", "dev", "why", ...}``,
the path relative to ``OUT``; ``predict``/``evaluate``/``serve``/``cls_app.load`` follow it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from ..fileio import write_json
from ..models.folders import BEST_FILE

log = logging.getLogger(__name__)

COST_ORDER = {"baseline": 0, "bert": 1, "ensemble": 2}
METRIC_NAMES = {"accuracy": "accuracy", "macro_f1": "macro-F1", "weighted_f1": "weighted-F1"}


@dataclass
class Candidate:
    """A model that may be recommended, with the dev score it is chosen on."""

    name: str
    path: Path
    family: str  # bert, baseline or ensemble
    dev: dict  # accuracy, macro_f1, weighted_f1
    basis: str  # how the dev score was obtained


def choose(found: list[Candidate], metric: str) -> Candidate:
    """The highest dev ``metric``; ties go to the cheaper family."""
    if not found:
        raise UserError("no model with dev scores to recommend")
    return max(found, key=lambda c: (round(float(c.dev.get(metric, 0.0)), 6), -COST_ORDER.get(c.family, 3)))


def pointer(best: Candidate, found: list[Candidate], metric: str, out: Path) -> dict:
    """What ``best.json`` says: the chosen model (relative to ``out``), its dev figures and why."""
    others = ", ".join(f"{c.name} {c.dev[metric]:.4f}" for c in found if c is not best)
    why = (f"highest {METRIC_NAMES.get(metric, metric)} on dev, {best.dev[metric]:.4f} ({best.basis})"
           + (f"; the others: {others}" if others else ""))
    return {"path": Path(best.path).resolve().relative_to(out.resolve()).as_posix(), "name": best.name,
            "kind": best.family, "metric": metric, "dev": best.dev, "why": why}


def write_pointer(out: Path, info: dict) -> Path:
    """Write ``out/best.json``."""
    write_json(out / BEST_FILE, info)
    log.info("recommended model: %s (%s), written to %s", info["name"], info["why"], out / BEST_FILE)
    return out / BEST_FILE
