"""One prediction interface for every kind of model folder.

``load_predictor(path)`` looks at the folder and returns a :class:`Predictor`:

* a BERT folder (``config.json`` + ``vocab.txt`` + ``model.safetensors``, see model_dir.py)
  gives a :class:`BertPredictor` (char tokenizer -> BertClassifier logits -> softmax);
* a baseline folder (``baseline.json`` + ``model.skops``, see baselines.py) gives a
  :class:`BaselinePredictor` (the scikit-learn pipeline on raw texts).

Every predictor has ``labels`` (class names; column ``j`` of the probabilities is
``labels[j]``), ``kind`` (``"bert"`` or ``"baseline"``), ``path``, and
``predict_proba(texts) -> np.ndarray`` of shape ``(len(texts), len(labels))``, rows in
input order. Callers (evaluate, compare, predict) use nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from .errors import UserError


class Predictor(Protocol):
    """What ``evaluate``, ``compare`` and ``predict`` need from a model."""

    labels: list[str]
    kind: str
    path: Path

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities, shape ``(len(texts), len(labels))``, in input order."""
        ...


class BertPredictor:
    """A BERT model folder behind the :class:`Predictor` interface."""

    kind = "bert"

    def __init__(self, path: str | Path, batch_size: int = 128, progress: bool = False) -> None:
        from .model_dir import load_model_dir

        self.loaded = load_model_dir(path)
        self.labels = self.loaded.labels
        self.path = Path(path)
        self.batch_size = batch_size
        self.progress = progress

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        from .inference import predict_logits, softmax

        tok = self.loaded.tokenizer
        ids = tok.encode_batch(list(texts), self.loaded.max_len)
        logits = predict_logits(self.loaded.model, ids, tok.pad_id, self.batch_size, progress=self.progress)
        return softmax(logits.astype(np.float64))


class BaselinePredictor:
    """A classical baseline folder behind the :class:`Predictor` interface.

    For LinearSVC the "probabilities" are a softmax of the decision function: the argmax is
    exactly LinearSVC's prediction, the values are not calibrated.
    """

    kind = "baseline"

    def __init__(self, path: str | Path) -> None:
        from .baselines import load_baseline

        self.estimator, self.meta = load_baseline(path)
        self.labels = list(self.meta["labels"])
        self.path = Path(path)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        from .baselines import scores_as_proba

        return scores_as_proba(self.estimator, list(texts), len(self.labels))


def folder_kind(path: str | Path) -> str | None:
    """``"baseline"``, ``"bert"`` or None when ``path`` is no model folder."""
    from .baselines import is_baseline_dir

    path = Path(path)
    if is_baseline_dir(path):
        return "baseline"
    if (path / "config.json").is_file():
        return "bert"
    return None


def load_predictor(path: str | Path, batch_size: int = 128, progress: bool = False) -> Predictor:
    """Load any model folder this app writes; a :class:`UserError` when it is none."""
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"model folder not found: {path}")
    kind = folder_kind(path)
    if kind == "baseline":
        return BaselinePredictor(path)
    if kind == "bert":
        return BertPredictor(path, batch_size=batch_size, progress=progress)
    raise UserError(
        f"{path} is not a model folder (no config.json for BERT, no baseline.json for a baseline)"
    )


def model_files(path: str | Path) -> list[Path]:
    """The files a model folder needs for prediction (reports and logs excluded)."""
    from .baselines import META_FILE, MODEL_FILE
    from .model_dir import MODEL_FILES

    path = Path(path)
    names = (META_FILE, MODEL_FILE) if folder_kind(path) == "baseline" else MODEL_FILES
    return [path / n for n in names if (path / n).is_file()]


def model_size_bytes(path: str | Path) -> int:
    """Bytes on disk of the files needed for prediction."""
    return sum(p.stat().st_size for p in model_files(path))


def train_seconds(path: str | Path) -> float | None:
    """Training time recorded in the folder (baseline.json or BERT's metrics.json), if any."""
    import json

    path = Path(path)
    source = path / ("baseline.json" if folder_kind(path) == "baseline" else "metrics.json")
    try:
        value = json.loads(source.read_text(encoding="utf-8")).get("train_seconds")
    except (OSError, ValueError, AttributeError):
        return None
    return float(value) if isinstance(value, int | float) else None
