"""Tokenize once: token ids kept on disk as memory-mapped numpy arrays.

A corpus of ``n`` texts is stored as two arrays in one folder per cache key:

* ``ids.npy``: every text's ids (``[CLS] ... [SEP]``) concatenated, int32;
* ``offsets.npy``: ``n + 1`` int64 positions, text ``i`` is ``ids[offsets[i]:offsets[i + 1]]``;
* ``meta.json``: what the key was made of; written last, so a folder without it is incomplete.

The key is a hash of the texts' content, the tokenizer (its vocab, lower-casing and mode),
``max_len``, the truncation settings and :data:`CACHE_FORMAT`: an edited data file or a new
vocab gives a new key, so a stale entry is never read; it stops being used and is deleted
once :data:`MAX_ENTRIES` newer entries exist (or delete the cache folder at any time).
Hashing is far cheaper than tokenizing (1M short texts: 0.2 s vs 7 s, ``bench/tokenize_speed.py``).

The arrays are opened with ``mmap_mode="r"``: a second run (or another process of the same
``torchrun`` job) shares the pages through the OS cache instead of rebuilding Python lists.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import logging
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from ..fileio import atomic_path, write_json
from .tokenizer import CharTokenizer

log = logging.getLogger(__name__)

CACHE_FORMAT = 2
"""Bump when the stored layout or the tokenizer's output for the same vocab changes."""

DEFAULT_CACHE_DIR = Path(".cache") / "token_ids"
"""Cache folder, relative to the working directory, unless ``--cache-dir`` says otherwise."""

MAX_ENTRIES = 16
"""Entries kept; older ones (by last use) are deleted when a new one is written."""


class TokenIds(Sequence):
    """A read-only list of id arrays backed by one flat array and its offsets."""

    def __init__(self, ids: np.ndarray, offsets: np.ndarray) -> None:
        if offsets.ndim != 1 or len(offsets) < 1 or offsets[0] != 0 or offsets[-1] != len(ids):
            raise ValueError("offsets do not describe the id array")
        self.ids = ids
        self.offsets = offsets

    @classmethod
    def from_lists(cls, seqs: Sequence[Sequence[int]]) -> TokenIds:
        """Pack lists of ids into the flat layout (in memory)."""
        lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
        offsets = np.zeros(len(seqs) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        ids = np.fromiter(itertools.chain.from_iterable(seqs), dtype=np.int32, count=int(offsets[-1]))
        return cls(ids, offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"index {i} out of range for {n} texts")
        return self.ids[self.offsets[i] : self.offsets[i + 1]]

    def __iter__(self) -> Iterator[np.ndarray]:
        ids, off = self.ids, self.offsets
        for i in range(len(self)):
            yield ids[off[i] : off[i + 1]]

    @property
    def lengths(self) -> np.ndarray:
        """Length of every text's id sequence."""
        return np.diff(self.offsets)


def tokenizer_fingerprint(tokenizer: CharTokenizer) -> str:
    """Hash of everything in the tokenizer that decides the ids: vocab, lower-casing, mode."""
    h = hashlib.sha256()
    h.update(f"lowercase={tokenizer.lowercase};wordpiece={tokenizer.is_wordpiece}\n".encode())
    for tok in tokenizer.vocab:
        h.update(tok.encode("utf-8", "surrogatepass"))
        h.update(b"\n")
    return h.hexdigest()


def texts_digest(texts: Sequence[str]) -> str:
    """Content hash of a list of texts (order and boundaries included)."""
    h = hashlib.blake2b(digest_size=32)
    h.update(f"{len(texts)}\n".encode())
    # Hash in chunks of joined texts: one update per text would dominate the cost.
    # A NUL separator plus each chunk's length list keeps the boundaries unambiguous.
    step = 4096
    for start in range(0, len(texts), step):
        chunk = texts[start : start + step]
        h.update(",".join(str(len(t)) for t in chunk).encode())
        h.update("\0".join(chunk).encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def cache_key(texts: Sequence[str], tokenizer: CharTokenizer, max_len: int, settings: dict | None = None) -> dict:
    """The parts of the key, as stored in ``meta.json``; :func:`key_hash` turns them into a name."""
    return {
        "format": CACHE_FORMAT,
        "texts": texts_digest(texts),
        "n": len(texts),
        "tokenizer": tokenizer_fingerprint(tokenizer),
        "max_len": int(max_len),
        "settings": dict(sorted((settings or {"truncation": "head"}).items())),
    }


def key_hash(key: dict) -> str:
    """Folder name for a key."""
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]


def load_cached(folder: Path, key: dict | None = None) -> TokenIds | None:
    """Open a complete cache folder memory-mapped; None when absent, incomplete or not ``key``."""
    meta_path = folder / "meta.json"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if key is not None and meta.get("key") != key:
            return None
        ids = np.load(folder / "ids.npy", mmap_mode="r")
        offsets = np.load(folder / "offsets.npy", mmap_mode="r")
        if len(offsets) != meta["sequences"] + 1 or len(ids) != meta["tokens"]:
            return None
        cached = TokenIds(ids, offsets)
    except (OSError, ValueError, KeyError, TypeError, json.JSONDecodeError):
        return None
    with contextlib.suppress(OSError):
        os.utime(meta_path)  # mark as recently used, for prune()
    return cached


def get_or_build(
    texts: Sequence[str],
    tokenizer: CharTokenizer,
    max_len: int,
    cache_dir: str | os.PathLike | None = DEFAULT_CACHE_DIR,
    *,
    settings: dict | None = None,
    encode: Callable[[Sequence[str]], Sequence[Sequence[int]]] | None = None,
) -> TokenIds:
    """Token ids of ``texts``, from the cache when it holds them, else tokenized and stored.

    Args:
        texts: the texts, in order.
        tokenizer: decides the ids (its vocab is part of the key).
        max_len: truncation length, part of the key.
        cache_dir: the cache folder; None tokenizes without caching.
        settings: further settings that change the ids (e.g. ``{"truncation": "head"}``),
            part of the key; give them whenever ``encode`` is not the default.
        encode: ``texts -> id lists``; default ``tokenizer.encode_batch(texts, max_len)``.
    """
    if encode is None:
        def encode(batch: Sequence[str]) -> Sequence[Sequence[int]]:
            return tokenizer.encode_batch(batch, max_len)

    if cache_dir is None:
        return TokenIds.from_lists(encode(texts))
    key = cache_key(texts, tokenizer, max_len, settings)
    folder = Path(cache_dir) / key_hash(key)
    cached = load_cached(folder, key)
    if cached is not None:
        log.info("token ids of %d texts read from the cache %s", len(cached), folder)
        return cached
    packed = TokenIds.from_lists(encode(texts))
    try:
        _store(folder, packed, key)
    except OSError as exc:  # a read-only or full disk must not stop training
        log.warning("could not write the token-id cache %s (%s); continuing without it", folder, exc)
        return packed
    log.info("token ids of %d texts cached in %s", len(packed), folder)
    removed = prune(cache_dir)
    if removed:
        log.info("removed %d least recently used token-id cache entries", removed)
    stored = load_cached(folder, key)
    return stored if stored is not None else packed


def _store(folder: Path, packed: TokenIds, key: dict) -> None:
    """Write the arrays, then ``meta.json`` (each atomically; concurrent writers agree)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, arr in (("ids.npy", packed.ids), ("offsets.npy", packed.offsets)):
        with atomic_path(folder / name) as tmp, open(tmp, "wb") as fh:
            np.save(fh, np.ascontiguousarray(arr))
            fh.flush()
            os.fsync(fh.fileno())
    write_json(folder / "meta.json", {"key": key, "sequences": len(packed), "tokens": int(len(packed.ids))})


def prune(cache_dir: str | os.PathLike, keep: int = MAX_ENTRIES) -> int:
    """Delete all but the ``keep`` most recently used entries; return how many were deleted."""
    root = Path(cache_dir)
    if not root.is_dir():
        return 0
    entries = []
    for folder in root.iterdir():
        meta = folder / "meta.json"
        if folder.is_dir():
            try:
                entries.append((meta.stat().st_mtime, folder))
            except OSError:  # incomplete: no meta.json (yet); leave it to its writer
                continue
    entries.sort(reverse=True)
    for _, folder in entries[keep:]:
        shutil.rmtree(folder, ignore_errors=True)
    return max(0, len(entries) - keep)
