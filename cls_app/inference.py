"""Batched, length-sorted inference that returns results in the input order."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from .batching import length_sorted_batches, pad_batch


@torch.inference_mode()
def predict_logits(
    model: torch.nn.Module,
    seqs: Sequence[Sequence[int]],
    pad_id: int,
    batch_size: int = 128,
    progress: bool = False,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """Logits for every token-id sequence, shape ``(len(seqs), num_labels)``, in input order."""
    was_training = model.training
    model.eval()
    out: np.ndarray | None = None
    batches = length_sorted_batches([len(s) for s in seqs], batch_size)
    for idx in tqdm(batches, desc="predict", unit="batch", disable=not progress, leave=False):
        ids, mask = pad_batch([seqs[i] for i in idx], pad_id)
        logits = model(ids.to(device), attention_mask=mask.to(device)).float().cpu().numpy()
        if out is None:
            out = np.empty((len(seqs), logits.shape[1]), dtype=np.float32)
        out[idx] = logits
    model.train(was_training)
    if out is None:
        num_labels = getattr(getattr(model, "config", None), "num_labels", 0)
        return np.empty((0, num_labels), dtype=np.float32)
    return out


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, numerically stable."""
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)
