"""``run.py distill``: a fast student that learns what a teacher (usually the recommended ensemble) says.

The teacher predicts the training texts and any unlabeled texts once (its calibrated
probabilities). A student of a kind that learns soft targets (``textcnn``, the default) learns
those probabilities softened by a temperature (KL divergence, Hinton et al. 2015); a student of
any other kind learns the teacher's decisions (fastText has no soft-label loss; the BERT trainer
takes labels). The labeled dev rows pick the student's best epoch and fit its calibration,
decisions and abstention as for any model. The result is an ordinary model folder with
``distilled`` (teacher, temperature, rows) in its description.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..io.records import LabeledData
from ..models.base import TextClassifier, all_kinds, kind_class
from ..settings import setting
from ..tasks import AbstainSettings

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class DistillSettings:
    """How the student learns."""

    student: str | None = setting(None, "the student's kind (default: the cheapest kind that learns a teacher's "
                                  "probabilities, textcnn); a kind that cannot (fasttext, bert, ...) learns its "
                                  "decisions")
    temperature: float = setting(2.0, "softening of the teacher's probabilities for a student that learns them "
                                 "(default: %(default)s)")
    seed: int = setting(42, "random seed (default: %(default)s)")

    def check(self) -> DistillSettings:
        if self.student is not None:
            cls = kind_class(self.student)
            if cls.combines or cls.floor or "single-label" not in cls.tasks:
                raise UserError(f"--student {self.student}: a student is a single model that fits single-label data")
        if not self.temperature > 0:
            raise UserError(f"--temperature must be positive, got {self.temperature}")
        return self

    def student_kind(self) -> str:
        """The student's kind: ``student``, else the cheapest registered kind that learns soft targets."""
        if self.student is not None:
            return self.student
        soft = [c for c in all_kinds().values() if c.soft_targets]
        if not soft:
            raise UserError("no registered kind learns a teacher's probabilities; name one with --student")
        return min(soft, key=lambda c: c.cost).kind_name


@dataclass
class Distilled:
    """The student and what it learned from."""

    student: TextClassifier
    rows: int
    unlabeled: int
    teacher_seconds: float
    seconds: float


def distill(teacher: TextClassifier, train: LabeledData, dev: LabeledData, unlabeled: list[str],
            settings: DistillSettings, abstain: AbstainSettings | None = None,
            student_settings: dict[str, Any] | None = None) -> Distilled:
    """Fit a student of ``settings.student`` (with ``student_settings``) on the teacher's answers for ``train``
    and ``unlabeled`` texts."""
    settings.check()
    if teacher.task.multi:
        raise UserError("distill works for single-label teachers")
    if teacher.pairs:
        raise UserError("distill works for single-text teachers, not sentence pairs")
    texts = [*train.texts, *[t for t in unlabeled if t and t.strip()]]
    t0 = time.perf_counter()
    probs = teacher.predict_proba(texts)
    teacher_seconds = time.perf_counter() - t0
    labels = list(teacher.labels)
    decided = teacher.task.decide(probs, labels)
    keep = decided >= 0
    rows = LabeledData([t for t, k in zip(texts, keep, strict=True) if k],
                       [labels[int(d)] for d in decided[keep]], f"{train.source} + teacher answers")
    t1 = time.perf_counter()
    kind = settings.student_kind()
    student = TextClassifier(kind=kind, seed=settings.seed, abstain=abstain, **(student_settings or {}))
    if student.soft_targets:
        student.fit_soft(rows, probs[keep], labels, dev, settings.temperature)  # type: ignore[attr-defined]
    else:
        student.fit_records(rows, dev, teacher.task.__class__())
    log.info("distilled a %s student from %d texts (%d unlabeled) in %.1fs", kind, len(rows),
             len(texts) - len(train), time.perf_counter() - t1)
    meta = getattr(student, "meta", None)
    if isinstance(meta, dict):
        meta["distilled"] = {"teacher": str(teacher.path) if teacher.path else teacher.kind,
                             "teacher_kind": teacher.kind, "student": kind,
                             "temperature": settings.temperature if student.soft_targets else None,
                             "rows": len(rows), "unlabeled": len(texts) - len(train)}
    return Distilled(student, len(rows), len(texts) - len(train), teacher_seconds, time.perf_counter() - t0)


def read_unlabeled(paths: list[str], read: Any) -> list[str]:
    """The texts of unlabeled files (any format ``predict`` reads; ``read(path)`` yields their chunks)."""
    out: list[str] = []
    for path in paths:
        if not Path(path).is_file():
            raise UserError(f"--unlabeled {path}: no such file")
        for chunk in read(path):
            out += [t for t in chunk.texts if t]
    return out
