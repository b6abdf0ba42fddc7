"""Script normalisation: what every model kind sees of a text, whatever script the user wrote it in.

Users train on one script and predict on another (Hong Kong, Taiwan, overseas, mixed sources). A
model's **script** setting (:data:`SCRIPTS`, stored in its folder, applied the same way when fitting
and when predicting) says what its features see:

* ``auto`` (the default of new models): full-width ASCII, the ideographic space, half-width forms
  and CJK compatibility ideographs folded (NFKC on those characters only, so the row, its length
  class and its punctuation otherwise stay as written), then OpenCC's phrase-level traditional to
  simplified conversion (``t2s``; a simplified text is left as it is);
* ``t2s`` / ``s2t``: the folding, then that conversion;
* ``keep``: the text as it is (every folder written before this setting existed).

Only the model's view changes: every output (``predict``'s rows, the service's answers, the
reports) keeps the user's original text. :func:`script_of` tells which script a text is written in
(``simplified``, ``traditional``, ``mixed``, ``none``: no character that differs between the two),
for the per-script reports and the audit.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence
from typing import Any

__all__ = ["SCRIPTS", "SCRIPT_NAMES", "Normalizer", "fold", "normalizer", "script_of", "scripts_of"]

SCRIPTS = ("auto", "keep", "t2s", "s2t")
"""The script settings a model takes."""
DEFAULT = "auto"
LEGACY = "keep"
"""What a folder that records no script setting does (it was written before there was one)."""
SCRIPT_NAMES = ("simplified", "traditional", "mixed", "none")


def _fold_table() -> dict[int, str]:
    """Full-width ASCII, the ideographic space, half-width forms and CJK compatibility ideographs: what NFKC
    makes of each (only those it changes)."""
    spans = [(0xFF01, 0xFF5E), (0x3000, 0x3000), (0xFF61, 0xFFEE), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)]
    table = {}
    for lo, hi in spans:
        for o in range(lo, hi + 1):
            folded = unicodedata.normalize("NFKC", chr(o))
            if folded != chr(o) and "\n" not in folded and "\r" not in folded:
                table[o] = folded
    return table


FOLD = _fold_table()


_FOLDABLE = re.compile("[\uFF01-\uFF5E\u3000\uFF61-\uFFEE\uF900-\uFAFF\U0002F800-\U0002FA1F]")


_SURROGATE = re.compile("([\ud800-\udfff])")


def fold(text: str) -> str:
    """Full-width ASCII, the ideographic space, half-width forms and CJK compatibility ideographs as NFKC spells
    them; every other character as it is (so nothing else changes, and no line break appears)."""
    if text.isascii():
        return text
    for c in set(_FOLDABLE.findall(text)):  # the few distinct ones present, each replaced at C speed
        text = text.replace(c, FOLD[ord(c)]) if ord(c) in FOLD else text
    return text


@functools.lru_cache(maxsize=4)
def _opencc(config: str) -> Any:
    import opencc

    return opencc.OpenCC(config)


class Normalizer:
    """The view of ``mode`` (:data:`SCRIPTS`): :meth:`texts` converts a list (the last list converted is
    remembered by value, so the members of an ensemble and the steps of a fit convert it once, and a list
    changed in place is converted again)."""

    def __init__(self, mode: str) -> None:
        from ..errors import UserError

        if mode not in SCRIPTS:
            raise UserError(f"--script must be one of {', '.join(SCRIPTS)}, got {mode!r}")
        self.mode = mode
        self.conversion = {"auto": "t2s", "t2s": "t2s", "s2t": "s2t", "keep": None}[mode]
        self._last: tuple[list, list] | None = None

    def text(self, text: str) -> str:
        if self.mode == "keep":
            return text
        folded = fold(text)
        if not self.conversion:
            return folded
        try:
            return _opencc(self.conversion).convert(folded)
        except UnicodeEncodeError:  # a lone surrogate (OpenCC takes UTF-8): convert around it, keep it as it is
            convert = _opencc(self.conversion).convert
            return "".join(part if _SURROGATE.fullmatch(part) else convert(part)
                           for part in _SURROGATE.split(folded) if part)

    def texts(self, texts: Sequence[str]) -> list[str]:
        """Every text converted, in order (one in, one out: the rows stay aligned)."""
        if self.mode == "keep":
            return texts if isinstance(texts, list) else list(texts)
        given = list(texts)
        last = self._last
        if last is not None and last[0] == given:  # same strings (compared by identity first: cheap)
            return list(last[1])
        out = self._convert(given)
        self._last = (given, out)
        return list(out)

    def _convert(self, texts: list[str]) -> list[str]:
        """:meth:`text` of each: the texts joined by line breaks are folded and converted in one call (nine times
        faster than a call a text) when no text has a line break of its own and as many rows come back."""
        joined = "\n".join(texts)
        if len(texts) > 1 and joined.count("\n") == len(texts) - 1 and not _SURROGATE.search(joined):
            folded = fold(joined)  # (no folded form is a line break)
            out = (_opencc(self.conversion).convert(folded) if self.conversion else folded).split("\n")
            if len(out) == len(texts):
                return out
        return [self.text(t) for t in texts]


@functools.cache
def normalizer(mode: str) -> Normalizer:
    """The one :class:`Normalizer` of ``mode`` (shared by every model of that setting)."""
    return Normalizer(mode)


@functools.lru_cache(maxsize=1 << 16)
def _char_script(c: str) -> int:
    """1: only traditional (t2s changes it), 2: only simplified (s2t changes it), 0: either or not Han."""
    if c.isascii():
        return 0
    if _opencc("t2s").convert(c) != c:
        return 1
    if _opencc("s2t").convert(c) != c:
        return 2
    return 0


def script_of(text: str) -> str:
    """``simplified``, ``traditional``, ``mixed`` (characters of both) or ``none`` (no character that differs)."""
    seen = {_char_script(c) for c in text if not c.isascii()}
    if 1 in seen and 2 in seen:
        return "mixed"
    if 1 in seen:
        return "traditional"
    if 2 in seen:
        return "simplified"
    return "none"


def scripts_of(texts: Sequence[str | None]) -> list[str]:
    """:func:`script_of` of every text (``none`` for a missing one)."""
    return [script_of(t) if t else "none" for t in texts]
