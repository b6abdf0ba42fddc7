"""One prediction interface for every kind of model folder.

``load_predictor(path)`` looks at the folder and returns a :class:`Predictor`:

* a BERT folder (``config.json`` + ``vocab.txt`` + ``model.safetensors``, see :mod:`cls_app.modeling.folder`)
  gives a :class:`~cls_app.inference.classifier.Classifier` (char tokenizer -> BertClassifier logits ->
  softmax, long texts truncated or chunked as in training, fast fused inference);
* a baseline folder (``baseline.json`` + ``model.skops``, see :mod:`cls_app.baselines.storage`) gives a
  :class:`~cls_app.baselines.BaselinePredictor` (the scikit-learn pipeline on raw texts).

Every predictor has ``labels`` (class names; column ``j`` of the probabilities is
``labels[j]``), ``kind`` (``"bert"`` or ``"baseline"``), ``path``, and
``predict_proba(texts) -> np.ndarray`` of shape ``(len(texts), len(labels))``, rows in
input order (all-NaN rows for empty or missing texts). Callers (evaluate, compare, predict)
use nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from ..baselines import META_FILE, MODEL_FILE, BaselinePredictor, is_baseline_dir
from ..errors import UserError
from .defaults import DEFAULT_CHUNK_ROWS, EVAL_BATCH_SIZE


class Predictor(Protocol):
    """What ``evaluate``, ``compare`` and ``predict`` need from a model."""

    labels: list[str]
    kind: str
    path: Path

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities, shape ``(len(texts), len(labels))``, in input order."""
        ...



def folder_kind(path: str | Path) -> str | None:
    """``"baseline"``, ``"bert"`` or None when ``path`` is no model folder."""
    path = Path(path)
    if is_baseline_dir(path):
        return "baseline"
    if (path / "config.json").is_file():
        return "bert"
    return None


def load_predictor(
    path: str | Path,
    batch_size: int = EVAL_BATCH_SIZE,
    progress: bool = False,
    *,
    quantize: bool = False,
    threads: int | None = None,
    window: int | None = None,
    long_text: dict | None = None,
) -> Predictor:
    """Load any model folder this app writes; a :class:`UserError` when it is none.

    ``quantize``, ``threads``, ``window`` and ``long_text`` (overrides of the folder's long-text
    settings) apply to BERT folders (see ``Classifier.load``).
    """
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"model folder not found: {path}")
    kind = folder_kind(path)
    if kind == "baseline":
        if quantize:
            raise UserError(f"{path} is a classical baseline: --quantize applies to BERT models only")
        if long_text:
            raise UserError(f"{path} is a classical baseline: --truncation / --long-text options apply to BERT "
                            "models only")
        return BaselinePredictor(path)
    if kind == "bert":
        from .classifier import Classifier

        return Classifier.load(path, quantize=quantize, threads=threads, batch_size=batch_size,
                               window=window or DEFAULT_CHUNK_ROWS, progress=progress, long_text=long_text)
    raise UserError(
        f"{path} is not a model folder (no config.json for BERT, no baseline.json for a baseline)"
    )


def model_files(path: str | Path) -> list[Path]:
    """The files a model folder needs for prediction (reports and logs excluded)."""
    from ..modeling.folder import MODEL_FILES

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
