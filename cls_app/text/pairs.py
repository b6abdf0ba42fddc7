"""``[CLS] A [SEP] B [SEP]`` for sentence pairs, truncated ``longest_first`` as BertTokenizer does.

Segment (token type) ids are not stored: a model trained on pairs derives them from the ids
(:func:`cls_app.modeling.bert.segment_ids`: 0 up to and including the first ``[SEP]``, 1 after),
so token-id caches, batching and every inference path stay as they are.
"""

from __future__ import annotations

from ..io.pairs import split_pair


def truncate_longest_first(a: list[int], b: list[int], room: int) -> tuple[list[int], list[int]]:
    """Cut both sequences at their ends so that ``len(a) + len(b) <= room``, as transformers'
    ``BertTokenizer(a, b, truncation="longest_first")`` does (the ``tokenizers`` rule): the shorter
    sequence (``a`` on a tie) keeps ``min(len, room // 2)`` tokens, the longer one the rest."""
    if len(a) + len(b) <= room:
        return a, b
    if len(a) > len(b):
        keep_b = min(len(b), room // 2)
        return a[: room - keep_b], b[:keep_b]
    keep_a = min(len(a), room // 2)
    return a[:keep_a], b[: room - keep_a]


def encode_pair(tokenizer, text: str, max_len: int) -> list[int]:
    """``[CLS] A [SEP] B [SEP]`` of a pipeline pair text (``A PAIR_SEP B``), at most ``max_len`` ids."""
    a, b = split_pair(text)
    if b is None:
        raise ValueError("not a pair text")
    sep = tokenizer.sep_id
    # a literal "[SEP]" inside a text would move where the segments are derived to change (see the
    # module doc); it becomes [UNK] there (BertTokenizer keeps the id and sets token types apart)
    ids_a, ids_b = ([tokenizer.unk_id if i == sep else i for i in tokenizer.token_ids(t)] for t in (a, b))
    ids_a, ids_b = truncate_longest_first(ids_a, ids_b, max(max_len - 3, 0))
    return [tokenizer.cls_id, *ids_a, sep, *ids_b, sep]
