"""The TF-IDF baselines as :class:`~cls_app.models.base.TextClassifier` kinds: ``char_lr`` ... ``word_nb``
and the ``majority`` floor (:mod:`cls_app.baselines` builds and stores the scikit-learn pipelines).

For LinearSVC the "probabilities" are a softmax of the decision function (single-label) or a
sigmoid of it per label (label sets): the decisions are exactly LinearSVC's, the values are not
calibrated. Label-set baselines are one-vs-rest; their thresholds are tuned on dev as BERT's are.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..baselines.pipelines import (
    BASELINE_NAMES,
    LABEL_SET_BASELINES,
    baseline_meta,
    fit_estimator,
    label_set_scores,
    scores_as_proba,
)
from ..baselines.storage import load_baseline, save_baseline
from ..errors import UserError
from ..tasks import AbstainSettings, Task, task_from_settings
from .base import register
from .described import Described
from .options import InferenceOptions

log = logging.getLogger(__name__)


@register(*BASELINE_NAMES, family="baseline")
class TfidfClassifier(Described):
    """A TF-IDF + linear model (or the majority floor); settings: ``seed``."""

    family = "baseline"
    ood_method = "centroid"

    def __init__(self, kind: str | None = None, seed: int = 42, metric: str | None = None,
                 abstain: AbstainSettings | None = None, **settings: Any) -> None:
        super().__init__(kind)
        if settings:
            raise UserError(f"unknown setting(s) for a {kind} model: {', '.join(sorted(settings))} (it takes: seed, "
                            "metric, abstain)")
        self.seed, self.metric, self.abstain = seed, metric, abstain
        self.estimator: Any = None
        self.meta: dict = {}

    def fit_records(self, train: Any, dev: Any | None, task: Task, text_pair_col: str | None = None
                    ) -> TfidfClassifier:
        if task.multi and self.kind not in LABEL_SET_BASELINES:
            raise UserError(f"baseline {self.kind!r} has no {task.name} version; choose from "
                            f"{', '.join(LABEL_SET_BASELINES)}")
        labels = task.vocabulary(train)
        y = task.encode(train, labels)
        if dev is not None:
            task.encode(dev, labels)  # a label train never saw is a user error
        self.estimator, seconds = fit_estimator(self.kind, train.texts, y, self.seed, pairs=bool(text_pair_col))
        self.labels, self.task, self.pairs, self.text_pair_col = labels, task, bool(text_pair_col), text_pair_col
        self.meta = baseline_meta(self.kind, labels, self.seed, len(train), seconds)
        if dev is not None and len(dev):
            analysed = self.analyse(list(dev.texts))
            self.task = task.fitted(task.dev_metrics(task.encode(dev, labels), analysed[0], labels))  # label sets
            self.settle_on_dev(train, dev, analysed, self.metric, self.seed)  # calibration, offsets, abstention
        self.meta.update(self.task.folder_fields())
        if task.multi:
            self.meta["classifier"] = f"one-vs-rest {self.meta['classifier']}"
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
        """Probabilities and the TF-IDF rows they come from (one featurisation); the majority floor has none."""
        if not hasattr(self.estimator, "steps"):
            return self.scores(texts), None
        features = self.estimator.steps[0][1].transform(texts)
        clf = self.estimator[-1]
        probs = label_set_scores(clf, features) if self.task.multi else scores_as_proba(clf, features, len(self.labels))
        return probs, features

    def save(self, path: str | Path) -> Path:
        if self.estimator is None:
            raise UserError(f"this {self.kind} model is not fitted: nothing to save")
        save_baseline(self.estimator, self.meta, path)
        self.save_abstainer(Path(path))
        self.path = Path(path)
        return self.path

    def describe(self) -> dict:
        out = super().describe()
        out.update({k: v for k, v in self.meta.items() if isinstance(v, str | int | float | bool) and k not in out})
        return out

    @classmethod
    def from_folder(cls, path: Path, options: InferenceOptions) -> TfidfClassifier:
        """A baseline folder (:mod:`cls_app.baselines.storage`); BERT-only options are a user error."""
        if options.quantize:
            raise UserError(f"{path} is a classical baseline: --quantize applies to BERT models only")
        if options.long_text:
            raise UserError(f"{path} is a classical baseline: --truncation / --long-text options apply to BERT "
                            "models only")
        if options.backend != "torch":
            raise UserError(f"{path} is a classical baseline: --backend {options.backend} applies to BERT models only")
        estimator, meta = load_baseline(path)
        obj = cls.blank(str(meta.get("name") or "baseline"))
        obj.seed = int((meta.get("settings") or {}).get("clf", {}).get("random_state", 42) or 42)
        obj.estimator, obj.meta, obj.abstain = estimator, meta, None
        obj.labels = list(meta["labels"])
        obj.task = task_from_settings(meta)
        obj.path = path
        obj.text_pair_col = meta.get("text_pair_col") or None
        obj.pairs = bool(obj.text_pair_col)
        obj.options = options
        return obj
