"""A classical baseline folder behind the prediction interface (``labels``, ``kind``, ``path``,
``predict_proba``) that :mod:`cls_app.inference.predictor` describes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..io.records import as_text
from ..multilabel import LabelSetTask
from .multilabel import label_set_scores
from .pipelines import scores_as_proba
from .storage import load_baseline


class BaselinePredictor:
    """A classical baseline folder behind the ``Predictor`` interface.

    For LinearSVC the "probabilities" are a softmax of the decision function: the argmax is
    exactly LinearSVC's prediction, the values are not calibrated.
    """

    kind = "baseline"

    def __init__(self, path: str | Path) -> None:
        self.estimator, self.meta = load_baseline(path)
        self.labels = list(self.meta["labels"])
        self.path = Path(path)
        self.task = LabelSetTask.from_settings(self.meta)

    def predict_proba(self, texts: Sequence[str | None]) -> np.ndarray:
        """Class probabilities in input order; all-NaN rows for empty or missing texts."""
        values = [as_text(t) for t in texts]
        probs = np.full((len(values), len(self.labels)), np.nan)
        keep = [i for i, t in enumerate(values) if t is not None]
        if keep:
            texts = [values[i] for i in keep]
            if self.task.multi:
                probs[keep] = label_set_scores(self.estimator, texts)
            else:
                probs[keep] = scores_as_proba(self.estimator, texts, len(self.labels))
        return probs
