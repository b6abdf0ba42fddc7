"""Multi-label and hierarchical baselines: one-vs-rest TF-IDF + LogisticRegression / LinearSVC / NB.

One binary classifier per label over the same TF-IDF features as the single-label baselines
(:func:`~cls_app.baselines.pipelines.build_pipeline`, its last step wrapped in scikit-learn's
``OneVsRestClassifier``). Scores per label are ``predict_proba`` (LR, NB) or the sigmoid of
LinearSVC's decision function (not calibrated). Thresholds are tuned on dev exactly as for BERT
(:func:`cls_app.multilabel.tune_thresholds`) and stored in ``baseline.json`` with the task; the
majority floor has no label-set version.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..io.labels import LabelSetData, indicator_matrix
from ..multilabel import LabelSetTask, sigmoid, tune_thresholds
from ..version import __version__
from .pipelines import BASELINE_NAMES, CLASSIFIERS, FEATURES, build_pipeline, spec
from .storage import FORMAT_VERSION, KIND, init_jieba, save_baseline

log = logging.getLogger(__name__)

LABEL_SET_BASELINES = tuple(n for n in BASELINE_NAMES if n != "majority")


def build_label_set_pipeline(name: str, seed: int = 42, pairs: bool = False):
    """TF-IDF + one binary classifier per label."""
    from sklearn.multiclass import OneVsRestClassifier

    if name not in LABEL_SET_BASELINES:
        raise UserError(f"baseline '{name}' has no multi-label version; choose from {', '.join(LABEL_SET_BASELINES)}")
    pipe = build_pipeline(spec(name), seed, pairs)
    step, clf = pipe.steps[-1]
    pipe.steps[-1] = (step, OneVsRestClassifier(clf))
    return pipe


def label_set_scores(estimator, texts: list[str]) -> np.ndarray:
    """Per-label scores in [0, 1], shape ``(len(texts), labels)``."""
    if hasattr(estimator, "predict_proba"):
        return np.asarray(estimator.predict_proba(texts), dtype=np.float64)
    return sigmoid(np.asarray(estimator.decision_function(texts), dtype=np.float64))


def train_label_set_baseline(name: str, train: LabelSetData, labels: list[str], out_dir: str | Path,
                             task: LabelSetTask, dev: LabelSetData, test: LabelSetData | None = None,
                             seed: int = 42, text_pair_col: str | None = None) -> dict:
    """Fit one one-vs-rest baseline, tune its thresholds on ``dev``; write its folder; return its metadata."""
    s = spec(name)
    est = build_label_set_pipeline(name, seed, bool(text_pair_col))
    if s.features == "word":
        init_jieba()
    y = indicator_matrix(train, labels).astype(np.int64)
    t0 = time.perf_counter()
    est.fit(train.texts, y)
    seconds = time.perf_counter() - t0
    dev_y = indicator_matrix(dev, labels)
    thresholds = tune_thresholds(label_set_scores(est, dev.texts), dev_y)
    tuned = LabelSetTask(task.task, task.label_sep, task.path_sep, thresholds)
    meta: dict = {
        "kind": KIND, "format_version": FORMAT_VERSION, "app_version": __version__, "name": name,
        "features": FEATURES.get(s.features or "", "none"),
        "classifier": f"one-vs-rest {CLASSIFIERS.get(s.classifier, '')}",
        "labels": labels, "settings": s.settings(seed), "train_rows": len(train), "train_seconds": round(seconds, 3),
        "task": task.task, "label_sep": task.label_sep, "path_sep": task.path_sep, "thresholds": thresholds,
    }
    if text_pair_col:
        meta["text_pair_col"] = text_pair_col
    for split, data in (("dev", dev), ("test", test)):
        if data is not None and len(data):
            m = tuned.metrics(indicator_matrix(data, labels), label_set_scores(est, data.texts), labels)
            meta[split] = {k: m[k] for k in ("n", "accuracy", "micro_f1", "macro_f1", "samples_f1",
                                             "subset_accuracy", "hamming_loss")}
    save_baseline(est, meta, out_dir)
    log.info("%s (one-vs-rest): trained in %.1fs%s", name, seconds,
             f", test micro-F1 {meta['test']['micro_f1']:.4f}" if "test" in meta else "")
    return meta


def run_label_set_baselines(data_opts, out_root: str | Path, names: list[str] | None, seed: int) -> list[dict]:
    """The label-set version of :func:`~cls_app.baselines.pipelines.run_baselines` (same split as ``train``)."""
    from tqdm.auto import tqdm

    from ..io.labels import label_vocabulary, load_label_set_splits

    names = list(names or LABEL_SET_BASELINES)
    for name in names:
        if name not in LABEL_SET_BASELINES:
            raise UserError(f"baseline '{name}' has no {data_opts.task} version; choose from "
                            f"{', '.join(LABEL_SET_BASELINES)}")
    train, dev, test = load_label_set_splits(data_opts, seed)
    labels = label_vocabulary(train)
    for part in (dev, test):
        if part is not None:
            indicator_matrix(part, labels)  # a label train never saw is a user error
    task = LabelSetTask(data_opts.task, data_opts.label_sep, data_opts.path_sep)
    log.info("%s baselines on %d train, %d dev, %s test rows; %d labels", data_opts.task, len(train), len(dev),
             len(test) if test is not None else "no", len(labels))
    return [train_label_set_baseline(name, train, labels, Path(out_root) / name, task, dev, test, seed,
                                     data_opts.text_pair_col)
            for name in tqdm(names, desc="baselines", unit="model", leave=False)]
