"""Classical baselines: TF-IDF + linear models, and the majority-class floor BERT has to beat.

Features are TF-IDF over character 1-2 grams (``char_*``) or over **jieba** words (``word_*``);
classifiers are LogisticRegression (``*_lr``), LinearSVC (``*_svm``) and MultinomialNB
(``*_nb``); ``majority`` always predicts the most frequent training class.

Each baseline is saved in its own folder (see :mod:`.storage`): ``baseline.json``, ``model.json`` and
``model.safetensors``.

Default settings were chosen on a stratified 20 % hold-out of the THUCNews dev.txt, never on
test.txt: ``sublinear_tf``, LogisticRegression ``C=10`` (saga solver), MultinomialNB
``alpha=0.1``, LinearSVC ``C=1``.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import UserError
from ..tasks import softmax
from ..tasks.label_sets import sigmoid
from ..version import __version__
from .storage import FORMAT_VERSION, KIND, init_jieba

log = logging.getLogger(__name__)


FEATURES = {
    "char": "TF-IDF over character 1-2 grams",
    "word": "TF-IDF over jieba words",
}
CLASSIFIERS = {
    "lr": "LogisticRegression",
    "svm": "LinearSVC",
    "nb": "MultinomialNB",
}
BASELINE_NAMES = tuple(f"{f}_{c}" for f in FEATURES for c in CLASSIFIERS) + ("majority",)
LABEL_SET_BASELINES = tuple(n for n in BASELINE_NAMES if n != "majority")  # one-vs-rest versions exist


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


@dataclass(frozen=True)
class BaselineSpec:
    """Which features and classifier a baseline uses, with their settings."""

    name: str
    features: str | None  # "char", "word" or None (majority)
    classifier: str  # "lr", "svm", "nb" or "majority"

    def settings(self, seed: int) -> dict:
        """The hyper-parameters, as recorded in baseline.json."""
        out: dict = {}
        if self.features == "char":
            out["tfidf"] = {"analyzer": "char", "ngram_range": [1, 2], "sublinear_tf": True}
        elif self.features == "word":
            out["tfidf"] = {"tokenizer": "jieba", "ngram_range": [1, 1], "sublinear_tf": True}
        if self.classifier == "lr":
            out["clf"] = {"C": 10.0, "solver": "saga", "max_iter": 1000, "random_state": seed}
        elif self.classifier == "svm":
            out["clf"] = {"C": 1.0}
        elif self.classifier == "nb":
            out["clf"] = {"alpha": 0.1}
        else:
            out["clf"] = {"strategy": "most_frequent"}
        return out


def spec(name: str) -> BaselineSpec:
    """The :class:`BaselineSpec` for a name such as ``char_svm`` or ``majority``."""
    if name == "majority":
        return BaselineSpec(name, None, "majority")
    feat, _, clf = name.partition("_")
    if feat not in FEATURES or clf not in CLASSIFIERS:
        raise UserError(f"unknown baseline '{name}'; choose from {', '.join(BASELINE_NAMES)}")
    return BaselineSpec(name, feat, clf)


def build_pipeline(s: BaselineSpec, seed: int = 42, pairs: bool = False, label_sets: bool = False) -> Any:
    """An unfitted scikit-learn estimator that takes raw texts (``pairs``: sentence-pair texts,
    featurized by :class:`~cls_app.baselines.pairs.PairFeatures`; ``label_sets``: one binary
    classifier per label, scikit-learn's ``OneVsRestClassifier``)."""
    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import MultinomialNB
    from sklearn.pipeline import Pipeline
    from sklearn.svm import LinearSVC

    if s.classifier == "majority":
        if label_sets:
            raise UserError(f"baseline 'majority' has no multi-label version; choose from "
                            f"{', '.join(LABEL_SET_BASELINES)}")
        return DummyClassifier(strategy="most_frequent")
    from .tfidf import CompactTfidfVectorizer

    if s.features == "char":
        vec = CompactTfidfVectorizer(analyzer="char", ngram_range=(1, 2), sublinear_tf=True)
    else:
        vec = CompactTfidfVectorizer(tokenizer=jieba_tokens, token_pattern=None, sublinear_tf=True)
    if pairs:
        from .pairs import PairFeatures

        vec = PairFeatures(vec)
    cfg = s.settings(seed)["clf"]
    clf = {"lr": LogisticRegression, "svm": LinearSVC, "nb": MultinomialNB}[s.classifier](**cfg)
    if label_sets:
        from sklearn.multiclass import OneVsRestClassifier

        clf = OneVsRestClassifier(clf)
    return Pipeline([("tfidf", vec), ("clf", clf)])


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


def fit_estimator(name: str, texts: Sequence[str], y: np.ndarray, seed: int = 42, pairs: bool = False
                  ) -> tuple[Any, float]:
    """Fit the baseline ``name`` on ``texts`` and targets ``y`` (class ids, or a 0/1 matrix for label
    sets); return the estimator and the seconds it took (jieba's dictionary load not counted)."""
    s = spec(name)
    label_sets = np.asarray(y).ndim == 2
    est = build_pipeline(s, seed, pairs=pairs, label_sets=label_sets)
    if s.features == "word":
        init_jieba()
    t0 = time.perf_counter()
    est.fit(list(texts), np.asarray(y).astype(np.int64))
    return est, time.perf_counter() - t0


def baseline_meta(name: str, labels: list[str], seed: int, rows: int, seconds: float) -> dict:
    """``baseline.json`` of a fitted baseline (the task's fields and scores are added by the caller)."""
    s = spec(name)
    return {
        "kind": KIND, "format_version": FORMAT_VERSION, "app_version": __version__, "name": name,
        "features": FEATURES.get(s.features or "", "none"),
        "classifier": CLASSIFIERS.get(s.classifier, "majority class"),
        "labels": labels, "settings": s.settings(seed), "train_rows": rows, "train_seconds": round(seconds, 3),
    }
