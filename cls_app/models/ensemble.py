"""Ensembles: a model that combines the probabilities of other models, and its folder.

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

Pruning (``prune``, :data:`PRUNE`): a member the weight fit gives less than ``prune`` of the
weight (before shrinking) adds nothing the others do not say; it is dropped and the weights are
refitted among the rest (shrunk toward equal among them). Inside the cross-fitting each fold prunes
for itself, so the honest dev score includes the choice; the final fit's dropped members are left
out of the folder (``pruned`` records what was offered and dropped), so the ensemble predicts
without them.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from ..fileio import atomic_dir, write_json
from ..settings import setting
from ..tasks import AbstainSettings, SingleLabel, Task, compute_metrics, softmax, task_from_settings
from ..tasks.calibration import fit_temperature, log_loss, log_probs
from ..version import __version__
from .base import NotAList, Outputs, TextClassifier, load_member, model_names, register, score_timed
from .folders import ENSEMBLE_FILE, member_paths, model_files
from .ood import OodScorer
from .options import InferenceOptions

log = logging.getLogger(__name__)

KIND = "ensemble"
META_FILE = ENSEMBLE_FILE
FORMAT_VERSION = 1
TASK = "single-label classification"
MEMBERS_DIR = "members"
COMBINES = ("logprob", "prob")
PRUNE = 0.1
"""Members fitted below this weight are dropped (chosen on the dev halves of the seven sets of
``bench/ensemble_pruning.py``, docs/ensembles.md)."""
COST_SHARE = 0.5
COST_GAIN = 0.002
"""A member declaring more than :data:`COST_SHARE` of the members' prediction cost is dropped when it adds at most
:data:`COST_GAIN` to the cross-fitted dev score (see :func:`costly_member`)."""


@dataclass(frozen=True)
class EnsembleSettings:
    """How an ensemble is combined and fitted (``run.py ensemble`` and ``train --with-baselines``)."""

    combine: str = setting("logprob", "logprob: weighted log-probabilities (geometric mean); prob: weighted "
                           "probabilities (default: %(default)s)", choices=COMBINES)
    fit: bool = setting(True, "equal weights and temperature 1: nothing fitted on dev")
    min_fit_rows: int = setting(100, "below this many dev rows nothing is fitted (default: %(default)s)")
    shrink_rows: int = setting(200, "fitted weights shrink toward equal by n / (n + this) for n dev rows "
                               "(default: %(default)s)")
    cv_folds: int = setting(5, "folds of the cross-fitted dev score (default: %(default)s)")
    copy: bool = setting(False, "copy the members' model files into OUT/members/ (default: reference them by "
                         "relative path)")
    prune: float = setting(PRUNE, "drop the members the dev fit gives less than this weight and refit the rest: "
                           "they add nothing and cost time (0: keep every member; default: %(default)s)")
    cost_share: float = setting(COST_SHARE, "a member whose declared prediction cost (BERT 30, textcnn 3, char_svm "
                                "1) is more than this share of the members' and adds at most --cost-gain to its "
                                "cross-fitted dev score is dropped "
                                "(default: %(default)s; 1: never)")
    cost_gain: float = setting(COST_GAIN, "see --cost-share (default: %(default)s)")

    def check(self) -> None:
        if self.combine not in COMBINES:
            raise UserError(f"unknown combine {self.combine!r}; choose {' or '.join(COMBINES)}")
        if self.min_fit_rows < 0 or self.shrink_rows < 0:
            raise UserError("--min-fit-rows and --shrink-rows must not be negative")
        if self.cv_folds < 2:
            raise UserError(f"--cv-folds must be at least 2, got {self.cv_folds}")
        if not 0 <= self.prune < 0.5:
            raise UserError(f"--prune must be a weight from 0 to below 0.5, got {self.prune}")
        if not 0 < self.cost_share <= 1 or self.cost_gain < 0:
            raise UserError(f"--cost-share must be in (0, 1] and --cost-gain at least 0, got {self.cost_share}, "
                            f"{self.cost_gain}")


# --------------------------------------------------------------------------- the arithmetic


def combine(logps: Sequence[np.ndarray], weights: Sequence[float], temperatures: Sequence[float],
            how: str = "logprob") -> np.ndarray:
    """The ensemble's probabilities from the members' log-probabilities (same rows, same columns)."""
    if how == "logprob":
        scores = np.zeros_like(logps[0])
        for lp, w, t in zip(logps, weights, temperatures, strict=True):
            scores = scores + w * lp / t
        return softmax(scores)
    if how == "prob":
        probs = np.zeros_like(logps[0])
        for lp, w, t in zip(logps, weights, temperatures, strict=True):
            probs = probs + w * softmax(lp / t)
        return probs
    raise ValueError(f"unknown combine {how!r}")


def fit_weights(logps: Sequence[np.ndarray], temperatures: Sequence[float], y: np.ndarray,
                how: str = "logprob") -> np.ndarray:
    """Weights on the simplex minimising the ensemble's log-loss (L-BFGS on softmax(theta); for ``logprob``
    with the exact gradient)."""
    from scipy.optimize import minimize

    m = len(logps)
    if m == 1:
        return np.ones(1)
    if how == "logprob":
        a = np.stack([np.asarray(lp, dtype=np.float64) / t for lp, t in zip(logps, temperatures, strict=True)])
        rows = np.arange(len(y))
        gold = a[:, rows, y]  # (members, rows)

        def with_gradient(theta: np.ndarray) -> tuple[float, np.ndarray]:
            w = np.exp(theta - theta.max())
            w /= w.sum()
            z = np.tensordot(w, a, axes=1)
            z -= z.max(axis=1, keepdims=True)
            lse = np.log(np.exp(z).sum(axis=1))
            p = np.exp(z - lse[:, None])
            g = (np.einsum("mnk,nk->mn", a, p) - gold).mean(axis=1)  # d loss / d w
            return float(np.mean(lse - z[rows, y])), w * (g - w @ g)

        res = minimize(with_gradient, np.zeros(m), jac=True, method="L-BFGS-B", options={"gtol": 1e-8})
    else:
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
    """Temperatures then weights on the rows ``y``, with the small-data guards and the pruning of ``settings``
    (a dropped member's weight is 0)."""
    m, n = len(logps), len(y)
    equal = np.full(m, 1.0 / m)
    if not settings.fit or n < settings.min_fit_rows:
        reason = "not asked" if not settings.fit else f"{n} dev rows, fewer than min_fit_rows {settings.min_fit_rows}"
        return Fit([1.0] * m, equal.tolist(), {"fitted": False, "reason": reason, "rows": n})
    temps = [fit_temperature(lp, y) for lp in logps]
    fitted = fit_weights(logps, temps, y, settings.combine)
    info: dict = {"fitted": True, "rows": n, "method": "temperature per member, then weights by L-BFGS on dev "
                  "log-loss"}
    kept = list(range(m))
    if settings.prune > 0 and m > 1:
        kept = [i for i in range(m) if fitted[i] >= settings.prune] or [int(np.argmax(fitted))]
        if len(kept) < m:
            info["weights_before_pruning"] = fitted.tolist()
            refit = fit_weights([logps[i] for i in kept], [temps[i] for i in kept], y, settings.combine)
            fitted = np.zeros(m)
            fitted[kept] = refit
            equal = np.zeros(m)
            equal[kept] = 1.0 / len(kept)
    shrink = n / (n + settings.shrink_rows)
    weights = shrink * fitted + (1 - shrink) * equal
    info.update({"weights_before_shrink": fitted.tolist(), "shrink": shrink,
                 "dropped": [i for i in range(m) if i not in kept]})
    return Fit(temps, weights.tolist(), info)


def costly_member(logps: Sequence[np.ndarray], y: np.ndarray, costs: Sequence[float], settings: EnsembleSettings,
                  metric: str, seed: int = 42) -> dict | None:
    """The member that costs more than ``settings.cost_share`` of the members' costs (``costs``: each member's
    declared prediction cost, so that the same data and seed give the same ensemble whatever the machine's load:
    BERT's 30 against char_svm's 1) and adds at most ``settings.cost_gain`` to the cross-fitted dev ``metric``:
    what dropping it costs and saves (None: no such member, or fewer than two members)."""
    from ..tasks.calibration import metric_of

    total = float(sum(costs))
    if len(logps) < 2 or total <= 0:
        return None
    i = int(np.argmax(costs))
    share = float(costs[i]) / total
    if share <= settings.cost_share:
        return None
    k = logps[0].shape[1]
    rest = [lp for j, lp in enumerate(logps) if j != i]
    with_it = metric_of(y, cross_fitted_probs(logps, y, settings, seed).argmax(axis=1), k, metric)
    without = metric_of(y, cross_fitted_probs(rest, y, settings, seed).argmax(axis=1), k, metric)
    info = {"member": i, "cost_share": round(share, 4), "dev_with": round(with_it, 6), "dev_without": round(without, 6)}
    return info if with_it - without <= settings.cost_gain else None


def fold_rows(y: np.ndarray, settings: EnsembleSettings, seed: int = 42) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (fit rows, score rows) of the cross-fitting folds (stratified when every class allows)."""
    from sklearn.model_selection import KFold, StratifiedKFold

    n = len(y)
    folds = min(settings.cv_folds, n)
    counts = np.bincount(y)
    splitter = (StratifiedKFold(folds, shuffle=True, random_state=seed)
                if counts[counts > 0].min() >= folds else KFold(folds, shuffle=True, random_state=seed))
    return list(splitter.split(np.zeros(n), y))


def cross_fitted_probs(logps: Sequence[np.ndarray], y: np.ndarray, settings: EnsembleSettings, seed: int = 42
                       ) -> np.ndarray:
    """Out-of-fold ensemble probabilities: each fold scored by an ensemble fitted on the others."""
    out = np.zeros_like(logps[0])
    for fit_rows, score_rows in fold_rows(y, settings, seed):
        f = fit_ensemble([lp[fit_rows] for lp in logps], y[fit_rows], settings)
        out[score_rows] = combine([lp[score_rows] for lp in logps], f.weights, f.temperatures, settings.combine)
    return out


# --------------------------------------------------------------------------- the folder


def read_ensemble(path: str | Path) -> dict:
    """The checked contents of ``path/ensemble.json``; a :class:`UserError` naming what is wrong."""
    path = Path(path)
    meta_path = path / META_FILE
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
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


def column_order(model: Any, labels: list[str], where: Path | str) -> list[int]:
    """Columns of ``model``'s probabilities in the order of ``labels``; they must be the same classes."""
    if sorted(model.labels) != sorted(labels):
        raise UserError(
            f"{where}: member {model.path or model.kind} knows the classes {', '.join(model.labels)}, the ensemble "
            f"{', '.join(labels)}: every member must be trained on the same classes"
        )
    return [list(model.labels).index(label) for label in labels]


def member_scores(members: Sequence[Any], texts: Sequence[str], labels: list[str], where: str
                  ) -> tuple[list[np.ndarray], list[np.ndarray], list[float]]:
    """Every member's log-probabilities on ``texts`` (columns in ``labels`` order), ood scores and seconds."""
    scored = score_timed(members, texts, what=f"texts of {where}")
    return ([log_probs(s.probs[:, column_order(s.model, labels, where)]) for s in scored],
            [s.ood for s in scored], [s.seconds for s in scored])


def _scores(pred: np.ndarray, y: np.ndarray, labels: list[str]) -> dict:
    m = compute_metrics(y, pred, labels)
    return {k: round(float(m[k]), 5) for k in ("accuracy", "macro_f1", "weighted_f1")}


def share_densities(members: Sequence[Any]) -> None:
    """Members fitted on the same training texts get one character model between them, which scores each
    list of texts once (:meth:`~cls_app.models.ood.TextDensity.both`)."""
    shared: dict[tuple[int, int, int], Any] = {}
    for m in members:
        scorer = m.abstainer.scorer if m.abstainer is not None else None
        if scorer is not None and scorer.density is not None:
            scorer.density = shared.setdefault(scorer.density.signature(), scorer.density)


@dataclass
class DevScores:
    """Members' log-probabilities on the dev rows (columns in the ensemble's label order) and the gold ids."""

    logps: list[np.ndarray]
    y: np.ndarray
    source: str = "dev"
    ood: list[np.ndarray] | None = None  # the members' out-of-domain scores on the dev rows (None: not known)

    def subset(self, members: Sequence[int]) -> DevScores:
        """The same rows for the members ``members`` (indices) only."""
        pick = list(members)
        return DevScores([self.logps[i] for i in pick], self.y, self.source,
                         None if self.ood is None else [self.ood[i] for i in pick])


def member_chars(members: Sequence[TextClassifier]) -> set[str]:
    """The union of the members' training characters (empty when one of them has no drift reference)."""
    if any(m.reference is None for m in members):
        return set()
    return set().union(*(m.reference.char_set for m in members if m.reference is not None))


@register("ensemble", family="ensemble")
class EnsembleClassifier(TextClassifier):
    """Members combined by weights and temperatures fitted on dev (see the module docstring).

    ``TextClassifier(kind="ensemble", members=[...], **settings)``: members are kind names or models
    (unfitted: :meth:`fit` fits them on the training rows first); ``settings`` are
    :class:`EnsembleSettings` fields. :meth:`TextClassifier.ensemble` combines fitted models."""

    settings_class = EnsembleSettings
    combines = True
    cost = 200.0

    @property
    def prediction_cost(self) -> float:
        return float(sum(m.prediction_cost for m in self.members))
    dev_basis = "dev decisions of ensembles fitted on the other dev folds"
    quick_settings = {"members": ["char_svm", "word_nb", "char_nb"], "min_fit_rows": 10}

    members: list[TextClassifier]
    meta: dict
    columns: list[list[int]]

    def init_fields(self, kind: str | None) -> None:
        super().init_fields(kind)
        self.members, self.meta, self.columns = [], {}, []

    def __init__(self, kind: str | None = "ensemble", members: Sequence[TextClassifier | str] | None = None,
                 **settings: Any) -> None:
        super().__init__(kind, **settings)
        self.members = [TextClassifier(kind=m, seed=self.seed, metric=self.metric) if isinstance(m, str) else m
                        for m in (members or [])]

    def get_params(self) -> dict[str, Any]:
        return {**super().get_params(), "members": list(self.members)}

    def training_chars(self, texts: Sequence[str]) -> set[str]:
        """The characters of the training texts as each member saw them (their drift references'; empty when a
        member has none)."""
        return member_chars(self.members)

    def clone(self) -> EnsembleClassifier:
        """An unfitted ensemble of unfitted copies of the members, with the same settings."""
        params = self.get_params()
        params["members"] = [m.clone() for m in self.members]
        return type(self)(self.kind, **params)

    def fit_task(self, train: Any, dev: Any | None, task: Task, text_pair_col: str | None = None,
                 **extra: Any) -> EnsembleClassifier:
        """Fit the unfitted members on ``train`` (with ``dev``), then the weights on ``dev`` (without it: a
        held-out part of ``train``)."""
        if not self.members:
            raise UserError("an ensemble needs members: TextClassifier(kind='ensemble', members=['char_svm', ...])")
        if dev is None:
            from ..io.records import DataOptions
            from ..settings import default

            train, dev = task.split(train, default(DataOptions, "dev_fraction"), self.seed)
        for m in self.members:
            if not m.labels:
                m.fit_records(train, dev, task, text_pair_col)
        labels = list(self.members[0].labels)
        logps, ood, seconds = member_scores(self.members, list(dev.texts), labels, str(dev.source))
        return self.fit_scores(self.members, DevScores(logps, task.encode(dev, labels), str(dev.source), ood),
                               seconds)

    @classmethod
    def build(cls, members: list[TextClassifier], dev: tuple[Sequence[Any], Sequence[Any]], **settings: Any
              ) -> EnsembleClassifier:
        """``TextClassifier.ensemble``: fit on ``dev`` with :class:`EnsembleSettings` fields ``settings``
        (and ``seed``, ``metric``, ``abstain``)."""
        return cls(members=members, **settings).fit_members(dev)

    def fit_members(self, dev: tuple[Sequence[Any], Sequence[Any]], source: str = "dev") -> EnsembleClassifier:
        """Fit on the dev rows (texts, labels; read from ``source``): every (fitted) member scores them once."""
        members = self.members
        if not members:
            raise UserError("an ensemble needs at least one member model")
        labels = list(members[0].labels)
        texts, gold = list(dev[0]), [str(x) for x in dev[1]]
        unknown = sorted(set(gold) - set(labels))
        if unknown:
            raise UserError(f"{source}: label(s) {', '.join(map(repr, unknown[:5]))} are not known to the members "
                            f"(they know: {', '.join(labels)})")
        y = np.array([labels.index(x) for x in gold])
        logps, ood, seconds = member_scores(members, texts, labels, source)
        fitted = self.fit_scores(members, DevScores(logps, y, source, ood), seconds)
        fitted.measure_reference(texts, member_chars(fitted.members))
        return fitted

    def fit_scores(self, members: list[TextClassifier], dev: DevScores, seconds: Sequence[float] | None = None
                   ) -> EnsembleClassifier:
        """Fit on the members' dev log-probabilities (computed once by the caller); returns the fitted
        ensemble (this object, holding the members pruning kept). ``seconds``: each member's prediction time
        on the same rows (recorded: each kept member's share); a member whose declared prediction cost is more than
        half of the members' and adds almost nothing is dropped first (:func:`costly_member`)."""
        settings = self.settings
        settings.check()
        offered_all = model_names(members)
        costs: dict[str, Any] | None = None
        if seconds is not None and len(seconds) == len(members):
            offered_names = model_names(members)
            costs = {"seconds": [round(float(x), 4) for x in seconds], "names": offered_names}
            declared = [m.prediction_cost for m in members]
            dropped = costly_member(dev.logps, dev.y, declared, settings, self.metric or "macro_f1", self.seed)
            if dropped is not None:
                gone = dropped.pop("member")
                costs["dropped"] = {"name": offered_names[gone], **dropped}
                log.info("ensemble: dropped %s: %.0f%% of the members' cost for %+.4f of cross-fitted dev score",
                         offered_names[gone], 100 * dropped["cost_share"],
                         dropped["dev_with"] - dropped["dev_without"])
                keep = [i for i in range(len(members)) if i != gone]
                members, dev, seconds = [members[i] for i in keep], dev.subset(keep), [seconds[i] for i in keep]
        labels = list(members[0].labels)
        for m in members:
            if m.task.multi:
                raise UserError(f"{m.path or m.kind} is a {m.task.name} model: ensembles combine single-label models")
            if m.combines:
                raise UserError(f"{m.path or m.kind} is itself an ensemble; give its member folders instead")
        t0 = time.perf_counter()
        fit = fit_ensemble(dev.logps, dev.y, settings)
        offered_logps = dev.logps  # the cross-fitting prunes in every fold for itself, from all of them
        pruned = None
        if fit.info.get("dropped"):  # members that add nothing: out of the folder, the rest keep their fit
            offered, gone = model_names(members), set(fit.info["dropped"])
            kept = [i for i in range(len(members)) if i not in gone]
            weak = [offered[i] for i in sorted(gone)]
            pruned = {"below_weight": settings.prune, "offered": offered, "dropped": weak,
                      "weights_before_pruning": [round(float(w), 6) for w in fit.info["weights_before_pruning"]]}
            log.info("ensemble: dropped %s (dev weights below %.2f), kept %s", ", ".join(weak),
                     settings.prune, ", ".join(offered[i] for i in kept))
            members, dev = [members[i] for i in kept], dev.subset(kept)
            fit = Fit([fit.temperatures[i] for i in kept], [fit.weights[i] for i in kept],
                      {**fit.info, "weights_before_shrink": [fit.info["weights_before_shrink"][i] for i in kept],
                       "dropped": []})
        names = model_names(members)
        scores: dict = {"rows": len(dev.y), "source": str(dev.source), "members": {}}
        for name, lp in zip(names, dev.logps, strict=True):
            scores["members"][name] = _scores(lp.argmax(axis=1), dev.y, labels)
        combined = combine(dev.logps, fit.weights, fit.temperatures, settings.combine)
        scores["ensemble_in_sample"] = _scores(combined.argmax(axis=1), dev.y, labels)
        honest = combined  # not fitted (small dev set): equal weights, the in-sample figures are honest
        if fit.info["fitted"]:
            honest = cv = cross_fitted_probs(offered_logps, dev.y, settings, self.seed)
            scores["ensemble_cross_fitted"] = {**_scores(cv.argmax(axis=1), dev.y, labels),
                                               "folds": settings.cv_folds, "log_loss": round(log_loss(cv, dev.y), 5)}
        # calibration and decisions for the metric, fitted on the honest (cross-fitted) combination
        task, decided = SingleLabel().fit_decisions(dev.y, honest, labels, self.metric, self.seed)
        if decided is not None:
            final = compute_metrics(dev.y, decided.dev_pred, labels)
            scores["ensemble_final"] = {k: round(float(final[k]), 5) for k in ("accuracy", "macro_f1", "weighted_f1")}
        meta = {
            "kind": KIND, "format_version": FORMAT_VERSION, "app_version": __version__, "task": TASK,
            "labels": labels, "combine": settings.combine,
            "members": [{"name": n, "kind": m.family, "weight": round(float(w), 6), "temperature": round(float(t), 6)}
                        for n, m, w, t in zip(names, members, fit.weights, fit.temperatures, strict=True)],
            "fit": {**fit.info, "seconds": round(time.perf_counter() - t0, 3)}, "dev": scores, "offered": offered_all,
            **({"pruned": pruned} if pruned is not None else {}),
            "settings": {"min_fit_rows": settings.min_fit_rows, "shrink_rows": settings.shrink_rows,
                         "prune": settings.prune, "cost_share": settings.cost_share, "cost_gain": settings.cost_gain,
                         "cv_folds": settings.cv_folds, "copied": settings.copy, "seed": self.seed,
                         "metric": self.metric},
            **task.folder_fields(),
        }
        if decided is not None:
            meta["decisions"] = decided.report
        if costs is not None:  # each kept member's share of the prediction time (what predicting costs)
            seconds_of = dict(zip(costs["names"], costs["seconds"], strict=True))
            kept_seconds = [seconds_of.get(n) for n in names]
            total = sum(x for x in kept_seconds if x is not None) or 1.0
            meta["cost"] = {"members": {n: {"seconds": x, "share": round(x / total, 4) if x is not None else None}
                                        for n, x in zip(names, kept_seconds, strict=True)},
                            **({"dropped": costs["dropped"]} if "dropped" in costs else {}),
                            "rule": {"share_above": settings.cost_share, "gain_at_most": settings.cost_gain}}
        self.assemble_into(members, meta, None)
        # the dev probabilities of ensembles fitted on the other dev folds (calibrated): what the members'
        # dev probabilities are to them, honest enough to compare log-losses across candidates
        self.dev_probs = self.task.calibrate(honest)
        self.dev_pred, self.decisions = (decided.dev_pred, decided.report) if decided is not None else (None, None)
        # abstaining: the mean of the members' normalised ood scores, normalised again on dev
        try:
            scorer = OodScorer(members=True)
            member_ood = np.column_stack(dev.ood) if dev.ood is not None else None
            dev_ood = scorer.fit_norms(scorer.parts(None, self.dev_probs, member_scores=member_ood))
            self.set_abstainer(scorer, dev.y, self.dev_probs, dev_ood, self.abstain)
        except UserError:
            raise
        except Exception as exc:
            self.abstainer = None
            self.degrade("abstention", exc, "it answers every text (no out-of-domain score)")
        return self

    def assemble_into(self, members: list[TextClassifier], meta: dict, path: Path | None) -> None:
        """Hold ``members`` combined as ``meta`` (``ensemble.json``) says."""
        self.members, self.meta, self.labels, self.path = members, meta, list(meta["labels"]), path
        self.columns = [column_order(m, self.labels, path or "ensemble") for m in members]
        self.pairs = all(m.pairs for m in members)
        self.text_pair_col = next((m.text_pair_col for m in members if m.text_pair_col), None)
        self.task = task_from_settings({**meta, "task": "single-label"})  # its calibration and decisions
        share_densities(members)

    @property
    def weights(self) -> list[float]:
        return [float(m["weight"]) for m in self.meta["members"]]

    @property
    def temperatures(self) -> list[float]:
        return [float(m["temperature"]) for m in self.meta["members"]]

    def combine_member_probs(self, probs: Sequence[np.ndarray]) -> np.ndarray:
        """The ensemble's probabilities from its members' (each in its own column order); a row is all-NaN
        when any member's is (an empty text). Lets a caller that already has the members' outputs skip
        predicting twice."""
        logps = [log_probs(p[:, cols]) for p, cols in zip(probs, self.columns, strict=True)]
        with np.errstate(invalid="ignore"):
            return self.task.calibrate(combine(logps, self.weights, self.temperatures, self.meta["combine"]))

    def score(self, texts: Any) -> Outputs:
        """The members' probabilities combined, and their ood scores (each member predicts every text once)."""
        if isinstance(texts, str):
            raise NotAList("texts must be a list of strings, not a single string: predict_proba([text])")
        texts = list(texts)
        return self.combine_outputs([m.score(texts) for m in self.members])

    def combine_outputs(self, scored: Sequence[Outputs]) -> Outputs:
        """The ensemble's probabilities and ood scores from its members' (a caller that has them skips
        predicting twice)."""
        probs = self.combine_member_probs([s.probs for s in scored])
        ood = np.full(len(probs), np.nan)
        if self.abstainer is not None and len(probs):
            ood = self.abstainer.scorer.score(None, probs, member_scores=np.column_stack([s.ood for s in scored]))
            ood[np.isnan(probs).all(axis=1)] = np.nan
        return Outputs(probs, ood)

    def scores(self, texts: list[str]) -> np.ndarray:
        return self.predict_proba(texts)

    def fit_abstention(self, train: Any, dev: Any, settings: AbstainSettings | None = None, seed: int = 42,
                       analysed: tuple[np.ndarray, Any] | None = None) -> None:
        """The abstention of a loaded ensemble, fitted on ``dev`` (its members' ood scores: each member needs its
        own abstention files for the ensemble to have an ood score; ``train`` is not read)."""
        outputs = [m.score(list(dev.texts)) for m in self.members]
        probs = self.combine_member_probs([o.probs for o in outputs])
        scorer = OodScorer(members=True)
        dev_ood = scorer.fit_norms(scorer.parts(None, probs, member_scores=np.column_stack([o.ood for o in outputs])))
        self.set_abstainer(scorer, self.task.encode(dev, self.labels), probs, dev_ood, settings)

    def describe(self) -> dict:
        out = super().describe()
        out.update({"combine": self.meta["combine"], "members": len(self.members)})
        return out

    def train_seconds(self) -> float | None:
        parts = [m.train_seconds() for m in self.members]
        fit = float((self.meta.get("fit") or {}).get("seconds", 0.0) or 0.0)
        return None if any(p is None for p in parts) else float(sum(p or 0.0 for p in parts)) + fit

    def save(self, path: str | Path, copy: bool | None = None) -> Path:
        """Write ``ensemble.json``; members are referenced by a path relative to ``path`` (``copy``, or a
        member never saved: their files go under ``path/members/NAME``)."""
        out = Path(path)
        copy = bool(self.meta.get("settings", {}).get("copied")) if copy is None else copy
        for m in self.members:
            if m.path is not None and Path(m.path).resolve() == out.resolve():
                raise UserError(f"--out {out} is one of the members; choose another folder for the ensemble")
        meta = json.loads(json.dumps(self.meta))
        with atomic_dir(out) as tmp:
            for m, entry in zip(self.members, meta["members"], strict=True):
                if copy or m.path is None:
                    target = tmp / MEMBERS_DIR / entry["name"]
                    if m.path is None:
                        m.save(target)
                    else:
                        target.mkdir(parents=True)
                        for f in model_files(m.path):
                            shutil.copy2(f, target / f.name)
                    entry["path"] = f"{MEMBERS_DIR}/{entry['name']}"
                else:
                    entry["path"] = Path(os.path.relpath(Path(m.path).resolve(), out.resolve())).as_posix()
            write_json(tmp / META_FILE, meta)
            self.save_extras(tmp)
        self.meta, self.path = meta, out
        for m, entry in zip(self.members, meta["members"], strict=True):
            if m.path is None or entry["path"].startswith(MEMBERS_DIR + "/"):
                m.path = out / entry["path"]
        return out

    @classmethod
    def from_folder(cls, path: Path, options: InferenceOptions) -> EnsembleClassifier:
        """An ensemble folder; its members loaded with ``options`` (the BERT ones apply to BERT members)."""
        meta = read_ensemble(path)
        members = []
        for folder in member_paths(path, meta):
            if not folder.is_dir():
                raise UserError(f"{path / META_FILE}: member folder {folder} not found (members are referenced "
                                "relative to the ensemble folder: move them together, or rebuild with --copy)")
            if (folder / META_FILE).is_file():
                raise UserError(f"{path}: member {folder} is itself an ensemble; list its members instead")
            members.append(load_member(folder, options))
        obj = cls.blank(KIND)
        recorded = dict(meta.get("settings") or {})
        obj.seed = int(recorded.get("seed", 42) or 42)
        obj.metric = recorded.get("metric")
        known = {k: recorded[k] for k in ("min_fit_rows", "shrink_rows", "prune", "cost_share", "cost_gain", "cv_folds")
                 if k in recorded}
        try:
            obj.settings = obj.make_settings({**known, "combine": meta["combine"],
                                              "copy": bool(recorded.get("copied"))})
        except UserError as exc:
            raise UserError(f"{path / META_FILE}: {exc}") from None
        obj.assemble_into(members, meta, path)
        obj.options = options
        return obj
