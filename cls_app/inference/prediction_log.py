"""The prediction log: ``predict --log-predictions DIR`` and ``serve --log-predictions DIR`` append one JSON
line per text.

A record holds the time (UTC), the model (folder name and :func:`~cls_app.models.folders.model_version`),
the text's SHA-256 (``--log-text hash``, the default), the text itself (``text``) or neither (``none``),
its length, script and whether it holds a character the training texts never had, the decided label and
its probability (label sets: the labels), the out-of-domain score, and whether the model abstained (and
why). ``run.py drift --data DIR`` reads these files back.

Each process writes files of its own, ``predictions-<start time>-<pid>-<n>.jsonl``, and starts the next
one when a file reaches ``--log-max-mb`` (so several server processes never share a file). Crash-safe:
every batch's lines go out in one ``write`` to a file opened for appending, and are synced to disk at
least once a second and on close; a process killed mid-write can leave one incomplete last line,
which the reader skips.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from ..settings import setting
from ..text.script import scripts_of

log = logging.getLogger(__name__)

__all__ = ["LOG_TEXT", "LogSettings", "PredictionLog", "encode", "log_records", "read_log"]

LOG_TEXT = ("hash", "text", "none")
SYNC_SECONDS = 1.0
PATTERN = "predictions-*.jsonl"


@dataclass(frozen=True)
class LogSettings:
    """Where and how predictions are logged (``predict`` and ``serve``)."""

    log_predictions: str | None = setting(None, "append one JSON line per prediction to files in this folder (time, "
                                          "model version, text hash or text, label, probability, out-of-domain "
                                          "score, abstained); run.py drift reads them", metavar="DIR")
    log_text: str = setting("hash", "what the log keeps of each text: hash (SHA-256, the default), text, none",
                            choices=LOG_TEXT)
    log_max_mb: float = setting(64.0, "start a new log file after this many MB (default: %(default)s)")

    def check(self) -> LogSettings:
        if self.log_text not in LOG_TEXT:
            raise UserError(f"--log-text must be one of {', '.join(LOG_TEXT)}, got {self.log_text!r}")
        if self.log_max_mb <= 0:
            raise UserError(f"--log-max-mb must be positive, got {self.log_max_mb}")
        return self


def log_records(model: Any, texts: Sequence[str | None], probs: np.ndarray, ood: np.ndarray, abstention: Any,
                text_mode: str = "hash", version: str = "") -> list[dict]:
    """One record per non-empty text (module docstring)."""
    from ..models.reference import predicted_labels

    keep = [i for i, t in enumerate(texts) if t is not None and t.strip()]
    if not keep:
        return []
    kept = [str(texts[i]) for i in keep]
    chars = model.reference.char_set if model.reference is not None and model.reference.chars else None
    views = model.view(kept) if chars is not None else kept
    scripts = scripts_of(kept)
    decided = predicted_labels(model, probs[keep])
    confidence, _ = model.task.answer(probs[keep], model.labels)
    now = datetime.now(UTC).isoformat(timespec="milliseconds")
    name = Path(model.path).name if model.path is not None else model.kind
    out = []
    for j, i in enumerate(keep):
        record: dict[str, Any] = {"time": now, "model": name, "model_version": version}
        if text_mode == "hash":
            record["text_sha256"] = hashlib.sha256(kept[j].encode("utf-8", "surrogatepass")).hexdigest()
        elif text_mode == "text":
            record["text"] = kept[j]
        record.update(chars=len(kept[j]), script=scripts[j],
                      unknown=None if chars is None else any(c not in chars for c in views[j] if not c.isspace()))
        if model.task.multi:
            record["labels"] = decided[j]
        else:
            record.update(label=decided[j][0] if decided[j] else None, prob=round(float(confidence[j]), 6))
        score = float(ood[i])
        record["ood"] = round(score, 6) if np.isfinite(score) else None
        record["abstained"] = bool(abstention.abstained[i])
        reason = abstention.reason[i]
        if reason:
            record["reason"] = str(reason)
        out.append(record)
    return out


def encode(records: Sequence[dict]) -> bytes:
    """The JSON lines of ``records``."""
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8", "surrogatepass")


class PredictionLog:
    """Appends records to this process's files in ``folder`` (module docstring)."""

    def __init__(self, folder: str | os.PathLike, settings: LogSettings, model: Any = None, version: str = "") -> None:
        self.folder = Path(folder)
        self.settings = settings.check()
        self.model, self.version = model, version
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"--log-predictions {self.folder}: cannot create the folder ({exc.strerror or exc})"
                            ) from None
        self.max_bytes = int(settings.log_max_mb * 1e6)
        self._fd: int | None = None
        self._size = 0
        self._count = 0
        self._synced = time.monotonic()
        self.records = 0

    def _open(self) -> None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        self._count += 1
        self.path = self.folder / f"predictions-{stamp}-{os.getpid()}-{self._count}.jsonl"
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._size = os.fstat(self._fd).st_size

    @classmethod
    def for_model(cls, settings: LogSettings, model: Any) -> PredictionLog | None:
        """The log ``settings`` ask for (None: none) of the loaded ``model`` (its folder's version)."""
        if not settings.log_predictions:
            return None
        from ..models.folders import model_version

        version = model_version(model.path) if model.path is not None else ""
        return cls(settings.log_predictions, settings, model, version)

    def observe(self, texts: Sequence[str | None], probs: np.ndarray, ood: np.ndarray, abstention: Any) -> None:
        """Log the model's answers on ``texts`` (:func:`log_records`)."""
        self.write(log_records(self.model, texts, probs, ood, abstention, self.settings.log_text, self.version))

    def write(self, records: Sequence[dict]) -> None:
        if records:
            self.write_encoded(encode(records), len(records))

    def write_encoded(self, data: bytes, records: int) -> None:
        """Append lines :func:`encode` made (a Ray actor makes them, the driver appends them)."""
        if not data:
            return
        if self._fd is None or (self._size and self._size + len(data) > self.max_bytes):
            self.close()
            self._open()
        assert self._fd is not None
        os.write(self._fd, data)
        self._size += len(data)
        self.records += records
        if time.monotonic() - self._synced >= SYNC_SECONDS:
            os.fsync(self._fd)
            self._synced = time.monotonic()

    def close(self) -> None:
        if self._fd is not None:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None


def read_log(path: str | os.PathLike) -> Iterator[dict]:
    """The records of a prediction log: one file, or every ``predictions-*.jsonl`` of a folder (in name order); an
    incomplete last line (a process killed mid-write) is skipped with a warning."""
    path = Path(path)
    files = sorted(path.glob(PATTERN)) if path.is_dir() else [path]
    if not files:
        raise UserError(f"{path}: no prediction log files ({PATTERN}) in this folder")
    for f in files:
        with open(f, encoding="utf-8", errors="surrogateescape") as fh:
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    yield json.loads(line)
                except ValueError:
                    if not line.endswith("\n"):
                        log.warning("%s, row %d: an incomplete last line (a write cut short); skipped", f, number)
                        continue
                    raise UserError(f"{f}, row {number}: not a JSON prediction record") from None
