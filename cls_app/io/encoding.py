"""Bytes and encodings: open, detect, decode and stream text files of any size.

Encodings: UTF-8 (with or without a BOM), UTF-16 with a BOM, and GB18030 (a superset of GBK
and GB2312) are detected; any other codec can be named explicitly. A bad byte is a
:class:`~cls_app.errors.UserError` naming the file, line and byte offset.
"""

from __future__ import annotations

import codecs
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from ..errors import UserError, where

HEAD_CHARS = 256 * 1024  # characters read to sniff a file's format

def read_bytes(path: str | os.PathLike) -> bytes:
    with open_binary(path) as fh:
        return fh.read()


def _error_start(data: bytes, e: UnicodeDecodeError) -> int:
    """Offset in ``data`` of a decode error.

    A codec may report it in the part it decoded after skipping a prefix (``utf-8-sig``
    skips the BOM), so ``e.start`` is shifted by what was skipped.
    """
    obj = e.object
    if isinstance(obj, bytes | bytearray) and obj is not data and len(obj) <= len(data) and data.endswith(obj):
        return e.start + len(data) - len(obj)
    return e.start


def _bad_byte(raw: bytes, encoding: str) -> str | None:
    """Describe where ``raw`` stops decoding as ``encoding``, or None when it decodes."""
    try:
        raw.decode(encoding)
    except UnicodeDecodeError as e:
        start = _error_start(raw, e)
        line = raw.count(b"\n", 0, start) + 1
        return f"{encoding}: bad byte 0x{raw[start]:02x} at offset {start} (line {line})"
    return None


def check_codec(encoding: str) -> str:
    try:
        return codecs.lookup(encoding).name
    except (LookupError, TypeError, ValueError):
        raise UserError(
            f"unknown encoding {encoding!r}; use a Python codec name such as utf-8, gb18030 or gbk"
        ) from None


def _candidates(head: bytes) -> list[str]:
    """Encodings to try, in order, for a file that starts with ``head`` (its first bytes)."""
    if head.startswith(codecs.BOM_UTF8):
        return ["utf-8-sig"]
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return ["utf-16"]
    return ["utf-8", "gb18030"]


def _explicit(head: bytes, encoding: str) -> str:
    name = check_codec(encoding)
    if name == "utf-8" and head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"  # otherwise the BOM would stick to the first column name
    return name


def _undetected(path: str | os.PathLike, problems: list[str]) -> UserError:
    return UserError(
        f"{path}: cannot tell the text encoding ({'; '.join(problems)}); pass the encoding explicitly (--encoding NAME)"
    )


def detect_bytes_encoding(raw: bytes, path: str | os.PathLike, encoding: str | None) -> str:
    if encoding is not None:
        return _explicit(raw, encoding)
    problems = []
    for enc in _candidates(raw):
        problem = _bad_byte(raw, enc)
        if problem is None:
            return enc
        problems.append(problem)
    raise _undetected(path, problems)


# Streaming: files larger than memory are decoded block by block.

_BLOCK_BYTES = 1 << 20


class _BadBytes(Exception):
    """Where a streamed file stops decoding: encoding, byte offset, 1-based line, the byte."""

    def __init__(self, encoding: str, offset: int, line: int, byte: int) -> None:
        super().__init__(encoding, offset, line, byte)
        self.encoding, self.offset, self.line, self.byte = encoding, offset, line, byte

    def describe(self) -> str:
        return f"{self.encoding}: bad byte 0x{self.byte:02x} at offset {self.offset} (line {self.line})"

    def user_error(self, path: str | os.PathLike) -> UserError:
        return UserError(
            f"{where(path, self.line)}: not valid {self.encoding} (bad byte 0x{self.byte:02x} at offset "
            f"{self.offset}); pass the right encoding (--encoding NAME) or omit it to detect"
        )


def open_binary(path: str | os.PathLike) -> BinaryIO:
    path = Path(path)
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise UserError(f"{path}: file not found; check the path (relative paths start at {Path.cwd()})") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a folder, not a file") from None
    except PermissionError:
        raise UserError(f"{path}: permission denied") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read: {e.strerror or e}") from None


def _read_head(path: str | os.PathLike, n: int) -> bytes:
    with open_binary(path) as fh:
        return fh.read(n)


def _iter_decoded(path: str | os.PathLike, encoding: str, block_bytes: int = _BLOCK_BYTES) -> Iterator[str]:
    """Decode ``path`` block by block (memory stays flat); raises :class:`_BadBytes`."""
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    offset = newlines = 0  # bytes read, and newline bytes among them, before the current block
    with open_binary(path) as fh:
        while True:
            block = fh.read(block_bytes)
            final = not block
            pending = decoder.getstate()[0]
            try:
                text = decoder.decode(block, final=final)
            except UnicodeDecodeError as e:
                data = pending + block
                start = min(_error_start(data, e), len(data) - 1)
                line = newlines - pending.count(b"\n") + data.count(b"\n", 0, start) + 1
                raise _BadBytes(encoding, offset - len(pending) + start, line, data[start]) from None
            offset += len(block)
            newlines += block.count(b"\n")
            if text:
                yield text
            if final:
                return


def _stream_bad_byte(path: str | os.PathLike, encoding: str) -> str | None:
    """Like :func:`_bad_byte`, reading the file block by block."""
    try:
        for _ in _iter_decoded(path, encoding):
            pass
    except _BadBytes as e:
        return e.describe()
    return None


def iter_lines(path: str | os.PathLike, encoding: str) -> Iterator[str]:
    """The lines of ``path``, split on ``\\n`` only, each kept with its ``\\n``; read block by block.

    A bad byte is a :class:`UserError` naming the file, line and byte.
    """
    rest = ""
    try:
        for text in _iter_decoded(path, encoding):
            parts = (rest + text).split("\n")
            rest = parts.pop()
            for part in parts:
                yield part + "\n"
    except _BadBytes as e:
        raise e.user_error(path) from None
    if rest:
        yield rest


def detect_encoding(path: str | os.PathLike, encoding: str | None = None) -> str:
    """Return the encoding to read ``path`` with.

    ``"utf-8-sig"`` when the file starts with a UTF-8 BOM, ``"utf-16"`` with a UTF-16 BOM,
    ``"utf-8"`` when the whole file decodes as UTF-8 (plain ASCII and empty files included),
    else ``"gb18030"`` (covers GBK and GB2312) when it decodes as that. An explicit
    ``encoding`` is checked to be a known codec and returned (normalised). The file is read
    block by block, so this works on files larger than memory.
    """
    if encoding is not None:
        check_codec(encoding)  # report a bad name before touching the file
        return _explicit(_read_head(path, 4), encoding)
    problems = []
    for enc in _candidates(_read_head(path, 4)):
        problem = _stream_bad_byte(path, enc)
        if problem is None:
            return enc
        problems.append(problem)
    raise _undetected(path, problems)


def decode_bytes(raw: bytes, path: str | os.PathLike, encoding: str) -> str:
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as e:
        start = _error_start(raw, e)
        line = raw.count(b"\n", 0, start) + 1
        raise UserError(
            f"{where(path, line)}: not valid {encoding} (bad byte 0x{raw[start]:02x} at "
            f"offset {start}); pass the right encoding (--encoding NAME) or omit it to detect"
        ) from None


def split_lines(text: str) -> list[str]:
    """Split on ``\\n`` only (not on the Unicode separators str.splitlines also uses)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]

def head_text(path: str | os.PathLike, encoding: str, chars: int = HEAD_CHARS) -> str:
    """The first ``chars`` characters of ``path`` (fewer at the end of the file)."""
    parts: list[str] = []
    size = 0
    try:
        for text in _iter_decoded(path, encoding, block_bytes=min(_BLOCK_BYTES, 4 * chars)):
            parts.append(text)
            size += len(text)
            if size >= chars:
                break
    except _BadBytes as e:
        raise e.user_error(path) from None
    return "".join(parts)[:chars]
