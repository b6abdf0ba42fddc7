"""The TF-IDF baselines as :class:`~cls_app.models.base.TextClassifier` kinds: ``char_lr`` ... ``word_nb``
(:mod:`cls_app.baselines` builds and stores the scikit-learn pipelines).

Each kind is a class here: its features (character n-grams or jieba words), its classifier, its
tunable settings (:class:`~cls_app.baselines.pipelines.TfidfSettings`: n-gram range, ``min_df``,
``max_df``, ``max_features``, ``sublinear_tf``, and ``C`` or ``alpha``) and its search space.

For LinearSVC the "probabilities" are a softmax of the decision function (single-label) or a
sigmoid of it per label (label sets): the decisions are exactly LinearSVC's, the values are not
calibrated. Label-set baselines are one-vs-rest; their thresholds are tuned on dev as BERT's are.

:class:`BaselineClassifier` is what every ``baseline`` folder shares (the majority floor's too,
:mod:`.majority`): fitting a scikit-learn estimator on the records, scoring, the folder.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..baselines.pipelines import (
    CLASSIFIERS,
    FEATURES,
    SETTINGS,
    WORD_NGRAMS,
    baseline_meta,
    build_pipeline,
    fit_estimator,
    label_set_scores,
    recorded_settings,
    scores_as_proba,
)
from ..baselines.storage import load_baseline, save_baseline
from ..errors import UserError
from ..tasks import Task, task_from_settings
from .base import kind_class, register
from .described import Described
from .options import InferenceOptions

log = logging.getLogger(__name__)

LABEL_SET_TASKS = ("single-label", "multi-label", "hierarchical")


@register(family="baseline")
class BaselineClassifier(Described):
    """A scikit-learn estimator in a ``baseline`` folder (the kinds implement :meth:`estimator_for`)."""

    ood_method: ClassVar[str | None] = "centroid"
    words: ClassVar[bool] = False  # the features need jieba's dictionary

    def estimator_for(self, task: Task, pairs: bool) -> Any:
        """The unfitted estimator for ``task`` (the kinds implement it)."""
        raise NotImplementedError

    def describe_fit(self, task: Task) -> tuple[str, str, dict]:
        """``features``, ``classifier`` and ``settings`` as ``baseline.json`` records them."""
        raise NotImplementedError

    def fit_task(self, train: Any, dev: Any | None, task: Task, text_pair_col: str | None = None,
                 **extra: Any) -> BaselineClassifier:
        labels = task.vocabulary(train)
        y = task.encode(train, labels)
        if dev is not None:
            task.encode(dev, labels)  # a label train never saw is a user error
        self.estimator = self.estimator_for(task, bool(text_pair_col))
        seconds = fit_estimator(self.estimator, train.texts, y, self.words)
        self.labels, self.task, self.pairs, self.text_pair_col = labels, task, bool(text_pair_col), text_pair_col
        features, classifier, recorded = self.describe_fit(task)
        params = {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.settings_params().items()}
        self.meta = baseline_meta(self.kind, features, classifier, labels, recorded, {**self.common_params(), **params},
                                  len(train), seconds)
        if dev is not None and len(dev):
            analysed = self.analyse(list(dev.texts))
            self.task = task.fitted(task.dev_metrics(task.encode(dev, labels), analysed[0], labels))  # label sets
            self.settle_on_dev(train, dev, analysed, self.metric, self.seed)  # calibration, offsets, abstention
        self.meta.update(self.task.folder_fields())
        if text_pair_col:
            self.meta["text_pair_col"] = text_pair_col
            self.meta["features"] += " of A, of B, |a-b| and a*b (sentence pairs)"
        self.path = None
        log.info("%s: trained in %.1fs", self.kind, seconds)
        return self

    def scores(self, texts: list[str]) -> np.ndarray:
        if self.task.multi:
            return label_set_scores(self.estimator, texts)
        return scores_as_proba(self.estimator, texts, len(self.labels))

    def analyse(self, texts: list[str]) -> tuple[np.ndarray, Any]:
        """Probabilities and the TF-IDF rows they come from (one featurisation); an estimator without
        features (the majority floor) has none."""
        if not hasattr(self.estimator, "steps"):
            return self.scores(texts), None
        features = self.estimator.steps[0][1].transform(texts)
        clf = self.estimator[-1]
        probs = label_set_scores(clf, features) if self.task.multi else scores_as_proba(clf, features, len(self.labels))
        return probs, features

    def save(self, path: str | Path) -> Path:
        if getattr(self, "estimator", None) is None:
            raise UserError(f"this {self.kind} model is not fitted: nothing to save")
        save_baseline(self.estimator, self.meta, path)
        self.save_extras(Path(path))
        self.path = Path(path)
        return self.path

    def describe(self) -> dict:
        out = super().describe()
        out.update({k: v for k, v in self.meta.items() if isinstance(v, str | int | float | bool) and k not in out})
        return out

    @classmethod
    def from_folder(cls, path: Path, options: InferenceOptions) -> BaselineClassifier:
        """A baseline folder (:mod:`cls_app.baselines.storage`) as its kind; BERT-only options are a user error."""
        if options.quantize:
            raise UserError(f"{path} is a classical baseline: --quantize applies to BERT models only")
        if options.long_text:
            raise UserError(f"{path} is a classical baseline: --truncation / --long-text options apply to BERT "
                            "models only")
        if options.backend != "torch":
            raise UserError(f"{path} is a classical baseline: --backend {options.backend} applies to BERT models only")
        estimator, meta = load_baseline(path)
        kind = str(meta.get("name") or "")
        owner = kind_class(kind) if kind else None
        if owner is None or not issubclass(owner, BaselineClassifier):
            raise UserError(f"{path}: baseline.json names the kind {kind!r}, which is not a baseline")
        obj = owner.blank(kind)
        recorded = dict(meta.get("params") or {})
        if "seed" not in recorded:  # folders from before the settings were recorded: the classifier's seed
            recorded["seed"] = (meta.get("settings") or {}).get("clf", {}).get("random_state", 42)
        params = obj.restore_common(recorded)
        try:
            obj.settings = obj.make_settings(params)
        except UserError as exc:
            raise UserError(f"{path}/baseline.json: {exc}") from None
        obj.estimator, obj.meta = estimator, meta
        obj.labels = list(meta["labels"])
        obj.task = task_from_settings(meta)
        obj.path = path
        obj.text_pair_col = meta.get("text_pair_col") or None
        obj.pairs = bool(obj.text_pair_col)
        obj.options = options
        return obj


class TfidfClassifier(BaselineClassifier):
    """TF-IDF ``features`` (``char`` or ``word``) + a linear ``classifier`` (``lr``, ``svm``, ``nb``)."""

    features: ClassVar[str]
    classifier: ClassVar[str]
    in_main_job = True
    tasks = LABEL_SET_TASKS

    def estimator_for(self, task: Task, pairs: bool) -> Any:
        self.settings.check()
        return build_pipeline(self.features, self.classifier, self.settings, self.seed, pairs=pairs,
                              label_sets=task.multi)

    def describe_fit(self, task: Task) -> tuple[str, str, dict]:
        low, high = self.settings.ngram_range
        grams = f"{low}-{high} grams" if low != high else f"{low}-grams"
        features = f"TF-IDF over character {grams}" if self.features == "char" else (
            "TF-IDF over jieba words" if (low, high) == (1, 1) else f"TF-IDF over jieba word {grams}")
        classifier = CLASSIFIERS[self.classifier]
        if task.multi:
            classifier = f"one-vs-rest {classifier}"
        return features, classifier, recorded_settings(self.features, self.settings, self.seed)

    @classmethod
    def search_space(cls, trial: Any) -> dict[str, Any]:
        high = trial.suggest_int("ngram_high", 1, 3) if cls.features == "char" else trial.suggest_int(
            "ngram_high", 1, 2)
        space: dict[str, Any] = {"ngram_range": (1, high), "sublinear_tf": trial.suggest_categorical(
            "sublinear_tf", [True, False]), "min_df": trial.suggest_int("min_df", 1, 3)}
        if cls.classifier == "nb":
            space["alpha"] = trial.suggest_float("alpha", 1e-3, 1.0, log=True)
        elif cls.classifier == "svm":
            space["C"] = trial.suggest_float("C", 0.05, 10.0, log=True)
        else:
            space["C"] = trial.suggest_float("C", 0.5, 100.0, log=True)
        return space

    @classmethod
    def fit_seconds_prior(cls, rows: int, chars: float) -> float:
        per_char = {"nb": 2e-6, "svm": 3e-6, "lr": 1e-5}[cls.classifier] * (3.0 if cls.features == "word" else 1.0)
        return 0.05 + per_char * rows * max(chars, 1.0)


def _kind(name: str, features: str, classifier: str, cost: float) -> type[TfidfClassifier]:
    """The class of one TF-IDF kind (registered under ``name``)."""
    cls = type(name, (TfidfClassifier,), {
        "__doc__": f"{FEATURES[features]} + {CLASSIFIERS[classifier]} (the ``{name}`` kind).",
        "__module__": __name__, "features": features, "classifier": classifier, "cost": cost,
        "predict_cost": 2.0 if features == "word" else 1.0,
        "words": features == "word", "settings_class": SETTINGS[classifier],
        "kind_defaults": {"ngram_range": WORD_NGRAMS} if features == "word" else {}})
    return register(name)(cls)


CharLr = _kind("char_lr", "char", "lr", 2.0)
CharSvm = _kind("char_svm", "char", "svm", 1.2)
CharNb = _kind("char_nb", "char", "nb", 1.0)
WordLr = _kind("word_lr", "word", "lr", 2.5)
WordSvm = _kind("word_svm", "word", "svm", 1.7)
WordNb = _kind("word_nb", "word", "nb", 1.5)
