"""Classical baselines: TF-IDF + linear models.

Features are TF-IDF over character n-grams (``char``: 1-2 grams by default) or over **jieba**
words (``word``: single words by default); classifiers are LogisticRegression (``lr``), LinearSVC
(``svm``) and MultinomialNB (``nb``). :class:`TfidfSettings` and its subclasses hold the tunable
settings; the model kinds (``char_lr`` ... ``word_nb``) are in :mod:`cls_app.models.tfidf`, their
folders in :mod:`.storage` (``baseline.json``, ``model.json``, ``model.safetensors``).

Default settings were chosen on a stratified 20 % hold-out of the THUCNews dev.txt, never on
test.txt: ``sublinear_tf``, LogisticRegression ``C=10`` (saga solver), MultinomialNB
``alpha=0.1``, LinearSVC ``C=1``.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..errors import UserError
from ..tasks import softmax
from ..tasks.label_sets import sigmoid
from ..version import __version__
from .storage import FORMAT_VERSION, KIND, init_jieba

log = logging.getLogger(__name__)


FEATURES = {
    "char": "TF-IDF over character n-grams",
    "word": "TF-IDF over jieba words",
}
CLASSIFIERS = {
    "lr": "LogisticRegression",
    "svm": "LinearSVC",
    "nb": "MultinomialNB",
}


@dataclass(frozen=True, kw_only=True)
class TfidfSettings:
    """The TF-IDF features (scikit-learn's ``TfidfVectorizer`` settings of the same names)."""

    ngram_range: tuple[int, int] = (1, 2)
    min_df: int = 1
    max_df: float = 1.0
    max_features: int | None = None
    sublinear_tf: bool = True

    def check(self) -> None:
        low, high = self.ngram_range
        if not 1 <= low <= high:
            raise UserError(f"ngram_range must be (low, high) with 1 <= low <= high, got {self.ngram_range}")
        if self.min_df < 1 or not 0 < self.max_df <= 1:
            raise UserError(f"min_df must be at least 1 and max_df in (0, 1], got {self.min_df}, {self.max_df}")
        if self.max_features is not None and self.max_features < 1:
            raise UserError(f"max_features must be at least 1, got {self.max_features}")


@dataclass(frozen=True, kw_only=True)
class LrSettings(TfidfSettings):
    """TF-IDF + LogisticRegression (saga solver)."""

    C: float = 10.0
    max_iter: int = 1000

    def classifier(self, seed: int) -> dict:
        return {"C": self.C, "solver": "saga", "max_iter": self.max_iter, "random_state": seed}


@dataclass(frozen=True, kw_only=True)
class SvmSettings(TfidfSettings):
    """TF-IDF + LinearSVC."""

    C: float = 1.0

    def classifier(self, seed: int) -> dict:
        return {"C": self.C, "random_state": seed}  # liblinear shuffles: seeded, the same model every time


@dataclass(frozen=True, kw_only=True)
class NbSettings(TfidfSettings):
    """TF-IDF + MultinomialNB."""

    alpha: float = 0.1

    def classifier(self, seed: int) -> dict:
        return {"alpha": self.alpha}


SETTINGS = {"lr": LrSettings, "svm": SvmSettings, "nb": NbSettings}
WORD_NGRAMS = (1, 1)
"""The default n-grams of the jieba-word features (single words)."""


def jieba_tokens(text: str) -> list[str]:
    """Split ``text`` into jieba words (precise mode).

    Whitespace runs stay tokens: in THUCNews headlines a space separates parts of a headline
    in some sections more than others, and keeping it scored about one point higher on the
    dev hold-out. Module-level (not a lambda) so a saved pipeline refers to it by name and
    the loader can be told to trust exactly this function. The words of recent texts are remembered
    (:func:`jieba_words`), so the word-level members of an ensemble and the fasttext kind cut each
    text once between them.
    """
    return list(jieba_words(text))


@functools.lru_cache(maxsize=1 << 16)
def jieba_words(text: str) -> tuple[str, ...]:
    """jieba's words of ``text`` (precise mode), remembered for the last 65,536 texts."""
    import jieba

    return tuple(jieba.lcut(text))


# Saved pipelines name this function by module and name; it keeps the name it had before the
# package was split (``cls_app.baselines.jieba_tokens``, exported by the package) so every
# saved model, old (model.skops) or new (model.json), refers to it the same way.
jieba_tokens.__module__ = "cls_app.baselines"


def build_pipeline(features: str, classifier: str, settings: Any, seed: int = 42, pairs: bool = False,
                   label_sets: bool = False) -> Any:
    """An unfitted scikit-learn pipeline that takes raw texts: TF-IDF ``features`` (``char`` or ``word``) and
    ``classifier`` (``lr``, ``svm``, ``nb``) with ``settings`` (a :class:`TfidfSettings` subclass); ``pairs``:
    sentence-pair texts, featurized by :class:`~cls_app.baselines.pairs.PairFeatures`; ``label_sets``: one binary
    classifier per label, scikit-learn's ``OneVsRestClassifier``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import MultinomialNB
    from sklearn.pipeline import Pipeline
    from sklearn.svm import LinearSVC

    from .tfidf import CompactTfidfVectorizer

    common = {"ngram_range": tuple(settings.ngram_range), "min_df": settings.min_df, "max_df": settings.max_df,
              "max_features": settings.max_features, "sublinear_tf": settings.sublinear_tf}
    if features == "char":
        vec: Any = CompactTfidfVectorizer(analyzer="char", **common)
    else:
        vec = CompactTfidfVectorizer(tokenizer=jieba_tokens, token_pattern=None, **common)
    if pairs:
        from .pairs import PairFeatures

        vec = PairFeatures(vec)
    clf: Any = {"lr": LogisticRegression, "svm": LinearSVC, "nb": MultinomialNB}[classifier](
        **settings.classifier(seed))
    if label_sets:
        from sklearn.multiclass import OneVsRestClassifier

        clf = OneVsRestClassifier(clf)
    return Pipeline([("tfidf", vec), ("clf", clf)])


def recorded_settings(features: str, settings: Any, seed: int) -> dict:
    """The hyper-parameters as ``baseline.json`` records them (``tfidf`` and ``clf``)."""
    tfidf = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(settings).items()
             if k in {"ngram_range", "min_df", "max_df", "max_features", "sublinear_tf"}}
    tfidf = {("analyzer" if features == "char" else "tokenizer"): "char" if features == "char" else "jieba", **tfidf}
    return {"tfidf": tfidf, "clf": settings.classifier(seed)}


def scores_as_proba(estimator: Any, texts: Any, n_labels: int) -> np.ndarray:
    """Class probabilities, shape ``(len(texts), n_labels)``, columns in label-id order.

    LinearSVC has no ``predict_proba``: its ``decision_function`` is passed through a
    softmax, which keeps the argmax (so the accuracy is exactly LinearSVC's) but the values
    are not calibrated probabilities.
    """
    n = texts.shape[0] if hasattr(texts, "shape") else len(texts)  # texts, or their features (a sparse matrix)
    out = np.zeros((n, n_labels), dtype=np.float64)
    if not n:
        return out
    if hasattr(estimator, "predict_proba"):
        proba = estimator.predict_proba(texts)
    else:
        scores = np.asarray(estimator.decision_function(texts), dtype=np.float64)
        if scores.ndim == 1:  # binary: score > 0 means classes_[1]
            scores = np.column_stack([np.zeros_like(scores), scores])
        proba = softmax(scores)
    out[:, np.asarray(estimator.classes_, dtype=int)] = proba
    return out




def label_set_scores(estimator: Any, texts: Any) -> np.ndarray:
    """Per-label scores in [0, 1] of a one-vs-rest estimator, shape ``(len(texts), labels)``:
    ``predict_proba`` (LR, NB) or the sigmoid of LinearSVC's decision function (not calibrated)."""
    rows = texts if hasattr(texts, "shape") else list(texts)  # texts, or their features (a sparse matrix)
    if hasattr(estimator, "predict_proba"):
        return np.asarray(estimator.predict_proba(rows), dtype=np.float64)
    return sigmoid(np.asarray(estimator.decision_function(rows), dtype=np.float64))


def fit_estimator(estimator: Any, texts: Sequence[str], y: np.ndarray, words: bool) -> float:
    """Fit ``estimator`` on ``texts`` and targets ``y`` (class ids, or a 0/1 matrix for label sets); return
    the seconds it took (jieba's dictionary load, for ``words``, not counted)."""
    if words:
        init_jieba()
    t0 = time.perf_counter()
    estimator.fit(list(texts), np.asarray(y).astype(np.int64))
    return time.perf_counter() - t0


def baseline_meta(name: str, features: str, classifier: str, labels: list[str], settings: dict, params: dict,
                  rows: int, seconds: float) -> dict:
    """``baseline.json`` of a fitted baseline (the task's fields and scores are added by the caller)."""
    return {
        "kind": KIND, "format_version": FORMAT_VERSION, "app_version": __version__, "name": name,
        "features": features, "classifier": classifier, "labels": labels, "settings": settings, "params": params,
        "train_rows": rows, "train_seconds": round(seconds, 3),
    }
