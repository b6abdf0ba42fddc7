"""Token ids -> batches: dynamic padding and batch orders for training and inference."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import torch


def pad_batch(
    seqs: Sequence[Sequence[int]], pad_id: int, pad_to: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad to the longest sequence in the batch (dynamic padding), or to ``pad_to`` if longer.

    ``pad_to`` = max length gives static padding, as ``padding="max_length"`` in
    ``transformers`` (kept for measuring what dynamic padding saves).
    Returns ``(input_ids, attention_mask)`` as int64 tensors of shape ``(batch, longest)``.
    """
    longest = max(pad_to, max(len(s) for s in seqs))
    ids = np.full((len(seqs), longest), pad_id, dtype=np.int64)
    mask = np.zeros((len(seqs), longest), dtype=np.int64)
    for row, seq in enumerate(seqs):
        ids[row, : len(seq)] = seq
        mask[row, : len(seq)] = 1
    return torch.from_numpy(ids), torch.from_numpy(mask)


def shuffled_batches(n: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """A random permutation of ``range(n)`` cut into batches (every index exactly once)."""
    order = rng.permutation(n)
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]


def length_grouped_batches(
    lengths: npt.ArrayLike, batch_size: int, rng: np.random.Generator, group: int = 50
) -> list[np.ndarray]:
    """Shuffled batches of similar lengths (as Hugging Face's ``LengthGroupedSampler``).

    Shuffle all indices, cut them into mega-batches of ``group * batch_size``, sort each
    mega-batch by length and cut it into batches, then shuffle the order of the batches.
    Every index appears exactly once; padding drops because batch-mates have similar lengths.
    """
    sizes = np.asarray(lengths, dtype=np.int64)
    order = rng.permutation(len(sizes))
    mega = batch_size * group
    batches: list[np.ndarray] = []
    for start in range(0, len(order), mega):
        chunk = order[start : start + mega]
        chunk = chunk[np.argsort(-sizes[chunk], kind="stable")]
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def length_sorted_batches(lengths: npt.ArrayLike, batch_size: int, max_positions: int | None = None
                          ) -> list[np.ndarray]:
    """Indices sorted by length (longest first) cut into batches, for fast inference.

    Similar lengths share a batch, so little padding is computed; callers scatter the
    results back by index, which restores the original order. With ``max_positions`` a batch
    also holds at most that many padded positions (batch x its longest length; at least one
    text), so batches of long texts are smaller.
    """
    sizes = np.asarray(lengths, dtype=np.int64)
    order = np.argsort(-sizes, kind="stable")
    if max_positions is None:
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    batches, start = [], 0
    while start < len(order):
        take = min(batch_size, max(1, max_positions // max(1, int(sizes[order[start]]))))
        batches.append(order[start : start + take])
        start += take
    return batches


def oversampled_indices(labels: npt.ArrayLike, rng: np.random.Generator) -> np.ndarray:
    """Every index once, plus random repeats of smaller classes until each class is as large as the largest.

    The repeats are drawn with replacement from the class's own indices; the result is
    sorted by index (batch orders shuffle it anyway).
    """
    ids = np.asarray(labels, dtype=np.int64)
    if len(ids) == 0:
        return np.arange(0)
    classes, counts = np.unique(ids, return_counts=True)
    target = counts.max()
    parts = [np.arange(len(ids))]
    for c, n in zip(classes, counts, strict=True):
        if n < target:
            parts.append(rng.choice(np.flatnonzero(ids == c), size=int(target - n), replace=True))
    return np.sort(np.concatenate(parts), kind="stable")
