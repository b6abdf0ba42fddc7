"""Tuning a kind's settings with Optuna: its declared search space, trials scored by K-fold
cross-validation on the training rows only.

Dev is never read here: the tuned model is then fitted on train and settles on dev as any model
does, so the dev score the recommendation reads stays honest, and test is never touched. Each trial
draws settings from :meth:`~cls_app.models.base.TextClassifier.search_space` (TPE sampler, seeded),
fits a clone of the model on K-1 folds and scores the held-out fold with the argmax decisions; the
median pruner stops a trial whose first folds are worse than the median of the others at the same
fold. The kind's own settings are scored the same way first: tuned settings are kept only when
their cross-validated score beats them by more than :data:`MIN_GAIN`. Optuna is imported here only.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import UserError
from ..models.base import TextClassifier
from ..settings import setting
from ..tasks.calibration import metric_of

log = logging.getLogger(__name__)

FOLDS = 3
MIN_GAIN = 0.002
"""Tuned settings replace the kind's own when their cross-validated score is higher by more than this."""


@dataclass(frozen=True)
class TuneSettings:
    """Tuning the fast kinds of the main job (``train --with-baselines --tune N``)."""

    tune: int = setting(0, "Optuna trials for each kind that declares a search space (the TF-IDF kinds, fasttext, "
                        "textcnn; not BERT), scored by 3-fold cross-validation on the training rows only (dev stays "
                        "honest for the recommendation); under --time-budget the trials share what the plan gives "
                        "(default 0: the kinds' own settings)", metavar="N")

    def check(self) -> TuneSettings:
        if self.tune < 0:
            raise UserError(f"--tune must be a number of trials, 0 or more, got {self.tune}")
        return self


@dataclass
class Tuned:
    """What tuning a kind found: the settings to fit it with and the trials behind them."""

    params: dict[str, Any]  # the settings chosen (empty: the kind's own)
    default_score: float
    best_score: float
    trials: int
    pruned: int
    seconds: float
    history: list[dict] = field(default_factory=list)

    def report(self) -> dict:
        return {"chosen": {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.params.items()},
                "cv_default": round(self.default_score, 6), "cv_best": round(self.best_score, 6),
                "trials": self.trials, "pruned": self.pruned, "seconds": round(self.seconds, 1), "folds": FOLDS}


def folds_of(y: np.ndarray, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified folds when every class has k rows, else shuffled ones."""
    from sklearn.model_selection import KFold, StratifiedKFold

    counts = np.bincount(y)
    splitter = (StratifiedKFold(k, shuffle=True, random_state=seed) if counts[counts > 0].min() >= k
                else KFold(k, shuffle=True, random_state=seed))
    return list(splitter.split(np.zeros(len(y)), y))


def cv_score(model: TextClassifier, params: dict[str, Any], train: Any, task: Any, metric: str,
             folds: list[tuple[np.ndarray, np.ndarray]], report: Any = None) -> float:
    """Mean held-out ``metric`` of ``model``'s clone with ``params``, fold by fold (``report(step, score)``
    after each: the pruner's hook)."""
    labels = task.vocabulary(train)
    y = task.encode(train, labels)
    scores = []
    for step, (fit_rows, held_rows) in enumerate(folds):
        candidate = model.clone().set_params(**params)
        candidate.fit_records(train.subset(fit_rows.tolist()), None, task)
        probs = candidate.predict_proba([train.texts[i] for i in held_rows])
        cols = [candidate.labels.index(n) if n in candidate.labels else -1 for n in labels]
        full = np.full((len(held_rows), len(labels)), -np.inf)
        for j, c in enumerate(cols):
            if c >= 0:
                full[:, j] = probs[:, c]
        scores.append(metric_of(y[held_rows], full.argmax(axis=1), len(labels), metric))
        if report is not None:
            report(step, float(np.mean(scores)))
    return float(np.mean(scores))


def tune(model: TextClassifier, train: Any, task: Any, metric: str, trials: int, seconds: float | None = None,
         seed: int = 42) -> Tuned:
    """Search ``model``'s kind's space for ``trials`` trials (at most ``seconds``); see the module docstring."""
    import optuna

    t0 = time.perf_counter()
    y = task.encode(train, task.vocabulary(train))
    counts = np.bincount(y)
    if trials <= 0 or not type(model).search_space(Probe()) or counts[counts > 0].min() < 2 or len(y) < 3 * FOLDS:
        return Tuned({}, float("nan"), float("nan"), 0, 0, 0.0)
    folds = folds_of(y, FOLDS, seed)
    default = cv_score(model, {}, train, task, metric, folds)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed),
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0))
    history: list[dict] = []

    def objective(trial: Any) -> float:
        params = type(model).search_space(trial)

        def report(step: int, score: float) -> None:
            trial.report(score, step)
            if trial.should_prune():
                raise optuna.TrialPruned()

        try:
            score = cv_score(model, params, train, task, metric, folds, report)
        except UserError as exc:  # settings the data cannot take (too few rows for min_df, ...): a bad trial
            log.info("%s trial %d: %s", model.kind, trial.number, exc)
            return float("-inf")
        history.append({"trial": trial.number, "params": params, "score": round(score, 6)})
        return score

    study.optimize(objective, n_trials=trials, timeout=seconds, catch=())
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
    best_score = study.best_value if done else float("-inf")
    params: dict[str, Any] = {}
    if done and best_score > default + MIN_GAIN:
        params = next(h["params"] for h in history if h["trial"] == study.best_trial.number)
    log.info("%s: tuned in %d trials (%d pruned): cross-validated %s %.4f with its own settings, %.4f best%s",
             model.kind, len(study.trials), pruned, metric, default, best_score,
             f"; chose {params}" if params else "; kept its own")
    return Tuned(params, default, best_score, len(study.trials), pruned, time.perf_counter() - t0, history)


class Probe:
    """A trial that answers every suggestion with its lowest value (to see whether a kind has a space)."""

    def suggest_int(self, name: str, low: int, high: int, **_: Any) -> int:
        return low

    def suggest_float(self, name: str, low: float, high: float, **_: Any) -> float:
        return low

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        return list(choices)[0]
