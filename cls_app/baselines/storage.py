"""The baseline folder format: write, recognise and load it without pickle.

Each baseline is saved in its own folder::

    NAME/baseline.json       kind, format_version, labels, features, classifier, settings, scores
    NAME/model.json          the fitted scikit-learn pipeline as a tree of plain values (:mod:`.state`)
    NAME/model.safetensors   its arrays (coefficients, idf weights, counts)

The folder is built under a temporary name and swapped into place whole. Loading constructs only
the classes :mod:`.state` allows, so a baseline folder from elsewhere cannot run code when loaded.

Folders of format 1 hold ``model.skops`` instead (the pipeline in skops format); they still load,
through ``skops.io.load`` with an explicit list of trusted types.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from ..errors import UserError
from ..fileio import atomic_dir, write_json

log = logging.getLogger(__name__)

FORMAT_VERSION = 2
SKOPS_FORMAT = 1  # model.skops
META_FILE = "baseline.json"
STATE_FILE = "model.json"
ARRAYS_FILE = "model.safetensors"
MODEL_FILES = (STATE_FILE, ARRAYS_FILE)
SKOPS_FILE = "model.skops"
KIND = "baseline"

# Types a format-1 file may contain beyond what skops trusts by default. Anything else in a
# model.skops file is refused at load time.
TRUSTED_TYPES = ["cls_app.baselines.jieba_tokens", "cls_app.baselines.tfidf.CompactTfidfVectorizer",
                 "cls_app.baselines.pairs.PairFeatures"]
# Folders written before the package was split name the vectorizer by its old module.
LEGACY_TYPES = {"cls_app.tfidf.CompactTfidfVectorizer": "cls_app.baselines.tfidf"}


def init_jieba() -> None:
    """Load jieba's dictionary now, so it is not counted as training or prediction time."""
    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()


def _alias_legacy_modules(untrusted: list[str]) -> list[str]:
    """Make the old module names in ``untrusted`` importable; return the types to trust."""
    import importlib

    for name in untrusted:
        if name in LEGACY_TYPES:
            old_module = name.rpartition(".")[0]
            sys.modules.setdefault(old_module, importlib.import_module(LEGACY_TYPES[name]))
    return [t for t in untrusted if t in TRUSTED_TYPES or t in LEGACY_TYPES]

def save_baseline(estimator, meta: dict, out_dir: str | Path) -> Path:
    """Write ``model.json``, ``model.safetensors`` and ``baseline.json`` into ``out_dir``, swapped in whole."""
    from safetensors.numpy import save_file

    from .state import encode

    arrays: dict = {}
    tree = encode(estimator, arrays)
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        save_file(arrays, str(tmp / ARRAYS_FILE))
        write_json(tmp / STATE_FILE, tree)
        write_json(tmp / META_FILE, {**meta, "format_version": FORMAT_VERSION})
    return out_dir


def is_baseline_dir(path: str | Path) -> bool:
    """True when ``path`` holds a baseline written by :func:`save_baseline`."""
    return (Path(path) / META_FILE).is_file()


def read_meta(path: Path) -> dict:
    """The checked ``baseline.json`` of ``path`` (a :class:`UserError` naming what is wrong)."""
    meta_path = path / META_FILE
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise UserError(f"{meta_path} is not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("kind") != KIND:
        raise UserError(f"{meta_path} is not a baseline description (no \"kind\": \"baseline\")")
    if meta.get("format_version") not in (FORMAT_VERSION, SKOPS_FORMAT):
        raise UserError(
            f"{path} uses baseline format {meta.get('format_version')!r}, this version reads formats "
            f"{SKOPS_FORMAT} and {FORMAT_VERSION}: retrain it with `run.py baseline`"
        )
    labels = meta.get("labels")
    if not isinstance(labels, list) or len(labels) < 2 or not all(isinstance(x, str) for x in labels):
        raise UserError(f"{meta_path}: 'labels' must list at least two class names")
    return meta


def load_baseline(path: str | Path) -> tuple:
    """Return ``(estimator, meta)`` from a baseline folder, refusing untrusted content."""
    path = Path(path)
    meta = read_meta(path)
    if meta["format_version"] == SKOPS_FORMAT:
        estimator, tokenized = _load_skops(path)
    else:
        estimator, tokenized = _load_state(path)
    if tokenized:  # the jieba tokenizer: load its dictionary before anyone times prediction
        init_jieba()
    classes = getattr(estimator, "classes_", None)
    if classes is None or not all(0 <= int(c) < len(meta["labels"]) for c in classes):
        raise UserError(f"{path}: the model's classes do not match the {len(meta['labels'])} labels in {META_FILE}")
    return estimator, meta


def _load_state(path: Path) -> tuple:
    """A folder's ``model.json`` / ``model.safetensors`` and whether it holds the jieba tokenizer."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    from .state import decode

    missing = [name for name in MODEL_FILES if not (path / name).is_file()]
    if missing:
        raise UserError(f"baseline folder {path} is incomplete: missing {', '.join(missing)}")
    try:
        tree = json.loads((path / STATE_FILE).read_text(encoding="utf-8"))
        arrays = load_file(str(path / ARRAYS_FILE))
    except (OSError, ValueError, RecursionError, SafetensorError) as exc:
        raise UserError(f"cannot read {path / STATE_FILE} / {ARRAYS_FILE}: {exc}") from None
    names: set[str] = set()
    try:
        estimator = decode(tree, arrays, names)
    except UserError as exc:
        raise UserError(f"{path / STATE_FILE} {exc}; it was not written by `run.py baseline`, so it is not "
                        "loaded") from None
    except Exception as exc:
        raise UserError(f"cannot load {path / STATE_FILE}: {exc}") from None
    return estimator, any(name.endswith(".jieba_tokens") for name in names)


def _load_skops(path: Path) -> tuple:
    """A format-1 folder's ``model.skops`` (trusted types only) and whether it holds the jieba tokenizer."""
    import skops.io as sio

    model_path = path / SKOPS_FILE
    if not model_path.is_file():
        raise UserError(f"baseline folder {path} is incomplete: missing {SKOPS_FILE}")
    try:
        untrusted = sio.get_untrusted_types(file=model_path)
    except Exception as exc:
        raise UserError(f"cannot read {model_path}: {exc}") from None
    refused = sorted(set(untrusted) - set(TRUSTED_TYPES) - set(LEGACY_TYPES))
    if refused:
        raise UserError(
            f"{model_path} contains types this app does not trust ({', '.join(refused[:5])}); "
            "it was not written by `run.py baseline`, so it is not loaded"
        )
    try:
        estimator = sio.load(model_path, trusted=_alias_legacy_modules(untrusted))
    except Exception as exc:
        raise UserError(f"cannot load {model_path}: {exc}") from None
    return estimator, bool(untrusted)
