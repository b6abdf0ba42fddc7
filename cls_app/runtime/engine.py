"""Batched, length-sorted inference that returns results in the input order.

:func:`predict_logits` scores token-id rows; :func:`predict_pooled_logits` scores the
windows of long texts and pools them per text; :func:`predict_text_logits` goes from raw
texts to per-text logits with a model folder's long-text settings.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..bars import progress_bar
from ..text.batching import length_sorted_batches, pad_batch
from ..text.long_text import EncodedTexts, LongTextOptions, encode_texts, pool_logits


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
    for idx in progress_bar(batches, enabled=progress, desc="predict", unit="batch"):
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


def predict_pooled_logits(
    model: torch.nn.Module,
    enc: EncodedTexts,
    pad_id: int,
    batch_size: int = 128,
    pool: str = "mean",
    progress: bool = False,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """Per-text logits, shape ``(enc.n_texts, num_labels)``, from the window rows of ``enc``.

    ``enc.owners[k]`` is the text index of row ``k`` (None: one row per text, no pooling);
    a text's window logits are pooled by ``mean`` or ``max``.
    """
    logits = predict_logits(model, enc.seqs, pad_id, batch_size, progress=progress, device=device)
    if enc.owners is None:
        return logits
    return pool_logits(logits, enc.owners, enc.n_texts, pool)


def predict_text_logits(
    model: torch.nn.Module,
    tokenizer,
    texts: Sequence[str],
    max_len: int,
    options: LongTextOptions | None = None,
    batch_size: int = 128,
    progress: bool = False,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """Per-text logits for raw ``texts``: truncated or chunked and pooled as ``options`` say."""
    options = (options or LongTextOptions()).resolved(max_len)
    enc = encode_texts(tokenizer, texts, max_len, options)
    return predict_pooled_logits(model, enc, tokenizer.pad_id, batch_size, options.chunk_pool, progress=progress,
                                 device=device)
