"""Token-id cache: same ids as the tokenizer, reused when nothing changed, rebuilt otherwise."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cls_app.text import token_cache
from cls_app.text.token_cache import TokenIds, get_or_build, texts_digest
from cls_app.text.tokenizer import CharTokenizer
from tests.conftest import toy_texts


def _tok(texts: list[str]) -> CharTokenizer:
    return CharTokenizer.build(texts, min_freq=1)


def _count_encodes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = CharTokenizer.encode_batch

    def counting(self, texts, max_len=128):
        calls.append(len(texts))
        return real(self, texts, max_len)

    monkeypatch.setattr(CharTokenizer, "encode_batch", counting)
    return calls


@given(st.lists(st.lists(st.integers(0, 30000), max_size=20), max_size=40))
def test_token_ids_round_trip(seqs: list[list[int]]) -> None:
    packed = TokenIds.from_lists(seqs)
    assert len(packed) == len(seqs)
    assert [list(map(int, s)) for s in packed] == seqs
    assert packed.lengths.tolist() == [len(s) for s in seqs]
    if seqs:
        assert list(packed[-1]) == seqs[-1]


@settings(max_examples=40)
@given(st.lists(st.text(max_size=8), max_size=6), st.lists(st.text(max_size=8), max_size=6))
def test_texts_digest_separates_different_lists(a: list[str], b: list[str]) -> None:
    assert (texts_digest(a) == texts_digest(b)) == (a == b)


def test_cache_matches_tokenizer_and_is_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    texts, _ = toy_texts(50)
    texts[3] = "Latin words iPhone12 [MASK] and 数字 123"
    tok = _tok(texts)
    calls = _count_encodes(monkeypatch)
    first = get_or_build(texts, tok, 16, tmp_path)
    assert calls == [50]
    assert isinstance(first.ids, np.memmap)  # memory-mapped from the cache folder
    assert [list(map(int, s)) for s in first] == tok.encode_batch(texts, 16)
    calls.clear()
    again = get_or_build(list(texts), tok, 16, tmp_path)  # a new run: same content
    assert calls == []
    assert np.array_equal(again.ids, first.ids) and np.array_equal(again.offsets, first.offsets)
    assert len(list(tmp_path.iterdir())) == 1


def test_cache_invalidated_by_text_vocab_max_len_or_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    texts, _ = toy_texts(30)
    tok = _tok(texts)
    get_or_build(texts, tok, 16, tmp_path)
    edited = [*texts[:-1], texts[-1] + "好"]  # one character of the file changed
    other_vocab = CharTokenizer(tok.vocab[:-1])  # vocab changed: last token dropped
    want_edited, want_vocab = tok.encode_batch(edited, 16), other_vocab.encode_batch(texts, 16)
    calls = _count_encodes(monkeypatch)

    assert [list(map(int, s)) for s in get_or_build(edited, tok, 16, tmp_path)] == want_edited
    assert [list(map(int, s)) for s in get_or_build(texts, other_vocab, 16, tmp_path)] == want_vocab
    get_or_build(texts, tok, 8, tmp_path)  # max_len changed
    get_or_build(texts, tok, 16, tmp_path, settings={"truncation": "head+tail"})
    assert len(calls) == 4
    assert len(list(tmp_path.iterdir())) == 5


def test_data_file_change_rebuilds(tmp_path: Path) -> None:
    """End to end on a file: edit it, and the ids follow the new content."""
    path = tmp_path / "train.txt"
    path.write_text("好好\n差差\n", encoding="utf-8")
    tok = CharTokenizer.build(["好差坏"], min_freq=1)
    cache = tmp_path / "cache"
    before = get_or_build(path.read_text(encoding="utf-8").splitlines(), tok, 8, cache)
    path.write_text("好好\n坏坏坏\n", encoding="utf-8")
    after = get_or_build(path.read_text(encoding="utf-8").splitlines(), tok, 8, cache)
    assert list(before[1]) != list(after[1])
    assert list(after[1]) == tok.encode("坏坏坏", 8)


def test_incomplete_or_corrupt_entry_is_rebuilt(tmp_path: Path) -> None:
    texts, _ = toy_texts(20)
    tok = _tok(texts)
    get_or_build(texts, tok, 16, tmp_path)
    (folder,) = tmp_path.iterdir()
    (folder / "meta.json").unlink()  # killed before the entry was complete
    rebuilt = get_or_build(texts, tok, 16, tmp_path)
    assert [list(s) for s in rebuilt] == tok.encode_batch(texts, 16)
    (folder / "offsets.npy").write_bytes(b"garbage")
    assert [list(s) for s in get_or_build(texts, tok, 16, tmp_path)] == tok.encode_batch(texts, 16)


def test_no_cache_dir_and_unwritable_dir_still_give_ids(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    texts, _ = toy_texts(10)
    tok = _tok(texts)
    assert [list(s) for s in get_or_build(texts, tok, 16, None)] == tok.encode_batch(texts, 16)

    def failing(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(token_cache, "_store", failing)
    assert [list(s) for s in get_or_build(texts, tok, 16, tmp_path / "c")] == tok.encode_batch(texts, 16)


def test_default_cache_dir_is_gitignored() -> None:
    root = Path(__file__).resolve().parents[1]
    ignored = (root / ".gitignore").read_text(encoding="utf-8").split()
    assert f"/{token_cache.DEFAULT_CACHE_DIR.parts[0]}/" in ignored
    assert not os.path.isabs(token_cache.DEFAULT_CACHE_DIR)


def test_prune_keeps_the_most_recently_used(tmp_path: Path) -> None:
    texts, _ = toy_texts(10)
    tok = _tok(texts)
    for max_len in (6, 7, 8):
        get_or_build(texts, tok, max_len, tmp_path)
    folders = {p.name for p in tmp_path.iterdir()}
    for i, p in enumerate(sorted(tmp_path.iterdir())):
        os.utime(p / "meta.json", (1000 + i, 1000 + i))
    oldest = sorted(tmp_path.iterdir())[0]
    assert token_cache.prune(tmp_path, keep=2) == 1
    assert {p.name for p in tmp_path.iterdir()} == folders - {oldest.name}
