"""The Python API: classify texts with a saved BERT model, fast, on CPU.

>>> from cls_app import Classifier
>>> clf = Classifier.load("saved_models/default")
>>> clf.predict(["这个手机很好用", "太差了"])            # doctest: +SKIP
[Prediction(label='positive', prob=0.97, top=(('positive', 0.97),)), ...]

Speed: texts are encoded, sorted by length within each chunk and batched with their
neighbours in length (little padding), run under ``torch.inference_mode`` through
:mod:`cls_app.modeling.fast` (fused QKV, last layer for [CLS] only), and scattered back to their
input order. ``quantize=True`` adds dynamic int8 quantization (:mod:`cls_app.modeling.quantize`).

Files of any size: :mod:`cls_app.inference.files`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from tqdm.auto import tqdm

from ..errors import UserError
from ..io.pairs import PAIR_SEP
from ..io.records import as_text
from ..modeling.fast import fast_classifier
from ..modeling.folder import load_folder_meta, load_model_dir
from ..multilabel import LabelSetTask, sigmoid
from ..runtime.device import configure_threads
from ..runtime.engine import predict_text_logits, softmax
from ..text.long_text import LongTextOptions
from ..text.tokenizer import CharTokenizer
from .defaults import BACKENDS, DEFAULT_BATCH_SIZE, DEFAULT_CHUNK_ROWS
from .multilabel import LabelSetPrediction, label_set_predictions

log = logging.getLogger(__name__)



class Prediction(NamedTuple):
    """One text's prediction; all None / empty for an empty or missing text."""

    label: str | None
    prob: float | None
    top: tuple[tuple[str, float], ...] = ()


class Classifier:
    """A saved BERT model ready to classify texts (see the module docstring)."""

    kind = "bert"

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer: CharTokenizer,
        labels: list[str],
        max_len: int = 128,
        batch_size: int = DEFAULT_BATCH_SIZE,
        path: Path | None = None,
        quantized: bool = False,
        window: int = DEFAULT_CHUNK_ROWS,
        long_text: LongTextOptions | None = None,
        progress: bool = False,
        task: LabelSetTask | None = None,
    ) -> None:
        if batch_size < 1:
            raise UserError(f"--batch-size must be at least 1, got {batch_size}")
        if window < 1:
            raise UserError(f"--chunk-size must be at least 1, got {window}")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.labels = list(labels)
        self.max_len = max_len
        self.batch_size = batch_size
        self.path = path
        self.quantized = quantized
        self.window = window
        # the folder's truncation / chunking settings: predict sees texts as training did
        self.long_text = (long_text or LongTextOptions()).resolved(max_len)
        self.progress = progress
        self.backend = "torch"
        # multi-label / hierarchical folders: sigmoid probabilities and stored thresholds
        self.task = task or LabelSetTask()
        # trained on sentence pairs: takes (text, text_b) items (config.text_pairs, see modeling.bert)
        self.pairs = bool(getattr(getattr(model, "config", None), "text_pairs", False))

    @classmethod
    def load(
        cls,
        path: str | os.PathLike,
        *,
        quantize: bool = False,
        threads: int | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        window: int = DEFAULT_CHUNK_ROWS,
        fast: bool = True,
        progress: bool = False,
        long_text: dict | None = None,
        backend: str = "torch",
    ) -> Classifier:
        """Load a model folder written by ``run.py train``.

        Args:
            path: the model folder (config.json, vocab.txt, model.safetensors).
            quantize: run the encoder's linear layers in int8 (faster on CPU, labels agree with
                the float model on >= 99% of THUCNews test texts; see ``bench/predict_speed.py``).
            threads: torch CPU threads (process-wide); None: the usable cores split among the
                local processes (:func:`cls_app.runtime.device.configure_threads`, the same policy as
                training).
            batch_size: texts per forward pass.
            window: texts are sorted by length within consecutive windows of this many
                inputs (rows 0..window-1, then the next window, ...), whoever calls; so a
                file predicted chunk by chunk gives exactly the same numbers as one call with
                every text (BLAS results depend on batch shapes in the last float bits).
            fast: use the fused inference module (:mod:`cls_app.modeling.fast`); False runs the
                Hugging Face model as trained (same results, slower).
            progress: show a progress bar in :meth:`predict_proba`.
            long_text: overrides of the folder's long-text settings (keys of
                :class:`~cls_app.text.long_text.LongTextOptions`, e.g. ``{"truncation": "tail"}``).
            backend: ``torch``, or ``onnx``: run the folder's ``model.onnx`` (with ``quantize``:
                ``model.int8.onnx``) written by ``run.py export`` in ONNX Runtime, with ``threads``
                intra-op threads; tokenization, batching and long-text handling are the same code.
        """
        if backend not in BACKENDS:
            raise UserError(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        n = configure_threads(threads)
        if backend == "onnx":
            from .onnx_runtime import OnnxLogits, onnx_path

            loaded = load_folder_meta(path)
            model = OnnxLogits(onnx_path(path, quantize), threads=n)
        else:
            loaded = load_model_dir(path)
            model = fast_classifier(loaded.model) if fast else loaded.model
            if quantize:
                from ..modeling.quantize import quantize_linear_int8

                model = quantize_linear_int8(model)
        options = LongTextOptions.from_settings(loaded.settings)
        if long_text:
            options = replace(options, **long_text)
        clf = cls(model, loaded.tokenizer, loaded.labels, loaded.max_len, batch_size, loaded.path, quantize,
                  window, options, progress, LabelSetTask.from_settings(loaded.settings))
        clf.backend = backend
        if backend == "onnx":  # no config to read: a pair model's folder names its second column
            clf.pairs = bool(loaded.settings.get("text_pair_col"))
        return clf

    def __repr__(self) -> str:
        return (f"Classifier({str(self.path)!r}, labels={self.labels}, max_len={self.max_len}, "
                f"quantized={self.quantized}, backend={self.backend!r})")

    def predict_proba(self, texts: Iterable[Any]) -> np.ndarray:
        """Class probabilities, shape ``(n, len(labels))``, in input order.

        Rows of empty or missing texts (None, NaN, "", whitespace) are all NaN.
        """
        if isinstance(texts, str):
            raise TypeError("texts must be a list of strings, not a single string: predict_proba([text])")
        values = [as_text(t) for t in texts]
        self._check_pairs(values)
        probs = np.full((len(values), len(self.labels)), np.nan, dtype=np.float32)
        starts = range(0, len(values), self.window)
        for start in tqdm(starts, desc="predict", unit="window", disable=not self.progress or len(starts) < 2,
                          leave=False):
            probs[start : start + self.window] = self._window_proba(values[start : start + self.window])
        return probs

    def _check_pairs(self, values: list[str | None]) -> None:
        given = [v is not None and PAIR_SEP in v for v in values]
        if not self.pairs and any(given):
            raise UserError(f"{self.path or 'this model'} classifies single texts, not (text, text_b) pairs")
        if self.pairs and not all(g for g, v in zip(given, values, strict=True) if v is not None):
            raise UserError(f"{self.path or 'this model'} classifies sentence pairs: give (text, text_b) items")

    def _window_proba(self, values: list[str | None]) -> np.ndarray:
        """Probabilities for one window of texts: length-sorted batches, input order restored."""
        probs = np.full((len(values), len(self.labels)), np.nan, dtype=np.float32)
        keep = [i for i, t in enumerate(values) if t is not None]
        if keep:
            logits = predict_text_logits(
                self.model, self.tokenizer, [values[i] for i in keep], self.max_len, self.long_text,
                self.batch_size,
            )
            probs[keep] = sigmoid(logits) if self.task.multi else softmax(logits)
        return probs

    def predict(self, texts: Iterable[Any], top_k: int = 1) -> list[Prediction] | list[LabelSetPrediction]:
        """The most likely label and its probability for each text, plus the ``top_k`` best.

        A multi-label or hierarchical model returns a :class:`LabelSetPrediction` per text: the
        labels above their thresholds and every label's probability (``top_k`` > 1: the best K).
        """
        probs = self.predict_proba(texts)
        if self.task.multi:
            return label_set_predictions(probs, self.labels, self.task, top_k if top_k > 1 else None)
        return predictions_from_probs(probs, self.labels, top_k)


def check_top_k(top_k: int, labels: Sequence[str]) -> int:
    if top_k < 1:
        raise UserError(f"--top-k must be at least 1, got {top_k}")
    if top_k > len(labels):
        log.warning("--top-k %d is more than the %d classes; using %d", top_k, len(labels), len(labels))
        top_k = len(labels)
    return top_k


def top_classes(probs: np.ndarray, top_k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and probabilities of the ``top_k`` classes per row, best first (NaN rows: -1)."""
    filled = np.nan_to_num(probs, nan=-1.0)
    order = np.argsort(-filled, axis=1, kind="stable")[:, :top_k]
    return order, np.take_along_axis(filled, order, axis=1)


def predictions_from_probs(probs: np.ndarray, labels: Sequence[str], top_k: int = 1) -> list[Prediction]:
    """Turn a probability matrix (NaN rows = empty text) into :class:`Prediction` tuples."""
    top_k = check_top_k(top_k, labels)
    order, best = top_classes(probs, top_k)
    out = []
    for row in range(len(probs)):
        if best[row, 0] < 0:
            out.append(Prediction(None, None, ()))
            continue
        top = tuple((labels[j], float(p)) for j, p in zip(order[row], best[row], strict=True))
        out.append(Prediction(top[0][0], top[0][1], top))
    return out
