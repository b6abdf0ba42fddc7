"""The recommended model: after ``train --with-baselines``, the best on dev of BERT, the baselines
and their ensemble, with its test figure and significance, and ``OUT/best.json`` pointing at it.

Steps (:func:`recommend`):

1. ``OUT/ensemble``: BERT (``OUT`` itself) and every baseline but the majority floor, combined
   and fitted on dev (:mod:`cls_app.inference.ensemble`; the fitted weights decide how much each
   counts), members referenced relative to the ensemble folder. All baselines rather than the two
   best: on THUCNews the word-level ones add the most diversity (docs/ensembles.md).
2. The candidates' dev scores on the training metric (``--metric``, macro-F1 by default): BERT's
   from ``metrics.json`` (the dev evaluation that picked its checkpoint), each baseline's from
   ``baseline.json`` (fixed settings: dev only scored), the ensemble's **cross-fitted** one (each
   dev fold scored by weights fitted on the other folds), so that fitting on dev does not flatter
   it. The highest wins; on a tie the cheaper model (baseline, then BERT, then the ensemble).
3. The comparison (on ``--test``, else on dev) gets a "Recommended model" section: its figure
   and McNemar's exact test against every other model.
4. ``OUT/best.json``: ``{"path": "ensemble", "kind": ..., "why": ..., ...}``, the path relative to
   ``OUT``. ``predict``/``evaluate --model OUT`` follow it (``--no-follow`` uses OUT's own BERT).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from ..fileio import write_json
from ..inference.ensemble import EnsembleSettings, build_ensemble
from ..inference.predictor import BEST_FILE, load_predictor, model_files
from ..io.records import DataOptions, load_splits
from .compare import Comparison, compare_models

log = logging.getLogger(__name__)

ENSEMBLE_DIR = "ensemble"
BASELINES_DIR = "baselines"
_COST_ORDER = {"baseline": 0, "bert": 1, "ensemble": 2}
_METRIC_NAMES = {"accuracy": "accuracy", "macro_f1": "macro-F1", "weighted_f1": "weighted-F1"}


@dataclass
class Candidate:
    """A model that may be recommended, with the dev score it is chosen on."""

    name: str
    path: Path
    kind: str
    dev: dict  # accuracy, macro_f1, weighted_f1
    basis: str  # how the dev score was obtained


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def baseline_candidates(out: Path) -> list[Candidate]:
    """The baselines under ``OUT/baselines`` that have dev scores (the majority floor excluded)."""
    found = []
    for meta_path in sorted((out / BASELINES_DIR).glob("*/baseline.json")):
        meta = _read_json(meta_path)
        if meta.get("name") != "majority" and isinstance(meta.get("dev"), dict):
            found.append(Candidate(meta_path.parent.name, meta_path.parent, "baseline", meta["dev"], "dev"))
    return found


def candidates(out: Path) -> list[Candidate]:
    """BERT (``OUT``), the baselines and the ensemble, each with its dev score."""
    found = []
    bert_dev = _read_json(out / "metrics.json").get("dev")
    if isinstance(bert_dev, dict):
        found.append(Candidate(out.name, out, "bert", bert_dev, "dev (best evaluation during training)"))
    found += baseline_candidates(out)
    ens = _read_json(out / ENSEMBLE_DIR / "ensemble.json").get("dev", {})
    if "ensemble_cross_fitted" in ens:
        found.append(Candidate(ENSEMBLE_DIR, out / ENSEMBLE_DIR, "ensemble", ens["ensemble_cross_fitted"],
                               f"dev, cross-fitted ({ens['ensemble_cross_fitted'].get('folds')} folds)"))
    elif "ensemble_in_sample" in ens:  # not fitted (small dev set): equal weights, the dev score is honest
        found.append(Candidate(ENSEMBLE_DIR, out / ENSEMBLE_DIR, "ensemble", ens["ensemble_in_sample"],
                               "dev (equal weights, nothing fitted)"))
    return found


def choose(found: list[Candidate], metric: str) -> Candidate:
    """The highest dev ``metric``; ties go to the cheaper kind."""
    if not found:
        raise UserError("no model with dev scores to recommend")
    return max(found, key=lambda c: (round(float(c.dev.get(metric, 0.0)), 6), -_COST_ORDER.get(c.kind, 3)))


def build_default_ensemble(out: Path, data: DataOptions, seed: int, metric: str,
                           settings: EnsembleSettings | None = None) -> dict:
    """``OUT/ensemble`` from BERT and every baseline (the majority floor excluded), fitted on the run's dev rows."""
    _, dev, _ = load_splits(data, seed)
    ranked = sorted(baseline_candidates(out), key=lambda c: -float(c.dev.get(metric, 0.0)))
    members = [load_predictor(p) for p in [out, *(c.path for c in ranked)]]
    settings = settings or EnsembleSettings(seed=seed)
    meta = build_ensemble(members, dev.texts, dev.labels, out / ENSEMBLE_DIR, settings, files_of=model_files,
                          dev_source=f"dev ({len(dev)} rows)")
    log.info("ensemble of %s written to %s", ", ".join(m["name"] for m in meta["members"]), out / ENSEMBLE_DIR)
    return meta


def recommend(out: str | Path, data: DataOptions, seed: int, metric: str,
              settings: EnsembleSettings | None = None) -> tuple[dict, Comparison | None]:
    """Build OUT/ensemble, choose on dev, compare on test (else dev), write OUT/best.json; return
    the pointer written and the comparison."""
    out = Path(out)
    build_default_ensemble(out, data, seed, metric, settings)
    found = candidates(out)
    best = choose(found, metric)
    others = ", ".join(f"{c.name} {c.dev[metric]:.4f}" for c in found if c is not best)
    why = (f"highest {_METRIC_NAMES.get(metric, metric)} on dev, {best.dev[metric]:.4f} ({best.basis})"
           + (f"; the others: {others}" if others else ""))
    pointer = {"path": Path(best.path).relative_to(out).as_posix(), "name": best.name, "kind": best.kind,
               "metric": metric, "dev": best.dev, "why": why}
    target = data.test or data.dev
    comparison = None
    if target is not None:
        split = "test" if data.test else "dev"
        comparison = compare_models(
            [out, out / BASELINES_DIR, out / ENSEMBLE_DIR], target, out / "comparison", text_col=data.text_col,
            label_col=data.label_col, encoding=data.encoding, fmt=data.fmt, on_bad_row=data.on_bad_row, seed=seed,
            recommended={"path": str(best.path), "why": why, "split": split},
        )
        rec = comparison.summary["recommendation"]
        pointer["comparison"] = {"split": split, "data": str(target), **rec["metrics"], "versus": rec["versus"]}
    write_json(out / BEST_FILE, pointer)
    log.info("recommended model: %s (%s), written to %s", best.name, why, out / BEST_FILE)
    return pointer, comparison
