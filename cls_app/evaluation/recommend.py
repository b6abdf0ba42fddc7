"""The recommended model: the best candidate on dev, chosen so that dev noise does not decide, and
``OUT/best.json`` pointing at it.

Candidates (after ``train --with-baselines``): the BERT, each baseline but the majority floor, and
their ensemble. Each is scored on dev with the decisions it will make (calibrated, with the
per-class offsets fitted for the metric; **cross-fitted**: each dev fold decided by what was fitted
on the other folds, and for the ensemble its weights as well), on the training metric (``--metric``,
macro-F1 by default).

Dev has a few hundred or thousand rows, so the top scores are often within noise of each other. A
paired bootstrap over the dev rows (:data:`RESAMPLES` resamples) gives, for every other candidate,
the share of resamples in which the leader scores higher; a candidate the leader does not beat in
at least :data:`SEPARATED` of them is **tied** with it. Among the leader and the candidates tied
with it, :data:`RULE` picks (``log_loss``: the lowest regret on the dev halves of the seven sets of
``bench/selection.py``, docs/ensembles.md):

* ``ensemble``: the ensemble when it is among them (it averages its members' errors away), else the
  leader;
* ``log_loss``: the one with the lowest dev log-loss (the best probabilities);
* ``leader``: the top dev score, noise or not.

Ties of the score itself go to the cheaper kind (each kind declares its ``cost``).
``best.json`` holds ``{"path": ..., "name", "kind", "metric", "dev", "why", "selection": {...},
"fast": {...}}``, the paths relative to ``OUT``; ``predict``/``evaluate``/``serve``/``cls_app.load``
follow ``path`` (``--prefer fast``: ``fast``'s path).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..fileio import write_json
from ..models.folders import BEST_FILE
from ..tasks.calibration import metric_of

log = logging.getLogger(__name__)

METRIC_NAMES = {"accuracy": "accuracy", "macro_f1": "macro-F1", "weighted_f1": "weighted-F1"}
RULES = ("ensemble", "log_loss", "leader")
RULE = "log_loss"
RESAMPLES = 1000
SEPARATED = 0.95


@dataclass
class Candidate:
    """A model that may be recommended, with the dev score it is chosen on."""

    name: str
    path: Path
    family: str  # the folder family (bert, baseline, ensemble, fasttext, textcnn, ...)
    dev: dict  # accuracy, macro_f1, weighted_f1 of its (cross-fitted) dev decisions
    basis: str  # how the dev score was obtained
    dev_pred: np.ndarray | None = None  # those decisions, one class id per dev row
    log_loss: float | None = None  # of its (calibrated) dev probabilities
    cost: float = 10.0  # the kind's declared relative cost: ties go to the cheaper
    combines: bool = False  # an ensemble
    labels: list[str] = field(default_factory=list)


@dataclass
class Selection:
    """The choice: the chosen candidate, the dev leader, those dev could not separate from it, and why."""

    best: Candidate
    leader: Candidate
    tied: list[Candidate]
    rule: str
    separation: dict = field(default_factory=dict)  # name -> {"difference", "leader_better"}


def leader_of(found: list[Candidate], metric: str) -> Candidate:
    """The highest dev ``metric``; ties go to the cheaper kind."""
    if not found:
        raise UserError("no model with dev scores to recommend")
    return max(found, key=lambda c: (round(float(c.dev.get(metric, 0.0)), 6), -c.cost))


def separation(found: list[Candidate], leader: Candidate, y: np.ndarray, metric: str, seed: int = 42,
               resamples: int = RESAMPLES) -> dict:
    """For each other candidate: the dev difference to the leader and the share of paired bootstrap resamples
    of the dev rows in which the leader scores higher (ties count half)."""
    if leader.dev_pred is None:
        return {}
    k = int(max(int(y.max()) if len(y) else 0, *(int(c.dev_pred.max()) for c in found
                                                 if c.dev_pred is not None and len(c.dev_pred))) + 1)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(y), size=(resamples, len(y)))
    lead = np.array([metric_of(y[d], leader.dev_pred[d], k, metric) for d in draws])
    out = {}
    for c in found:
        if c is leader or c.dev_pred is None:
            continue
        other = np.array([metric_of(y[d], c.dev_pred[d], k, metric) for d in draws])
        out[c.name] = {"difference": round(float(leader.dev.get(metric, 0.0)) - float(c.dev.get(metric, 0.0)), 6),
                       "leader_better": round(float(np.mean(lead > other) + 0.5 * np.mean(lead == other)), 4)}
    return out


def select(found: list[Candidate], metric: str, y_dev: np.ndarray | None, rule: str = RULE, seed: int = 42
           ) -> Selection:
    """The recommended candidate (see the module docstring)."""
    if rule not in RULES:
        raise UserError(f"unknown selection rule {rule!r}; choose one of {', '.join(RULES)}")
    leader = leader_of(found, metric)
    sep = separation(found, leader, np.asarray(y_dev), metric, seed) if y_dev is not None else {}
    tied = [c for c in found if c.name in sep and sep[c.name]["leader_better"] < SEPARATED]
    pool = [leader, *tied]
    best = leader
    if rule == "ensemble":
        best = next((c for c in pool if c.combines), leader)
    elif rule == "log_loss" and all(c.log_loss is not None for c in pool):
        best = min(pool, key=lambda c: (float(c.log_loss or 0.0), -float(c.dev.get(metric, 0.0))))
    return Selection(best, leader, tied, rule, sep)


RULE_REASONS = {"log_loss": "it has the lowest dev log-loss (the best probabilities) among them",
                "ensemble": "the rule prefers the ensemble among them", "leader": "it leads"}


def reason(sel: Selection, metric: str) -> str:
    """Why ``sel.best`` was chosen, in one sentence."""
    name, best = METRIC_NAMES.get(metric, metric), sel.best
    if not sel.tied:
        ahead = ", clearly ahead of the others (paired bootstrap)" if sel.separation else ""
        return f"the highest dev {name} ({best.dev.get(metric, 0.0):.4f}){ahead}"
    rule = RULE_REASONS.get(sel.rule, sel.rule) if best is not sel.leader or sel.rule == "leader" else "it leads"
    return (f"{len(sel.tied)} other candidate(s) are within dev noise of the leader {sel.leader.name} "
            f"({sel.leader.dev.get(metric, 0.0):.4f}); {rule}")


def pointer(sel: Selection, found: list[Candidate], metric: str, out: Path) -> dict:
    """What ``best.json`` says: the chosen model (relative to ``out``), its dev figures, and why."""
    name = METRIC_NAMES.get(metric, metric)
    best, leader = sel.best, sel.leader
    others = ", ".join(f"{c.name} {c.dev[metric]:.4f}" for c in found if c is not best)
    if not sel.tied:
        why = f"highest {name} on dev, {best.dev[metric]:.4f} ({best.basis})"
        if sel.separation:
            why += "; dev separates it from every other candidate (paired bootstrap)"
    else:
        tied = ", ".join(f"{c.name} {c.dev[metric]:.4f}" for c in sel.tied)
        spread = max(sel.separation[c.name]["difference"] for c in sel.tied)
        why = (f"dev cannot separate the leader {leader.name} ({leader.dev[metric]:.4f} {name}) from {tied} "
               f"(within {spread:.4f}; the leader scores higher in fewer than {SEPARATED:.0%} of paired bootstrap "
               f"resamples of the dev rows); rule '{sel.rule}' picks {best.name} ({best.basis})")
    return {"path": Path(best.path).resolve().relative_to(out.resolve()).as_posix(), "name": best.name,
            "kind": best.family, "metric": metric, "dev": best.dev, "reason": reason(sel, metric),
            "why": why + (f"; the others: {others}" if others else ""),
            "selection": {"rule": sel.rule, "leader": leader.name, "tied": [c.name for c in sel.tied],
                          "separated_at": SEPARATED, "resamples": RESAMPLES, "versus_leader": sel.separation}}


FAST_MARGIN = 0.005
"""``fast``: the fastest candidate whose dev score is within this of the recommended one's."""


def fastest_within(found: list[Candidate], best: Candidate, metric: str, speeds: dict[str, float], out: Path
                   ) -> dict | None:
    """The fastest candidate (``speeds``: texts/s by name, measured in the same run) whose dev ``metric`` is
    at most :data:`FAST_MARGIN` below the recommended model's; None when speeds are unknown."""
    floor = float(best.dev.get(metric, 0.0)) - FAST_MARGIN
    near = [c for c in found if c.name in speeds and float(c.dev.get(metric, 0.0)) >= floor - 1e-12]
    if not near:
        return None
    fast = max(near, key=lambda c: speeds[c.name])
    return {"path": Path(fast.path).resolve().relative_to(out.resolve()).as_posix(), "name": fast.name,
            "kind": fast.family, "dev": fast.dev, "texts_per_s": speeds[fast.name],
            "why": f"the most texts/s among the candidates within {FAST_MARGIN * 100:.1f} points of the recommended "
                   f"model's dev {METRIC_NAMES.get(metric, metric)} ({fast.dev.get(metric, 0.0):.4f} against "
                   f"{best.dev.get(metric, 0.0):.4f})"}


def write_pointer(out: Path, info: dict) -> Path:
    """Write ``out/best.json``."""
    write_json(out / BEST_FILE, info)
    log.info("recommended model: %s (%s), written to %s", info["name"], info["why"], out / BEST_FILE)
    return out / BEST_FILE
