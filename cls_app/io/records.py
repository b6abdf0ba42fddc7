"""Labeled records: read a labeled file into texts and labels, split it, map labels to ids.

:class:`DataOptions` says where the labeled data comes from and how to read it (the one place
of those defaults); the task (:mod:`cls_app.tasks`) reads train/dev/test the same way for every
model, so all see the same held-out rows for the same seed.
"""

from __future__ import annotations

import logging
import math
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UserError, where
from ..settings import setting
from .formats import FORMATS, read_table
from .pairs import join_columns, join_pair

log = logging.getLogger(__name__)

ON_BAD_ROW = ("error", "skip", "warn")
TASK_NAMES = ("single-label", "multi-label", "hierarchical")
_WARN_ROWS = 5  # rows listed by on_bad_row="warn"


@dataclass
class LabeledData:
    """Parallel lists of texts and their label names, and the file they came from.

    ``lines`` holds each record's 1-based line in the file (when read from one), ``skipped``
    how many rows of the file were dropped as bad (``on_bad_row`` skip/warn).
    """

    texts: list[str]
    labels: list[str]
    source: str
    lines: list[int] | None = None
    skipped: int = 0

    def __post_init__(self) -> None:
        if len(self.texts) != len(self.labels):
            raise ValueError(f"{len(self.texts)} texts but {len(self.labels)} labels")
        if self.lines is not None and len(self.lines) != len(self.texts):
            raise ValueError(f"{len(self.texts)} texts but {len(self.lines)} line numbers")

    def line_of(self, index: int) -> int | None:
        """The file line of record ``index``, when known."""
        return None if self.lines is None else self.lines[index]

    def subset(self, rows: list[int]) -> LabeledData:
        """The records ``rows`` (in that order), same source."""
        return LabeledData([self.texts[i] for i in rows], [self.labels[i] for i in rows], self.source,
                           None if self.lines is None else [self.lines[i] for i in rows])

    def __len__(self) -> int:
        return len(self.texts)


def _problem(text: str | None, label: str | None) -> str | None:
    if text is None or not text.strip():
        return "empty text"
    if label is None or not label.strip():
        return "missing label"
    return None


def load_labeled(
    path: str | os.PathLike,
    text_col: str | None = None,
    label_col: str | None = None,
    encoding: str | None = None,
    fmt: str | None = None,
    on_bad_row: str = "error",
    text_pair_col: str | None = None,
) -> LabeledData:
    """Read a labelled file into :class:`LabeledData`.

    Rows with an empty (or whitespace-only) text or label are an error naming the file and
    row with ``on_bad_row="error"``; with ``"skip"`` or ``"warn"`` they are dropped and
    counted in a logged warning (``"warn"`` also lists the first few rows). Labels are
    stripped; texts only lose line breaks at their ends. With ``text_pair_col`` each text is a
    sentence pair (see :mod:`cls_app.io.pairs`); a row missing either text is an empty text.
    """
    if on_bad_row not in ON_BAD_ROW:
        raise UserError(f"unknown on_bad_row {on_bad_row!r}; choose one of {', '.join(ON_BAD_ROW)}")
    path = Path(path)
    df = read_table(path, text_col, label_col, encoding, fmt, require_labels=True)
    texts: list[str] = []
    labels: list[str] = []
    lines: list[int] = []
    bad: list[tuple[int, str]] = []
    for line, text, label in zip(df.index, join_columns(df, path, text_pair_col), df["label"], strict=True):
        problem = _problem(text, label)
        if problem is not None:
            if on_bad_row == "error":
                raise UserError(
                    f"{where(path, int(line))}: {problem}; fix the row, or drop such rows with --on-bad-row skip"
                )
            bad.append((int(line), problem))
            continue
        texts.append(str(text).strip("\r\n"))
        labels.append(str(label).strip())
        lines.append(int(line))
    if bad:
        message = f"{path}: dropped {len(bad)} of {len(df)} rows with an empty text or label"
        if on_bad_row == "warn":
            shown = ", ".join(f"row {line} ({problem})" for line, problem in bad[:_WARN_ROWS])
            more = f", and {len(bad) - _WARN_ROWS} more" if len(bad) > _WARN_ROWS else ""
            message += f": {shown}{more}"
        log.warning(message)
    if not texts:
        raise UserError(f"{path}: no usable rows (every row has an empty text or label)")
    return LabeledData(texts=texts, labels=labels, source=str(path), lines=lines, skipped=len(bad))


def stratified_split(data: LabeledData, test_size: float, seed: int) -> tuple[LabeledData, LabeledData]:
    """Split into (train, test), stratified by label when every class has >= 2 examples.

    Otherwise (or when the test part is too small to hold every class) the split is plain
    random, with a logged warning. Deterministic for a given ``seed``.
    """
    from sklearn.model_selection import train_test_split

    if not 0.0 < float(test_size) < 1.0:
        raise UserError(f"the split fraction must be between 0 and 1, got {test_size}")
    n = len(data)
    n_test = int(-(-n * float(test_size) // 1))  # ceil, as scikit-learn does
    if n < 2 or n_test < 1 or n - n_test < 1:
        raise UserError(f"{data.source}: {n} examples are too few to split off a {test_size:.0%} part")
    counts = Counter(data.labels)
    stratify = None
    if min(counts.values()) < 2:
        rare = sorted(label for label, count in counts.items() if count < 2)
        log.warning(
            "%s: classes with a single example (%s) prevent a stratified split; splitting at random",
            data.source,
            ", ".join(rare[:5]) + (", ..." if len(rare) > 5 else ""),
        )
    elif n_test < len(counts) or n - n_test < len(counts):
        log.warning(
            "%s: a %d/%d split cannot hold all %d classes on both sides; splitting at random",
            data.source,
            n - n_test,
            n_test,
            len(counts),
        )
    else:
        stratify = data.labels
    index = list(range(n))
    train_idx, test_idx = train_test_split(index, test_size=n_test, random_state=seed, shuffle=True, stratify=stratify)

    return data.subset(train_idx), data.subset(test_idx)


def label_ids(
    data: LabeledData,
    label2id: dict[str, int],
    problem: str = "never appear in the training data (known: {known}); add training examples of them "
    "or remove those rows",
) -> list[int]:
    """Map label names to ids; a label outside ``label2id`` is a user error naming its first row.

    ``problem`` completes the message after the labels (``{known}`` lists the known ones).
    """
    unknown = sorted(set(data.labels) - set(label2id))
    if unknown:
        first = next(i for i, name in enumerate(data.labels) if name in unknown)
        raise UserError(
            f"{where(data.source, data.line_of(first))}: label(s) {', '.join(map(repr, unknown[:5]))} "
            + problem.format(known=", ".join(label2id))
        )
    return [label2id[name] for name in data.labels]


def as_text(value: Any) -> str | None:
    """The text to classify, or None when the value is missing/empty (None, NaN, blank)."""
    if value is None:
        return None
    if isinstance(value, tuple | list) and len(value) == 2:  # a sentence pair (A, B)
        return join_pair(as_text(value[0]), as_text(value[1]))
    if isinstance(value, float) and math.isnan(value):
        return None
    text = value if isinstance(value, str) else str(value)
    return text if text.strip() else None


def label_list(train: LabeledData) -> list[str]:
    """Label names in id order: numeric order when all look like integers, else sorted."""
    names = set(train.labels)
    if len(names) < 2:
        raise UserError(
            f"{train.source}: training data has a single class ({', '.join(names) or 'none'}); "
            "a classifier needs at least two: add rows of another class"
        )
    if all(n.lstrip("-").isdigit() for n in names):
        return sorted(names, key=int)
    return sorted(names)


@dataclass(kw_only=True)
class ReadOptions:
    """How to read a table of texts (the reading flags every command shares)."""

    text_col: str | None = setting(None, "name of the text column (CSV/TSV/JSONL; default: guessed from common names)")
    text_pair_col: str | None = setting(None, "sentence pairs: the column of the second text (THUCNews-style .txt: "
                                        "text<TAB>text_b<TAB>label, any NAME)", metavar="NAME")
    label_col: str | None = setting(None, "name of the label column (CSV/TSV/JSONL)")
    encoding: str | None = setting(None, "file encoding (default: detect utf-8, utf-8-sig, utf-16, gb18030)")
    fmt: str | None = setting(None, f"file format: {', '.join(FORMATS)} (default: from the extension and content)",
                              flag="--format")
    on_bad_row: str = setting("error", "what to do with rows missing text or label (default: %(default)s)",
                              choices=ON_BAD_ROW)
    task: str = setting("single-label", "single-label (one class per row), multi-label (a set of labels per row, "
                        "maybe empty) or hierarchical (label paths such as 体育##足球) (default: %(default)s)",
                        choices=TASK_NAMES)
    label_sep: str = setting(",", "multi-label / hierarchical: separator between the labels of a cell (JSONL may "
                             "hold a JSON list instead) (default: %(default)s)")
    path_sep: str = setting("##", "hierarchical: separator between the levels of a label path (default: "
                            "%(default)s)")

    def read(self, path: str) -> LabeledData:
        """One labeled single-label file, read with these options."""
        return load_labeled(path, text_col=self.text_col, label_col=self.label_col, encoding=self.encoding,
                            fmt=self.fmt, on_bad_row=self.on_bad_row, text_pair_col=self.text_pair_col)


@dataclass(kw_only=True)
class DataOptions(ReadOptions):
    """Where the labeled data of a run comes from (train, dev, test) and how to read it."""

    train: str = setting(help="labeled training file (CSV, TSV, JSONL, THUCNews txt)")
    dev: str | None = setting(None, "labeled dev file (default: hold out --dev-fraction of train)")
    test: str | None = setting(None, "labeled test file, scored at the end")
    dev_fraction: float = setting(0.1, "share of train held out as dev when there is no --dev (default: "
                                  "%(default)s)")
