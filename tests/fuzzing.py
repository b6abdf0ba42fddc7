"""Fuzzing support shared by ``tests/test_fuzz.py`` (short, fixed-seed CI profile) and
``bench/fuzz_long.py`` (long profile): generated hostile inputs, the property every reader and
command must keep, and per-reader case counts.

The property: a run either succeeds with every row accounted for (kept, or skipped and counted
per ``--on-bad-row``) or ends with :class:`~cls_app.errors.UserError` (CLI: exit status 2 and one
``error:`` line); never another exception, a traceback, a hang (each case runs under a time
bound) or a half-written output file.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

from cls_app.errors import UserError

# --------------------------------------------------------------------------- profiles

_COMMON = {"deadline": None, "database": None, "suppress_health_check": list(HealthCheck),
           "phases": [Phase.explicit, Phase.generate]}
settings.register_profile("fuzz-ci", derandomize=True, **_COMMON)
settings.register_profile("fuzz-long", derandomize=False, **_COMMON)

CASE_SECONDS = 60.0  # time bound per case (a hang fails the case)
CASES: Counter[str] = Counter()  # cases run per reader / command (bench/fuzz_long.py prints them)


class Hang(Exception):
    """A case ran past its time bound."""


@contextlib.contextmanager
def time_bound(seconds: float = CASE_SECONDS) -> Iterator[None]:
    """Raise :class:`Hang` in the block when it runs longer than ``seconds`` (main thread)."""

    def expire(signum: int, frame: Any) -> None:
        raise Hang(f"no result after {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def outcome(reader: str, fn: Callable[[], Any]) -> tuple[str, Any]:
    """Run one case: ``("ok", result)`` or ``("error", message)`` for a UserError; anything
    else (another exception, a hang) fails the case."""
    CASES[reader] += 1
    with time_bound():
        try:
            return "ok", fn()
        except UserError as exc:
            message = str(exc)
            assert message and "\n" not in message.strip(), f"{reader}: the error is not one line: {message!r}"
            return "error", message


# --------------------------------------------------------------------------- strategies

# characters that break parsers: separators, quotes, line ends, NUL, BOM, line/paragraph
# separators, surrogate-adjacent and astral characters, Chinese text
HOSTILE = list(',;|\t"\'\n\r \x00\ufeff\u2028\u2029\x85\\{}[]:#=') + ["好", "坏", "中", "é", "\ud7ff", "😀", "１"]
NA_WORDS = ["NA", "N/A", "nan", "NaN", "null", "None", "#N/A", "-", "0", "1.0", "TRUE"]
ENCODINGS = ["utf-8", "utf-8-sig", "gb18030", "gbk", "utf-16", "big5", "latin-1"]

cell_text = st.one_of(
    st.text(st.sampled_from(HOSTILE), max_size=12),
    st.text(max_size=8),
    st.sampled_from(NA_WORDS + ["", " ", "这个好", "这个差"]),
    st.builds(lambda c, n: c * n, st.sampled_from(["好", "a", '"']), st.integers(1000, 30000)),  # long fields
)


def encode(text: str, encoding: str) -> bytes:
    """``text`` in ``encoding``, falling back to UTF-8 where it has no code for a character."""
    return encode_as(text, encoding)[0]


def encode_as(text: str, encoding: str) -> tuple[bytes, str]:
    """(bytes, the encoding really used): ``encoding``, or UTF-8 where it has no code for a character."""
    try:
        return text.encode(encoding), encoding
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass"), "utf-8"


@dataclass
class Table:
    """A generated labelled table: its file bytes, extension and the rows written."""

    data: bytes
    ext: str
    rows: list[tuple[str, str]]  # (text, label) of every data row, in order
    fmt: str
    encoding: str = "utf-8"  # the encoding the bytes are in

    @property
    def unambiguous(self) -> bool:
        """Bytes any reader must decode as written: UTF-8 (with or without BOM) or UTF-16 with its BOM
        (a legacy 8-bit encoding may also be valid UTF-8 or GB18030, and is then read as that)."""
        return self.encoding in ("utf-8", "utf-8-sig", "utf-16")


@st.composite
def delimited_tables(draw: st.DrawFn) -> Table:
    """CSV/TSV with random quoting, extra columns, BOMs, line ends and encodings; rows known."""
    fmt = draw(st.sampled_from(["csv", "tsv"]))
    sep = "," if fmt == "csv" else "\t"
    extra = draw(st.lists(st.sampled_from(["id", "note", "x"]), max_size=2, unique=True))
    header = draw(st.permutations(["text", "label", *extra]))
    rows = draw(st.lists(st.tuples(cell_text, cell_text), min_size=1, max_size=8))
    quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC]))
    eol = draw(st.sampled_from(["\n", "\r\n", "\r"]))  # "\r": classic Mac line ends
    if eol != "\r\n" and any("\r" in cell or "\n" in cell for row in rows for cell in row):
        # the csv module quotes only for the characters of its own line terminator: a bare CR
        # (or LF) would go out unquoted and really end the record for every CSV reader (a
        # malformed file, not the rows we mean to write)
        quoting = csv.QUOTE_ALL
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=sep, quoting=quoting, lineterminator=eol)
    writer.writerow(header)
    for text, label in rows:
        cells = {"text": text, "label": label, "id": "7", "note": "", "x": "好"}
        writer.writerow([cells[c] for c in header])
    data, encoding = encode_as(buf.getvalue(), draw(st.sampled_from(ENCODINGS)))
    return Table(data, "." + fmt, rows, fmt, encoding)


@st.composite
def jsonl_tables(draw: st.DrawFn) -> Table:
    """JSONL objects with text/label of any JSON type (lists, numbers, null, nested)."""
    scalar = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(), cell_text)
    value = st.recursive(scalar, lambda c: st.lists(c, max_size=2) | st.dictionaries(st.sampled_from("ab"), c,
                                                                                    max_size=2), max_leaves=4)
    items = draw(st.lists(st.fixed_dictionaries({"text": value, "label": value},
                                                optional={"id": st.integers()}), min_size=1, max_size=8))
    ascii_only = draw(st.booleans())
    lines = [json.dumps(obj, ensure_ascii=ascii_only) for obj in items]
    data = "\n".join(lines) + draw(st.sampled_from(["", "\n", "\n\n"]))
    rows = [(obj["text"], obj["label"]) for obj in items]
    data, encoding = encode_as(data, draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16"])))
    return Table(data, ".jsonl", rows, "jsonl", encoding)


@st.composite
def garbage_files(draw: st.DrawFn) -> tuple[bytes, str]:
    """Random bytes, broken CSV/JSON, deep nesting, huge numbers, truncated multi-byte text."""
    kind = draw(st.sampled_from(["bytes", "text", "deep", "bigint", "ragged", "truncated"]))
    if kind == "bytes":
        data = draw(st.binary(max_size=400))
    elif kind == "text":
        data = encode(draw(st.text(st.sampled_from(HOSTILE), max_size=200)), draw(st.sampled_from(ENCODINGS)))
    elif kind == "deep":
        depth = draw(st.integers(10, 200_000))
        data = b'{"text": ' + b"[" * depth + b"]" * depth + b', "label": "a"}\n'
    elif kind == "bigint":
        data = b'{"text": "x", "label": ' + b"9" * draw(st.integers(4000, 20000)) + b"}\n"
    elif kind == "ragged":
        data = "\n".join(",".join(draw(st.lists(cell_text, max_size=5))) for _ in range(draw(st.integers(1, 6))))
        data = encode("text,label\n" + data, "utf-8")
    else:
        data = "text,label\n这个好,正面\n这个差,负面\n".encode(draw(st.sampled_from(["utf-8", "gb18030", "utf-16"])))
        data = data[: draw(st.integers(0, len(data)))]
    ext = draw(st.sampled_from([".csv", ".tsv", ".jsonl", ".json", ".txt", ""]))
    return data, ext


def write_case(folder: Path, data: bytes, ext: str) -> Path:
    """Write one generated file under a fresh name in ``folder``."""
    path = folder / f"case{time.monotonic_ns()}{ext}"
    path.write_bytes(data)
    return path


def left_behind(folder: Path) -> list[str]:
    """Temporary files or folders of the atomic writers left anywhere under ``folder``."""
    found = []
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            if (name.startswith(".") and name.endswith((".tmp", ".old"))) or name.startswith(".save."):
                found.append(os.path.relpath(os.path.join(root, name), folder))
    return found
