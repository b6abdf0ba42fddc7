"""The ``majority`` kind: always the most frequent training class, the floor every model has to beat.

It is compared with the other models (a dashed line on the comparison chart) but never recommended
nor put into an ensemble (:attr:`~cls_app.models.base.TextClassifier.floor`). Its folder is a
``baseline`` folder holding scikit-learn's ``DummyClassifier``.
"""

from __future__ import annotations

from typing import Any

from ..tasks import Task
from .base import register
from .tfidf import BaselineClassifier


@register("majority")
class MajorityClassifier(BaselineClassifier):
    """The most frequent training class, whatever the text (no settings but ``seed``)."""

    cost = 0.0
    predict_cost = 0.0
    floor = True
    in_main_job = True
    ood_method = None  # no features to measure a distance in

    def estimator_for(self, task: Task, pairs: bool) -> Any:
        from sklearn.dummy import DummyClassifier

        return DummyClassifier(strategy="most_frequent")

    def describe_fit(self, task: Task) -> tuple[str, str, dict]:
        return "none", "majority class", {"clf": {"strategy": "most_frequent"}}

    @classmethod
    def fit_seconds_prior(cls, rows: int, chars: float) -> float:
        return 0.01
