"""Training losses of the tasks (torch): cross-entropy over classes, or binary cross-entropy per label.

Both are summed over a batch and divided by the batch's total weight by the trainer
(:meth:`TaskLoss.weight`), so the loss is the batch mean whatever the number of processes the
batch is split over. ``class_weight="balanced"``: single-label, ``n / (classes x count)`` per
class (scikit-learn's "balanced"); label sets, ``pos_weight`` = negatives / positives per label.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import torch

log = logging.getLogger(__name__)

MAX_POS_WEIGHT = 100.0  # a label seen once in 10k rows would otherwise weigh 10k times


def balanced_class_weights(train_y: npt.ArrayLike, num_labels: int) -> torch.Tensor:
    """``n / (classes * count)`` per class (scikit-learn's "balanced"); 1.0 for an absent class."""
    from sklearn.utils.class_weight import compute_class_weight

    y = np.asarray(train_y, dtype=np.int64)
    present = np.unique(y)
    weights = np.ones(num_labels, dtype=np.float64)
    weights[present] = compute_class_weight("balanced", classes=present, y=y)
    return torch.tensor(weights, dtype=torch.float32)


def balanced_pos_weight(y: np.ndarray) -> torch.Tensor:
    """``negatives / positives`` per label (1 for a label with no positives), capped at 100."""
    y = np.asarray(y, dtype=np.float64)
    pos = y.sum(axis=0)
    neg = len(y) - pos
    w = np.divide(neg, pos, out=np.ones_like(pos), where=pos > 0)
    return torch.tensor(np.clip(w, 1.0 / MAX_POS_WEIGHT, MAX_POS_WEIGHT), dtype=torch.float32)


class TaskLoss:
    """The summed loss of training rows given their logits, and the rows' total weight."""

    targets: torch.Tensor

    def to(self, device: torch.device) -> TaskLoss:
        """Move the loss's weights to ``device`` (targets stay on the CPU and move per batch)."""
        raise NotImplementedError

    def weight(self, rows: np.ndarray) -> float:
        """The total loss weight of training ``rows`` (the divisor of their summed loss)."""
        raise NotImplementedError

    def describe(self, labels: Sequence[str]) -> str:
        """The class / label weights for the log ("" when all are 1)."""
        return ""

    def __call__(self, logits: torch.Tensor, rows: np.ndarray) -> torch.Tensor:
        raise NotImplementedError


class ClassLoss(TaskLoss):
    """Cross-entropy over the classes; ``y`` holds class ids."""

    def __init__(self, y: np.ndarray, n_labels: int, class_weight: str = "none") -> None:
        self.targets = torch.as_tensor(np.asarray(y, dtype=np.int64))
        self.weights = torch.ones(n_labels)
        if class_weight == "balanced":
            self.weights = balanced_class_weights(y, n_labels)
        self.fn = torch.nn.CrossEntropyLoss(weight=self.weights, reduction="sum")

    def to(self, device: torch.device) -> ClassLoss:
        self.fn = torch.nn.CrossEntropyLoss(weight=self.weights.to(device), reduction="sum")
        return self

    def describe(self, labels: Sequence[str]) -> str:
        if not bool((self.weights != 1).any()):
            return ""
        return ", ".join(f"{name} {w:.3f}" for name, w in zip(labels, self.weights.tolist(), strict=True))

    def weight(self, rows: np.ndarray) -> float:
        return float(self.weights[self.targets[rows]].sum())

    def __call__(self, logits: torch.Tensor, rows: np.ndarray) -> torch.Tensor:
        return self.fn(logits, self.targets[rows].to(logits.device))


class LabelSetLoss(TaskLoss):
    """Binary cross-entropy per label; ``y`` is a ``(rows, labels)`` 0/1 matrix."""

    def __init__(self, y: np.ndarray, class_weight: str = "none") -> None:
        y = np.asarray(y, dtype=np.float32)
        self.targets = torch.as_tensor(y)
        self.pos_weight = balanced_pos_weight(y) if class_weight == "balanced" else None
        self.fn = torch.nn.BCEWithLogitsLoss(pos_weight=self.pos_weight, reduction="sum")

    def to(self, device: torch.device) -> LabelSetLoss:
        pw = None if self.pos_weight is None else self.pos_weight.to(device)
        self.fn = torch.nn.BCEWithLogitsLoss(pos_weight=pw, reduction="sum")
        return self

    def describe(self, labels: Sequence[str]) -> str:
        if self.pos_weight is None:
            return ""
        return ", ".join(f"{name} {w:.2f}" for name, w in zip(labels, self.pos_weight.tolist(), strict=True))

    def weight(self, rows: np.ndarray) -> float:
        """Every (row, label) pair weighs 1: the loss is the mean over them."""
        return float(len(rows) * self.targets.shape[1])

    def __call__(self, logits: torch.Tensor, rows: np.ndarray) -> torch.Tensor:
        return self.fn(logits, self.targets[rows].to(logits.device))
