"""Ensembles: a model folder that combines the probabilities of other model folders.

An ensemble folder holds one file, ``ensemble.json``, plus (with ``copy``) the member folders
under ``members/``::

    {"kind": "ensemble", "format_version": 1, "task": "single-label classification",
     "labels": [...], "combine": "logprob",
     "members": [{"path": "..", "kind": "bert", "weight": 0.41, "temperature": 1.3}, ...],
     "fit": {...how the weights were chosen, on which rows...}}

``path`` is relative to the ensemble folder (``..`` is the folder above it), so a tree of folders
can be moved or copied as a whole. Every member must know the same class names.

How members combine (``p_i`` a member's probabilities, ``T_i`` its temperature, ``w_i`` its
weight, weights >= 0 summing to 1):

* ``logprob`` (default): ``softmax(sum_i w_i * log(p_i) / T_i)``, a weighted geometric mean;
* ``prob``: ``sum_i w_i * softmax(log(p_i) / T_i)``, a weighted average of probabilities.

Fitting, on a labeled **dev** file only (never on test): each member's temperature minimises
its own log-loss on dev (it turns LinearSVC's uncalibrated softmax scores and Naive Bayes'
over-confident ones into comparable probabilities); then the weights minimise the ensemble's
log-loss on dev (L-BFGS over a softmax parametrisation). Guards against over-fitting a small
dev set (see :class:`EnsembleSettings`): below ``min_fit_rows`` rows nothing is fitted (equal
weights, temperature 1); above it the fitted weights are shrunk toward equal weights by
``n / (n + shrink_rows)``. The dev score recorded for choosing between models is
**cross-fitted**: each of ``cv_folds`` folds of dev is scored by an ensemble fitted on the
other folds, so fitting on dev does not flatter the ensemble.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from ..fileio import atomic_dir, write_json
from ..metrics import compute_metrics
from ..version import __version__

log = logging.getLogger(__name__)

KIND = "ensemble"
META_FILE = "ensemble.json"
FORMAT_VERSION = 1
TASK = "single-label classification"
COMBINES = ("logprob", "prob")
MEMBERS_DIR = "members"
_EPS = 1e-12
_T_RANGE = (0.05, 20.0)


@dataclass(frozen=True)
class EnsembleSettings:
    """How an ensemble is combined and fitted (``run.py ensemble`` and ``train --with-baselines``)."""

    combine: str = "logprob"  # "logprob": weighted log-probabilities; "prob": weighted probabilities
    fit: bool = True  # False: equal weights, temperature 1
    min_fit_rows: int = 100  # fewer dev rows: nothing is fitted (equal weights, temperature 1)
    shrink_rows: int = 200  # fitted weights shrink toward equal by n / (n + shrink_rows)
    cv_folds: int = 5  # folds of the cross-fitted dev score
    copy: bool = False  # copy the members' model files into OUT/members/ instead of referencing them
    seed: int = 42

    def check(self) -> None:
        if self.combine not in COMBINES:
            raise UserError(f"unknown combine {self.combine!r}; choose {' or '.join(COMBINES)}")
        if self.min_fit_rows < 0 or self.shrink_rows < 0:
            raise UserError("--min-fit-rows and --shrink-rows must not be negative")
        if self.cv_folds < 2:
            raise UserError(f"--cv-folds must be at least 2, got {self.cv_folds}")


# --------------------------------------------------------------------------- the arithmetic


def log_probs(probs: np.ndarray) -> np.ndarray:
    """``log(p)`` with zeros clipped to ``1e-12`` (a member certain of a wrong class is not -inf)."""
    return np.log(np.clip(probs, _EPS, 1.0))


def _softmax(scores: np.ndarray) -> np.ndarray:
    z = np.exp(scores - scores.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def combine(logps: Sequence[np.ndarray], weights: Sequence[float], temperatures: Sequence[float],
            how: str = "logprob") -> np.ndarray:
    """The ensemble's probabilities from the members' log-probabilities (same rows, same columns)."""
    if how == "logprob":
        return _softmax(sum(w * lp / t for lp, w, t in zip(logps, weights, temperatures, strict=True)))
    if how == "prob":
        return sum(w * _softmax(lp / t) for lp, w, t in zip(logps, weights, temperatures, strict=True))
    raise ValueError(f"unknown combine {how!r}")


def log_loss(probs: np.ndarray, y: np.ndarray) -> float:
    """Mean negative log-likelihood of the true classes."""
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(y)), y], _EPS, 1.0))))


def fit_temperature(logp: np.ndarray, y: np.ndarray) -> float:
    """The temperature in [0.05, 20] that minimises the log-loss of ``softmax(logp / T)``."""
    from scipy.optimize import minimize_scalar

    res = minimize_scalar(lambda lt: log_loss(_softmax(logp / np.exp(lt)), y),
                          bounds=tuple(np.log(_T_RANGE)), method="bounded")
    return float(np.exp(res.x))


def fit_weights(logps: Sequence[np.ndarray], temperatures: Sequence[float], y: np.ndarray,
                how: str = "logprob") -> np.ndarray:
    """Weights on the simplex minimising the ensemble's log-loss (L-BFGS on softmax(theta))."""
    from scipy.optimize import minimize

    m = len(logps)
    if m == 1:
        return np.ones(1)

    def objective(theta: np.ndarray) -> float:
        w = np.exp(theta - theta.max())
        return log_loss(combine(logps, w / w.sum(), temperatures, how), y)

    res = minimize(objective, np.zeros(m), method="L-BFGS-B")
    w = np.exp(res.x - res.x.max())
    return w / w.sum()


@dataclass
class Fit:
    """Fitted temperatures and weights, and how they came about."""

    temperatures: list[float]
    weights: list[float]
    info: dict


def fit_ensemble(logps: Sequence[np.ndarray], y: np.ndarray, settings: EnsembleSettings) -> Fit:
    """Temperatures then weights on the rows ``y``, with the small-data guards of ``settings``."""
    m, n = len(logps), len(y)
    equal = np.full(m, 1.0 / m)
    if not settings.fit or n < settings.min_fit_rows:
        reason = "not asked" if not settings.fit else f"{n} dev rows, fewer than min_fit_rows {settings.min_fit_rows}"
        return Fit([1.0] * m, equal.tolist(), {"fitted": False, "reason": reason, "rows": n})
    temps = [fit_temperature(lp, y) for lp in logps]
    fitted = fit_weights(logps, temps, y, settings.combine)
    shrink = n / (n + settings.shrink_rows)
    weights = shrink * fitted + (1 - shrink) * equal
    return Fit(temps, weights.tolist(), {
        "fitted": True, "rows": n, "method": "temperature per member, then weights by L-BFGS on dev log-loss",
        "weights_before_shrink": fitted.tolist(), "shrink": shrink,
    })


def cross_fitted_probs(logps: Sequence[np.ndarray], y: np.ndarray, settings: EnsembleSettings) -> np.ndarray:
    """Out-of-fold ensemble probabilities: each fold scored by an ensemble fitted on the others."""
    from sklearn.model_selection import KFold, StratifiedKFold

    n = len(y)
    folds = min(settings.cv_folds, n)
    counts = np.bincount(y)
    splitter = (StratifiedKFold(folds, shuffle=True, random_state=settings.seed)
                if counts[counts > 0].min() >= folds else KFold(folds, shuffle=True, random_state=settings.seed))
    out = np.zeros_like(logps[0])
    for fit_rows, score_rows in splitter.split(np.zeros(n), y):
        f = fit_ensemble([lp[fit_rows] for lp in logps], y[fit_rows], settings)
        out[score_rows] = combine([lp[score_rows] for lp in logps], f.weights, f.temperatures, settings.combine)
    return out


# --------------------------------------------------------------------------- the folder


def is_ensemble_dir(path: str | Path) -> bool:
    """True when ``path`` holds an ``ensemble.json``."""
    return (Path(path) / META_FILE).is_file()


def read_ensemble(path: str | Path) -> dict:
    """The checked contents of ``path/ensemble.json``; a :class:`UserError` naming what is wrong."""
    import json

    path = Path(path)
    meta_path = path / META_FILE
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"{meta_path} is not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("kind") != KIND:
        raise UserError(f"{meta_path} is not an ensemble description (no \"kind\": \"ensemble\")")
    if meta.get("format_version") != FORMAT_VERSION:
        raise UserError(f"{path} uses ensemble format {meta.get('format_version')!r}, this version reads "
                        f"format {FORMAT_VERSION}: rebuild it with `run.py ensemble`")
    labels, members = meta.get("labels"), meta.get("members")
    if not isinstance(labels, list) or len(labels) < 2 or not all(isinstance(x, str) for x in labels):
        raise UserError(f"{meta_path}: 'labels' must list at least two class names")
    if meta.get("combine") not in COMBINES:
        raise UserError(f"{meta_path}: 'combine' must be {' or '.join(COMBINES)}, got {meta.get('combine')!r}")
    if not isinstance(members, list) or not members:
        raise UserError(f"{meta_path}: 'members' must list at least one member folder")
    for i, m in enumerate(members):
        ok = (isinstance(m, dict) and isinstance(m.get("path"), str)
              and all(isinstance(m.get(k), int | float) for k in ("weight", "temperature")))
        if not ok or m["weight"] < 0 or not m["temperature"] > 0:
            raise UserError(f"{meta_path}: member {i + 1} needs a 'path', a 'weight' >= 0 and a 'temperature' > 0")
    return meta


def member_paths(path: str | Path, meta: dict) -> list[Path]:
    """The member folders, resolved against the ensemble folder."""
    return [Path(os.path.normpath(Path(path) / m["path"])) for m in meta["members"]]


Loader = Callable[[Path], Any]  # a model folder -> a Predictor (labels, kind, path, predict_proba)


class EnsemblePredictor:
    """An ensemble folder behind the Predictor interface (``labels``, ``kind``, ``path``, ``predict_proba``)."""

    kind = KIND

    def __init__(self, path: str | Path, load: Loader) -> None:
        self.path = Path(path)
        self.meta = read_ensemble(self.path)
        self.labels = list(self.meta["labels"])
        self.members = []
        for folder in member_paths(self.path, self.meta):
            if not folder.is_dir():
                raise UserError(f"{self.path / META_FILE}: member folder {folder} not found (members are referenced "
                                "relative to the ensemble folder: move them together, or rebuild with --copy)")
            if is_ensemble_dir(folder):
                raise UserError(f"{self.path}: member {folder} is itself an ensemble; list its members instead")
            self.members.append(load(folder))
        self._columns = [column_order(p, self.labels, self.path) for p in self.members]

    def predict_proba(self, texts: Sequence[str | None]) -> np.ndarray:
        """The members' probabilities combined; a row is all-NaN when any member's is (empty text)."""
        logps = [log_probs(p.predict_proba(texts)[:, cols]) for p, cols in zip(self.members, self._columns,
                                                                                strict=True)]
        ms = self.meta["members"]
        with np.errstate(invalid="ignore"):
            return combine(logps, [m["weight"] for m in ms], [m["temperature"] for m in ms], self.meta["combine"])


def column_order(predictor: Any, labels: list[str], where: Path | str) -> list[int]:
    """Columns of ``predictor``'s probabilities in the order of ``labels``; they must be the same classes."""
    if sorted(predictor.labels) != sorted(labels):
        raise UserError(
            f"{where}: member {predictor.path} knows the classes {', '.join(predictor.labels)}, the ensemble "
            f"{', '.join(labels)}: every member must be trained on the same classes"
        )
    return [list(predictor.labels).index(label) for label in labels]


# --------------------------------------------------------------------------- building one


def member_scores(members: Sequence[Any], texts: Sequence[str], labels: list[str], where: str) -> list[np.ndarray]:
    """Every member's log-probabilities on ``texts``, columns in ``labels`` order."""
    out = []
    for p in members:
        t0 = time.perf_counter()
        out.append(log_probs(p.predict_proba(texts)[:, column_order(p, labels, where)]))
        log.info("%s: scored %d dev texts in %.1fs", p.path, len(texts), time.perf_counter() - t0)
    return out


def build_ensemble(
    members: Sequence[Any],
    dev_texts: Sequence[str],
    dev_labels: Sequence[str],
    out: str | Path,
    settings: EnsembleSettings = EnsembleSettings(),
    files_of: Callable[[Path], list[Path]] | None = None,
    dev_source: str = "dev",
) -> dict:
    """Fit an ensemble of loaded ``members`` on the dev rows and write its folder ``out``; return its meta.

    ``files_of(folder)`` lists a member's model files; needed with ``settings.copy``.
    """
    settings.check()
    out = Path(out)
    if not members:
        raise UserError("an ensemble needs at least one member folder")
    labels = list(members[0].labels)
    unknown = sorted(set(dev_labels) - set(labels))
    if unknown:
        raise UserError(f"{dev_source}: label(s) {', '.join(map(repr, unknown[:5]))} are not known to the members "
                        f"(they know: {', '.join(labels)})")
    for p in members:
        if is_ensemble_dir(p.path):
            raise UserError(f"{p.path} is itself an ensemble; give its member folders instead")
        if Path(p.path).resolve() == out.resolve():
            raise UserError(f"--out {out} is one of the members; choose another folder for the ensemble")
    y = np.array([labels.index(x) for x in dev_labels])
    t0 = time.perf_counter()
    logps = member_scores(members, dev_texts, labels, dev_source)
    fit = fit_ensemble(logps, y, settings)
    names = _member_names([Path(p.path) for p in members])
    dev = {"rows": len(y), "source": str(dev_source), "members": {}}
    for name, lp in zip(names, logps, strict=True):
        dev["members"][name] = _scores(lp.argmax(axis=1), y, labels)
    dev["ensemble_in_sample"] = _scores(combine(logps, fit.weights, fit.temperatures, settings.combine)
                                        .argmax(axis=1), y, labels)
    if fit.info["fitted"]:
        cv = cross_fitted_probs(logps, y, settings)
        dev["ensemble_cross_fitted"] = {**_scores(cv.argmax(axis=1), y, labels), "folds": settings.cv_folds,
                                        "log_loss": round(log_loss(cv, y), 5)}
    meta = {
        "kind": KIND, "format_version": FORMAT_VERSION, "app_version": __version__, "task": TASK,
        "labels": labels, "combine": settings.combine,
        "members": [], "fit": {**fit.info, "seconds": round(time.perf_counter() - t0, 3)}, "dev": dev,
        "settings": {"min_fit_rows": settings.min_fit_rows, "shrink_rows": settings.shrink_rows,
                     "cv_folds": settings.cv_folds, "copied": settings.copy, "seed": settings.seed},
    }
    with atomic_dir(out) as tmp:
        for p, name, w, t in zip(members, names, fit.weights, fit.temperatures, strict=True):
            src = Path(p.path)
            if settings.copy:
                if files_of is None:
                    raise ValueError("copy needs files_of")
                (tmp / MEMBERS_DIR / name).mkdir(parents=True)
                for f in files_of(src):
                    shutil.copy2(f, tmp / MEMBERS_DIR / name / f.name)
                rel = f"{MEMBERS_DIR}/{name}"
            else:
                rel = Path(os.path.relpath(src.resolve(), out.resolve())).as_posix()
            meta["members"].append({"name": name, "path": rel, "kind": p.kind, "weight": round(float(w), 6),
                                    "temperature": round(float(t), 6)})
        write_json(tmp / META_FILE, meta)
    return meta


def _scores(pred: np.ndarray, y: np.ndarray, labels: list[str]) -> dict:
    m = compute_metrics(y, pred, labels)
    return {k: round(float(m[k]), 5) for k in ("accuracy", "macro_f1", "weighted_f1")}


def _member_names(paths: list[Path]) -> list[str]:
    """Short unique names: the folder name, with its parent's when two are alike."""
    names = [p.resolve().name for p in paths]
    out = [f"{p.resolve().parent.name}_{p.resolve().name}" if names.count(p.resolve().name) > 1 else p.resolve().name
           for p in paths]
    return [f"{n}_{i + 1}" if out.count(n) > 1 else n for i, n in enumerate(out)]
