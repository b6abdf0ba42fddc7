"""The main job, top to bottom: ``run.py train`` (and with ``--with-baselines`` the whole comparison).

1. Read train, dev and test once; every later step gets these records.
2. Make OUT this run's (``training_args.json`` records the whole job, for ``--resume``).
3. Fit the kinds, cheapest first (:mod:`.plan`: under ``--time-budget`` each gets what its estimate
   needs, the time-limited ones what is left, and a kind that cannot fit is skipped): each fits on the
   records, scores dev and the target rows (test, else dev) once, and is saved; the BERT writes OUT
   itself as it trains (resumable) and its test report goes to ``OUT/test_eval/``, the other kinds go
   to ``OUT/baselines/KIND``.
4. The ensemble of the fitted models, on their dev predictions (``OUT/ensemble``).
5. The recommendation on dev and the fast model beside it (``OUT/best.json``).
6. The comparison on the target rows (``OUT/comparison``) and ``OUT/job.json`` (the plan, what was
   skipped and why).

Each step after reading the data runs through :class:`Steps`: one that fails (for a reason other than
the input as a whole, which was checked when it was read) is logged with its cause, skipped and
recorded, and the job goes on with the models that exist (``--strict``: it fails instead). Each step
hands the next typed objects (records, fitted models, :class:`~cls_app.models.base.ModelScores`); the
files are outputs only. Under torchrun every process trains the BERT; rank 0 alone does the rest.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from ..errors import StepFailed, UserError
from ..evaluation.recommend import METRIC_NAMES
from ..fileio import WriteError, write_json
from ..interrupts import Interrupted
from ..models.base import ModelScores, TextClassifier, all_kinds, kind_class, model_names, score_timed
from ..runtime.distributed import env_info
from ..tasks import Task, headline, task_named
from ..training.settings import TrainJob
from .plan import (
    MIN_SECONDS,
    STUDENT_MIN_SECONDS,
    Deadline,
    KindCost,
    PlanRecord,
    make_plan,
    reserve_seconds,
    speed_scale,
    student_reserve,
)
from .resume import JOB_FILE
from .settings import JobSettings
from .tuning import FOLDS, Probe, tune

log = logging.getLogger(__name__)
progress = logging.getLogger("cls_app.progress")  # one line per step on the console (commands: PROGRESS_LOGGER)

ENSEMBLE_DIR = "ensemble"
FAST_ENSEMBLE_DIR = "ensemble_fast"
"""The ensemble of the cheap members only (no BERT), beside the main one when that keeps a costly member."""
BASELINES_DIR = "baselines"
COMPARISON_DIR = "comparison"
T = TypeVar("T")


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

    @property
    def target(self) -> Any:
        """The rows the comparison reads: test, else dev."""
        return self.test if self.test is not None else self.dev

    @property
    def mean_chars(self) -> float:
        texts = self.train.texts[:2000]
        return float(np.mean([len(t) for t in texts])) if texts else 1.0


@dataclass
class Fitted:
    """A fitted model, its probabilities on the dev rows and its scores on the target rows."""

    model: TextClassifier
    dev_probs: np.ndarray
    target: ModelScores
    main: bool = False  # the run's own model (the BERT that OUT is the folder of)


@dataclass
class JobResult:
    """What the main job did, for the command to report."""

    out: Path
    task: Task
    labels: list[str]
    metrics: dict  # the BERT's metrics.json ({} when the job fitted no BERT)
    best_dev: dict  # the full dev metrics of the BERT's best evaluation
    is_main: bool = True
    test: Any = None  # the BERT's test Evaluation
    test_source: str | None = None
    comparison: Any = None
    recommendation: dict | None = None
    fitted: list[Fitted] = field(default_factory=list)  # every model's dev and target predictions
    candidates: list[Any] = field(default_factory=list)  # what the recommendation chose from
    plan: dict | None = None  # job.json's plan (with --with-baselines)
    split: str = "test"  # the rows the comparison scored: test, else dev
    skipped: list[dict] = field(default_factory=list)  # the optional steps that failed, and why


class Steps:
    """Runs the job's optional steps: a failure is logged in one line, recorded and skipped (``strict``:
    a :class:`StepFailed`, or the :class:`UserError` itself)."""

    def __init__(self, strict: bool = False) -> None:
        self.strict = strict
        self.skipped: list[dict] = []

    def run(self, name: str, fn: Callable[..., T], *args: Any, required: bool = False, **kwargs: Any) -> T | None:
        """``fn(*args, **kwargs)``; a ``required`` step's failure is not caught."""
        if required:
            return fn(*args, **kwargs)
        try:
            return fn(*args, **kwargs)
        except (KeyboardInterrupt, SystemExit, Interrupted, StepFailed, WriteError):
            raise  # a failed write (a full disk, no permission) ends the job: what follows would fail the same way
        except UserError as exc:
            if self.strict:
                raise
            self.skip(name, str(exc))
        except Exception as exc:
            log.debug("%s failed", name, exc_info=exc)
            if self.strict:
                raise StepFailed(name, exc) from exc
            self.skip(name, f"{type(exc).__name__}: {exc}")
        return None

    def skip(self, name: str, reason: str) -> None:
        log.warning("%s failed and is skipped (%s); the job goes on without it", name, reason)
        self.skipped.append({"step": name, "reason": reason})

    def failed_inside(self, name: str, reason: str) -> None:
        """A part of a step that failed and was done without (already logged by the model); ``strict``: fails."""
        if self.strict:
            raise StepFailed(name, RuntimeError(reason))
        self.skipped.append({"step": name, "reason": reason})


@dataclass
class JobRun:
    """What the steps of one run of the main job share: its settings, records, output folder, clock, plan
    record, failure policy and the result being filled in."""

    job: JobSettings
    splits: Splits
    folder: Any  # the BERT's RunFolder (OUT)
    deadline: Deadline
    steps: Steps
    record: PlanRecord
    result: JobResult
    unlabeled: list[str] = field(default_factory=list)
    bert_done: bool = False  # resuming a job whose BERT had finished: load it, do not train it

    @property
    def out(self) -> Path:
        return Path(self.job.run.out)

    @property
    def seed(self) -> int:
        return self.job.run.bert.train.seed


def job_kinds(job: JobSettings, task: Task, pairs: bool) -> list[str]:
    """The kinds the job fits: BERT alone without ``--with-baselines``; else ``--kinds``, or every kind that
    declares itself part of the main job and fits the task (a named kind that cannot is a user error)."""
    if not job.with_baselines:
        return [job_bert_kind()]
    if job.kinds:
        for name in job.kinds:
            cls = kind_class(name)
            if cls.combines:
                raise UserError(f"--kinds {name}: the job builds the ensemble itself from the other kinds")
            cls.check_task(task, "text_b" if pairs else None)
        return list(dict.fromkeys(job.kinds))
    return [name for name, cls in sorted(all_kinds().items())
            if cls.in_main_job and task.name in cls.tasks and (cls.takes_pairs or not pairs)]


def job_bert_kind() -> str:
    """The kind of the run's own model (the one ``TrainJob.bert`` describes)."""
    from ..models.bert import BertTextClassifier

    return BertTextClassifier.kind_name


def build_models(job: JobSettings, names: list[str], task: Task) -> dict[str, TextClassifier]:
    """Every kind of the job, unfitted, with its settings (an unknown or impossible setting fails here, before
    anything is fitted or written)."""
    unknown = sorted(set(job.kind_settings) - set(names))
    if unknown:
        raise UserError(f"--set names kind(s) {', '.join(unknown)} that the job does not fit (its kinds: "
                        f"{', '.join(names)})")
    run = job.run
    common: dict[str, Any] = {"seed": run.bert.train.seed, "metric": job.metric, "abstain": run.abstain,
                              "script": job.script}
    out = {}
    for name in names:
        if name == job_bert_kind():
            out[name] = TextClassifier(kind=name, abstain=run.abstain, script=job.script, **run.bert.to_kwargs())
        else:
            out[name] = TextClassifier(kind=name, **common, **job.kind_settings.get(name, {}))
        out[name].validate(task)
    return out


def run_main_job(job: JobSettings, resume: bool = False, deadline: Deadline | None = None) -> JobResult:
    """``run.py train``: the BERT, its test report, and with ``with_baselines`` the rest (module docstring)."""
    from ..training.pipeline import RunFolder

    job.check()
    deadline = deadline or Deadline(job.budget.parsed()[0])
    out = Path(job.run.out)
    splits = Splits.read(job.run)
    pairs = bool(job.run.data.text_pair_col)
    names = job_kinds(job, splits.task, pairs)
    models = build_models(job, names, splits.task)
    labels = splits.task.vocabulary(splits.train)
    costs, tuned = plan_costs(job, splits, models, deadline)
    from ..training.checkpoint import find_checkpoint

    # resuming: OUT is this run's already; the BERT continues from its checkpoint, or was finished (loaded)
    run = RunFolder(out, job.to_args(), job.run.overwrite, job.run.keep_checkpoint,
                    resume=resume and find_checkpoint(out) is not None, prepared=resume)
    steps = Steps(job.strict)
    bert_kind = job_bert_kind()
    if not env_info().is_main:  # the other torchrun processes only train the BERT with rank 0
        models[bert_kind].fit_records(splits.train, splits.dev, splits.task, job.run.data.text_pair_col, run=run)
        return JobResult(out, splits.task, labels, {}, {}, is_main=False)
    run.prepare(labels)
    result = JobResult(out, splits.task, labels, {}, {}, split="test" if splits.test is not None else "dev")
    state = JobRun(job, splits, run, deadline, steps, PlanRecord(deadline.total / 60.0 if deadline.limited else None),
                   result,
                   read_job_unlabeled(job) if job.unlabeled else [], resume and not run.resume and bert_finished(out))
    fitted = fit_all(state, models, costs, tuned)
    result.fitted = fitted
    if job.with_baselines:
        steps.run("ensemble, recommendation and comparison", finish_job, state, fitted)
    result.skipped = steps.skipped
    if job.with_baselines:
        result.plan = state.record.to_json(deadline.elapsed())
        if result.recommendation is not None:
            from ..evaluation.recommend import write_pointer

            write_pointer(out, {**result.recommendation, "plan": result.plan})
        write_json(out / JOB_FILE, {"finished": True, "plan": result.plan, "skipped": steps.skipped,
                                    "kinds": names})
        if result.metrics:
            write_json(out / "metrics.json", {**result.metrics, "plan": result.plan})
    return result


def bert_finished(out: Path) -> bool:
    """The BERT of the run in ``out`` finished (its metrics.json) while the job around it did not."""
    return (out / "metrics.json").is_file() and (out / "config.json").is_file()


def read_job_unlabeled(job: JobSettings) -> list[str]:
    from ..inference.files import read_chunks
    from .distill import read_unlabeled

    return read_unlabeled(list(job.unlabeled), lambda path: read_chunks(path, job.run.data))


def plan_costs(job: JobSettings, splits: Splits, models: dict[str, TextClassifier], deadline: Deadline
               ) -> tuple[dict[str, KindCost], set[str]]:
    """What the planner knows of each kind (:func:`kind_cost`) and the kinds to tune; a budget too small for the
    cheapest kind and the final steps is a user error (before anything is written)."""
    trials = job.tune.tune
    tuned = {name for name, m in models.items() if trials and name != job_bert_kind() and tunable(m)}
    minutes, share = job.budget.parsed()
    costs = {name: kind_cost(name, m, splits, job.budget.given, 1 + trials * (FOLDS - 1) if name in tuned else 1)
             for name, m in models.items()}
    reserve = reserve_seconds(len(models), len(splits.target))
    student = student_estimate(splits) if job.with_baselines and job.unlabeled and not splits.task.multi else 0.0
    if share is not None:  # a share of the whole job's estimate (the student's included), counted from the start
        full = deadline.elapsed() + sum(c.prior_seconds for c in costs.values()) + reserve + student
        deadline.set_total(share * full)
        log.info("time budget: %.0f%% of the full job's estimate of %.0f s: %.0f s", 100 * share, full, deadline.total)
    if deadline.limited:
        need = reserve + min(c.prior_seconds for c in costs.values())
        if deadline.left() < need:
            given = (f"{minutes:g} minutes" if minutes is not None
                     else f"{job.budget.time_budget} ({deadline.total:.0f} s)")
            raise UserError(f"--time-budget {given} is less than this job needs at least (about {need:.0f} s: its "
                            f"cheapest kind and the comparison); give at least {math.ceil(need / 6) / 10:g} minutes")
    return costs, tuned


def fit_all(state: JobRun, models: dict[str, TextClassifier], costs: dict[str, KindCost], tuned: set[str]
            ) -> list[Fitted]:
    """Fit the job's kinds, cheapest first, as the budget allows (module docstring, step 3)."""
    job, splits, deadline, steps = state.job, state.splits, state.deadline, state.steps
    main_kind = job_bert_kind()
    todo = dict(costs)
    done: list[tuple[float, float]] = []
    fitted: list[Fitted] = []
    reserve = 0.0
    if deadline.limited and job.with_baselines:  # the final steps, and the student when there may be one
        reserve = reserve_seconds(len(models), len(splits.target))
        if not splits.task.multi and state.unlabeled:
            reserve += student_reserve(student_estimate(splits, len(state.unlabeled)), deadline.total)
    while todo:
        plan = make_plan(list(todo.values()), deadline.left(), reserve, speed_scale(done))
        for skip in plan.skipped:
            log.warning("%s: skipped by the time budget (%s)", skip.kind, skip.reason)
            state.record.skip(skip.kind, skip.reason)
            del todo[skip.kind]
        if plan.step is None:
            break
        step = plan.step
        cost = todo.pop(step.kind)
        model = models[step.kind]
        if step.time_limit is not None:  # what follows the training (scoring the rows for its detector) comes off
            model.set_params(time_limit=max(MIN_SECONDS, step.time_limit - cost.fixed_seconds) / 60.0)
            log.info("%s: %.0f s of the budget left for it (its estimate %.0f s)", step.kind, step.time_limit,
                     step.estimate)
        start = time.perf_counter()
        if step.kind == main_kind:
            got = steps.run(f"fitting {step.kind}", fit_bert, state, model,
                            required=not job.with_baselines)  # a BERT-only run: the BERT is the job
        else:
            found = steps.run(f"tuning {step.kind}", tune_kind, state, model, step) if step.kind in tuned else None
            folder = state.out / BASELINES_DIR / step.kind
            got = steps.run(f"fitting {step.kind}", fit_kind, splits, model, folder, state.unlabeled, job.metric,
                            job.run.data.text_pair_col, found.report() if found is not None else None)
        seconds = time.perf_counter() - start
        done.append((cost.prior_seconds, seconds))
        if got is not None:
            fitted.append(got)
            state.record.ran(step, seconds, stopped_early(got.model))
            scored = got.model.dev_scores(splits.dev) if not splits.task.multi else {}
            progress.info("%-10s fitted in %5.1f s%s (%d of %d)", step.kind, seconds,
                          f", dev {METRIC_NAMES.get(job.metric, job.metric)} {scored[job.metric]:.4f}"
                          if job.metric in scored else "", len(fitted), len(models))
            for part in got.model.degraded:  # a step inside the fit that failed; the model went on without it
                steps.failed_inside(f"{step.kind}: {part['step']}", f"{part['reason']}; {part['instead']}")
        else:
            state.record.skip(step.kind, "failed: " + steps.skipped[-1]["reason"])
    return [f for f in fitted if f.main] + sorted((f for f in fitted if not f.main), key=lambda f: f.model.kind)


def tune_kind(state: JobRun, model: TextClassifier, step: Any) -> Any:
    """Tune ``model``'s settings on the training rows (:mod:`.tuning`), its trials' share of the step under a budget;
    the chosen settings are set on the model."""
    trials = state.job.tune.tune
    share = None if not state.deadline.limited else \
        max(1.0, (step.time_limit or step.estimate) * trials * (FOLDS - 1) / (1 + trials * (FOLDS - 1)))
    found = tune(model, state.splits.train, state.splits.task, state.job.metric, trials, share, state.seed)
    if found.params:
        model.set_params(**found.params)
    return found


def kind_cost(name: str, model: TextClassifier, splits: Splits, measure: bool, factor: float = 1.0) -> KindCost:
    """What the planner knows of a kind: its cost and its estimate (``measure``, under a budget: what the kind
    measures on this machine; else its prior), times ``factor`` (tuning trials)."""
    cls = type(model)
    if measure:
        seconds, measured = model.estimate_fit_seconds(splits.train, splits.dev, splits.task)
    else:
        seconds, measured = cls.fit_seconds_prior(len(splits.train), splits.mean_chars), False
    log.info("%s: about %.0f s to fit (%s)", name, seconds * factor, "measured" if measured else "its prior")
    return KindCost(name, cls.cost, seconds * factor, cls.time_limited, measured,
                    model.fixed_fit_seconds() if measure else 0.0)


def stopped_early(model: TextClassifier) -> str | None:
    """Why fitting stopped before its planned end, when a model records it."""
    summary = getattr(model, "summary", None)
    if isinstance(summary, dict) and summary.get("stopped_by_time"):
        return "time"
    meta = getattr(model, "meta", None)
    return meta.get("stopped") if isinstance(meta, dict) else None


def tunable(model: TextClassifier) -> bool:
    """The kind declares a search space."""
    return bool(type(model).search_space(Probe()))


def fit_kind(splits: Splits, model: TextClassifier, folder: Path, unlabeled: list[str], metric: str,
             text_pair_col: str | None = None, tuned: dict | None = None) -> Fitted:
    """Fit one kind on the run's records (self-trained on ``unlabeled`` where it can), score dev and the
    target rows (recorded in its description, with the tuning that chose its settings), save it to ``folder``."""
    from .self_training import self_train

    if unlabeled and not splits.task.multi and not model.floor and not text_pair_col:
        model = self_train(model.clone, splits.train, splits.dev, splits.task, unlabeled, metric)[0]
    else:
        model.fit_records(splits.train, splits.dev, splits.task, text_pair_col)
    fitted = score_fitted(model, splits)
    if splits.test is not None and hasattr(model, "record"):
        y = model.task.encode(splits.test, model.labels)
        model.record("test", model.task.metrics(y, fitted.target.probs, model.labels))
    if tuned is not None and isinstance(getattr(model, "meta", None), dict):
        model.meta["tuned"] = tuned  # type: ignore[attr-defined]
    model.save(folder)
    return fitted


def score_fitted(model: TextClassifier, splits: Splits, name: str | None = None) -> Fitted:
    """The model's dev probabilities (those its fitting computed, else predicted now) and its target scores."""
    dev = splits.dev
    dev_probs = model.dev_probs if model.dev_probs is not None and len(model.dev_probs) == len(dev) else \
        model.predict_proba(dev.texts)
    (target,) = score_timed([model], splits.target.texts, [name or model.kind])
    return Fitted(model, dev_probs, target)


def fit_bert(state: JobRun, model: TextClassifier) -> Fitted:
    """The run's BERT: trained into OUT (or, resuming a job whose BERT had finished, loaded from it), its test
    report (``OUT/test_eval``) and ``metrics.json``."""
    from ..evaluation.report import evaluate
    from ..models.base import load_folder
    from ..models.options import InferenceOptions
    from ..training.pipeline import warn_collapsed

    job, splits, result, out = state.job, state.splits, state.result, state.out
    t0 = time.perf_counter()
    if state.bert_done:
        log.info("%s: the BERT of this run finished before; loading it", out)
        model = load_folder(out, InferenceOptions())
        metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
        model.dev_probs = None
        best_dev: dict = {}
    else:
        model.fit_records(splits.train, splits.dev, splits.task, job.run.data.text_pair_col, run=state.folder)
        metrics = dict(model.summary)  # type: ignore[attr-defined]
        best_dev = model.dev_metrics  # type: ignore[attr-defined]
    result.metrics, result.best_dev = metrics, best_dev
    fitted = score_fitted(model, splits, out.name)
    fitted.main = True
    test = splits.test
    metrics.setdefault("skipped_rows", {})["test"] = test.skipped if test is not None else 0
    if test is not None:
        evaluation = state.steps.run("the BERT's test report", evaluate, model, test, out / "test_eval",
                                     outputs=fitted.target.outputs)
        if evaluation is not None:
            result.test, result.test_source = evaluation, test.source
            metrics["test"] = headline(evaluation.metrics)
            warn_collapsed(evaluation.metrics, "test")
    metrics["total_seconds"] = round(metrics.get("fit_seconds", 0.0) + time.perf_counter() - t0, 2)
    write_json(out / "metrics.json", metrics)
    log.info("saved the best model to %s", out)
    return fitted


STUDENT_ABOVE_COST = 15.0
"""When the recommended model declares at least this prediction cost (``prediction_cost``: BERT's 30, an
ensemble's the sum of its members', char_svm's 1) and ``--unlabeled`` texts were given, a student is
distilled from it (:func:`distill_student`) and joins the candidates: the fast model to deploy beside it.
(Without unlabeled texts a student learns the teacher's answers on the training rows only; it came out
below char_svm on both sets tried: THUCNews 0.8023 against 0.8731, the reviews 0.8364 against 0.8613.)
Declared, not measured, so that the same data and seed give the same folder on a busy machine as on a
quiet one."""
STUDENT_DIR = "student"


def finish_job(state: JobRun, fitted: list[Fitted]) -> None:
    """The ensemble, the recommendation, the fast model and the comparison (module docstring, steps 4-6)."""
    from ..evaluation.compare import CompareOptions, compare
    from ..evaluation.recommend import fastest_within, pointer, select

    job, splits, result, steps, out = state.job, state.splits, state.result, state.steps, state.out
    if not fitted:
        raise UserError("no model could be fitted; see the warnings above")
    scored = list(fitted)
    if not splits.task.multi:
        ensemble = steps.run("the ensemble", fit_job_ensemble, state, fitted)
        if ensemble is not None:
            scored.append(ensemble)
            cheap = [f for f in fitted if cheap_member(f.model)]
            if any(not cheap_member(m) for m in getattr(ensemble.model, "members", ())) and len(cheap) >= 2:
                quick = steps.run("the fast ensemble", fit_job_ensemble, state, cheap, FAST_ENSEMBLE_DIR)
                if quick is not None:
                    scored.append(quick)
    split = "test" if splits.test is not None else "dev"
    seed = state.seed
    chosen = found = None
    if not splits.task.multi:  # single-label tasks: the label-set models are compared, not recommended
        name_models(scored)
        found = candidates(scored, splits.dev)
        if found:
            y_dev = splits.task.encode(splits.dev, found[0].labels)
            chosen = select(found, job.metric, y_dev, seed=seed)
            teacher = next(s for s in scored if s.target.name == chosen.best.name)
            if teacher.model.prediction_cost >= STUDENT_ABOVE_COST and state.unlabeled:
                limit, why = student_time(splits, state.deadline, len(state.unlabeled))
                student = None
                if why is not None:
                    log.warning("the fast student: skipped by the time budget (%s)", why)
                    state.record.skip(STUDENT_DIR, why)
                else:
                    student = steps.run("the fast student", distill_student, state, teacher, limit)
                if student is not None:
                    scored.append(student)
                    name_models(scored)
                    found = candidates(scored, splits.dev)
                    chosen = select(found, job.metric, y_dev, seed=seed)
    name_models(scored)
    result.fitted, result.candidates = scored, found or []
    recommended = None
    if chosen is not None and found:
        result.recommendation = pointer(chosen, found, job.metric, out)
        recommended = {"path": str(chosen.best.path), "why": result.recommendation["why"], "split": split}
    comparison = steps.run("the comparison report", compare, [s.target for s in scored], splits.target,
                           out / COMPARISON_DIR, CompareOptions(seed=seed), recommended)
    result.comparison = comparison
    if result.recommendation is None or chosen is None:
        return
    speeds = {s.target.name: texts_per_s(s, splits) for s in scored}
    if comparison is not None:
        rec = comparison.summary["recommendation"]
        result.recommendation["comparison"] = {"split": split, "data": str(splits.target.source),
                                               **rec["metrics"], "versus": rec["versus"]}
        speeds = {m["name"]: float(m["texts_per_s"]) for m in comparison.summary["models"]}
    fast = fastest_within(result.candidates, chosen.best, job.metric, speeds, out)
    if fast is not None:
        result.recommendation["fast"] = fast


def name_models(scored: list[Fitted]) -> None:
    """Each model's name in the comparison and the recommendation (:func:`model_names`)."""
    for s, name in zip(scored, model_names([s.model for s in scored]), strict=True):
        s.target.name = name


def texts_per_s(fitted: Fitted, splits: Splits) -> float:
    return len(splits.target) / max(fitted.target.seconds, 1e-9)


def student_estimate(splits: Splits, unlabeled: int = 0) -> float:
    """The fast student's prior fitting time on the training rows (and ``unlabeled`` texts)."""
    from ..models.base import kind_class
    from .distill import DistillSettings

    return kind_class(DistillSettings().student_kind()).fit_seconds_prior(len(splits.train) + unlabeled,
                                                                         splits.mean_chars)


def student_time(splits: Splits, deadline: Deadline | None, unlabeled: int) -> tuple[float | None, str | None]:
    """The student's time limit in seconds (None: in full) and why there is no time for one (None: there is)."""
    from ..models.base import kind_class
    from .distill import DistillSettings

    if deadline is None or not deadline.limited:
        return None, None
    kind = kind_class(DistillSettings().student_kind())
    left = deadline.left() - reserve_seconds(1, len(splits.target))
    estimate = student_estimate(splits, unlabeled)
    if left < min(estimate, STUDENT_MIN_SECONDS):
        return None, f"needs about {estimate:.0f} s, {max(left, 0.0):.0f} s of the budget left"
    return (left if kind.time_limited and estimate > left else None), None


def distill_student(state: JobRun, teacher: Fitted, time_limit: float | None) -> Fitted:
    """A fast student of the recommended model (``distill``'s default kind), learning its probabilities on the
    training texts (and the unlabeled ones), saved to ``OUT/baselines/student``; ``time_limit`` seconds when the
    budget leaves less than it needs; the job's ``--set`` settings of that kind apply to it too."""
    from .distill import DistillSettings, distill

    kind = DistillSettings().student_kind()
    extra: dict[str, Any] = {**state.job.kind_settings.get(kind, {}), "metric": state.job.metric}
    if time_limit is not None:
        extra["time_limit"] = time_limit / 60.0
    splits = state.splits
    done = distill(teacher.model, splits.train, splits.dev, state.unlabeled, DistillSettings(seed=state.seed),
                   state.job.run.abstain, extra)
    student = done.student
    student.save(state.out / BASELINES_DIR / STUDENT_DIR)
    progress.info("%-10s a %s learning from %s, fitted in %5.1f s", "student", student.kind, teacher.target.name,
                  done.seconds)
    return score_fitted(student, splits, STUDENT_DIR)


def cheap_member(model: TextClassifier) -> bool:
    """A model the fast ensemble may hold: it declares less prediction cost than :data:`STUDENT_ABOVE_COST`."""
    return not model.floor and not model.combines and model.prediction_cost < STUDENT_ABOVE_COST


def fit_job_ensemble(state: JobRun, fitted: list[Fitted], folder: str = ENSEMBLE_DIR) -> Fitted:
    """``OUT/ensemble``: the run's BERT and every other fitted model but the floor (best on dev first), fitted on
    their dev predictions; its target scores combine theirs (no second prediction). ``OUT/ensemble_fast``: the
    same of the cheap members only (``fitted`` holds them), a fast candidate when the first keeps the BERT."""
    from ..models.ensemble import DevScores, EnsembleClassifier, member_chars
    from ..tasks.calibration import log_probs

    job, splits = state.job, state.splits
    metric = job.metric
    pool = [f for f in fitted if not f.model.floor and not f.model.combines]
    main = [f for f in pool if f.main]
    ranked = sorted((f for f in pool if not f.main),
                    key=lambda f: -float(f.model.dev_scores(splits.dev).get(metric, 0.0)))
    members = [*main, *ranked]
    if not members:
        raise UserError("no fitted model to combine")
    labels = list(members[0].model.labels)
    y = splits.task.encode(splits.dev, labels)
    logps = [log_probs(m.dev_probs[:, [list(m.model.labels).index(n) for n in labels]]) for m in members]
    dev_ood = [m.model.dev_ood if m.model.dev_ood is not None else np.full(len(y), np.nan) for m in members]
    run = job.run
    ensemble = EnsembleClassifier(members=[m.model for m in members], seed=run.bert.train.seed, metric=metric,
                                  abstain=run.abstain, **asdict(job.ensemble))
    ensemble.fit_scores([m.model for m in members], DevScores(logps, y, f"dev ({len(y)} rows)", dev_ood),
                        [m.target.seconds for m in members])
    kept = [m for m in members if any(m.model is k for k in ensemble.members)]  # those pruning kept
    ensemble.measure_reference(splits.dev.texts, member_chars(ensemble.members))
    ensemble.save(Path(run.out) / folder)
    progress.info("%-10s of %s (%d of the %d offered), written to %s", folder,
                  ", ".join(e["name"] for e in ensemble.meta["members"]), len(ensemble.members), len(members),
                  Path(run.out) / folder)
    start = time.perf_counter()
    combined = ensemble.combine_outputs([m.target.outputs for m in kept])
    seconds = sum(m.target.seconds for m in kept) + time.perf_counter() - start
    dev_probs = ensemble.dev_probs if ensemble.dev_probs is not None else \
        ensemble.combine_member_probs([m.dev_probs for m in kept])  # dev: cross-fitted
    return Fitted(ensemble, dev_probs, ModelScores(folder, ensemble, combined, seconds))


def candidates(scored: list[Fitted], dev: Any) -> list[Any]:
    """The models that may be recommended (the floor excluded), each with the dev score of the decisions it
    will make (cross-fitted where anything was fitted on dev) and its dev log-loss."""
    from ..evaluation.recommend import Candidate
    from ..tasks.calibration import log_loss

    found = []
    for p in scored:
        model = p.model
        if model.floor or model.path is None:
            continue
        y = model.task.encode(dev, model.labels)
        basis = model.dev_basis
        if model.decisions is not None and isinstance(model.decisions.get("offsets"), list):
            basis += ", per-class offsets cross-fitted"
        found.append(Candidate(p.target.name, Path(str(model.path)), model.family, model.dev_scores(dev), basis,
                               model.dev_pred, log_loss(p.dev_probs, y), cost=model.cost, combines=model.combines,
                               labels=list(model.labels)))
    return found
