"""``TextClassifier``: one interface for every model kind, in the spirit of scikit-learn estimators.

>>> from cls_app import TextClassifier
>>> clf = TextClassifier(kind="char_svm").fit(texts, labels)           # doctest: +SKIP
>>> clf.predict_proba(["这个手机很好用"])                             # doctest: +SKIP
>>> clf.save("saved_models/svm"); TextClassifier.load("saved_models/svm")  # doctest: +SKIP

* ``TextClassifier(kind=..., **settings)`` makes an unfitted model of a registered kind
  (``bert``, the TF-IDF baselines ``char_lr`` ... ``word_nb`` and ``majority``; ensembles come
  from :meth:`TextClassifier.ensemble`). Settings are the kind's (``layers=2, epochs=3`` for BERT).
* ``.fit(texts, labels, dev=(texts, labels))`` from in-memory lists: texts may be strings or
  ``(text, text_b)`` pairs; labels strings (single-label) or collections of strings (a label set
  each: multi-label, or ``task="hierarchical"`` for label paths). Returns the model.
* ``.predict_proba(texts)``: an ``(n, len(labels))`` array, columns in ``.labels`` order, all-NaN
  rows for empty or missing texts; ``.predict(texts, top_k)``: the task's decisions
  (:class:`~cls_app.tasks.Prediction` or :class:`~cls_app.tasks.LabelSetPrediction` per text).
* ``.labels``, ``.task`` (a :class:`~cls_app.tasks.Task`), ``.kind``, ``.family`` (``bert``,
  ``baseline``, ``ensemble``), ``.path`` (the folder it was loaded from or saved to).
* ``.save(dir)``; ``TextClassifier.load(dir, backend=..., ...)`` (one loader behind the CLI,
  the API and ``serve``: a training folder holding ``best.json`` means the model it recommends
  unless ``follow=False``).

Bad input (an empty text to fit on, an unknown kind or setting, pairs given to a single-text
model) is a :class:`~cls_app.errors.UserError`.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, ClassVar, NamedTuple, TypeVar

import numpy as np

from ..errors import UserError
from ..io.pairs import PAIR_SEP
from ..io.records import as_text
from ..settings import check_settings, settings_of
from ..tasks import SingleLabel, Task, task_named
from ..tasks.abstain import AbstainSettings, Abstention, DevEvidence, fit_rule
from ..text.script import DEFAULT as DEFAULT_SCRIPT
from ..text.script import LEGACY as LEGACY_SCRIPT
from ..text.script import normalizer
from .folders import ABSTAIN_FILES, NOT_A_MODEL, folder_family, follow_best
from .ood import Abstainer, Detector, OodScorer, TextDensity
from .options import DEFAULT_BATCH_SIZE, InferenceOptions
from .reference import Reference, characters

log = logging.getLogger(__name__)

Self = TypeVar("Self", bound="TextClassifier")

KINDS: dict[str, type[TextClassifier]] = {}
"""Every registered model kind -> its class (filled by :func:`register` when a kind's module is imported)."""
FAMILIES: dict[str, type[TextClassifier]] = {}
"""Every folder family (``bert``, ``baseline``, ``ensemble``, ...) -> the class that loads such folders."""

# The registry of the built-in kinds and folder families, by the module (in this package) that registers
# them. This module never imports them by name: like plugins they are imported on first use and register
# themselves, so a kind added later is one module with ``@register(...)`` and one line here; a kind from
# another package registers through the entry-point group :data:`ENTRY_POINTS` (or calls :func:`register`).
BUILTIN_KINDS = {"bert": "bert", "ensemble": "ensemble", "fasttext": "fast_text", "textcnn": "textcnn",
                 "majority": "majority", **{f"{f}_{c}": "tfidf" for f in ("char", "word") for c in ("lr", "svm", "nb")}}
BUILTIN_FAMILIES = {"bert": "bert", "baseline": "tfidf", "ensemble": "ensemble", "fasttext": "fast_text",
                    "textcnn": "textcnn"}
ENTRY_POINTS = "cls_app.kinds"
"""The entry-point group of third-party kinds: ``name = "package.module:Class"`` in their package metadata."""


def register(*kinds: str, family: str | None = None) -> Any:
    """Class decorator: ``TextClassifier(kind=k)`` makes an instance of the decorated class for each of
    ``kinds`` (the first is the class's :attr:`~TextClassifier.kind_name`); with ``family``, folders of that
    family load through the class's ``from_folder``. ``cls_app.register`` is this decorator."""

    def decorate(cls: type[TextClassifier]) -> type[TextClassifier]:
        if not (isinstance(cls, type) and issubclass(cls, TextClassifier)):
            raise TypeError(f"register() decorates a TextClassifier subclass, not {cls!r}")
        if "kind_name" not in cls.__dict__ and kinds:
            cls.kind_name = kinds[0]
        for kind in kinds:
            KINDS[kind] = cls
        if family is not None:
            cls.family = family
            FAMILIES[family] = cls
        return cls

    return decorate


def _discover(name: str, table: dict[str, str]) -> None:
    if name in table:
        importlib.import_module(f"{__package__}.{table[name]}")
        return
    for entry in _entry_points():
        if entry.name == name or table is BUILTIN_FAMILIES:
            _load_entry(entry)


def _entry_points() -> list[Any]:
    from importlib.metadata import entry_points

    return list(entry_points(group=ENTRY_POINTS))


def _load_entry(entry: Any) -> None:
    """Import a third-party kind; a class its module did not register is registered under the entry's name."""
    try:
        cls = entry.load()
    except Exception as exc:
        raise UserError(f"the model kind {entry.name!r} ({entry.value}) could not be imported: {exc}") from None
    if entry.name not in KINDS:
        register(entry.name)(cls)


def kind_class(kind: str) -> type[TextClassifier]:
    """The class of a registered kind (a :class:`UserError` naming the kinds for an unknown one)."""
    if kind not in KINDS:
        _discover(kind, BUILTIN_KINDS)
    if kind not in KINDS:
        import difflib

        known = sorted({*KINDS, *BUILTIN_KINDS, *(e.name for e in _entry_points())})
        close = difflib.get_close_matches(kind, known, n=2)
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        raise UserError(f"unknown model kind {kind!r}{hint}; choose one of {', '.join(known)}")
    return KINDS[kind]


def all_kinds() -> dict[str, type[TextClassifier]]:
    """Every kind there is: the built-in ones and those installed through :data:`ENTRY_POINTS`, by name."""
    for module in sorted(set(BUILTIN_KINDS.values())):
        importlib.import_module(f"{__package__}.{module}")
    for entry in _entry_points():
        if entry.name not in KINDS:
            _load_entry(entry)
    return dict(KINDS)


def family_class(family: str) -> type[TextClassifier]:
    """The class that loads folders of ``family`` (a :class:`UserError` when no installed kind does)."""
    if family not in FAMILIES:
        _discover(family, BUILTIN_FAMILIES)
    if family not in FAMILIES:
        raise UserError(f"no installed model kind loads folders of family {family!r}: install the package that "
                        f"provides it (entry-point group {ENTRY_POINTS})")
    return FAMILIES[family]


def clone(model: TextClassifier) -> TextClassifier:
    """An unfitted model of the same kind with the same settings (scikit-learn's ``clone``)."""
    return model.clone()


@dataclass
class _NoSettings:
    """The settings of a kind that has none."""


class NotAList(UserError, TypeError):
    """A single string where a list of texts belongs (a user error, and a TypeError as Python would say)."""


DETECTOR_ROWS = 20000
"""The out-of-domain distance is fitted on at most this many training rows (a random sample)."""


class Outputs(NamedTuple):
    """What a model says about each text: calibrated class probabilities (all-NaN rows for empty texts) and
    the out-of-domain score."""

    probs: np.ndarray
    ood: np.ndarray


@dataclass
class ModelScores:
    """One model's outputs on some rows, the seconds predicting them took, and its name in a report."""

    name: str
    model: TextClassifier
    outputs: Outputs
    seconds: float

    @property
    def probs(self) -> np.ndarray:
        return self.outputs.probs

    @property
    def ood(self) -> np.ndarray:
        return self.outputs.ood


def score_timed(models: Sequence[TextClassifier], texts: Sequence[Any], names: Sequence[str] | None = None,
                what: str = "texts") -> list[ModelScores]:
    """Every model scores ``texts`` once, timed (the texts/s of comparisons and of the planner); ``names``:
    their names in reports (default :func:`model_names`)."""
    import time

    texts = list(texts)
    out = []
    for name, model in zip(names or model_names(models), models, strict=True):
        start = time.perf_counter()
        outputs = model.score(texts)
        seconds = time.perf_counter() - start
        log.info("%s: scored %d %s in %.2fs", name, len(texts), what, seconds)
        out.append(ModelScores(name, model, outputs, seconds))
    return out


def model_names(models: Sequence[TextClassifier]) -> list[str]:
    """Short unique names: each model's folder name (``parent/name`` when two are alike), or its kind."""
    paths = [Path(m.path).resolve() if m.path is not None else None for m in models]
    names = [p.name if p is not None else m.kind for p, m in zip(paths, models, strict=True)]
    out = [f"{p.parent.name}/{n}" if p is not None and names.count(n) > 1 else n
           for p, n in zip(paths, names, strict=True)]
    return [f"{n}_{i + 1}" if out.count(n) > 1 else n for i, n in enumerate(out)]


def is_label_set(target: Any) -> bool:
    """A label set: a list, tuple or set of labels (not a string)."""
    return isinstance(target, list | tuple | set | frozenset)


class TextClassifier:
    """A text classifier of any kind (see the module docstring)."""

    # ---- what the app knows about a kind: declared on its class, read by workflow/, evaluation/, commands/ ----
    kind_name: ClassVar[str] = "model"
    """The kind's registered name (set by :func:`register`)."""
    family: ClassVar[str] = "model"
    """The folder family its folders record (set by :func:`register`)."""
    cost: ClassVar[float] = 10.0
    """Relative cost of fitting and predicting (the majority floor 0, a TF-IDF baseline about 1, BERT 100): ties
    of the recommendation go to the cheaper kind, and the main job fits cheaper kinds first."""
    predict_cost: ClassVar[float] = 1.0
    """Relative time to predict a text (char_svm about 1, a word kind 2 for jieba, textcnn 3, BERT 30; measured in
    the main job's comparisons, docs/budget.md): the ensemble's cost rule and the fast student read it. Declared,
    not measured, so that the same data and seed give the same folder on a busy machine as on a quiet one."""

    @property
    def prediction_cost(self) -> float:
        """This model's :attr:`predict_cost` (a combining model: the sum of its members')."""
        return float(type(self).predict_cost)
    floor: ClassVar[bool] = False
    """The floor every model must beat (the majority class): compared, never recommended nor ensembled."""
    in_main_job: ClassVar[bool] = False
    """``train --with-baselines`` fits it unless ``--kinds`` names the kinds."""
    tasks: ClassVar[tuple[str, ...]] = ("single-label",)
    """The tasks it fits: ``single-label``, ``multi-label``, ``hierarchical``."""
    takes_pairs: ClassVar[bool] = True
    """It classifies sentence pairs as well as single texts."""
    time_limited: ClassVar[bool] = False
    """It honours a ``time_limit`` setting (minutes): fitting stops there, keeping the best state so far."""
    combines: ClassVar[bool] = False
    """It combines fitted members (an ensemble)."""
    soft_targets: ClassVar[bool] = False
    """It can learn a teacher's probabilities (``fit_soft``: the student of ``distill``)."""
    exportable: ClassVar[bool] = False
    """It has a network to export to ONNX (``export_onnx``; ``run.py export``)."""
    dev_basis: ClassVar[str] = "dev decisions"
    """How its dev score (the one the recommendation reads) is obtained."""
    settings_class: ClassVar[type | None] = None
    """The dataclass of its tunable settings (``TextClassifier(kind=k, **settings)``, :meth:`get_params`)."""
    kind_defaults: ClassVar[dict[str, Any]] = {}
    """Defaults of :attr:`settings_class` fields that differ for this kind (word n-grams for ``word_*``)."""
    quick_settings: ClassVar[dict[str, Any]] = {}
    """Settings that fit a toy task in about a second (:mod:`cls_app.testing` fits the kind with them)."""
    quick_label_set_settings: ClassVar[dict[str, Any]] = {}
    """... and what a toy label-set task needs on top of them."""
    quick_pair_settings: ClassVar[dict[str, Any]] = {}
    """... and a toy sentence-pair task."""

    kind: str
    labels: list[str]
    task: Task
    path: Path | None
    pairs: bool
    options: InferenceOptions

    def __new__(cls, kind: str | None = None, **settings: Any) -> TextClassifier:
        if cls is TextClassifier:
            if kind is None:
                raise UserError("TextClassifier(kind=...) needs a kind, e.g. kind='bert' or kind='char_svm'")
            cls = kind_class(kind)
        return super().__new__(cls)

    def __init__(self, kind: str | None = None, *, seed: int = 42, metric: str | None = None,
                 abstain: AbstainSettings | None = None, script: str = DEFAULT_SCRIPT, **settings: Any) -> None:
        """An unfitted model: ``seed``, ``metric`` (the dev metric its decisions are fitted for; None: the
        task's default), ``abstain`` (its abstention rule) and ``script`` (what its features see of a text:
        :mod:`cls_app.text.script`) for every kind, the rest :attr:`settings_class` fields (a :class:`UserError`
        names an unknown or ill-typed one)."""
        self.init_fields(kind)
        self.seed, self.metric, self.abstain = seed, metric, abstain
        self.script = normalizer(script).mode
        self.settings: Any = self.make_settings(dict(settings))

    def init_fields(self, kind: str | None) -> None:
        """The fields every model has, unfitted (a kind with more extends it)."""
        self.kind = kind or self.kind_name
        self.labels = []
        self.task = SingleLabel()
        self.path = None
        self.pairs = False
        self.options = InferenceOptions()
        self.text_pair_col: str | None = None
        # probabilities on the dev rows given to fit_records, when fitting computed them (None otherwise):
        # an ensemble or a report reads them instead of predicting dev a second time
        self.dev_probs: np.ndarray | None = None
        # the honest dev decisions (cross-fitted where decisions were fitted on dev) and what fitting on
        # dev chose (calibration, offsets: the task's fit_decisions); None when not fitted on dev here
        self.dev_pred: np.ndarray | None = None
        self.decisions: dict | None = None
        # abstaining (:mod:`.ood`): the detector, dev evidence and rule (None: the model always answers);
        # dev_ood: the normalised out-of-domain scores of the dev rows given to fit (an ensemble reads them)
        self.abstainer: Abstainer | None = None
        self.reference: Reference | None = None  # what drift compares new texts with (dev figures)
        self.dev_ood: np.ndarray | None = None
        # fitting steps that failed and what the model does instead (:meth:`degrade`)
        self.degraded: list[dict] = []

    @classmethod
    def blank(cls: type[Self], kind: str) -> Self:
        """An instance of this class made without ``__init__`` (for loaders), with the common fields set and
        default settings (a loader replaces them with the folder's)."""
        obj = object.__new__(cls)
        obj.init_fields(kind)
        obj.seed, obj.metric, obj.abstain = 42, None, None
        obj.script = LEGACY_SCRIPT  # a folder that records no script setting was written before there was one
        obj.settings = obj.make_settings({})
        return obj

    # ------------------------------------------------------------------ settings

    def make_settings(self, values: dict[str, Any]) -> Any:
        """The settings object of ``values`` (:attr:`settings_class` with :attr:`kind_defaults`; None for a kind
        without settings, which then takes none)."""
        cls = self.settings_class
        if cls is None:
            check_settings(_NoSettings, f"a {self.kind} model", values)
            return None
        return settings_of(cls, f"a {self.kind} model", {**self.kind_defaults, **values})

    def settings_params(self) -> dict[str, Any]:
        """The settings as keyword values (the fields of the settings dataclass)."""
        if self.settings is None:
            return {}
        return {f.name: getattr(self.settings, f.name) for f in fields(self.settings) if f.init}

    def get_params(self) -> dict[str, Any]:
        """Every setting as a keyword: ``TextClassifier(kind=m.kind, **m.get_params())`` is an unfitted copy."""
        return {"seed": self.seed, "metric": self.metric, "abstain": self.abstain, "script": self.script,
                **self.settings_params()}

    def common_params(self) -> dict[str, Any]:
        """The settings every kind has, as a folder records them (JSON values; ``abstain`` has its own files)."""
        return {"seed": self.seed, "metric": self.metric, "script": self.script}

    def restore_common(self, values: dict[str, Any]) -> dict[str, Any]:
        """Take the common settings a folder recorded out of ``values`` (the defaults of an older folder when
        absent: its seed 42, no metric, script ``keep``); return the rest."""
        rest = dict(values)
        seed = rest.pop("seed", None)
        self.seed = 42 if seed is None else int(seed)
        self.metric = rest.pop("metric", None)
        self.script = normalizer(str(rest.pop("script", LEGACY_SCRIPT))).mode
        return rest

    def view(self, texts: Sequence[str]) -> list[str]:
        """What this model's features see of ``texts`` (its :attr:`script` setting; the rows stay aligned)."""
        return normalizer(self.script).texts(texts)

    def set_params(self: Self, **values: Any) -> Self:
        """Change settings of an unfitted model (checked as the constructor checks them); returns the model."""
        if self.labels:
            raise UserError(f"set_params changes an unfitted model; this {self.kind} model is fitted: "
                            "cls_app.clone(model) makes an unfitted copy")
        params = {**self.get_params(), **values}
        type(self).__init__(self, self.kind, **params)
        return self

    def clone(self) -> TextClassifier:
        """An unfitted model of this kind with the same settings (see :func:`clone`)."""
        return type(self)(self.kind, **self.get_params())

    def export_onnx(self, out: str | Path | None = None, quantize: bool = False) -> list[Path]:
        """Write the folder's network as ONNX (the kinds that declare :attr:`exportable` implement it)."""
        raise UserError(f"{self.path or self.kind} is a {self.kind} model: it has no network to export to ONNX")

    @classmethod
    def search_space(cls, trial: Any) -> dict[str, Any]:
        """Settings to try when tuning, drawn from ``trial`` (an Optuna trial, or anything with its
        ``suggest_int`` / ``suggest_float`` / ``suggest_categorical``); {}: nothing worth tuning."""
        return {}

    def estimate_fit_seconds(self, train: Any, dev: Any, task: Task) -> tuple[float, bool]:
        """Seconds fitting on these records is expected to take, and whether it was measured on this machine
        (a kind may time a few real steps; by default its :meth:`fit_seconds_prior`)."""
        texts = train.texts[:2000]
        chars = float(np.mean([len(t) for t in texts])) if texts else 1.0
        return type(self).fit_seconds_prior(len(train), chars), False

    def fixed_fit_seconds(self) -> float:
        """The part of the last :meth:`estimate_fit_seconds` a time limit does not shorten (BERT: scoring the
        training and dev rows for its out-of-domain detector); 0 by default."""
        return 0.0

    @classmethod
    def fit_seconds_prior(cls, rows: int, chars: float) -> float:
        """Seconds fitting is expected to take on ``rows`` training texts of ``chars`` characters on average
        (2-core CPU, default settings), before anything is measured (the planner's first estimate)."""
        return 1e-4 * rows * max(chars, 1.0) / 20.0

    def __repr__(self) -> str:
        where = f"{str(self.path)!r}, " if self.path else ""
        return f"{type(self).__name__}({where}kind={self.kind!r}, task={self.task.name!r}, labels={self.labels})"

    # ------------------------------------------------------------------ fitting

    def _task_for(self, targets: Sequence[Any], task: str | None) -> Task:
        """The task of the given targets: ``task`` when named, else label sets for collections."""
        if task is not None:
            return task_named(task)
        if targets and all(is_label_set(t) for t in targets):
            return task_named("multi-label")
        if any(is_label_set(t) for t in targets):
            raise UserError("labels mix single labels and label sets; give one string per text (single-label) or "
                            "one collection of labels per text (multi-label)")
        return SingleLabel()

    def fit(self: Self, texts: Sequence[Any], labels: Sequence[Any], dev: tuple[Sequence[Any], Sequence[Any]] |
            None = None, *, task: str | None = None) -> Self:
        """Fit on in-memory lists (``dev``: texts and labels for model selection and thresholds); returns self."""
        if isinstance(texts, str):
            raise NotAList("texts must be a list of strings, not a single string")
        spec = self._task_for(list(labels), task)
        train = spec.records(list(texts), list(labels), "training data")
        held = spec.records(list(dev[0]), list(dev[1]), "dev data") if dev is not None else None
        pairs = [PAIR_SEP in t for t in train.texts]
        if any(pairs) and not all(pairs):
            raise UserError("training data: some texts are (text, text_b) pairs and some are not; give one kind")
        return self.fit_records(train, held, spec, text_pair_col="text_b" if all(pairs) else None)

    def fit_records(self: Self, train: Any, dev: Any | None, task: Task, text_pair_col: str | None = None,
                    **extra: Any) -> Self:
        """Fit on records (``LabeledData`` / ``LabelSetData``) of ``task``: the task and the pairs are checked
        against the kind's declarations, then the kind's :meth:`fit_task` fits."""
        self.check_task(task, text_pair_col)
        given_dev = dev
        if not self.combines:  # an ensemble's members see the texts their own way
            train = replace(train, texts=self.view(train.texts))
            dev = replace(dev, texts=self.view(dev.texts)) if dev is not None else None
        fitted = self.fit_task(train, dev, task, text_pair_col, **extra)
        if given_dev is not None:
            fitted.measure_reference(given_dev.texts, self.training_chars(train.texts))
        return fitted

    def training_chars(self, texts: Sequence[str]) -> set[str]:
        """The characters of the (viewed) training texts; an ensemble's: its members' (their references)."""
        return characters(texts)

    def measure_reference(self, dev_texts: Sequence[Any], chars: set[str]) -> None:
        """The drift reference on the dev texts (as given; :mod:`.reference`), written into the folder the model
        already has (a BERT fitted into its run folder); a failure is a warning, the model goes on without one."""
        from ..runtime.distributed import rank_world

        if rank_world()[0] != 0:  # under torchrun: the main process's model is the one kept
            return
        known = None
        if not self.combines and self.dev_probs is not None and self.dev_ood is not None:
            known = self.dev_probs, self.dev_ood  # what fitting computed on these rows: no second pass
        try:
            self.reference = Reference.measure(self, dev_texts, chars, scored=known)
        except UserError as exc:
            log.info("%s: no drift reference (%s)", self.kind, exc)
            return
        except Exception as exc:
            self.degrade("the drift reference", exc, "it has none (run.py drift needs --reference)")
            return
        if self.path is not None and Path(self.path).is_dir():
            self.reference.save(Path(self.path))

    @classmethod
    def check_task(cls, task: Task, text_pair_col: str | None = None) -> None:
        """A :class:`UserError` when this kind does not fit ``task`` (or sentence pairs)."""
        if task.name not in cls.tasks:
            able = sorted(k for k, c in KINDS.items() if task.name in c.tasks and not c.combines)
            raise UserError(f"the {cls.kind_name} kind fits {' and '.join(cls.tasks)} data, not {task.name}; kinds "
                            f"that do: {', '.join(able) or 'none registered'}")
        if text_pair_col and not cls.takes_pairs:
            raise UserError(f"the {cls.kind_name} kind classifies single texts, not sentence pairs")

    def validate(self, task: Task) -> None:
        """Reject settings that cannot work for ``task`` (a :class:`UserError` naming the setting), before
        anything is fitted or written; the main job asks every kind first."""
        check = getattr(self.settings, "check", None)
        if callable(check):
            check()

    def fit_task(self: Self, train: Any, dev: Any | None, task: Task, text_pair_col: str | None = None,
                 **extra: Any) -> Self:
        """Fit on checked records (the kinds implement it; see :meth:`fit_records`)."""
        raise UserError(f"a {self.kind} model cannot be fitted from records")

    # ------------------------------------------------------------------ predicting

    def predict_proba(self, texts: Iterable[Any]) -> np.ndarray:
        """Class probabilities, shape ``(n, len(labels))``, columns in :attr:`labels` order, rows in input order;
        all-NaN rows for empty or missing texts (None, NaN, "", whitespace)."""
        return self.score(texts).probs

    def ood_scores(self, texts: Iterable[Any]) -> np.ndarray:
        """The out-of-domain score of each text (:mod:`.ood`: 0 a typical dev text, 1 dev's 95th percentile,
        higher is farther from the training data); NaN for empty texts or a folder without abstention files."""
        return self.score(texts).ood

    def score(self, texts: Iterable[Any]) -> Outputs:
        """Probabilities and out-of-domain scores in one pass (see :meth:`predict_proba`, :meth:`ood_scores`)."""
        if isinstance(texts, str):
            raise NotAList("texts must be a list of strings, not a single string: predict_proba([text])")
        if not self.labels:
            raise UserError(f"this {self.kind} model is not fitted: call .fit(texts, labels) or load a folder")
        values = [as_text(t) for t in texts]
        self.check_pairs(values)
        probs = np.full((len(values), len(self.labels)), np.nan, dtype=self.dtype)
        ood = np.full(len(values), np.nan)
        scorer = self.abstainer.scorer if self.abstainer is not None else None
        window = max(1, self.options.window)
        starts = range(0, len(values), window)
        bar = None
        if self.options.progress and len(starts) > 1:
            from ..bars import progress_bar

            bar = progress_bar(total=len(starts), desc="predict", unit="window")
        for start in starts:
            part = values[start: start + window]
            keep = [i for i, t in enumerate(part) if t is not None]
            if keep:
                rows = [start + i for i in keep]
                kept = self.view([str(part[i]) for i in keep])
                raw, features = self.analyse(kept)
                probs[rows] = self.task.calibrate(raw)
                if scorer is not None:
                    ood[rows] = scorer.score(kept, probs[rows], features)
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        return Outputs(probs, ood)

    def analyse(self, texts: list[str]) -> tuple[np.ndarray, Any]:
        """Uncalibrated probabilities of non-empty texts and the features the out-of-domain detector reads
        (None: none); kinds with a detector override it to get both in one pass."""
        return self.scores(texts), None

    def abstention(self, scored: Outputs) -> Abstention:
        """Which rows of ``scored`` the model abstains on, and why (no rule: none)."""
        if self.abstainer is None:
            return Abstention.none(len(scored.probs), scored.ood)
        confidence, pred = self.task.answer(scored.probs, self.labels)
        return self.abstainer.rule.apply(confidence, pred, scored.ood)

    dtype: ClassVar[Any] = np.float64
    default_batch_size: ClassVar[int] = DEFAULT_BATCH_SIZE  # texts per forward pass unless the options say

    def forward_batch(self) -> int:
        """Texts per forward pass: ``options.batch_size``, else the kind's :attr:`default_batch_size`."""
        return self.options.batch_size or self.default_batch_size

    def forward_precision(self) -> Any:
        """The autocast dtype of the torch kinds' forward passes: ``options.precision`` (None: fp32; see
        :func:`cls_app.runtime.device.resolve_precision`); int8 and ONNX Runtime run as they are (None)."""
        import torch

        from ..runtime.device import resolve_precision

        if self.options.backend != "torch" or self.options.quantize:
            return None
        return resolve_precision(self.options.precision, torch.device("cpu"))

    def scores(self, texts: list[str]) -> np.ndarray:
        """Probabilities of non-empty texts (the kinds implement it)."""
        raise NotImplementedError

    def degrade(self, step: str, exc: Exception, instead: str) -> None:
        """A fitting step that failed (not for the user's input): one warning line, recorded in
        :attr:`degraded` (the main job reports it; ``--strict`` fails there), and the model goes on ``instead``."""
        log.warning("%s: %s failed (%s: %s); %s", self.kind, step, type(exc).__name__, exc, instead)
        log.debug("%s: %s failed", self.kind, step, exc_info=exc)
        self.degraded.append({"step": step, "reason": f"{type(exc).__name__}: {exc}", "instead": instead})

    def fit_decisions(self, dev: Any, raw_dev: np.ndarray, metric: str | None, seed: int) -> None:
        """Calibrate and fit the decisions on the dev rows (``raw_dev``: this model's uncalibrated
        probabilities on them); keep the calibrated dev probabilities and the honest dev decisions. When that
        fails (a numerical problem, not the input) the model keeps its raw probabilities and argmax decisions."""
        y = self.task.encode(dev, self.labels)
        try:
            self.task, fit = self.task.fit_decisions(y, raw_dev, self.labels, metric, seed)
        except UserError:
            raise
        except Exception as exc:
            self.degrade("calibration and decisions", exc, "its probabilities stay uncalibrated, the decisions "
                         "the largest probability's")
            fit = None
        self.dev_probs = self.task.calibrate(raw_dev)
        if fit is not None:
            self.dev_pred, self.decisions = fit.dev_pred, fit.report

    def dev_scores(self, dev: Any) -> dict:
        """The headline dev metrics of the honest dev decisions (:attr:`dev_pred`), else of :attr:`dev_probs`."""
        from ..tasks import headline

        y = self.task.encode(dev, self.labels)
        if self.dev_pred is not None:
            metrics = self.task.metrics_of(y, self.dev_pred, self.labels)
        else:
            metrics = self.task.metrics(y, self.dev_probs if self.dev_probs is not None else
                                        self.predict_proba(dev.texts), self.labels)
        return headline(metrics)

    def check_pairs(self, values: Sequence[str | None]) -> None:
        """A user error for pairs given to a single-text model, or single texts to a pair model."""
        given = [v is not None and PAIR_SEP in v for v in values]
        where = self.path or "this model"
        if not self.pairs and any(given):
            raise UserError(f"{where} classifies single texts, not (text, text_b) pairs")
        if self.pairs and not all(g for g, v in zip(given, values, strict=True) if v is not None):
            raise UserError(f"{where} classifies sentence pairs: give (text, text_b) items")

    def predict(self, texts: Iterable[Any], top_k: int = 1) -> list[Any]:
        """The task's decision for each text: a :class:`~cls_app.tasks.Prediction` (label, probability, the
        ``top_k`` best, and whether the model abstains, why, and the out-of-domain score) or, for label-set
        tasks, a :class:`~cls_app.tasks.LabelSetPrediction` (an abstained row's set is empty)."""
        scored = self.score(texts)
        return self.task.predictions(scored.probs, self.labels, top_k, self.abstention(scored))

    # ------------------------------------------------------------------ abstaining

    ood_method: ClassVar[str | None] = None  # the detector a kind fits: mahalanobis, centroid (None: none)

    def fit_detector(self, features: Any, y: np.ndarray) -> Detector | None:
        """The out-of-domain detector fitted on the training rows' ``features`` and targets ``y``."""
        if self.ood_method == "mahalanobis":
            return Detector.mahalanobis(features, None if self.task.multi else y)
        if self.ood_method == "centroid":
            return Detector.centroids(features, y)
        return None

    def fit_abstention(self, train: Any, dev: Any, settings: AbstainSettings | None = None, seed: int = 42,
                       analysed: tuple[np.ndarray, Any] | None = None) -> None:
        """Fit the out-of-domain score (its distance on up to :data:`DETECTOR_ROWS` training rows, the character
        model on every training text) and the abstention rule on dev (after :meth:`fit_decisions`: the rule
        reads the calibrated dev probabilities); ``analysed``: :meth:`analyse` of the dev texts, when the
        caller has it. When that fails (a numerical problem, not the input) the model answers every text."""
        try:
            self.fit_abstention_parts(train, dev, settings, seed, analysed)
        except UserError:
            raise
        except Exception as exc:
            self.abstainer, self.dev_ood = None, None
            self.degrade("abstention", exc, "it answers every text (no out-of-domain score)")

    def fit_abstention_parts(self, train: Any, dev: Any, settings: AbstainSettings | None = None, seed: int = 42,
                             analysed: tuple[np.ndarray, Any] | None = None) -> None:
        """The out-of-domain score and the abstention rule (see :meth:`fit_abstention`)."""
        detector = None
        if self.ood_method is not None:
            rows = np.arange(len(train))
            if len(rows) > DETECTOR_ROWS:
                rows = np.sort(np.random.default_rng(seed).choice(rows, DETECTOR_ROWS, replace=False))
            _, features = self.analyse([train.texts[i] for i in rows])
            y = self.task.encode(train, self.labels)[rows]
            detector = self.fit_detector(features, y) if features is not None else None
        scorer = OodScorer(detector, TextDensity.of(train.texts))
        texts = list(dev.texts)
        raw, features = analysed if analysed is not None else self.analyse(texts)
        dev_probs = self.dev_probs if self.dev_probs is not None else self.task.calibrate(raw)
        dev_ood = scorer.fit_norms(scorer.parts(texts, dev_probs, features))
        self.set_abstainer(scorer, self.task.encode(dev, self.labels), dev_probs, dev_ood, settings)

    def set_abstainer(self, scorer: OodScorer, y: np.ndarray, dev_probs: np.ndarray, dev_ood: np.ndarray,
                      settings: AbstainSettings | None) -> None:
        """The abstainer from dev's targets ``y``, calibrated probabilities and ood scores (the honest dev
        decisions :attr:`dev_pred` where known)."""
        confidence, pred = self.task.answer(dev_probs, self.labels, self.dev_pred)
        correct = self.task.row_correct(y, pred)
        evidence = DevEvidence(confidence, pred, correct, np.asarray(dev_ood, dtype=np.float64))
        rule = fit_rule(evidence, settings or AbstainSettings(), len(self.labels), self.task.multi)
        self.abstainer = Abstainer(scorer, evidence, rule, self.task.multi)
        self.dev_ood = evidence.ood
        log.info("%s: abstains on %.1f%% of dev (%s)", self.kind, 100 * (1 - rule.dev.get("coverage", 1.0)),
                 ", ".join(f"{k} {v}" for k, v in rule.dev.items() if k in ("out_of_domain", "low_confidence")))

    def save_extras(self, path: Path) -> None:
        """Write the abstention files and the drift reference into the model folder ``path`` (those it has)."""
        if self.abstainer is not None:
            self.abstainer.save(path)
        if self.reference is not None:
            self.reference.save(path)

    # ------------------------------------------------------------------ folders

    def save(self, path: str | Path) -> Path:
        """Write the model folder ``path`` (whole, or not at all); return it."""
        raise NotImplementedError

    def describe(self) -> dict:
        """Settings for ``GET /info`` and logs."""
        out: dict[str, Any] = {"kind": self.kind, "family": self.family, "task": self.task.name}
        if self.abstainer is not None:
            out["abstain"] = self.abstainer.describe()
        return out

    def train_seconds(self) -> float | None:
        """Training time, when known."""
        return None

    @classmethod
    def from_folder(cls, path: Path, options: InferenceOptions) -> TextClassifier:
        """Load a folder of this class's family (the families implement it)."""
        raise NotImplementedError

    @classmethod
    def load(cls, path: str | Path, *, follow: bool = True, prefer: str = "quality", **options: Any
             ) -> TextClassifier:
        """Load any model folder this app writes (see :func:`load`)."""
        return load(path, follow=follow, prefer=prefer, **options)

    @staticmethod
    def ensemble(models: Sequence[TextClassifier], dev: tuple[Sequence[Any], Sequence[Any]], **settings: Any
                 ) -> TextClassifier:
        """An ensemble of fitted ``models``: member temperatures and weights fitted on ``dev`` (texts, labels);
        ``settings`` are :class:`~cls_app.models.ensemble.EnsembleSettings` fields."""
        return kind_class("ensemble").build(list(models), dev, **settings)  # type: ignore[attr-defined]



# --------------------------------------------------------------------------- the one loader

_OPTION_NAMES = {f.name for f in fields(InferenceOptions)}


def options_from(options: InferenceOptions | None = None, **values: Any) -> InferenceOptions:
    """``options`` (default: :class:`InferenceOptions`) updated with ``values`` (its field names)."""
    unknown = sorted(set(values) - _OPTION_NAMES)
    if unknown:
        raise UserError(f"unknown load option(s) {', '.join(unknown)}; known: {', '.join(sorted(_OPTION_NAMES))}")
    return (options or InferenceOptions()).updated(**values).check()


def load(path: str | Path, *, follow: bool = True, prefer: str = "quality", options: InferenceOptions | None = None,
         **values: Any) -> TextClassifier:
    """Load any model folder; a :class:`UserError` when it is none.

    The CLI (``predict``, ``evaluate``, ``explain``, ``compare``, ``ensemble``), the Python API
    (``cls_app.load``, ``TextClassifier.load``) and ``serve`` all load through here, so the same
    folder means the same model everywhere. A training folder holding ``best.json`` (written by
    ``train --with-baselines``) means the model it recommends (``prefer="fast"``: the fast model it names
    beside it) unless ``follow=False``; ensemble members and ``compare`` never follow it.

    ``values`` are :class:`InferenceOptions` fields (``threads``, ``batch_size``, ``backend``,
    ``quantize``, ``window``, ``long_text``, ``progress``, ``fast``); the options that only apply to
    BERT (int8, ONNX, long texts) are a user error for a baseline folder and apply to the BERT
    members of an ensemble.
    """
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"model folder not found: {path}")
    if follow:
        path = follow_best(path, prefer)
    return load_folder(path, options_from(options, **values))


def load_folder(path: Path, options: InferenceOptions) -> TextClassifier:
    """The model in ``path`` itself (no ``best.json`` followed)."""
    if not path.is_dir():
        raise UserError(f"model folder not found: {path}")
    family = folder_family(path)
    if family is None:
        raise UserError(f"{path} {NOT_A_MODEL}")
    model = family_class(family).from_folder(path, options)
    if options.script is not None:  # another view than the folder's (an old folder made to convert, ...)
        model.script = normalizer(options.script).mode
    model.abstainer = Abstainer.load(path)
    model.reference = Reference.load(path)
    if options.abstain is not None and options.abstain.given:
        if model.abstainer is None:
            raise UserError(f"{path} was made before abstention existed (no {ABSTAIN_FILES[1]}): retrain it, or fit "
                            "its abstention on a labeled dev file with `run.py abstain --model DIR --dev FILE`")
        model.abstainer = model.abstainer.with_settings(options.abstain, len(model.labels))
    return model


def load_member(path: Path, options: InferenceOptions) -> TextClassifier:
    """An ensemble member: the BERT-only options reach BERT members only."""
    options = replace(options, abstain=None)  # the ensemble's own rule decides; members give their ood scores
    if folder_family(path) != "bert":
        options = replace(options, quantize=False, backend="torch", long_text=None)
    return load_folder(path, options)


Classifier = TextClassifier
"""The name of the Python API before every model kind shared it; ``Classifier.load`` is ``TextClassifier.load``."""
