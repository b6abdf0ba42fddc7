"""Character bigram embeddings added to BERT's input (as ZEN and fastText add n-grams).

Every pair of neighbouring token ids ``(a, b)`` seen at least ``min_count`` times in the training
texts gets its own vector, added to the embedding of ``a`` (the last position has no bigram; a
bigram not in the table, and any bigram with ``[CLS]``, ``[SEP]`` or padding, adds nothing). The
vectors start at zero, so training starts from exactly the plain BERT and learns them with it.

The table's keys (``a * vocab_size + b``, sorted) are a buffer saved with the weights
(``bigram.keys`` in ``model.safetensors``), so a model folder needs nothing else. The lookup is
a binary search written with gather/compare/select only, the same in PyTorch and in the ONNX
export (ONNX has no ``searchsorted``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import torch
from torch import nn


def bigram_keys(seqs: Iterable[list[int]], vocab_size: int, min_count: int, max_bigrams: int) -> np.ndarray:
    """Sorted keys ``a * vocab_size + b`` of the bigrams seen >= ``min_count`` times in ``seqs``;
    when more than ``max_bigrams`` pass, the most frequent are kept (ties: the smaller key)."""
    parts = [np.asarray(s[:-1], np.int64) * vocab_size + np.asarray(s[1:], np.int64) for s in seqs if len(s) > 1]
    if not parts or min_count < 1 or max_bigrams < 1:
        return np.zeros(0, np.int64)
    uniq, counts = np.unique(np.concatenate(parts), return_counts=True)
    keep = counts >= min_count
    uniq, counts = uniq[keep], counts[keep]
    if len(uniq) > max_bigrams:
        top = np.argsort(-counts, kind="stable")[:max_bigrams]
        uniq = np.sort(uniq[top])
    return uniq


class BigramEmbedding(nn.Module):
    """Vectors of ``num_bigrams`` bigrams; ``forward(ids)`` gives one vector per position (row 0: none)."""

    keys: torch.Tensor  # a buffer (register_buffer)

    def __init__(self, num_bigrams: int, hidden: int, vocab_size: int) -> None:
        super().__init__()
        self.vocab_size = int(vocab_size)
        self.register_buffer("keys", torch.zeros(num_bigrams, dtype=torch.long))
        self.table = nn.Embedding(num_bigrams + 1, hidden, padding_idx=0)
        self.steps = math.ceil(math.log2(num_bigrams + 1))

    def set_keys(self, keys: np.ndarray) -> None:
        """Use ``keys`` (sorted, as :func:`bigram_keys` gives) and start every vector at zero."""
        with torch.no_grad():
            self.keys.copy_(torch.as_tensor(keys, dtype=torch.long))
            self.table.weight.zero_()

    def index(self, ids: torch.Tensor) -> torch.Tensor:
        """Table row of the bigram starting at each position of ``ids`` ``(batch, seq)``; 0: none."""
        query = ids[:, :-1] * self.vocab_size + ids[:, 1:]
        n = self.keys.shape[0]
        lo = torch.zeros_like(query)
        hi = torch.full_like(query, n)
        for _ in range(self.steps):  # leftmost key >= query, as torch.searchsorted
            mid = torch.div(lo + hi, 2, rounding_mode="floor")
            less = self.keys[mid.clamp(max=n - 1)] < query
            active = lo < hi
            lo = torch.where(active & less, mid + 1, lo)
            hi = torch.where(active & ~less, mid, hi)
        found = self.keys[lo.clamp(max=n - 1)] == query
        row = torch.where(found, lo + 1, torch.zeros_like(lo))
        return nn.functional.pad(row, (0, 1))  # the last position has no bigram

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.table(self.index(ids))
