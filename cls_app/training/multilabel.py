"""Multi-label and hierarchical fine-tuning: a sigmoid head trained with ``BCEWithLogitsLoss``.

:class:`MultiLabelTrainer` is the :class:`~cls_app.training.trainer.Trainer` with a 0/1 target
matrix: ``--class-weight balanced`` becomes ``pos_weight`` (negatives / positives per label),
each dev evaluation tunes the decision thresholds on dev (one global, one per label; see
:func:`cls_app.multilabel.tune_thresholds`) and scores with them, and the best model is picked
on dev micro-F1 by default. The thresholds of the best evaluation go into the model folder.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from ..errors import UserError
from ..multilabel import sigmoid, task_metrics, tune_thresholds
from .settings import TrainSettings
from .trainer import TrainData, Trainer, TrainHooks

log = logging.getLogger(__name__)

MAX_POS_WEIGHT = 100.0  # a label seen once in 10k rows would otherwise weigh 10k times


def balanced_pos_weight(y: np.ndarray) -> torch.Tensor:
    """``negatives / positives`` per label (1 for a label with no positives), capped at 100."""
    y = np.asarray(y, dtype=np.float64)
    pos = y.sum(axis=0)
    neg = len(y) - pos
    w = np.divide(neg, pos, out=np.ones_like(pos), where=pos > 0)
    return torch.tensor(np.clip(w, 1.0 / MAX_POS_WEIGHT, MAX_POS_WEIGHT), dtype=torch.float32)


class MultiLabelTrainer(Trainer):
    """Fine-tunes a sigmoid head; ``data.train_y`` / ``data.dev_y`` are ``(rows, labels)`` 0/1 matrices."""

    def __init__(self, model: torch.nn.Module, data: TrainData, settings: TrainSettings,
                 hooks: TrainHooks | None = None, task: str = "multi-label", path_sep: str = "##") -> None:
        if settings.oversample:
            raise UserError("--oversample works for single-label tasks only; for label sets use --class-weight "
                            "balanced (a pos_weight per label)")
        y = np.asarray(data.train_y, dtype=np.float32)
        n_labels = len(data.labels)
        # the parent's class weights are unused here: ones skip its single-label "balanced" weights
        super().__init__(model, data, settings, hooks, class_weights=torch.ones(n_labels))
        self.task, self.path_sep = task, path_sep
        self.y = torch.as_tensor(y)
        self.dev_matrix = np.asarray(data.dev_y, dtype=np.float32)
        pos_weight = None
        if settings.class_weight == "balanced":
            pos_weight = balanced_pos_weight(y)
            log.info("pos_weight (balanced): %s", ", ".join(
                f"{name} {w:.2f}" for name, w in zip(data.labels, pos_weight.tolist(), strict=True)))
            pos_weight = pos_weight.to(self.device)
        self.loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight, reduction="sum")

    def batch_weight(self, rows: np.ndarray) -> float:
        """Every (row, label) pair weighs 1: the loss is the mean over them."""
        return float(len(rows) * self.y.shape[1])

    def batch_loss(self, logits: torch.Tensor, rows: np.ndarray) -> torch.Tensor:
        return self.loss_fn(logits, self.y[rows].to(self.device))

    def _dev_metrics(self) -> dict:
        d = self.data
        probs = sigmoid(self.dev_logits(len(self.dev_matrix)))
        thresholds = tune_thresholds(probs, self.dev_matrix)
        m = task_metrics(self.task, self.dev_matrix, probs, d.labels, thresholds, self.path_sep)
        m["thresholds"] = thresholds
        return m


def folder_settings(task: str, dev: dict, label_sep: str, path_sep: str) -> dict:
    """What a multi-label model folder records beside its weights (``config.json`` ``cls_app``)."""
    out = {"task": task, "label_sep": label_sep, "thresholds": dev.get("thresholds")}
    if task == "hierarchical":
        out["path_sep"] = path_sep
    return out


def score_test(task: str, y: np.ndarray, logits: np.ndarray, labels: list[str], dev: dict, path_sep: str) -> dict:
    """Test scores with the thresholds tuned on dev."""
    return task_metrics(task, y, sigmoid(logits), labels, dev.get("thresholds"), path_sep)
