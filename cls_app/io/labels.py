"""Label sets: the labels of multi-label and hierarchical data, read from a label cell.

A multi-label cell holds labels separated by ``label_sep`` (default ``,``), or is a JSON list in
JSONL; an empty cell is a valid row with no label ("none of them"). A hierarchical label is a
path joined by ``path_sep`` (default ``##``, PaddleNLP's convention), e.g. ``体育##足球``; a
row may hold several paths (separated by ``label_sep``) and stands for every prefix of each
path, so ``体育##足球`` is both ``体育`` and ``体育##足球``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError, where
from .formats import read_table
from .pairs import join_columns
from .records import TASK_NAMES

log = logging.getLogger(__name__)

TASKS = TASK_NAMES
LABEL_SET_TASKS = TASK_NAMES[1:]


def check_task(task: str) -> str:
    if task not in TASKS:
        raise UserError(f"unknown --task {task!r}; choose one of {', '.join(TASKS)}")
    return task


def check_separators(opts: Any) -> None:
    """--label-sep and --path-sep must be non-empty and (hierarchical) differ."""
    for sep, flag in ((opts.label_sep, "--label-sep"), (opts.path_sep, "--path-sep")):
        if not sep:
            raise UserError(f"{flag} must be a non-empty string, got {sep!r}")
    if opts.task == "hierarchical" and (opts.label_sep in opts.path_sep or opts.path_sep in opts.label_sep):
        raise UserError(f"--label-sep {opts.label_sep!r} and --path-sep {opts.path_sep!r} overlap; choose "
                        "separators that cannot be mistaken for each other")


@dataclass
class LabelSetData:
    """Parallel lists of texts and their label sets (tuples, possibly empty), from ``source``."""

    texts: list[str]
    label_sets: list[tuple[str, ...]]
    source: str
    lines: list[int] | None = None
    skipped: int = 0

    def __post_init__(self) -> None:
        if len(self.texts) != len(self.label_sets):
            raise ValueError(f"{len(self.texts)} texts but {len(self.label_sets)} label sets")

    @property
    def labels(self) -> list[str]:
        """One string per row (its sorted labels joined by U+001F): for fingerprints and messages."""
        return ["\x1f".join(sorted(s)) for s in self.label_sets]

    def line_of(self, index: int) -> int | None:
        return None if self.lines is None else self.lines[index]

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, rows: list[int]) -> LabelSetData:
        return LabelSetData([self.texts[i] for i in rows], [self.label_sets[i] for i in rows], self.source,
                            None if self.lines is None else [self.lines[i] for i in rows])


def split_cell(value: Any, label_sep: str) -> list[str]:
    """The labels of one cell: a JSON list, or a string split at ``label_sep``; blanks dropped."""
    if value is None:
        return []
    items = value if isinstance(value, list) else str(value).split(label_sep)
    return [str(v).strip() for v in items if v is not None and str(v).strip()]


def path_prefixes(path: str, path_sep: str) -> list[str]:
    """``a##b##c`` -> ``[a, a##b, a##b##c]``; ValueError for an empty level."""
    parts = [p.strip() for p in path.split(path_sep)]
    if any(not p for p in parts):
        raise ValueError(f"label path {path!r} has an empty level")
    return [path_sep.join(parts[: i + 1]) for i in range(len(parts))]


def parse_label_cell(value: Any, task: str, label_sep: str = ",", path_sep: str = "##") -> tuple[str, ...]:
    """The label set of one cell (first-seen order, no repeats); hierarchical: every prefix."""
    labels = split_cell(value, label_sep)
    if task == "hierarchical":
        labels = [p for path in labels for p in path_prefixes(path, path_sep)]
    return tuple(dict.fromkeys(labels))


def load_label_sets(path: str | os.PathLike, opts: Any) -> LabelSetData:
    """Read a multi-label / hierarchical file with :class:`~cls_app.io.records.DataOptions` ``opts``.

    Empty texts follow ``opts.on_bad_row``; an empty label cell is a row with no label.
    """
    check_separators(opts)
    path = Path(path)
    df = read_table(path, opts.text_col, opts.label_col, opts.encoding, opts.fmt, require_labels=True,
                    label_lists=True)
    texts, sets, lines, bad = [], [], [], []
    texts_of_rows = join_columns(df, path, getattr(opts, "text_pair_col", None))
    for line, text, cell in zip(df.index, texts_of_rows, df["label"], strict=True):
        if text is None or not text.strip():
            if opts.on_bad_row == "error":
                raise UserError(f"{where(path, int(line))}: empty text; fix the row, or drop such rows with "
                                "--on-bad-row skip")
            bad.append(int(line))
            continue
        try:
            sets.append(parse_label_cell(cell, opts.task, opts.label_sep, opts.path_sep))
        except ValueError as exc:
            raise UserError(f"{where(path, int(line))}: {exc}; write paths like a{opts.path_sep}b") from None
        texts.append(text.strip("\r\n"))
        lines.append(int(line))
    if bad:
        log.warning("%s: dropped %d of %d rows with an empty text%s", path, len(bad), len(df),
                    f": rows {', '.join(map(str, bad[:5]))}" if opts.on_bad_row == "warn" else "")
    if not texts:
        raise UserError(f"{path}: no usable rows (every row has an empty text)")
    return LabelSetData(texts, sets, str(path), lines, skipped=len(bad))


def random_split(data: LabelSetData, fraction: float, seed: int) -> tuple[LabelSetData, LabelSetData]:
    """(train, held-out) at random, deterministic for ``seed`` (label sets are not stratified)."""
    if not 0.0 < float(fraction) < 1.0:
        raise UserError(f"the split fraction must be between 0 and 1, got {fraction}")
    n = len(data)
    n_out = int(-(-n * float(fraction) // 1))
    if n < 2 or n_out < 1 or n - n_out < 1:
        raise UserError(f"{data.source}: {n} examples are too few to split off a {fraction:.0%} part")
    order = np.random.default_rng(seed).permutation(n)
    return data.subset(sorted(order[n_out:].tolist())), data.subset(sorted(order[:n_out].tolist()))


def label_vocabulary(train: LabelSetData) -> list[str]:
    """Every label seen in training, sorted (numeric order when all look like integers)."""
    names = {name for s in train.label_sets for name in s}
    if not names:
        raise UserError(f"{train.source}: no row has a label; a multi-label classifier needs labelled rows")
    if all(n.lstrip("-").isdigit() for n in names):
        return sorted(names, key=int)
    return sorted(names)


def indicator_matrix(data: LabelSetData, labels: list[str], problem: str = "never appear in the training data "
                     "(known: {known}); add training examples of them or remove those rows") -> np.ndarray:
    """``(rows, labels)`` 0/1 matrix; a label outside ``labels`` is a user error naming its first row."""
    index = {name: j for j, name in enumerate(labels)}
    y = np.zeros((len(data), len(labels)), dtype=np.float32)
    for i, labels_of_row in enumerate(data.label_sets):
        for name in labels_of_row:
            j = index.get(name)
            if j is None:
                unknown = sorted({n for s in data.label_sets for n in s} - set(index))
                first = next(r for r, s in enumerate(data.label_sets) if set(s) & set(unknown))
                raise UserError(f"{where(data.source, data.line_of(first))}: label(s) "
                                f"{', '.join(map(repr, unknown[:5]))} " + problem.format(known=", ".join(labels)))
            y[i, j] = 1.0
    return y
