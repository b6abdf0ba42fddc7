"""One prediction interface for every kind of model folder.

``load_predictor(path)`` looks at the folder and returns a :class:`Predictor`:

* a BERT folder (``config.json`` + ``vocab.txt`` + ``model.safetensors``, see :mod:`cls_app.modeling.folder`)
  gives a :class:`~cls_app.inference.classifier.Classifier` (char tokenizer -> BertClassifier logits ->
  softmax, long texts truncated or chunked as in training, fast fused inference);
* a baseline folder (``baseline.json`` + ``model.skops``, see :mod:`cls_app.baselines.storage`) gives a
  :class:`~cls_app.baselines.BaselinePredictor` (the scikit-learn pipeline on raw texts);
* an ensemble folder (``ensemble.json``, see :mod:`cls_app.inference.ensemble`) gives an
  :class:`~cls_app.inference.ensemble.EnsemblePredictor` over its member folders.

A folder that holds a ``best.json`` (written by ``train --with-baselines``: the recommended model,
a path relative to the folder) is followed to that model when ``follow_best`` is true (``predict``
and ``evaluate``; ``--no-follow`` turns it off); ``compare`` and ensemble members never follow it.

Every predictor has ``labels`` (class names; column ``j`` of the probabilities is
``labels[j]``), ``kind`` (``"bert"``, ``"baseline"`` or ``"ensemble"``), ``path``, and
``predict_proba(texts) -> np.ndarray`` of shape ``(len(texts), len(labels))``, rows in
input order (all-NaN rows for empty or missing texts). Callers (evaluate, compare, predict)
use nothing else.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from ..baselines import META_FILE, MODEL_FILE, BaselinePredictor, is_baseline_dir
from ..errors import UserError
from .defaults import DEFAULT_CHUNK_ROWS, EVAL_BATCH_SIZE
from .ensemble import EnsemblePredictor, is_ensemble_dir, member_paths, read_ensemble

log = logging.getLogger(__name__)

BEST_FILE = "best.json"  # in a training output folder: the recommended model, {"path": relative folder, ...}


class Predictor(Protocol):
    """What ``evaluate``, ``compare`` and ``predict`` need from a model."""

    labels: list[str]
    kind: str
    path: Path

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities, shape ``(len(texts), len(labels))``, in input order."""
        ...



def folder_kind(path: str | Path) -> str | None:
    """``"baseline"``, ``"bert"``, ``"ensemble"`` or None when ``path`` is no model folder."""
    path = Path(path)
    if is_baseline_dir(path):
        return "baseline"
    if is_ensemble_dir(path):
        return "ensemble"
    if (path / "config.json").is_file():
        return "bert"
    return None


def follow_best(path: str | Path) -> Path:
    """The folder ``path/best.json`` recommends, or ``path`` when it holds none; logged when followed."""
    path = Path(path)
    pointer = path / BEST_FILE
    if not pointer.is_file():
        return path
    try:
        rel = json.loads(pointer.read_text(encoding="utf-8"))["path"]
        if not isinstance(rel, str):
            raise TypeError
    except (OSError, ValueError, KeyError, TypeError):
        raise UserError(f"{pointer} is not a model pointer ({{\"path\": FOLDER}}); delete it, or pass --no-follow "
                        f"to use {path} itself") from None
    target = Path(os.path.normpath(path / rel))
    if folder_kind(target) is None:
        raise UserError(f"{pointer} points to {target}, which is not a model folder; rerun `train --with-baselines` "
                        f"or pass --no-follow to use {path} itself")
    if target != Path(os.path.normpath(path)):
        log.info("%s recommends %s (%s); --no-follow uses %s itself", pointer, target, folder_kind(target), path)
    return target


def load_predictor(
    path: str | Path,
    batch_size: int = EVAL_BATCH_SIZE,
    progress: bool = False,
    *,
    quantize: bool = False,
    threads: int | None = None,
    window: int | None = None,
    long_text: dict | None = None,
    follow: bool = False,
) -> Predictor:
    """Load any model folder this app writes; a :class:`UserError` when it is none.

    ``quantize``, ``threads``, ``window`` and ``long_text`` (overrides of the folder's long-text
    settings) apply to BERT folders (see ``Classifier.load``), also inside an ensemble. With
    ``follow``, a folder holding ``best.json`` is replaced by the model it recommends.
    """
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"model folder not found: {path}")
    if follow:
        path = follow_best(path)
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
    if kind == "ensemble":
        def member(folder: Path) -> Predictor:
            bert = folder_kind(folder) == "bert"
            return load_predictor(folder, batch_size, progress, quantize=quantize and bert, threads=threads,
                                  window=window, long_text=long_text if bert else None)

        return EnsemblePredictor(path, member)
    raise UserError(
        f"{path} is not a model folder (no config.json for BERT, no baseline.json for a baseline, "
        "no ensemble.json for an ensemble)"
    )


def model_files(path: str | Path) -> list[Path]:
    """The files a model folder needs for prediction (reports and logs excluded); for an ensemble,
    ``ensemble.json`` and its members' files."""
    from ..modeling.folder import MODEL_FILES

    path = Path(path)
    kind = folder_kind(path)
    if kind == "ensemble":
        members = [f for m in member_paths(path, read_ensemble(path)) for f in model_files(m)]
        return [path / "ensemble.json", *members]
    names = (META_FILE, MODEL_FILE) if kind == "baseline" else MODEL_FILES
    return [path / n for n in names if (path / n).is_file()]


def model_size_bytes(path: str | Path) -> int:
    """Bytes on disk of the files needed for prediction."""
    return sum(p.stat().st_size for p in model_files(path))


def train_seconds(path: str | Path) -> float | None:
    """Training time recorded in the folder (baseline.json or BERT's metrics.json), if any; for an
    ensemble, its members' summed (None when one is unknown) plus the fitting."""
    path = Path(path)
    kind = folder_kind(path)
    if kind == "ensemble":
        meta = read_ensemble(path)
        parts = [train_seconds(m) for m in member_paths(path, meta)]
        fit = meta.get("fit", {}).get("seconds", 0.0)
        return None if None in parts else float(sum(parts)) + float(fit or 0.0)
    source = path / ("baseline.json" if kind == "baseline" else "metrics.json")
    try:
        value = json.loads(source.read_text(encoding="utf-8")).get("train_seconds")
    except (OSError, ValueError, AttributeError):
        return None
    return float(value) if isinstance(value, int | float) else None
