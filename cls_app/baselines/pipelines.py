"""Classical baselines: TF-IDF + linear models, and the majority-class floor BERT has to beat.

Features are TF-IDF over character 1-2 grams (``char_*``) or over **jieba** words (``word_*``);
classifiers are LogisticRegression (``*_lr``), LinearSVC (``*_svm``) and MultinomialNB
(``*_nb``); ``majority`` always predicts the most frequent training class.

Each baseline is saved in its own folder (see :mod:`.storage`): ``baseline.json`` and
``model.skops``.

Default settings were chosen on a stratified 20 % hold-out of the THUCNews dev.txt, never on
test.txt: ``sublinear_tf``, LogisticRegression ``C=10`` (saga solver), MultinomialNB
``alpha=0.1``, LinearSVC ``C=1``.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import UserError
from ..version import __version__
from .storage import FORMAT_VERSION, KIND, META_FILE, init_jieba, save_baseline

if TYPE_CHECKING:
    from ..io.records import LabeledData

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


def jieba_tokens(text: str) -> list[str]:
    """Split ``text`` into jieba words (precise mode).

    Whitespace runs stay tokens: in THUCNews headlines a space separates parts of a headline
    in some sections more than others, and keeping it scored about one point higher on the
    dev hold-out. Module-level (not a lambda) so a saved pipeline refers to it by name and
    skops can be told to trust exactly this function.
    """
    import jieba

    return jieba.lcut(text)


# Saved pipelines name this function by module and name; it keeps the name it had before the
# package was split (``cls_app.baselines.jieba_tokens``, exported by the package) so every
# model.skops, old or new, refers to it the same way.
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


def build_pipeline(s: BaselineSpec, seed: int = 42, pairs: bool = False):
    """An unfitted scikit-learn estimator that takes raw texts (``pairs``: sentence-pair texts,
    featurized by :class:`~cls_app.baselines.pairs.PairFeatures`)."""
    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import MultinomialNB
    from sklearn.pipeline import Pipeline
    from sklearn.svm import LinearSVC

    if s.classifier == "majority":
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
    return Pipeline([("tfidf", vec), ("clf", clf)])


def scores_as_proba(estimator, texts: list[str], n_labels: int) -> np.ndarray:
    """Class probabilities, shape ``(len(texts), n_labels)``, columns in label-id order.

    LinearSVC has no ``predict_proba``: its ``decision_function`` is passed through a
    softmax, which keeps the argmax (so the accuracy is exactly LinearSVC's) but the values
    are not calibrated probabilities.
    """
    out = np.zeros((len(texts), n_labels), dtype=np.float64)
    if not texts:
        return out
    if hasattr(estimator, "predict_proba"):
        proba = estimator.predict_proba(texts)
    else:
        scores = np.asarray(estimator.decision_function(texts), dtype=np.float64)
        if scores.ndim == 1:  # binary: score > 0 means classes_[1]
            scores = np.column_stack([np.zeros_like(scores), scores])
        z = np.exp(scores - scores.max(axis=1, keepdims=True))
        proba = z / z.sum(axis=1, keepdims=True)
    out[:, np.asarray(estimator.classes_, dtype=int)] = proba
    return out


def train_baseline(
    name: str,
    train: LabeledData,
    labels: list[str],
    out_dir: str | Path,
    dev: LabeledData | None = None,
    test: LabeledData | None = None,
    seed: int = 42,
    text_pair_col: str | None = None,
) -> dict:
    """Fit one baseline on ``train``; write its folder; return the metadata written."""
    from ..metrics import compute_metrics

    s = spec(name)
    label2id = {n: i for i, n in enumerate(labels)}
    y = np.array([label2id[n] for n in train.labels])
    est = build_pipeline(s, seed, pairs=bool(text_pair_col))
    if s.features == "word":
        init_jieba()
    t0 = time.perf_counter()
    est.fit(train.texts, y)
    seconds = time.perf_counter() - t0
    meta: dict = {
        "kind": KIND,
        "format_version": FORMAT_VERSION,
        "app_version": __version__,
        "name": name,
        "features": FEATURES.get(s.features or "", "none"),
        "classifier": CLASSIFIERS.get(s.classifier, "majority class"),
        "labels": labels,
        "settings": s.settings(seed),
        "train_rows": len(train),
        "train_seconds": round(seconds, 3),
    }
    if text_pair_col:
        meta["text_pair_col"] = text_pair_col
        meta["features"] += " of A, of B, |a-b| and a*b (sentence pairs)"
    for split, data in (("dev", dev), ("test", test)):
        if data is not None and len(data):
            pred = scores_as_proba(est, data.texts, len(labels)).argmax(axis=1)
            m = compute_metrics([label2id[n] for n in data.labels], pred, labels)
            meta[split] = {k: m[k] for k in ("n", "accuracy", "macro_f1", "weighted_f1")}
    save_baseline(est, meta, out_dir)
    log.info("%s: trained in %.1fs%s", name, seconds,
             f", test accuracy {meta['test']['accuracy']:.4f}" if "test" in meta else "")
    return meta


def train_baselines(
    train: LabeledData,
    labels: list[str],
    out_root: str | Path,
    names: list[str] | None = None,
    dev: LabeledData | None = None,
    test: LabeledData | None = None,
    seed: int = 42,
    text_pair_col: str | None = None,
) -> list[Path]:
    """Train each named baseline (default: all) into ``out_root/NAME``; return the folders."""
    from tqdm.auto import tqdm

    names = list(names or BASELINE_NAMES)
    for name in names:
        spec(name)  # fail on an unknown name before any training
    out_root = Path(out_root)
    folders = []
    for name in tqdm(names, desc="baselines", unit="model", leave=False):
        train_baseline(name, train, labels, out_root / name, dev=dev, test=test, seed=seed,
                       text_pair_col=text_pair_col)
        folders.append(out_root / name)
    return folders


def run_baselines(data_opts, out_root: str | Path, names: list[str] | None = None, seed: int = 42) -> list[dict]:
    """Read the split exactly as ``train`` does (same files, same held-out dev for a seed), then
    train the baselines into ``out_root``; return each baseline's metadata."""
    from ..io.records import label_ids, label_list, load_splits

    if data_opts.task != "single-label":
        raise UserError(f"--task {data_opts.task}: train the baselines with run_label_set_baselines")
    train, dev, test = load_splits(data_opts, seed)
    labels = label_list(train)
    label2id = {n: i for i, n in enumerate(labels)}
    for part in (dev, test):
        if part is not None:
            label_ids(part, label2id)  # a label train never saw is a user error
    log.info("baselines on %d train, %d dev, %s test rows; %d classes", len(train), len(dev),
             len(test) if test is not None else "no", len(labels))
    folders = train_baselines(train, labels, out_root, names=names, dev=dev, test=test, seed=seed,
                              text_pair_col=data_opts.text_pair_col)
    return [json.loads((f / META_FILE).read_text(encoding="utf-8")) for f in folders]
