"""Pre-training examples: documents -> token ids -> packed sequences -> masked batches.

* :func:`encode_corpus` turns every sentence into token ids (and, for whole-word masking,
  marks where each jieba word starts).
* :func:`packed_sequences` (MLM only) concatenates shuffled documents, each closed by
  ``[SEP]``, and cuts the stream into ``[CLS] ... [SEP]`` sequences of exactly ``max_len``
  tokens (RoBERTa's "full sentences").
* :func:`nsp_pairs` builds ``[CLS] A [SEP] B [SEP]`` pairs (segment ids 0 / 1) as BERT's
  ``create_pretraining_data.py`` does: A is a run of sentences of one document, B its true
  continuation (label 0) or text from another document (label 1), exactly half each.
* :func:`mask_tokens` chooses 15% of the non-special tokens (whole words with
  ``word_starts``), and replaces 80% of those by ``[MASK]``, 10% by a random token and leaves
  10% unchanged; it returns the flat positions and original ids the loss is computed on.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..bars import progress_bar
from ..io.corpus import Corpus
from ..text.tokenizer import SPECIAL_TOKENS, CharTokenizer

log = logging.getLogger(__name__)

NSP_TRUE, NSP_RANDOM = 0, 1  # as transformers' next_sentence_label: 0 = B continues A


@dataclass
class EncodedCorpus:
    """Token ids per sentence per document; ``starts`` marks word starts (whole-word masking)."""

    docs: list[list[np.ndarray]]
    starts: list[list[np.ndarray]] | None = None

    @property
    def n_tokens(self) -> int:
        return sum(len(s) for d in self.docs for s in d)


@dataclass
class Example:
    """One sequence: ``ids`` with ``[CLS]``/``[SEP]``, segment ids, word starts, NSP label."""

    ids: np.ndarray
    segments: np.ndarray
    starts: np.ndarray | None = None
    nsp_label: int = -1


def encode_corpus(corpus: Corpus, tokenizer: CharTokenizer, wwm: bool = False) -> EncodedCorpus:
    """Token ids of every sentence; with ``wwm`` also jieba word starts (same length)."""
    cut = None
    if wwm:
        import jieba

        jieba.setLogLevel(logging.WARNING)
        cut = jieba.lcut
    docs: list[list[np.ndarray]] = []
    starts: list[list[np.ndarray]] | None = [] if wwm else None
    for doc in progress_bar(corpus.documents, desc="tokenize corpus", unit="doc", mininterval=2):
        d_ids, d_starts = [], []
        for sent in doc:
            if cut is None:
                ids = tokenizer.encode(sent, max_len=len(sent) + 2)[1:-1]
                if ids:
                    d_ids.append(np.asarray(ids, dtype=np.int32))
                continue
            ids, flags = [], []
            for word in cut(sent):
                w = tokenizer.encode(word, max_len=len(word) + 2)[1:-1]
                ids.extend(w)
                flags.extend([True] + [False] * (len(w) - 1))
            if ids:
                d_ids.append(np.asarray(ids, dtype=np.int32))
                d_starts.append(np.asarray(flags, dtype=bool))
        if d_ids:
            docs.append(d_ids)
            if starts is not None:
                starts.append(d_starts)
    return EncodedCorpus(docs, starts)


def _doc_arrays(enc: EncodedCorpus, d: int) -> tuple[np.ndarray, np.ndarray | None]:
    ids = np.concatenate(enc.docs[d])
    starts = np.concatenate(enc.starts[d]) if enc.starts is not None else None
    return ids, starts


def packed_sequences(enc: EncodedCorpus, tokenizer: CharTokenizer, max_len: int,
                     rng: np.random.Generator) -> list[Example]:
    """Shuffled documents, each followed by ``[SEP]``, cut into full ``max_len`` sequences.

    Every sequence is ``[CLS]`` + ``max_len - 2`` stream tokens + ``[SEP]`` (the last one
    may be shorter); segment ids are all 0.
    """
    body = max_len - 2
    order = rng.permutation(len(enc.docs))
    id_parts, start_parts = [], []
    sep = np.asarray([tokenizer.sep_id], dtype=np.int32)
    for d in order:
        ids, starts = _doc_arrays(enc, int(d))
        id_parts += [ids, sep]
        if starts is not None:
            start_parts += [starts, np.ones(1, dtype=bool)]
    stream = np.concatenate(id_parts)
    sstream = np.concatenate(start_parts) if start_parts else None
    out = []
    for i in range(0, len(stream), body):
        chunk = stream[i : i + body]
        if len(chunk) < 2:
            continue
        ids = np.concatenate([[tokenizer.cls_id], chunk, [tokenizer.sep_id]]).astype(np.int64)
        starts = None
        if sstream is not None:
            starts = np.concatenate([[True], sstream[i : i + body], [True]])
        out.append(Example(ids, np.zeros(len(ids), dtype=np.int64), starts))
    return out


def _truncate_pair(a: list, b: list, limit: int) -> None:
    """Trim the longer of two token lists until they fit: A loses its first tokens, B its
    last, so a true pair stays contiguous text."""
    while len(a) + len(b) > limit:
        if len(a) > len(b):
            del a[0]
        else:
            b.pop()


def nsp_pairs(enc: EncodedCorpus, tokenizer: CharTokenizer, max_len: int, rng: np.random.Generator,
              short_seq_prob: float = 0.1) -> list[Example]:
    """Sentence-pair examples; exactly half (rounded) have B as A's true continuation.

    A document is consumed in chunks of consecutive sentences filling ``max_len - 3``
    tokens. For a true pair the chunk is split at a sentence boundary, or inside the
    sentence when the chunk is one sentence; for a random pair B is taken from another
    document, starting at a random sentence.
    """
    target_max = max_len - 3
    n_docs = len(enc.docs)
    wwm = enc.starts is not None
    chunks: list[tuple[int, list[int]]] = []  # (doc, sentence indices) per example
    for d in rng.permutation(n_docs):
        d = int(d)
        sents = enc.docs[d]
        target = target_max if rng.random() >= short_seq_prob else int(rng.integers(2, target_max + 1))
        chunk, length = [], 0
        for k, s in enumerate(sents):
            chunk.append(k)
            length += len(s)
            if length >= target or k == len(sents) - 1:
                if length >= 2:
                    chunks.append((d, chunk))
                chunk, length = [], 0
                target = target_max if rng.random() >= short_seq_prob else int(rng.integers(2, target_max + 1))
    labels = np.zeros(len(chunks), dtype=np.int64)
    labels[rng.permutation(len(chunks))[: len(chunks) // 2]] = NSP_RANDOM

    def tokens(d: int, idx: Sequence[int]) -> list[tuple[int, bool]]:
        out: list[tuple[int, bool]] = []
        for k in idx:
            st = enc.starts[d][k] if wwm and enc.starts is not None else np.ones(len(enc.docs[d][k]), dtype=bool)
            out.extend(zip(enc.docs[d][k].tolist(), st.tolist(), strict=True))
        return out

    examples = []
    for (d, idx), label in zip(chunks, labels, strict=True):
        if len(idx) >= 2:
            cut = int(rng.integers(1, len(idx)))
            a = tokens(d, idx[:cut])
            b_true = tokens(d, idx[cut:])
        else:
            whole = tokens(d, idx)
            cut = int(rng.integers(1, len(whole)))
            a, b_true = whole[:cut], whole[cut:]
        if label == NSP_RANDOM and n_docs > 1:
            other = int(rng.integers(0, n_docs - 1))
            other += other >= d
            start = int(rng.integers(0, len(enc.docs[other])))
            b = tokens(other, range(start, len(enc.docs[other])))
            b = b[: max(1, target_max - len(a))]
        else:
            b, label = b_true, np.int64(NSP_TRUE)  # (a one-document corpus has no random B)
        _truncate_pair(a, b, target_max)
        if not a:
            a, b = b[:1], b[1:]
        ids = [tokenizer.cls_id, *(t for t, _ in a), tokenizer.sep_id, *(t for t, _ in b), tokenizer.sep_id]
        seg = [0] * (len(a) + 2) + [1] * (len(b) + 1)
        starts = [True, *(s for _, s in a), True, *(s for _, s in b), True]
        examples.append(Example(np.asarray(ids, dtype=np.int64), np.asarray(seg, dtype=np.int64),
                                np.asarray(starts, dtype=bool) if wwm else None, int(label)))
    return examples


@dataclass
class MaskedBatch:
    """Model inputs plus what the losses need (positions are flat indices into batch x length)."""

    input_ids: np.ndarray
    token_type_ids: np.ndarray
    attention_mask: np.ndarray
    positions: np.ndarray
    labels: np.ndarray
    nsp_labels: np.ndarray | None


def special_ids(tokenizer: CharTokenizer) -> np.ndarray:
    """Ids of the special tokens (never chosen for masking, never a random replacement)."""
    return np.asarray(sorted(tokenizer.token_to_id[t] for t in SPECIAL_TOKENS), dtype=np.int64)


def mask_tokens(
    ids: np.ndarray,
    rng: np.random.Generator,
    *,
    specials: np.ndarray,
    mask_id: int,
    vocab_size: int,
    mlm_prob: float = 0.15,
    word_starts: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BERT masking of a padded ``(batch, length)`` id matrix.

    Per row, ``max(1, round(mlm_prob * n))`` of its ``n`` non-special tokens are chosen (whole
    words when ``word_starts`` is given: words are added in random order while they fit).
    Of the chosen, 80% become ``[MASK]``, 10% a random non-special token, 10% stay.

    Returns ``(masked_ids, flat_positions, original_ids_at_positions)``.
    """
    masked = ids.copy()
    is_special = np.isin(ids, specials)
    chosen_rows: list[np.ndarray] = []
    width = ids.shape[1]
    for r in range(ids.shape[0]):
        cand = np.flatnonzero(~is_special[r])
        if len(cand) == 0:
            continue
        n_pred = max(1, int(round(mlm_prob * len(cand))))
        if word_starts is None:
            pick = rng.choice(cand, size=n_pred, replace=False)
        else:
            starts = word_starts[r, cand] | np.concatenate([[True], np.diff(cand) > 1])
            bounds = np.flatnonzero(starts)
            ends = np.append(bounds[1:], len(cand))
            picked: list[np.ndarray] = []
            total = 0
            for w in rng.permutation(len(bounds)):
                size = ends[w] - bounds[w]
                if total + size > n_pred:
                    continue
                picked.append(cand[bounds[w] : ends[w]])
                total += size
                if total == n_pred:
                    break
            if not picked:  # every word longer than the budget: take part of one
                w = int(rng.integers(len(bounds)))
                picked.append(cand[bounds[w] : bounds[w] + n_pred])
            pick = np.concatenate(picked)
        chosen_rows.append(np.sort(pick) + r * width)
    positions = np.concatenate(chosen_rows) if chosen_rows else np.zeros(0, dtype=np.int64)
    flat = masked.reshape(-1)
    labels = flat[positions].copy()
    roll = rng.random(len(positions))
    flat[positions[roll < 0.8]] = mask_id
    rand_pos = positions[(roll >= 0.8) & (roll < 0.9)]
    normal = np.setdiff1d(np.arange(vocab_size), specials)
    flat[rand_pos] = rng.choice(normal, size=len(rand_pos)) if len(normal) else mask_id
    return masked, positions.astype(np.int64), labels.astype(np.int64)


def make_batch(examples: Sequence[Example], rng: np.random.Generator, *, pad_id: int, specials: np.ndarray,
               mask_id: int, vocab_size: int, mlm_prob: float) -> MaskedBatch:
    """Pad examples to the longest and mask them."""
    longest = max(len(e.ids) for e in examples)
    n = len(examples)
    ids = np.full((n, longest), pad_id, dtype=np.int64)
    seg = np.zeros((n, longest), dtype=np.int64)
    att = np.zeros((n, longest), dtype=np.int64)
    wwm = examples[0].starts is not None
    starts = np.zeros((n, longest), dtype=bool) if wwm else None
    for r, e in enumerate(examples):
        k = len(e.ids)
        ids[r, :k], seg[r, :k], att[r, :k] = e.ids, e.segments, 1
        if starts is not None:
            starts[r, :k] = e.starts
    masked, positions, labels = mask_tokens(ids, rng, specials=specials, mask_id=mask_id, vocab_size=vocab_size,
                                            mlm_prob=mlm_prob, word_starts=starts)
    nsp = np.asarray([e.nsp_label for e in examples], dtype=np.int64) if examples[0].nsp_label >= 0 else None
    return MaskedBatch(masked, seg, att, positions, labels, nsp)
