"""Texts longer than the model's window: truncation strategies and overlapping chunks.

Two ways to fit a long text into ``max_len`` tokens (``[CLS]`` and ``[SEP]`` included):

* **truncate** (one window per text), keeping the ``head``, the ``tail`` or ``head+tail``
  (the first ``head_tokens`` and the last ``room - head_tokens`` tokens). Sun et al. 2019,
  "How to Fine-Tune BERT for Text Classification?", found head+tail (128 + 382 of 510 tokens)
  the best single-pass choice on long reviews and news; the default ``head_tokens`` keeps that
  ratio (a quarter of the room).
* **chunks**: split the text into overlapping windows of ``max_len`` tokens that start
  ``chunk_stride`` tokens apart (the last window ends at the text's end), run each window
  through the model and pool the window logits per text (``mean`` or ``max``). Training on
  chunks makes every window a training example with the text's label.

The functions here work on token ids without the special tokens ("body" ids); the model
folder stores the chosen :class:`LongTextOptions` so ``evaluate``/``predict`` use the same
strategy as training did.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt

from ..errors import UserError
from ..io.pairs import PAIR_SEP
from ..settings import setting
from .pairs import encode_pair

TRUNCATIONS = ("head", "tail", "head+tail")
LONG_TEXT_MODES = ("truncate", "chunks")
POOLS = ("mean", "max")

# Sun et al. 2019: head 128 + tail 382 of BERT's 510 token room
_HEAD_SHARE = 128 / 510


def default_head_tokens(room: int) -> int:
    """Head share of ``room`` body tokens for head+tail (about a quarter, as 128 of 510)."""
    return max(1, min(room - 1, round(room * _HEAD_SHARE))) if room > 1 else room


def default_stride(room: int) -> int:
    """Distance between window starts: three quarters of the window (a quarter overlaps)."""
    return max(1, (room * 3) // 4)


def truncate(ids: Sequence[int], limit: int, strategy: str = "head", head_tokens: int | None = None) -> list[int]:
    """At most ``limit`` of ``ids``: the first (``head``), the last (``tail``) or both ends.

    ``head+tail`` keeps the first ``head_tokens`` (default :func:`default_head_tokens`) and
    the last ``limit - head_tokens`` ids, in their original order.
    """
    if strategy not in TRUNCATIONS:
        raise UserError(f"unknown truncation {strategy!r}; choose one of {', '.join(TRUNCATIONS)}")
    if limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    ids = list(ids)
    if len(ids) <= limit:
        return ids
    if limit == 0:
        return []
    if strategy == "head":
        return ids[:limit]
    if strategy == "tail":
        return ids[len(ids) - limit :]
    head = default_head_tokens(limit) if head_tokens is None else head_tokens
    if not 0 <= head <= limit:
        raise UserError(f"head_tokens {head} must be between 0 and {limit} (the room for text tokens)")
    tail = limit - head
    return ids[:head] + (ids[len(ids) - tail :] if tail else [])


def window_starts(n: int, size: int, stride: int) -> list[int]:
    """Start offsets of windows of ``size`` over ``n`` ids, ``stride`` apart, the last ending at ``n``."""
    if size < 1 or stride < 1:
        raise ValueError(f"size and stride must be >= 1, got {size} and {stride}")
    if n <= size:
        return [0]
    starts = list(range(0, n - size, stride))
    starts.append(n - size)
    return starts


def windows(ids: Sequence[int], size: int, stride: int) -> list[list[int]]:
    """Overlapping windows of at most ``size`` ids covering all of ``ids`` (one for a short text)."""
    ids = list(ids)
    return [ids[s : s + size] for s in window_starts(len(ids), size, stride)]


def pool_logits(logits: np.ndarray, owners: npt.ArrayLike, n_texts: int, how: str = "mean") -> np.ndarray:
    """Per-text logits from per-window ``logits``; ``owners[k]`` is the text of window ``k``.

    ``mean`` averages a text's window logits, ``max`` takes each class's largest logit.
    Every text must own at least one window.
    """
    if how not in POOLS:
        raise UserError(f"unknown pooling {how!r}; choose one of {', '.join(POOLS)}")
    logits = np.asarray(logits, dtype=np.float32)
    owner_ids = np.asarray(owners, dtype=np.int64)
    if logits.ndim != 2 or len(owner_ids) != len(logits):
        raise ValueError(f"{len(owner_ids)} owners for logits of shape {logits.shape}")
    counts = np.bincount(owner_ids, minlength=n_texts) if len(owner_ids) else np.zeros(n_texts, np.int64)
    if len(counts) > n_texts or (n_texts and counts.min() == 0):
        raise ValueError("every text needs at least one window and owners must be < n_texts")
    if how == "mean":
        out = np.zeros((n_texts, logits.shape[1]), dtype=np.float64)
        np.add.at(out, owner_ids, logits)
        return (out / counts[:, None]).astype(np.float32)
    out = np.full((n_texts, logits.shape[1]), -np.inf, dtype=np.float32)
    np.maximum.at(out, owner_ids, logits)
    return out


@dataclass
class LongTextOptions:
    """How texts longer than ``max_len`` tokens are fed to the model (stored in the model folder)."""

    truncation: str = setting("head", "which tokens a long text keeps: the first, the last, or both ends "
                              "(head+tail: --head-tokens from the start, the rest from the end)", choices=TRUNCATIONS)
    head_tokens: int | None = setting(None, "head+tail: tokens kept from the start (default: a quarter of "
                                      "--max-len, as 128 of 510 in Sun et al. 2019)")
    long_text: str = setting("truncate", "truncate (one window) or chunks: overlapping windows whose logits are "
                             "pooled (training: every window is an example)", choices=LONG_TEXT_MODES)
    chunk_stride: int | None = setting(None, "chunks: tokens between window starts (default: 3/4 of the window, "
                                       "so windows overlap by a quarter)")
    chunk_pool: str = setting("mean", "chunks: pool the window logits by mean or max", choices=POOLS)

    def resolved(self, max_len: int) -> LongTextOptions:
        """A checked copy with the defaults that depend on ``max_len`` filled in."""
        if self.truncation not in TRUNCATIONS:
            raise UserError(f"unknown --truncation {self.truncation!r}; choose one of {', '.join(TRUNCATIONS)}")
        if self.long_text not in LONG_TEXT_MODES:
            raise UserError(f"unknown --long-text {self.long_text!r}; choose one of {', '.join(LONG_TEXT_MODES)}")
        if self.chunk_pool not in POOLS:
            raise UserError(f"unknown --chunk-pool {self.chunk_pool!r}; choose one of {', '.join(POOLS)}")
        if max_len < 3:
            raise UserError(f"--max-len must be at least 3 (room for [CLS], [SEP] and a token), got {max_len}")
        room = max_len - 2
        head = default_head_tokens(room) if self.head_tokens is None else int(self.head_tokens)
        if not 0 <= head <= room:
            raise UserError(f"--head-tokens {head} must be between 0 and {room} (--max-len {max_len} minus 2)")
        stride = default_stride(room) if self.chunk_stride is None else int(self.chunk_stride)
        if not 1 <= stride <= room:
            raise UserError(
                f"--chunk-stride {stride} must be between 1 and {room} (--max-len {max_len} minus 2) "
                "so that windows overlap or touch"
            )
        return LongTextOptions(self.truncation, head, self.long_text, stride, self.chunk_pool)

    def to_settings(self) -> dict:
        """Plain dict for the model folder's settings."""
        return asdict(self)

    @classmethod
    def from_settings(cls, settings: dict) -> LongTextOptions:
        """Read back from a model folder's settings; older folders mean head truncation."""
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in settings.items() if k in names and v is not None})


@dataclass
class EncodedTexts:
    """Model inputs for a list of texts: token-id rows, and for chunks the text of each row."""

    seqs: list[list[int]]
    owners: np.ndarray | None  # None: one row per text, in order
    n_texts: int


def encode_texts(tokenizer, texts: Sequence[str], max_len: int, options: LongTextOptions) -> EncodedTexts:
    """Token ids with ``[CLS]``/``[SEP]`` for ``texts``, truncated or cut into windows."""
    opts = options.resolved(max_len)
    room = max_len - 2
    cls_id, sep_id = tokenizer.cls_id, tokenizer.sep_id
    seqs: list[list[int]] = []
    if any(PAIR_SEP in text for text in texts):  # sentence pairs: one window each, longest_first truncation
        seqs = [encode_pair(tokenizer, t, max_len) if PAIR_SEP in t else
                [cls_id, *truncate(tokenizer.token_ids(t), room, opts.truncation, opts.head_tokens), sep_id]
                for t in texts]
        one_each = None if opts.long_text == "truncate" else np.arange(len(texts), dtype=np.int64)
        return EncodedTexts(seqs, one_each, len(texts))
    if opts.long_text == "truncate":
        for text in texts:
            body = truncate(tokenizer.token_ids(text), room, opts.truncation, opts.head_tokens)
            seqs.append([cls_id, *body, sep_id])
        return EncodedTexts(seqs, None, len(texts))
    owners: list[int] = []
    for i, text in enumerate(texts):
        for body in windows(tokenizer.token_ids(text), room, int(opts.chunk_stride or room)):
            seqs.append([cls_id, *body, sep_id])
            owners.append(i)
    return EncodedTexts(seqs, np.asarray(owners, dtype=np.int64), len(texts))
