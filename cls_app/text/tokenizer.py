"""Character-level Chinese tokenizer, compatible with BERT vocab files.

:class:`CharTokenizer` works in one of two modes, chosen by the vocabulary it is given:

* **Built vocab** (from :meth:`CharTokenizer.build` on training text): every CJK character,
  punctuation mark, emoji or other symbol is its own token; runs of Latin letters and runs of
  ASCII digits stay whole (``"iphone12"`` -> ``["iphone", "12"]``); full-width letters and
  digits are folded to half-width first (``"ＡＢＣ１２３"`` -> ``["abc", "123"]``).
* **BERT vocab** (any token starts with ``"##"``, e.g. ``bert-base-chinese/vocab.txt``):
  non-CJK words go through WordPiece exactly like ``transformers.BertTokenizer``, so
  :meth:`CharTokenizer.encode` gives the same ids as
  ``BertTokenizer(vocab_file, do_lower_case=True)(text, truncation=True, max_length=n)``.

Both modes first apply BERT's basic normalisation, as the Rust ``BertNormalizer`` and
``BertPreTokenizer`` behind ``BertTokenizer`` do it: control characters are dropped, any
whitespace separates words, accents are stripped and text is lower-cased when
``lowercase=True``, and every CJK character and punctuation character is a token of its own.
The special tokens (``[PAD]`` ... ``[MASK]``) written literally in the text are kept as those
special tokens, as ``BertTokenizer`` does.

Speed: each character's normalisation is computed once and cached in a translation table,
so a text is normalised by one ``str.translate`` and split by one precompiled regex (built
vocab) or ``str.split`` plus a per-word cache (BERT vocab).
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, SupportsInt

from ..errors import UserError
from ..fileio import write_text
from .long_text import truncate

__all__ = ["SPECIAL_TOKENS", "VOCAB_FILE", "CharTokenizer"]

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
"""Special tokens, in the order :meth:`CharTokenizer.build` gives them ids 0..4."""

VOCAB_FILE = "vocab.txt"
"""Name of the vocab file inside a model folder (BERT format: one token per line)."""

WORDPIECE_PREFIX = "##"
MAX_CHARS_PER_WORD = 100  # longer words become [UNK], as in BERT's WordPiece

_SPECIAL_RE = re.compile("(" + "|".join(re.escape(t) for t in SPECIAL_TOKENS) + ")")
# Built-vocab mode: Latin letter runs, ASCII digit runs, else one token per character.
# Whitespace has already been mapped to " " by the translation table.
_LATIN = "A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u1e00-\u1eff"
_BUILT_TOKEN_RE = re.compile(f"[{_LATIN}]+|[0-9]+|[^ ]")
_WORD_CACHE_LIMIT = 200_000


# --------------------------------------------------------------------------------------
# Character classes (as in the Rust `tokenizers` BertNormalizer / BertPreTokenizer)
# --------------------------------------------------------------------------------------


def _is_chinese_char(cp: int) -> bool:
    """True for code points in BERT's CJK ranges (``transformers`` ``_is_chinese_char``)."""
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2B73F
        or 0x2B740 <= cp <= 0x2B81F
        or 0x2B820 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


def _is_whitespace(ch: str) -> bool:
    """True for characters BERT treats as word separators (mapped to a plain space)."""
    return ch in " \t\n\r" or unicodedata.category(ch) in ("Zs", "Zl", "Zp")


def _is_control(ch: str) -> bool:
    """True for characters BERT's ``clean_text`` removes.

    Tab, newline and carriage return count as whitespace, not control.  Unassigned code
    points (``Cn``) are kept, as the Rust normaliser keeps them.
    """
    if ch in "\t\n\r":
        return False
    return ord(ch) in (0, 0xFFFD) or unicodedata.category(ch) in ("Cc", "Cf", "Co", "Cs")


def _is_punctuation(ch: str) -> bool:
    """True for ASCII punctuation/symbols and Unicode ``P*`` characters (BERT's rule)."""
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _strip_accents(text: str) -> str:
    """Decompose (NFD) and drop non-spacing marks (``Mn``)."""
    return "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")


def _lower(text: str) -> str:
    """Lower-case character by character (no context rules such as Greek final sigma)."""
    return "".join(c.lower() for c in text)


def _fold_fullwidth(ch: str) -> str:
    """Map full-width letters and digits (U+FF10-FF19, FF21-FF3A, FF41-FF5A) to ASCII."""
    cp = ord(ch)
    if 0xFF10 <= cp <= 0xFF19 or 0xFF21 <= cp <= 0xFF3A or 0xFF41 <= cp <= 0xFF5A:
        return chr(cp - 0xFEE0)
    return ch


def _normalize_char(ch: str, lowercase: bool, wordpiece: bool) -> str:
    """Normalise one character; the result may be empty or several characters.

    In WordPiece (BERT) mode, CJK and punctuation characters are surrounded by spaces so
    that ``str.split()`` yields BERT's words; in built mode the token regex does the split.
    """
    if _is_control(ch):
        return ""
    if _is_whitespace(ch):
        return " "
    cjk = _is_chinese_char(ord(ch))
    text = ch if wordpiece else _fold_fullwidth(ch)
    if lowercase:
        text = _lower(_strip_accents(text))
    if wordpiece:
        text = "".join(f" {c} " if _is_punctuation(c) else c for c in text)
        if cjk:
            text = f" {text} "
    return text


_RUST_BERT: dict[bool, Any] = {}


def _rust_bert_char(ch: str, lowercase: bool) -> str | None:
    """Normalise ``ch`` with the Rust ``tokenizers`` BERT normaliser, if it is installed.

    ``transformers.BertTokenizer`` runs on these Rust components, whose Unicode tables are
    not Python's: e.g. punctuation and non-spacing marks added after Unicode 9 are plain
    letters there, and U+2B820-U+2B91F are not CJK.  Asking them, one character at a time
    and cached, keeps WordPiece mode exactly equal to ``BertTokenizer`` on any text.
    Returns None when ``tokenizers`` is not installed (the Python rules are used then).
    """
    if lowercase not in _RUST_BERT:
        try:
            from tokenizers import normalizers, pre_tokenizers
        except ImportError:  # pragma: no cover - tokenizers comes with transformers
            _RUST_BERT[lowercase] = None
        else:
            _RUST_BERT[lowercase] = (
                normalizers.BertNormalizer(
                    clean_text=True,
                    handle_chinese_chars=True,
                    strip_accents=None,
                    lowercase=lowercase,
                ),
                pre_tokenizers.BertPreTokenizer(),
            )
    rust = _RUST_BERT[lowercase]
    if rust is None:  # pragma: no cover
        return None
    normalizer, pre_tokenizer = rust
    out = []
    for c in normalizer.normalize_str(ch):
        pieces = len(pre_tokenizer.pre_tokenize_str(f"a{c}a"))
        # 1 piece: part of a word; 2: whitespace; 3: punctuation (a word of its own)
        out.append(c if pieces == 1 else " " if pieces == 2 else f" {c} ")
    return "".join(out)


class _CharTable(dict):
    """Lazy ``str.translate`` table: code point -> normalised string, computed on first use."""

    def __init__(self, lowercase: bool, wordpiece: bool) -> None:
        super().__init__()
        self.lowercase = lowercase
        self.wordpiece = wordpiece

    def __missing__(self, cp: int) -> str | int:
        ch = chr(cp)
        out = _rust_bert_char(ch, self.lowercase) if self.wordpiece else None
        if out is None:
            out = _normalize_char(ch, self.lowercase, self.wordpiece)
        value: str | int = cp if out == ch else out
        self[cp] = value
        return value


_TABLES: dict[tuple[bool, bool], _CharTable] = {}


def _table(lowercase: bool, wordpiece: bool) -> _CharTable:
    """The shared translation table for one (lowercase, wordpiece) combination."""
    key = (lowercase, wordpiece)
    if key not in _TABLES:
        _TABLES[key] = _CharTable(lowercase, wordpiece)
    return _TABLES[key]


def _vocab_file(path: str | os.PathLike) -> Path:
    """Resolve ``path`` (a vocab file or a folder holding ``vocab.txt``) to the file."""
    path = Path(path)
    if path.is_dir():
        path = path / VOCAB_FILE
    if not path.is_file():
        raise UserError(f"{path}: vocab file not found (give a vocab.txt or a folder holding one)")
    return path


# --------------------------------------------------------------------------------------
# Tokenizer
# --------------------------------------------------------------------------------------


class CharTokenizer:
    """Character-level Chinese tokenizer; WordPiece for non-CJK words with a BERT vocab.

    Args:
        vocab: the tokens; a token's id is its index.  Must contain all of
            :data:`SPECIAL_TOKENS`.  If any token starts with ``"##"`` the vocab is taken to
            be a BERT WordPiece vocab and tokenization matches ``BertTokenizer``.
        lowercase: lower-case and strip accents (BERT's ``do_lower_case=True``).

    Raises:
        UserError: if a special token is missing or a token contains a line break.
    """

    def __init__(self, vocab: list[str], lowercase: bool = True) -> None:
        self.vocab: list[str] = list(vocab)
        missing = [t for t in SPECIAL_TOKENS if t not in set(self.vocab)]
        if missing:
            raise UserError(
                f"vocab lacks special token(s) {', '.join(missing)}; a vocab must contain "
                f"all of {' '.join(SPECIAL_TOKENS)}"
            )
        for i, tok in enumerate(self.vocab):
            if not isinstance(tok, str) or "\n" in tok or "\r" in tok:
                raise UserError(f"vocab entry {i} ({tok!r}) is not a one-line string")
        # Later duplicates win, as when BERT loads a vocab file.
        self.token_to_id: dict[str, int] = {tok: i for i, tok in enumerate(self.vocab)}
        self.lowercase = bool(lowercase)
        self.is_wordpiece = any(t.startswith(WORDPIECE_PREFIX) for t in self.vocab)
        self._table = _table(self.lowercase, self.is_wordpiece)
        self._pad_id, self._unk_id, self._cls_id, self._sep_id, self._mask_id = (
            self.token_to_id[t] for t in SPECIAL_TOKENS
        )
        # Words short enough for WordPiece that are whole vocab entries (the common case).
        self._word_ids: dict[str, int] = {t: i for t, i in self.token_to_id.items() if len(t) <= MAX_CHARS_PER_WORD}
        self._wp_cache: dict[str, list[int]] = {}

    # ----- construction -----

    @classmethod
    def build(
        cls,
        texts: Iterable[str],
        min_freq: int = 1,
        max_vocab: int | None = None,
        lowercase: bool = True,
    ) -> CharTokenizer:
        """Build a vocab from training texts.

        The special tokens come first in :data:`SPECIAL_TOKENS` order (``[PAD]`` = 0,
        ``[UNK]`` = 1, ``[CLS]`` = 2, ``[SEP]`` = 3, ``[MASK]`` = 4), then tokens seen at least
        ``min_freq`` times by descending count, ties by token string.

        Args:
            texts: training texts.
            min_freq: minimum count for a token to enter the vocab (>= 1).
            max_vocab: maximum vocab size, special tokens included (>= 5), or None.
            lowercase: as in :class:`CharTokenizer`.

        Raises:
            UserError: if ``min_freq`` < 1 or ``max_vocab`` < the number of special tokens.
        """
        if isinstance(texts, str):
            raise TypeError("texts must be an iterable of strings, not a single string")
        if min_freq < 1:
            raise UserError(f"min_freq must be at least 1, got {min_freq}")
        if max_vocab is not None and max_vocab < len(SPECIAL_TOKENS):
            raise UserError(f"max_vocab must be at least {len(SPECIAL_TOKENS)} (the special tokens), got {max_vocab}")
        base = cls(SPECIAL_TOKENS, lowercase=lowercase)
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(base.tokenize(text))
        for tok in SPECIAL_TOKENS:
            counts.pop(tok, None)
        ranked = sorted(
            (item for item in counts.items() if item[1] >= min_freq),
            key=lambda item: (-item[1], item[0]),
        )
        tokens = [tok for tok, _ in ranked]
        if max_vocab is not None:
            tokens = tokens[: max_vocab - len(SPECIAL_TOKENS)]
        return cls(SPECIAL_TOKENS + tokens, lowercase=lowercase)

    @classmethod
    def from_file(cls, path: str | os.PathLike, lowercase: bool = True) -> CharTokenizer:
        """Load a BERT-format vocab: ``path`` is a ``vocab.txt`` file or a folder holding one.

        Lines are read as ``BertTokenizer`` reads them (trailing whitespace trimmed; a
        leading UTF-8 byte-order mark is ignored).

        Raises:
            UserError: if the file is missing or unreadable, or lacks a special token.
        """
        file = _vocab_file(path)
        try:
            with open(file, encoding="utf-8-sig", newline="") as fh:
                text = fh.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"{file}: cannot read vocab file ({exc})") from exc
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        try:
            return cls([line.rstrip() for line in lines], lowercase=lowercase)
        except UserError as exc:
            raise UserError(f"{file}: {exc}") from exc

    def save(self, path: str | os.PathLike) -> Path:
        """Write the vocab in BERT format, one token per line, atomically.

        ``path`` is a folder (``vocab.txt`` is written inside, the folder is created) or a
        file path ending in ``.txt``.  Returns the path of the file written.
        """
        path = Path(path)
        if path.suffix.lower() != ".txt" or path.is_dir():
            path = path / VOCAB_FILE
        write_text(path, "".join(f"{tok}\n" for tok in self.vocab))
        return path

    # ----- ids of the special tokens -----

    @property
    def pad_id(self) -> int:
        """Id of ``[PAD]``."""
        return self._pad_id

    @property
    def unk_id(self) -> int:
        """Id of ``[UNK]``."""
        return self._unk_id

    @property
    def cls_id(self) -> int:
        """Id of ``[CLS]``."""
        return self._cls_id

    @property
    def sep_id(self) -> int:
        """Id of ``[SEP]``."""
        return self._sep_id

    @property
    def mask_id(self) -> int:
        """Id of ``[MASK]``."""
        return self._mask_id

    def __len__(self) -> int:
        """Vocab size."""
        return len(self.vocab)

    def __repr__(self) -> str:
        mode = "wordpiece" if self.is_wordpiece else "built"
        return f"CharTokenizer(size={len(self)}, mode={mode}, lowercase={self.lowercase})"

    # ----- tokenization -----

    def _split_special(self, text: str) -> list[str]:
        """Split ``text`` around literal special tokens (odd positions are the specials)."""
        if "[" not in text:
            return [text]
        return _SPECIAL_RE.split(text)

    def _tokens_plain(self, text: str) -> list[str]:
        """Tokens (strings) of text that holds no special token."""
        norm = text.translate(self._table)
        if not self.is_wordpiece:
            return _BUILT_TOKEN_RE.findall(norm)
        vocab = self.vocab
        out: list[str] = []
        for word in norm.split():
            out.extend(vocab[i] for i in self._word_to_ids(word))
        return out

    def _ids_plain(self, text: str) -> list[int]:
        """Token ids of text that holds no special token."""
        norm = text.translate(self._table)
        if not self.is_wordpiece:
            get, unk = self.token_to_id.get, self._unk_id
            return [get(tok, unk) for tok in _BUILT_TOKEN_RE.findall(norm)]
        ids: list[int] = []
        word_ids = self._word_ids
        for word in norm.split():
            i = word_ids.get(word)
            if i is not None:
                ids.append(i)
            else:
                ids.extend(self._word_to_ids(word))
        return ids

    def _word_to_ids(self, word: str) -> list[int]:
        """WordPiece, greedy longest-match-first with ``##`` continuations (cached)."""
        cached = self._wp_cache.get(word)
        if cached is not None:
            return cached
        ids = self._wordpiece(word)
        if len(self._wp_cache) >= _WORD_CACHE_LIMIT:
            self._wp_cache.clear()
        self._wp_cache[word] = ids
        return ids

    def _wordpiece(self, word: str) -> list[int]:
        """Uncached WordPiece of one word, as ``transformers``' ``WordpieceTokenizer``."""
        if len(word) > MAX_CHARS_PER_WORD:
            return [self._unk_id]
        vocab = self.token_to_id
        ids: list[int] = []
        start, n = 0, len(word)
        while start < n:
            end = n
            found = None
            while start < end:
                piece = word[start:end]
                if start > 0:
                    piece = WORDPIECE_PREFIX + piece
                found = vocab.get(piece)
                if found is not None:
                    break
                end -= 1
            if found is None:
                return [self._unk_id]
            ids.append(found)
            start = end
        return ids

    def tokenize(self, text: str) -> list[str]:
        """Split ``text`` into vocab tokens (strings), without ``[CLS]``/``[SEP]``.

        With a built vocab, tokens not in the vocab are returned as they are (they encode
        to ``[UNK]``); with a BERT vocab, WordPiece has already replaced them by ``[UNK]``.
        """
        parts = self._split_special(text)
        if len(parts) == 1:
            return self._tokens_plain(text)
        out: list[str] = []
        for k, part in enumerate(parts):
            if k % 2:
                out.append(part)
            elif part:
                out.extend(self._tokens_plain(part))
        return out

    def convert_tokens_to_ids(self, tokens: list[str]) -> list[int]:
        """Look tokens up in the vocab; unknown tokens get :attr:`unk_id`."""
        get, unk = self.token_to_id.get, self._unk_id
        return [get(tok, unk) for tok in tokens]

    def convert_ids_to_tokens(self, ids: Iterable[SupportsInt]) -> list[str]:
        """Map ids back to tokens.

        Raises:
            UserError: if an id is outside the vocab.
        """
        out: list[str] = []
        for raw in ids:
            i = int(raw)
            if not 0 <= i < len(self.vocab):
                raise UserError(f"token id {i} is outside the vocab (size {len(self.vocab)})")
            out.append(self.vocab[i])
        return out

    def token_ids(self, text: str) -> list[int]:
        """Token ids of the whole of ``text``, without ``[CLS]``/``[SEP]`` and without truncation."""
        if "[" in text:
            parts = _SPECIAL_RE.split(text)
            ids: list[int] = []
            get = self.token_to_id.__getitem__
            for k, part in enumerate(parts):
                if k % 2:
                    ids.append(get(part))
                elif part:
                    ids.extend(self._ids_plain(part))
            return ids
        return self._ids_plain(text)

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """The ``(start, end)`` character span in ``text`` of each id :meth:`token_ids` gives
        (same length, same order): a Latin word or digit run spans its characters, a WordPiece
        ``##`` piece its part of the word, a WordPiece ``[UNK]`` its whole word, a literal
        special token its brackets. Used to map per-token scores back onto the text."""
        parts = _SPECIAL_RE.split(text) if "[" in text else [text]
        spans: list[tuple[int, int]] = []
        pos = 0
        for k, part in enumerate(parts):
            if k % 2:
                spans.append((pos, pos + len(part)))
            elif part:
                spans.extend((pos + s, pos + e) for s, e in self._spans_plain(part))
            pos += len(part)
        return spans

    def _spans_plain(self, text: str) -> list[tuple[int, int]]:
        """:meth:`token_spans` of text that holds no special token."""
        norm: list[str] = []
        origin: list[int] = []  # original index of each normalised character
        for i, ch in enumerate(text):
            out = ch.translate(self._table)
            norm.append(out)
            origin.extend([i] * len(out))
        joined = "".join(norm)
        if not self.is_wordpiece:
            return [(origin[m.start()], origin[m.end() - 1] + 1) for m in _BUILT_TOKEN_RE.finditer(joined)]
        spans: list[tuple[int, int]] = []
        for m in re.finditer(r"\S+", joined):
            word, start = m.group(), m.start()
            ids = [self._word_ids[word]] if word in self._word_ids else self._word_to_ids(word)
            if ids == [self._unk_id]:
                spans.append((origin[start], origin[m.end() - 1] + 1))
                continue
            for i in ids:
                n = len(self.vocab[i]) - (len(WORDPIECE_PREFIX) if self.vocab[i].startswith(WORDPIECE_PREFIX) else 0)
                spans.append((origin[start], origin[start + n - 1] + 1))
                start += n
        return spans

    def encode(
        self, text: str, max_len: int = 128, truncation: str = "head", head_tokens: int | None = None
    ) -> list[int]:
        """``[CLS]`` + token ids + ``[SEP]``, truncated so the total is <= ``max_len``.

        ``truncation`` keeps the ``head`` (default), the ``tail`` or ``head+tail`` of a long
        text (see :func:`cls_app.text.long_text.truncate`; ``head_tokens`` is the head's share).

        Raises:
            UserError: if ``max_len`` < 2 (no room for ``[CLS]`` and ``[SEP]``).
        """
        if max_len < 2:
            raise UserError(f"max_len must be at least 2 (room for [CLS] and [SEP]), got {max_len}")
        ids = self.token_ids(text)
        if len(ids) > max_len - 2:
            if truncation == "head":
                del ids[max_len - 2 :]
            else:
                ids = truncate(ids, max_len - 2, truncation, head_tokens)
        return [self._cls_id, *ids, self._sep_id]

    def encode_batch(
        self, texts: Sequence[str], max_len: int = 128, truncation: str = "head", head_tokens: int | None = None
    ) -> list[list[int]]:
        """:meth:`encode` each text (no padding; rows may differ in length)."""
        if isinstance(texts, str):
            raise TypeError("texts must be a sequence of strings, not a single string")
        if truncation == "head":
            encode = self.encode
            return [encode(text, max_len) for text in texts]
        return [self.encode(text, max_len, truncation, head_tokens) for text in texts]

    def decode(self, ids: Iterable[SupportsInt], skip_special_tokens: bool = False) -> str:
        """Join the tokens of ``ids`` into a readable string (for debugging).

        ``##`` pieces are glued to the previous token, CJK characters and punctuation are
        joined without spaces, and consecutive non-CJK words are separated by one space.
        """
        specials = set(SPECIAL_TOKENS)
        out: list[str] = []
        prev_word = False
        for tok in self.convert_ids_to_tokens(ids):
            if skip_special_tokens and tok in specials:
                continue
            if tok.startswith(WORDPIECE_PREFIX) and len(tok) > len(WORDPIECE_PREFIX):
                out.append(tok[len(WORDPIECE_PREFIX) :])
                continue
            is_word = bool(tok) and (
                tok in specials or not (len(tok) == 1 and (_is_chinese_char(ord(tok)) or _is_punctuation(tok)))
            )
            if is_word and prev_word:
                out.append(" ")
            out.append(tok)
            prev_word = is_word
        return "".join(out)
