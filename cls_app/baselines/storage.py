"""The baseline folder format: write, recognise and load it without pickle.

Each baseline is saved in its own folder::

    NAME/baseline.json   kind, format_version, labels, features, classifier, settings, scores
    NAME/model.skops     the fitted scikit-learn pipeline, in skops format (no pickle)

The folder is built under a temporary name and swapped into place whole. Loading uses
``skops.io.load`` with an explicit list of trusted types: a file that contains anything else
is refused, so a baseline folder from elsewhere cannot run code when loaded.
"""

from __future__ import annotations

import json
import logging
import sys
import zipfile
from pathlib import Path

from ..errors import UserError
from ..fileio import atomic_dir, write_json

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
META_FILE = "baseline.json"
MODEL_FILE = "model.skops"
KIND = "baseline"

# Types a baseline file may contain beyond what skops trusts by default. Anything else in a
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
    """Write ``model.skops`` and ``baseline.json`` into ``out_dir``, swapped in as a whole."""
    import skops.io as sio

    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        sio.dump(estimator, tmp / MODEL_FILE, compression=zipfile.ZIP_DEFLATED)
        write_json(tmp / META_FILE, meta)
    return out_dir

def is_baseline_dir(path: str | Path) -> bool:
    """True when ``path`` holds a baseline written by :func:`save_baseline`."""
    return (Path(path) / META_FILE).is_file()

def load_baseline(path: str | Path) -> tuple:
    """Return ``(estimator, meta)`` from a baseline folder, refusing untrusted content."""
    import skops.io as sio

    path = Path(path)
    meta_path, model_path = path / META_FILE, path / MODEL_FILE
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise UserError(f"{meta_path} is not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("kind") != KIND:
        raise UserError(f"{meta_path} is not a baseline description (no \"kind\": \"baseline\")")
    if meta.get("format_version") != FORMAT_VERSION:
        raise UserError(
            f"{path} uses baseline format {meta.get('format_version')!r}, this version reads "
            f"format {FORMAT_VERSION}: retrain it with `run.py baseline`"
        )
    labels = meta.get("labels")
    if not isinstance(labels, list) or len(labels) < 2 or not all(isinstance(x, str) for x in labels):
        raise UserError(f"{meta_path}: 'labels' must list at least two class names")
    if not model_path.is_file():
        raise UserError(f"baseline folder {path} is incomplete: missing {MODEL_FILE}")
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
    if untrusted:  # the jieba tokenizer: load its dictionary before anyone times prediction
        init_jieba()
    classes = getattr(estimator, "classes_", None)
    if classes is None or not all(0 <= int(c) < len(labels) for c in classes):
        raise UserError(f"{model_path}: the model's classes do not match the {len(labels)} labels in {META_FILE}")
    return estimator, meta
