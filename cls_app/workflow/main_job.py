"""The main job, top to bottom: ``run.py train`` (and with ``--with-baselines`` the whole comparison).

1. Read train, dev and test once; every later stage gets these records.
2. Fine-tune the BERT (writing OUT as it goes: resumable); it then predicts from memory.
3. Score test with it (once): ``OUT/test_eval/`` and ``OUT/metrics.json``.
4. With baselines:
   a. fit each TF-IDF baseline on the same records,
   b. every model predicts dev once and test once,
   c. the ensemble is fitted on the members' dev predictions (``OUT/ensemble``) and combines their
      test predictions (no second prediction),
   d. the best candidate on dev is recommended (``OUT/best.json``),
   e. the comparison on test (else dev) is written (``OUT/comparison``).

Each stage hands the next typed objects (records, fitted models, :class:`Scores`); the files are
outputs only. Under ``torchrun`` every process trains the BERT; rank 0 alone does the rest.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..baselines.pipelines import BASELINE_NAMES, LABEL_SET_BASELINES
from ..evaluation.compare import CompareOptions, Comparison, ModelScores, compare, display_names
from ..evaluation.recommend import Candidate, fastest_within, pointer, select, write_pointer
from ..evaluation.report import Evaluation, evaluate
from ..fileio import write_json
from ..inference.files import read_chunks
from ..models.base import Outputs, TextClassifier
from ..models.bert import BertTextClassifier
from ..models.ensemble import DevScores, EnsembleClassifier, EnsembleSettings
from ..runtime.distributed import env_info
from ..tasks import AbstainSettings, Task, headline, task_named
from ..tasks.calibration import log_loss, log_probs
from ..training.pipeline import RunFolder, warn_collapsed
from ..training.settings import TrainJob, training_args
from .distill import read_unlabeled
from .self_training import self_train

log = logging.getLogger(__name__)

SMALL_KINDS = ("fasttext", "textcnn")
"""The fast neural kinds the main job trains beside the TF-IDF baselines (single-label tasks)."""

ENSEMBLE_DIR = "ensemble"
BASELINES_DIR = "baselines"
COMPARISON_DIR = "comparison"


@dataclass
class Splits:
    """The records of a run, read once, and their task."""

    task: Task
    train: Any
    dev: Any
    test: Any | None

    @classmethod
    def read(cls, job: TrainJob) -> Splits:
        d = job.data
        task = task_named(d.task, d.label_sep, d.path_sep)
        train, dev, test = task.load_splits(d, job.bert.train.seed)
        labels = task.vocabulary(train)
        for part in (dev, test):  # a label train never saw is a user error before anything is trained
            if part is not None:
                task.encode(part, labels)
        log.info("data (%s): %d train, %d dev, %s test rows", task.name, len(train), len(dev),
                 len(test) if test is not None else "no")
        return cls(task, train, dev, test)


@dataclass
class Predictions:
    """A fitted model with its predictions on dev and on the target rows (test, else dev)."""

    model: TextClassifier
    dev_probs: np.ndarray
    target: ModelScores


@dataclass
class JobResult:
    """What the main job did, for the command to report."""

    out: Path
    task: Task
    labels: list[str]
    metrics: dict  # metrics.json
    best_dev: dict  # the full dev metrics of the BERT's best evaluation
    is_main: bool = True
    test: Evaluation | None = None
    test_source: str | None = None
    comparison: Comparison | None = None
    recommendation: dict | None = None
    baselines: list[TextClassifier] = field(default_factory=list)
    predictions: list[Predictions] = field(default_factory=list)  # every model's dev and target predictions
    candidates: list[Candidate] = field(default_factory=list)  # what the recommendation chose from


def run_main_job(job: TrainJob, with_baselines: bool, resume: bool = False) -> JobResult:
    """``run.py train``: the BERT, its test report, and with ``with_baselines`` the rest (module docstring)."""
    t0 = time.perf_counter()
    out = Path(job.out)
    splits = Splits.read(job)
    bert = BertTextClassifier(settings=job.bert, abstain=job.abstain)
    run = RunFolder(out, training_args(job), job.overwrite, job.keep_checkpoint, resume)
    bert.fit_records(splits.train, splits.dev, splits.task, job.data.text_pair_col, run=run)
    metrics = dict(bert.summary)
    result = JobResult(out, bert.task, list(bert.labels), metrics, bert.dev_metrics, is_main=env_info().is_main)
    if not result.is_main:
        return result
    test = splits.test
    bert_test = score(bert, test, "BERT") if test is not None else None
    metrics["skipped_rows"]["test"] = test.skipped if test is not None else 0
    if test is not None and bert_test is not None:
        result.test = evaluate(bert, test, out / "test_eval", outputs=Outputs(bert_test.probs, bert_test.ood_or_nan()))
        result.test_source = test.source
        metrics["test"] = headline(result.test.metrics)
        warn_collapsed(result.test.metrics, "test")
    metrics["total_seconds"] = round(time.perf_counter() - t0, 2)
    write_json(out / "metrics.json", metrics)
    log.info("saved the best model to %s", out)
    if with_baselines:
        compare_with_baselines(job, splits, bert, bert_test, result)
    return result


def score(model: TextClassifier, data: Any, name: str | None = None) -> ModelScores:
    """``model`` predicts the records ``data`` once, timed."""
    start = time.perf_counter()
    scored = model.score(data.texts)
    seconds = time.perf_counter() - start
    log.info("%s: predicted %d texts in %.2fs", name or model.kind, len(data), seconds)
    return ModelScores(name or model.kind, model, scored.probs, seconds, scored.ood)


def dev_probabilities(model: TextClassifier, dev: Any) -> np.ndarray:
    """The model's probabilities on the dev rows: those its fitting computed, else predicted now."""
    if model.dev_probs is not None and len(model.dev_probs) == len(dev):
        return model.dev_probs
    return model.predict_proba(dev.texts)


def fit_baselines(splits: Splits, names: list[str] | None, seed: int, text_pair_col: str | None,
                  out: Path, metric: str | None = None, abstain: AbstainSettings | None = None,
                  unlabeled: list[str] | None = None) -> list[Predictions]:
    """Fit the baselines on the run's records, score dev and test (recorded in each ``baseline.json``),
    save each to ``out/NAME``. ``names``: all that fit the task by default."""
    from tqdm.auto import tqdm

    names = list(names or (LABEL_SET_BASELINES if splits.task.multi else (*BASELINE_NAMES, *SMALL_KINDS)))
    # an unknown name fails before anything is fitted
    models = [TextClassifier(kind=name, seed=seed, metric=metric, abstain=abstain) for name in names]
    target = splits.test if splits.test is not None else splits.dev
    done = []
    for i, model in enumerate(tqdm(models, desc="baselines", unit="model", leave=False)):
        if unlabeled and not splits.task.multi and model.kind != "majority" and not text_pair_col:
            make = functools.partial(TextClassifier, kind=model.kind, seed=seed, metric=metric, abstain=abstain)
            models[i] = model = self_train(make, splits.train, splits.dev, splits.task, unlabeled,
                                           metric or splits.task.default_metric)[0]
        else:
            model.fit_records(splits.train, splits.dev, splits.task, text_pair_col)
        dev_probs = dev_probabilities(model, splits.dev)
        scores = score(model, target)
        if splits.test is not None:
            y = model.task.encode(splits.test, model.labels)
            model.record("test", model.task.metrics(y, scores.probs, model.labels))
        model.save(out / model.kind)
        scores.name = model.kind
        done.append(Predictions(model, dev_probs, scores))
    return done


def compare_with_baselines(job: TrainJob, splits: Splits, bert: BertTextClassifier, bert_test: ModelScores | None,
                           result: JobResult) -> None:
    """Baselines, ensemble, recommendation and comparison (step 4 of the module docstring)."""
    out, seed = Path(job.out), job.bert.train.seed
    target, split = (splits.test, "test") if splits.test is not None else (splits.dev, "dev")
    unlabeled = read_unlabeled(list(job.unlabeled), lambda path: read_chunks(path, job.data)) if job.unlabeled else []
    baselines = fit_baselines(splits, None, seed, job.data.text_pair_col, out / BASELINES_DIR, job.metric,
                              job.abstain, unlabeled)
    result.baselines = [b.model for b in baselines]
    bert_scored = Predictions(bert, dev_probabilities(bert, splits.dev),
                              bert_test if bert_test is not None else score(bert, target, "BERT"))
    scored = [bert_scored, *sorted(baselines, key=lambda s: s.model.kind)]
    ensemble = None
    if not splits.task.multi:
        settings = EnsembleSettings(seed=seed, metric=job.metric)
        if job.prune is not None:  # None: the ensemble's default
            settings = replace(settings, prune=job.prune)
        ensemble = fit_ensemble(bert_scored, baselines, splits, settings, out / ENSEMBLE_DIR, job.abstain)
        scored.append(ensemble)
    for s, name in zip(scored, display_names([s.model for s in scored]), strict=True):
        s.target.name = name
    result.predictions = scored
    recommended = None
    if ensemble is not None:
        found = result.candidates = candidates([bert_scored, *baselines, ensemble], splits.dev)
        chosen = select(found, job.metric, splits.task.encode(splits.dev, bert.labels), seed=seed)
        result.recommendation = pointer(chosen, found, job.metric, out)
        recommended = {"path": str(chosen.best.path), "why": result.recommendation["why"], "split": split}
    result.comparison = compare([s.target for s in scored], target, out / COMPARISON_DIR,
                                CompareOptions(seed=seed), recommended)
    if result.recommendation is not None:
        rec = result.comparison.summary["recommendation"]
        result.recommendation["comparison"] = {"split": split, "data": str(target.source), **rec["metrics"],
                                               "versus": rec["versus"]}
        speeds = {m["name"]: float(m["texts_per_s"]) for m in result.comparison.summary["models"]}
        fast = fastest_within(result.candidates, chosen.best, job.metric, speeds, out)
        if fast is not None:
            result.recommendation["fastest"] = fast
        write_pointer(out, result.recommendation)


def fit_ensemble(bert: Predictions, baselines: list[Predictions], splits: Splits, settings: EnsembleSettings,
                 folder: Path, abstain: AbstainSettings | None = None) -> Predictions:
    """``OUT/ensemble``: the BERT and every baseline but the majority floor (best on dev first), fitted on
    their dev predictions; its target predictions combine theirs."""
    metric = settings.metric or "macro_f1"
    ranked = sorted((b for b in baselines if b.model.kind != "majority"),
                    key=lambda b: -float(b.model.meta.get("dev", {}).get(metric, 0.0)))  # type: ignore[attr-defined]
    members = [bert, *ranked]
    labels = list(bert.model.labels)
    y = splits.task.encode(splits.dev, labels)
    logps = []
    for m in members:
        cols = [list(m.model.labels).index(name) for name in labels]
        logps.append(log_probs(m.dev_probs[:, cols]))
    dev_ood = [m.model.dev_ood if m.model.dev_ood is not None else np.full(len(y), np.nan) for m in members]
    dev = DevScores(logps, y, f"dev ({len(y)} rows)", dev_ood)
    ensemble = EnsembleClassifier.fit_scores([m.model for m in members], dev, settings, abstain)
    members = [m for m in members if any(m.model is k for k in ensemble.members)]  # those pruning kept
    ensemble.save(folder)
    log.info("ensemble of %s written to %s", ", ".join(e["name"] for e in ensemble.meta["members"]), folder)
    start = time.perf_counter()
    combined = ensemble.combine_outputs([Outputs(m.target.probs, m.target.ood_or_nan()) for m in members])
    seconds = sum(m.target.seconds for m in members) + time.perf_counter() - start
    return Predictions(ensemble, ensemble.dev_probs if ensemble.dev_probs is not None else
                       ensemble.combine_member_probs([m.dev_probs for m in members]),
                       ModelScores(ENSEMBLE_DIR, ensemble, combined.probs, seconds, combined.ood))  # dev: cross-fitted


def candidates(scored: list[Predictions], dev: Any) -> list[Candidate]:
    """The models that may be recommended (the majority floor excluded), each with the dev score of the
    decisions it will make (cross-fitted where anything was fitted on dev) and its dev log-loss."""
    found = []
    for p in scored:
        model = p.model
        if model.kind == "majority":
            continue
        y = model.task.encode(dev, model.labels)
        basis = {"bert": "dev decisions of the best checkpoint", "baseline": "dev decisions",
                 "ensemble": "dev decisions of ensembles fitted on the other dev folds"}.get(model.family, "dev")
        if model.decisions is not None and isinstance(model.decisions.get("offsets"), list):
            basis += ", per-class offsets cross-fitted"
        path = Path(str(model.path))
        name = path.name if model.family != "baseline" else model.kind
        found.append(Candidate(name, path, model.family, model.dev_scores(dev), basis, model.dev_pred,
                               log_loss(p.dev_probs, y)))
    return found
