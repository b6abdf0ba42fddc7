"""``run.py predict`` and the Python API: classify texts with a saved model, fast, on CPU.

>>> from cls_app import Classifier
>>> clf = Classifier.load("saved_models/default")
>>> clf.predict(["这个手机很好用", "太差了"])            # doctest: +SKIP
[Prediction(label='positive', prob=0.97, top=(('positive', 0.97),)), ...]

Speed: texts are encoded, sorted by length within each chunk and batched with their
neighbours in length (little padding), run under ``torch.inference_mode`` through
:mod:`cls_app.fast_model` (fused QKV, last layer for [CLS] only), and scattered back to their
input order. ``quantize=True`` adds dynamic int8 quantization (:mod:`cls_app.quantize`).

Files: :func:`predict_file` streams any size of input chunk by chunk (see
:mod:`cls_app.table_stream`) and keeps every input row, in order, with all its columns.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from tqdm.auto import tqdm

from .errors import UserError, where
from .fast_model import fast_classifier
from .inference import predict_text_logits, softmax
from .long_text import LongTextOptions
from .model_dir import load_model_dir
from .predictor import Predictor
from .table_stream import RowChunk, TableReader, TableWriter, output_format
from .tokenizer import CharTokenizer

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 64
DEFAULT_CHUNK_ROWS = 8192  # rows held in memory, and the window sorted by length, at a time
WARN_EMPTY_ROWS = 10  # empty rows named one by one; the rest are counted


class Prediction(NamedTuple):
    """One text's prediction; all None / empty for an empty or missing text."""

    label: str | None
    prob: float | None
    top: tuple[tuple[str, float], ...] = ()


def auto_threads() -> int:
    """Threads for torch that the machine can actually give us now.

    torch's default is one thread per core, which assumes an otherwise idle machine; on a
    shared one, OpenMP threads wait on each other at every operator whenever one of them is
    descheduled (measured here: 2 threads on 2 cores busy with other work ran the
    same predictions 6x slower than 1 thread). So: torch's default, less the cores other
    processes kept busy over the last minute (the load average), at least 1.
    """
    base = _TORCH_DEFAULT_THREADS
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # pragma: no cover - not on every platform
        return base
    return max(1, min(base, int(base - load + 0.5)))


_TORCH_DEFAULT_THREADS = torch.get_num_threads()


def set_threads(threads: int | None) -> int:
    """Use ``threads`` torch CPU threads (None: :func:`auto_threads`); returns the number used."""
    if threads is None:
        threads = auto_threads()
    elif threads < 1:
        raise UserError(f"--threads must be at least 1, got {threads}")
    if threads != torch.get_num_threads():
        torch.set_num_threads(threads)
    log.info("torch uses %d CPU thread(s)%s", threads,
             "" if threads == _TORCH_DEFAULT_THREADS else f" (of {_TORCH_DEFAULT_THREADS} by default)")
    return threads


def _as_text(value: Any) -> str | None:
    """The text to classify, or None when the value is missing/empty (None, NaN, blank)."""
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    text = value if isinstance(value, str) else str(value)
    return text if text.strip() else None


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
    ) -> Classifier:
        """Load a model folder written by ``run.py train``.

        Args:
            path: the model folder (config.json, vocab.txt, model.safetensors).
            quantize: run the encoder's linear layers in int8 (faster on CPU, labels agree with
                the float model on >= 99% of THUCNews test texts; see ``bench/predict_speed.py``).
            threads: torch CPU threads (process-wide); None: :func:`auto_threads` (torch's
                default of one per core, less the cores other processes are using).
            batch_size: texts per forward pass.
            window: texts are sorted by length within consecutive windows of this many
                inputs (rows 0..window-1, then the next window, ...), whoever calls; so a
                file predicted chunk by chunk gives exactly the same numbers as one call with
                every text (BLAS results depend on batch shapes in the last float bits).
            fast: use the fused inference module (:mod:`cls_app.fast_model`); False runs the
                Hugging Face model as trained (same results, slower).
            progress: show a progress bar in :meth:`predict_proba`.
        """
        set_threads(threads)
        loaded = load_model_dir(path)
        model = fast_classifier(loaded.model) if fast else loaded.model
        if quantize:
            from .quantize import quantize_linear_int8

            model = quantize_linear_int8(model)
        return cls(model, loaded.tokenizer, loaded.labels, loaded.max_len, batch_size, loaded.path, quantize,
                   window, LongTextOptions.from_settings(loaded.settings), progress)

    def __repr__(self) -> str:
        return (f"Classifier({str(self.path)!r}, labels={self.labels}, max_len={self.max_len}, "
                f"quantized={self.quantized})")

    def predict_proba(self, texts: Iterable[Any]) -> np.ndarray:
        """Class probabilities, shape ``(n, len(labels))``, in input order.

        Rows of empty or missing texts (None, NaN, "", whitespace) are all NaN.
        """
        if isinstance(texts, str):
            raise TypeError("texts must be a list of strings, not a single string: predict_proba([text])")
        values = [_as_text(t) for t in texts]
        probs = np.full((len(values), len(self.labels)), np.nan, dtype=np.float32)
        starts = range(0, len(values), self.window)
        for start in tqdm(starts, desc="predict", unit="window", disable=not self.progress or len(starts) < 2,
                          leave=False):
            probs[start : start + self.window] = self._window_proba(values[start : start + self.window])
        return probs

    def _window_proba(self, values: list[str | None]) -> np.ndarray:
        """Probabilities for one window of texts: length-sorted batches, input order restored."""
        probs = np.full((len(values), len(self.labels)), np.nan, dtype=np.float32)
        keep = [i for i, t in enumerate(values) if t is not None]
        if keep:
            logits = predict_text_logits(
                self.model, self.tokenizer, [values[i] for i in keep], self.max_len, self.long_text,
                self.batch_size,
            )
            probs[keep] = softmax(logits)
        return probs

    def predict(self, texts: Iterable[Any], top_k: int = 1) -> list[Prediction]:
        """The most likely label and its probability for each text, plus the ``top_k`` best."""
        probs = self.predict_proba(texts)
        return predictions_from_probs(probs, self.labels, top_k)


def _check_top_k(top_k: int, labels: Sequence[str]) -> int:
    if top_k < 1:
        raise UserError(f"--top-k must be at least 1, got {top_k}")
    if top_k > len(labels):
        log.warning("--top-k %d is more than the %d classes; using %d", top_k, len(labels), len(labels))
        top_k = len(labels)
    return top_k


def _top(probs: np.ndarray, top_k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and probabilities of the ``top_k`` classes per row, best first (NaN rows: -1)."""
    filled = np.nan_to_num(probs, nan=-1.0)
    order = np.argsort(-filled, axis=1, kind="stable")[:, :top_k]
    return order, np.take_along_axis(filled, order, axis=1)


def predictions_from_probs(probs: np.ndarray, labels: Sequence[str], top_k: int = 1) -> list[Prediction]:
    """Turn a probability matrix (NaN rows = empty text) into :class:`Prediction` tuples."""
    top_k = _check_top_k(top_k, labels)
    order, best = _top(probs, top_k)
    out = []
    for row in range(len(probs)):
        if best[row, 0] < 0:
            out.append(Prediction(None, None, ()))
            continue
        top = tuple((labels[j], float(p)) for j, p in zip(order[row], best[row], strict=True))
        out.append(Prediction(top[0][0], top[0][1], top))
    return out


def prediction_columns(top_k: int) -> list[str]:
    """Output columns: pred_label, pred_prob, then top2_label, top2_prob, ... topK_prob."""
    cols = ["pred_label", "pred_prob"]
    for k in range(2, top_k + 1):
        cols += [f"top{k}_label", f"top{k}_prob"]
    return cols


def _extra_values(probs: np.ndarray, labels: Sequence[str], top_k: int) -> list[list[Any]]:
    order, best = _top(probs, top_k)
    rows: list[list[Any]] = []
    for row in range(len(probs)):
        if best[row, 0] < 0:
            rows.append([None] * (2 * top_k))
            continue
        values: list[Any] = []
        for j, p in zip(order[row], best[row], strict=True):
            values += [labels[j], float(p)]
        rows.append(values)
    return rows


@dataclass
class PredictSummary:
    """What :func:`predict_file` did."""

    rows: int = 0
    empty_rows: int = 0
    seconds: float = 0.0
    empty_lines: list[int] = field(default_factory=list)  # the first few, for messages

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


def _note_empty(chunk: RowChunk, probs: np.ndarray, source: str | os.PathLike, summary: PredictSummary) -> None:
    empty = np.flatnonzero(np.isnan(probs[:, 0])) if len(probs) else []
    for i in empty:
        line = chunk.lines[i]
        if summary.empty_rows < WARN_EMPTY_ROWS:
            log.warning("%s: empty text; writing an empty prediction for this row", where(source, line))
            summary.empty_lines.append(line)
        summary.empty_rows += 1


def _windows(chunks: Iterable[RowChunk], size: int) -> Iterator[RowChunk]:
    """Regroup a stream of chunks into chunks of exactly ``size`` rows (the last may be shorter).

    Length sorting happens within these windows, so the results do not depend on how the
    input was chunked when read.
    """
    rows: list[Any] = []
    texts: list[str | None] = []
    lines: list[int] = []
    for chunk in chunks:
        rows += chunk.rows
        texts += chunk.texts
        lines += chunk.lines
        while len(rows) >= size:
            yield RowChunk(rows[:size], texts[:size], lines[:size])
            rows, texts, lines = rows[size:], texts[size:], lines[size:]
    if rows:
        yield RowChunk(rows, texts, lines)


def predict_chunks(
    clf: Predictor,
    chunks: Iterable[RowChunk],
    emit: Any,
    top_k: int = 1,
    source: str | os.PathLike = "input",
    progress: bool = False,
    window: int | None = None,
) -> PredictSummary:
    """Predict the rows of ``chunks`` window by window and pass each window with its
    prediction values to ``emit(chunk, values)`` (``window`` rows at a time; default ``clf.window``)."""
    summary = PredictSummary()
    t0 = time.perf_counter()
    bar = tqdm(desc="predict", unit="row", disable=not progress, leave=False)
    try:
        for part in _windows(chunks, window or getattr(clf, "window", DEFAULT_CHUNK_ROWS)):
            probs = clf.predict_proba([_as_text(t) for t in part.texts])
            _note_empty(part, probs, source, summary)
            emit(part, _extra_values(probs, clf.labels, top_k))
            summary.rows += len(part)
            bar.update(len(part))
    finally:
        bar.close()
    summary.seconds = time.perf_counter() - t0
    if summary.empty_rows > WARN_EMPTY_ROWS:
        log.warning("%s: %d rows had an empty text in all (empty predictions); the first were rows %s",
                    source, summary.empty_rows, ", ".join(map(str, summary.empty_lines)))
    return summary


def predict_file(
    clf: Predictor,
    input_path: str | os.PathLike,
    output_path: str | os.PathLike,
    *,
    text_col: str | None = None,
    encoding: str | None = None,
    fmt: str | None = None,
    top_k: int = 1,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    progress: bool = False,
) -> PredictSummary:
    """Classify every row of ``input_path`` into ``output_path`` (CSV/TSV/JSONL by extension).

    Every input row is written, in order, with all its original columns, plus
    :func:`prediction_columns`. Empty or missing texts get empty predictions and a warning
    naming their row. Memory stays flat: ``chunk_rows`` rows are held at a time, and the
    output appears under its name only when complete.
    """
    top_k = _check_top_k(top_k, clf.labels)
    input_path, output_path = Path(input_path), Path(output_path)
    output_format(output_path)  # a bad extension fails before any work
    if output_path.resolve() == input_path.resolve():
        raise UserError(f"{output_path}: the output would overwrite the input; choose another file")
    reader = TableReader(input_path, text_col=text_col, encoding=encoding, fmt=fmt, chunk_rows=chunk_rows)
    extra = prediction_columns(top_k)
    chunks = reader.chunks()
    first = next(chunks, None)
    if first is None:  # a header without rows
        with TableWriter(output_path, reader.columns or [], extra, reader.row_kind, input_path):
            pass
        log.warning("%s: no data rows; wrote only the header to %s", input_path, output_path)
        return PredictSummary()
    log.info("%s: %s (%s), text column %r; writing %s", input_path, reader.fmt, reader.encoding,
             reader.text_col, output_path)

    def all_chunks() -> Iterable[RowChunk]:
        yield first
        yield from chunks

    with TableWriter(output_path, reader.columns or [], extra, reader.row_kind, input_path) as writer:
        summary = predict_chunks(
            clf, all_chunks(), lambda chunk, values: writer.write(chunk, values, reader.columns),
            top_k=top_k, source=input_path, progress=progress,
        )
    return summary


# --------------------------------------------------------------------------- --text and stdin


def _stdin_chunks(encoding: str | None, chunk_rows: int) -> Iterator[RowChunk]:
    """Lines of standard input as chunks of one-column rows (one line at a time on a terminal)."""
    enc = encoding or "utf-8"
    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:
        return
    interactive = sys.stdin.isatty()
    if interactive:
        print("type one text per line; end with Ctrl-D", file=sys.stderr)
        chunk_rows = 1
    rows: list[list[str]] = []
    lines: list[int] = []
    number = 0
    for raw in iter(stream.readline, b""):
        number += 1
        try:
            line = raw.decode(enc)
        except UnicodeDecodeError as e:
            raise UserError(
                f"standard input, row {number}: not valid {enc} (bad byte 0x{raw[e.start]:02x}); "
                "pass the right encoding with --encoding NAME"
            ) from None
        if number == 1:
            line = line.removeprefix("\ufeff")
        rows.append([line.rstrip("\n").removesuffix("\r")])
        lines.append(number)
        if len(rows) >= chunk_rows:
            yield RowChunk(rows, [r[0] for r in rows], lines)
            rows, lines = [], []
    if rows:
        yield RowChunk(rows, [r[0] for r in rows], lines)


def _print_chunk(chunk: RowChunk, values: Sequence[Sequence[Any]]) -> None:
    """``label<TAB>prob[<TAB>label2<TAB>prob2...]<TAB>text`` per text, flushed per chunk."""
    out = []
    for row, vals in zip(chunk.rows, values, strict=True):
        cells = ["" if v is None else v if isinstance(v, str) else f"{v:.4f}" for v in vals]
        text = " ".join(row[0].split("\n")).replace("\t", " ")
        out.append("\t".join([*cells, text]))
    print("\n".join(out), flush=True)


def predict_texts_cli(
    clf: Predictor,
    texts: Sequence[str] | None,
    *,
    output: str | os.PathLike | None = None,
    top_k: int = 1,
    encoding: str | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> PredictSummary:
    """Classify ``texts`` (or standard input's lines when None); print them or write ``output``."""
    top_k = _check_top_k(top_k, clf.labels)
    window = None
    if texts is not None:
        source = "--text"
        chunks: Iterable[RowChunk] = [RowChunk([[t] for t in texts], list(texts), list(range(1, len(texts) + 1)))]
    else:
        source = "standard input"
        chunks = _stdin_chunks(encoding, chunk_rows)
        if sys.stdin is not None and sys.stdin.isatty():
            window = 1  # answer each line as it is typed
    if output is None:
        summary = predict_chunks(clf, chunks, _print_chunk, top_k=top_k, source=source, window=window)
    else:
        with TableWriter(output, ["text"], prediction_columns(top_k), "list", source) as writer:
            summary = predict_chunks(clf, chunks, writer.write, top_k=top_k, source=source, window=window)
        print(f"wrote {summary.rows} rows to {output}", file=sys.stderr)
    if summary.rows == 0:
        log.warning("%s: no texts to classify", source)
    return summary
