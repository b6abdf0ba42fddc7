"""What every task answers: how labels are read and encoded, how scores become decisions, how
decisions are scored, what a model folder records, and how predictions are written.

A task is a small immutable object. The layers above ask it instead of branching on the task's
name: the trainer asks it for the loss and the dev metrics, a model for its probabilities and
decisions, ``predict`` for its output columns, ``evaluate`` and ``compare`` for metrics and
per-row correctness, the model folder for the fields it records. Two kinds exist:
:class:`~cls_app.tasks.single.SingleLabel` (one class per text) and
:class:`~cls_app.tasks.label_sets.LabelSets` (multi-label and hierarchical: a set of labels per
text, maybe empty).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import numpy as np

from ..errors import UserError

if TYPE_CHECKING:
    from ..io.records import DataOptions, ReadOptions
    from .abstain import Abstention
    from .loss import TaskLoss

log = logging.getLogger(__name__)

# the figures of a metrics dict that metrics.json files keep
HEADLINE = ("n", "accuracy", "macro_f1", "weighted_f1", "micro_f1", "samples_f1", "subset_accuracy", "hamming_loss",
            "per_level", "thresholds")


class Prediction(NamedTuple):
    """One text's prediction; all None / empty for an empty or missing text. ``abstained``: the model says
    "none of these" (``label`` stays its best guess), ``reason`` why; ``ood_score``: how far the text is from
    the training data (:mod:`cls_app.models.ood`; None when the model has no detector)."""

    label: str | None
    prob: float | None
    top: tuple[tuple[str, float], ...] = ()
    abstained: bool = False
    reason: str | None = None
    ood_score: float | None = None


class LabelSetPrediction(NamedTuple):
    """One text's predicted labels (None for an empty or missing text; empty when the model abstains) and
    label probabilities, best first; ``abstained``, ``reason``, ``ood_score`` as in :class:`Prediction`."""

    labels: tuple[str, ...] | None
    probs: tuple[tuple[str, float], ...] = ()
    abstained: bool = False
    reason: str | None = None
    ood_score: float | None = None


ABSTAIN_COLUMNS = ("abstained", "reason", "ood_score")
"""The columns ``predict`` adds after the task's own: abstained (true/false), why, the out-of-domain score."""


def abstain_row(abstention: Abstention | None, i: int) -> tuple[bool, str | None, float | None]:
    """Row ``i``'s (abstained, reason, ood_score); (False, None, None) without an abstention."""
    return abstention.row(i) if abstention is not None else (False, None, None)


def abstain_cells(abstention: Abstention | None, i: int) -> list[Any]:
    """Row ``i``'s values of :data:`ABSTAIN_COLUMNS` for a file (``reason`` "" when answered)."""
    abstained, reason, ood = abstain_row(abstention, i)
    return ["true" if abstained else "false", reason or "", ood]


def check_top_k(top_k: int, labels: Sequence[str]) -> int:
    """``top_k`` checked (a user error below 1) and capped at the number of classes (with a warning)."""
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


def empty_rows(probs: np.ndarray) -> np.ndarray:
    """True for the rows of an empty or missing text (all NaN)."""
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] == 0:
        return np.zeros(len(probs), dtype=bool)
    return np.isnan(probs).all(axis=1)


def headline(metrics: dict) -> dict:
    """The figures of a metrics dict that metrics.json keeps (per class: recall only)."""
    head = {k: metrics[k] for k in HEADLINE if k in metrics}
    if "per_class" in metrics:
        head["per_class_recall"] = {name: round(float(row["recall"]), 5) for name, row in metrics["per_class"].items()}
    return head


class Task(ABC):
    """The task of a model: see the module docstring. Subclasses are frozen dataclasses."""

    multi: ClassVar[bool]
    default_metric: ClassVar[str]
    metrics_names: ClassVar[tuple[str, ...]]  # the --metric choices that make sense for the task

    @property
    @abstractmethod
    def name(self) -> str:
        """``single-label``, ``multi-label`` or ``hierarchical``."""

    # ------------------------------------------------------------------ data

    @abstractmethod
    def read(self, path: str, opts: ReadOptions) -> Any:
        """One labeled file read with ``opts`` (the task's separators)."""

    @abstractmethod
    def split(self, data: Any, fraction: float, seed: int) -> tuple[Any, Any]:
        """(train, held-out) parts of ``data``, deterministic for ``seed``."""

    @abstractmethod
    def records(self, texts: Sequence[Any], targets: Sequence[Any], source: str = "(in memory)") -> Any:
        """Records from in-memory lists (a user error for an empty text or a bad target)."""

    @abstractmethod
    def vocabulary(self, train: Any) -> list[str]:
        """The class / label names of the training rows, in column order."""

    @abstractmethod
    def encode(self, data: Any, labels: Sequence[str], problem: str | None = None) -> np.ndarray:
        """The targets of ``data`` as ids ``(n,)`` or a 0/1 matrix ``(n, labels)``; a label outside
        ``labels`` is a user error naming its row (``problem`` completes the message)."""

    def load_splits(self, opts: DataOptions, seed: int) -> tuple[Any, Any, Any]:
        """train/dev/test as ``train`` reads them; without a dev file, a held-out part of train."""
        train = self.read(opts.train, opts)
        if opts.dev:
            dev = self.read(opts.dev, opts)
        else:
            skipped = train.skipped
            train, dev = self.split(train, opts.dev_fraction, seed)
            train.skipped = skipped
            log.info("no --dev given: held out %d of the training rows as dev", len(dev))
        test = self.read(opts.test, opts) if opts.test else None
        return train, dev, test

    # ------------------------------------------------------------------ scores and decisions

    @abstractmethod
    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """A network's logits as probabilities (softmax or sigmoid)."""

    @abstractmethod
    def decide(self, probs: np.ndarray, labels: Sequence[str]) -> np.ndarray:
        """The decisions: class ids ``(n,)`` (-1 for empty rows) or a 0/1 matrix ``(n, labels)``."""

    @abstractmethod
    def metrics(self, y: np.ndarray, probs: np.ndarray, labels: Sequence[str]) -> dict:
        """Metrics of the decisions on ``probs`` against the targets ``y``."""

    @abstractmethod
    def correct(self, y: np.ndarray, probs: np.ndarray, labels: Sequence[str]) -> np.ndarray:
        """Per row: is the decision entirely right (for McNemar's test and bootstrap intervals)."""

    @abstractmethod
    def metrics_of(self, y: np.ndarray, pred: np.ndarray, labels: Sequence[str]) -> dict:
        """Metrics of decisions already made (class ids, or a 0/1 matrix) against the targets ``y``."""

    def dev_metrics(self, y: np.ndarray, probs: np.ndarray, labels: Sequence[str]) -> dict:
        """Metrics on dev, where decision settings (thresholds) may be tuned first; what the model
        folder records comes from them (:meth:`fitted`)."""
        return self.metrics(y, probs, labels)

    def fitted(self, dev_metrics: dict) -> Task:
        """This task with the decision settings that :meth:`dev_metrics` tuned."""
        return self

    def calibrate(self, probs: np.ndarray) -> np.ndarray:
        """A model's probabilities made honest with what was fitted on dev (unchanged when nothing was)."""
        return np.asarray(probs, dtype=np.float64)

    def uncalibrate(self, probs: np.ndarray) -> np.ndarray:
        """The probabilities before :meth:`calibrate` (``evaluate`` reports the calibration before and after)."""
        return np.asarray(probs, dtype=np.float64)

    def fit_decisions(self, y: np.ndarray, probs: np.ndarray, labels: Sequence[str], metric: str | None,
                      seed: int = 42) -> tuple[Task, Any]:
        """This task with calibration and decision settings fitted on dev (single-label: a temperature and
        per-class offsets), and the fit's record (None when nothing is fitted here)."""
        return self, None

    def with_separators(self, label_sep: str | None = None, path_sep: str | None = None) -> Task:
        """This task reading label cells with other separators (None: keep the task's)."""
        return self

    def align(self, labels: Sequence[str], common: Sequence[str]) -> Task:
        """This task for a model of ``labels`` scored in the columns ``common`` (a superset)."""
        return self

    # ------------------------------------------------------------------ training

    @abstractmethod
    def loss(self, y: np.ndarray, labels: Sequence[str], class_weight: str) -> TaskLoss:
        """The training loss over the rows of ``y`` (torch; ``class_weight`` none or balanced)."""

    def check_training(self, oversample: bool, metric: str) -> None:
        """Refuse training settings that do not fit the task (a :class:`UserError`)."""
        if metric not in self.metrics_names:
            raise UserError(f"--metric {metric} does not fit --task {self.name}; choose one of "
                            f"{', '.join(self.metrics_names)}")

    # ------------------------------------------------------------------ the model folder

    @abstractmethod
    def folder_fields(self) -> dict:
        """What a model folder records about the task (empty for single-label folders)."""

    # ------------------------------------------------------------------ outputs

    @abstractmethod
    def answer(self, probs: np.ndarray, labels: Sequence[str], pred: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """Per row, the confidence of the answer and a class id for the abstention rule (-1: an empty text);
        ``pred``: decisions already made (the honest dev ones) instead of deciding on ``probs``."""

    @abstractmethod
    def row_correct(self, y: np.ndarray, pred: np.ndarray) -> np.ndarray:
        """Per row, whether the answer ``pred`` (from :meth:`answer`) is right (label sets: always, the rule
        does not read it)."""

    @abstractmethod
    def predictions(self, probs: np.ndarray, labels: Sequence[str], top_k: int = 1,
                    abstention: Abstention | None = None) -> list[Any]:
        """:class:`Prediction` or :class:`LabelSetPrediction` per row, with the abstention when given."""

    @abstractmethod
    def output_columns(self, labels: Sequence[str], top_k: int) -> list[str]:
        """The columns ``predict`` adds to each row (the task's, then :data:`ABSTAIN_COLUMNS`)."""

    @abstractmethod
    def output_values(self, probs: np.ndarray, labels: Sequence[str], top_k: int,
                      abstention: Abstention | None = None) -> list[list[Any]]:
        """The values of :meth:`output_columns` per row (all None for an empty text)."""

    @abstractmethod
    def service_items(self, probs: np.ndarray, labels: Sequence[str], top_k: int,
                      abstention: Abstention | None = None) -> list[dict]:
        """One JSON object per row (no empty rows) for the HTTP service, with ``abstained``, ``reason`` and
        ``ood_score``."""

    @abstractmethod
    def format_report(self, metrics: dict, labels: Sequence[str]) -> str:
        """The plain-text report of :meth:`metrics`."""
