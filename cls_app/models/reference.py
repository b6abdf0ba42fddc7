"""What a model saw when it was fitted: the reference new texts are compared with to catch drift.

:meth:`Reference.measure` runs the fitted model over its dev rows (held out from fitting) and keeps
what :mod:`cls_app.evaluation.drift` compares a batch of new texts with: the out-of-domain scores,
the predicted-label counts, the text lengths, the script mix, how many texts hold a character the
training texts never had (in the model's view of the texts: after script normalisation), and those
characters. Every kind writes it into its folder as ``reference.json`` (:data:`REFERENCE_FILE`);
folders from before it have none (``run.py drift --reference FILE`` measures one from a file).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from ..fileio import write_json
from ..text.script import SCRIPT_NAMES, scripts_of

__all__ = ["MAX_SAMPLE", "REFERENCE_FILE", "Reference", "WindowStats", "characters", "predicted_labels"]

REFERENCE_FILE = "reference.json"
MAX_SAMPLE = 5000
"""At most this many dev scores and lengths are kept (evenly spaced order statistics beyond that)."""
FORMAT_VERSION = 1


def predicted_labels(model: Any, probs: np.ndarray) -> list[list[str]]:
    """The labels the model decides for each row (one for single-label tasks, a set for label sets; none for an
    empty text)."""
    out: list[list[str]] = []
    for p in model.task.predictions(probs, model.labels):
        labels = getattr(p, "labels", None)
        if labels is None:
            labels = [p.label] if getattr(p, "label", None) else []
        out.append(list(labels))
    return out


def characters(texts: Sequence[str]) -> set[str]:
    """Every character of ``texts`` but white space."""
    seen: set[str] = set()
    for t in texts:
        seen.update(t)
    return {c for c in seen if not c.isspace()}


def _sample(values: np.ndarray) -> list[float]:
    values = np.sort(values[np.isfinite(values)])
    if len(values) > MAX_SAMPLE:
        values = values[np.linspace(0, len(values) - 1, MAX_SAMPLE).round().astype(int)]
    return [round(float(v), 6) for v in values]


@dataclass
class WindowStats:
    """The per-text figures drift compares, for a reference or for a batch of new texts."""

    ood: list[float]  # finite out-of-domain scores (texts without one left out)
    labels: dict[str, int]  # how often each label was decided
    lengths: list[int]
    scripts: dict[str, int]
    unknown: int | None  # texts with a character outside the training texts' (None: not known)
    texts: int  # non-empty texts

    @classmethod
    def merged(cls, parts: Sequence[WindowStats]) -> WindowStats:
        """The figures of several batches together."""
        labels: Counter[str] = Counter()
        scripts: Counter[str] = Counter()
        for p in parts:
            labels.update(p.labels)
            scripts.update(p.scripts)
        unknown = None if any(p.unknown is None for p in parts) else sum(p.unknown or 0 for p in parts)
        return cls([x for p in parts for x in p.ood], dict(labels), [x for p in parts for x in p.lengths],
                   {s: scripts[s] for s in SCRIPT_NAMES if scripts[s]}, unknown, sum(p.texts for p in parts))

    @classmethod
    def of(cls, view: Sequence[str], originals: Sequence[str], ood: np.ndarray, decided: Sequence[Sequence[str]],
           chars: set[str] | None) -> WindowStats:
        """``view``: the texts as the model saw them (for the unknown characters); ``originals``: as given (length,
        script); ``ood`` and ``decided`` per text."""
        counts: Counter[str] = Counter(label for row in decided for label in row)
        scripts = Counter(scripts_of(list(originals)))
        unknown = None if chars is None else sum(1 for t in view if any(c not in chars for c in t if not c.isspace()))
        return cls(ood=[float(x) for x in np.asarray(ood, dtype=float) if math.isfinite(x)], labels=dict(counts),
                   lengths=[len(t) for t in originals], scripts={s: scripts[s] for s in SCRIPT_NAMES if scripts[s]},
                   unknown=unknown, texts=len(originals))


@dataclass
class Reference:
    """The dev rows' figures (:class:`WindowStats`, samples capped at :data:`MAX_SAMPLE`) and the training texts'
    characters."""

    stats: WindowStats
    chars: str  # every character of the training texts (the model's view), sorted
    source: str = "dev"
    labels: list[str] = field(default_factory=list)

    @property
    def char_set(self) -> set[str]:
        return set(self.chars)

    @classmethod
    def measure(cls, model: Any, texts: Sequence[Any], chars: set[str], source: str = "dev",
                scored: tuple[np.ndarray, np.ndarray] | None = None) -> Reference:
        """The figures of ``texts`` (held-out rows) under the fitted ``model``; ``chars``: the characters of what it
        was fitted on (:func:`characters`; empty: unknown, that signal is left out); ``scored``: the model's
        probabilities and out-of-domain scores of these texts when fitting computed them (else it scores them)."""
        from ..io.records import as_text

        kept = [t for t in (as_text(x) for x in texts) if t is not None]
        if not kept:
            raise UserError(f"{source}: no texts to measure a drift reference on")
        if scored is None or len(scored[0]) != len(kept) or len(kept) != len(texts):
            outputs = model.score(kept)
            scored = outputs.probs, outputs.ood
        probs, ood = scored
        stats = WindowStats.of(model.view(kept), kept, ood, predicted_labels(model, probs), chars or None)
        stats.ood, stats.lengths = _sample(np.asarray(stats.ood)), [int(v) for v in _sample(np.asarray(stats.lengths))]
        return cls(stats, "".join(sorted(chars)), source, list(model.labels))

    def save(self, folder: Path) -> None:
        write_json(folder / REFERENCE_FILE, {"format_version": FORMAT_VERSION, **asdict(self)})

    @classmethod
    def load(cls, folder: Path) -> Reference | None:
        """The folder's reference (None: a folder from before there was one)."""
        path = folder / REFERENCE_FILE
        if not path.is_file():
            return None
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            raw.pop("format_version", None)
            return cls(stats=WindowStats(**raw.pop("stats")), **raw)
        except (ValueError, TypeError) as exc:
            raise UserError(f"{path}: not a drift reference this version reads ({exc}); refit the model or give "
                            "run.py drift --reference FILE") from None
