"""Model folders without loading a model: which family a folder holds, what it records, its files.

Three families of folder, each self-describing:

* BERT: ``config.json`` (with this app's settings under ``cls_app``: format version, task,
  max length, ...), ``vocab.txt``, ``model.safetensors`` (:mod:`cls_app.modeling.folder`);
* TF-IDF baselines: ``baseline.json`` (``kind``, ``name``, labels, task), ``model.json`` and
  ``model.safetensors`` (older folders: ``model.skops``; :mod:`cls_app.baselines.storage`);
* ensembles: ``ensemble.json`` naming member folders (:mod:`cls_app.models.ensemble`);
* every other kind (fastText, TextCNN, a third-party kind): ``classifier.json`` (``family``, format
  version, labels, task, settings, and the ``files`` beside it).

A training folder may also hold ``best.json``, the model that ``train --with-baselines``
recommends (a path relative to the folder); :func:`follow_best` follows it.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from ..baselines.storage import META_FILE as BASELINE_FILE
from ..baselines.storage import MODEL_FILES as BASELINE_MODEL_FILES
from ..baselines.storage import SKOPS_FILE
from ..errors import UserError
from ..tasks import Task, task_from_settings

log = logging.getLogger(__name__)

BEST_FILE = "best.json"  # in a training output folder: the recommended model, {"path": relative folder, ...}
ENSEMBLE_FILE = "ensemble.json"
KIND_FILE = "classifier.json"  # the other kinds' description: {"family": ..., "files": [...], ...}
NOT_A_MODEL = ("is not a model folder (no config.json for BERT, no baseline.json for a baseline, no ensemble.json "
               "for an ensemble, no classifier.json for the other kinds)")


def folder_family(path: str | Path) -> str | None:
    """``"baseline"``, ``"bert"``, ``"ensemble"``, another kind's family (``classifier.json``), or None when ``path``
    is no model folder."""
    path = Path(path)
    if (path / BASELINE_FILE).is_file():
        return "baseline"
    if (path / KIND_FILE).is_file():
        info = _read_json(path / KIND_FILE)
        family = info.get("family") if isinstance(info, dict) else None
        return family if isinstance(family, str) and family.strip() else None
    if (path / ENSEMBLE_FILE).is_file():
        return "ensemble"
    if (path / "config.json").is_file():
        return "bert"
    return None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None


def folder_settings(path: str | Path) -> dict:
    """This app's settings a model folder records (BERT ``config.json`` ``cls_app``, ``baseline.json``
    or ``ensemble.json``), read without loading the model; {} when there are none."""
    path = Path(path)
    for name, key in ((BASELINE_FILE, None), (ENSEMBLE_FILE, None), (KIND_FILE, None), ("config.json", "cls_app")):
        info = _read_json(path / name)
        if isinstance(info, dict):
            section = info.get(key) if key else info
            return section if isinstance(section, dict) else {}
    return {}


def folder_task(path: str | Path) -> Task:
    """The task a model folder records (single-label when none)."""
    return task_from_settings(folder_settings(path))


def folder_text_pair_col(path: str | Path) -> str | None:
    """The second text's column of a model trained on sentence pairs, else None."""
    return folder_settings(path).get("text_pair_col") or None


PREFER = ("quality", "fast")
"""What a training folder's ``best.json`` is followed to: the recommended model, or the fast one beside it."""


def follow_best(path: str | Path, prefer: str = "quality") -> Path:
    """The folder ``path/best.json`` recommends (``prefer="fast"``: the fast model it names beside it, when it
    names one), or ``path`` when it holds none; logged when followed."""
    if prefer not in PREFER:
        raise UserError(f"--prefer must be one of {', '.join(PREFER)}, got {prefer!r}")
    path = Path(path)
    pointer = path / BEST_FILE
    if not pointer.is_file():
        return path
    info = _read_json(pointer)
    rel = info.get("path") if isinstance(info, dict) else None
    if not isinstance(rel, str):
        raise UserError(f"{pointer} is not a model pointer ({{\"path\": FOLDER}}); delete it, or pass --no-follow "
                        f"to use {path} itself")
    fast = info.get("fast") if isinstance(info, dict) else None
    if prefer == "fast":
        if isinstance(fast, dict) and isinstance(fast.get("path"), str):
            rel = fast["path"]
        else:
            log.warning("%s names no fast model; using the recommended one", pointer)
    target = Path(os.path.normpath(path / rel))
    if folder_family(target) is None:
        raise UserError(f"{pointer} points to {target}, which is not a model folder; rerun `train --with-baselines` "
                        f"or pass --no-follow to use {path} itself")
    if target != Path(os.path.normpath(path)):
        log.info("%s %s %s (%s); --no-follow uses %s itself", pointer,
                 "names as the fast model" if prefer == "fast" and rel != info["path"] else "recommends", target,
                 folder_family(target), path)
    return target


def member_paths(path: str | Path, meta: dict) -> list[Path]:
    """The member folders of an ensemble, resolved against the ensemble folder."""
    return [Path(os.path.normpath(Path(path) / m["path"])) for m in meta["members"]]


ABSTAIN_FILES = ("ood.safetensors", "ood.json")  # written by cls_app.models.ood (the json last)


def model_files(path: str | Path) -> list[Path]:
    """The files a model folder needs for prediction (reports and logs excluded); for an ensemble,
    ``ensemble.json`` and its members' files."""
    path = Path(path)
    family = folder_family(path)
    if family == "ensemble":
        meta = _read_json(path / ENSEMBLE_FILE)
        members = meta.get("members") if isinstance(meta, dict) else None
        if not isinstance(members, list):
            return [path / ENSEMBLE_FILE]
        found = [f for m in member_paths(path, meta) for f in model_files(m)]
        return [path / ENSEMBLE_FILE, *abstain_files(path), *found]
    if family == "baseline":
        names: tuple[str, ...] = (BASELINE_FILE, *BASELINE_MODEL_FILES, SKOPS_FILE)  # the files that exist
    elif (path / KIND_FILE).is_file():
        info = _read_json(path / KIND_FILE)
        listed = info.get("files") if isinstance(info, dict) else None
        extra = [str(n) for n in listed if isinstance(n, str)] if isinstance(listed, list) else []
        names = (KIND_FILE, *extra)
    else:
        from ..modeling.folder import MODEL_FILES as names  # imports torch: only for BERT folders
    return [path / n for n in names if (path / n).is_file()] + abstain_files(path)


def abstain_files(path: Path) -> list[Path]:
    """The folder's abstention files (``ood.safetensors``, ``ood.json``) when it has both."""
    found = [path / n for n in ABSTAIN_FILES]
    return found if all(f.is_file() for f in found) else []


VERSION_CHARS = 12
_WHOLE_BYTES = 16 << 20


def model_version(path: str | Path) -> str:
    """A short content hash of the files a model folder predicts with (:func:`model_files`): the same files give
    the same version wherever they are copied; any retraining gives another (files over 16 MB count by their size
    and their first and last megabyte)."""
    import hashlib

    digest = hashlib.sha256()
    root = Path(path)
    for f in sorted(model_files(root)):
        size = f.stat().st_size
        digest.update(f"{os.path.relpath(f, root)}\0{size}\0".encode())
        with open(f, "rb") as fh:
            if size <= _WHOLE_BYTES:
                digest.update(fh.read())
            else:
                digest.update(fh.read(1 << 20))
                fh.seek(-(1 << 20), os.SEEK_END)
                digest.update(fh.read())
    return digest.hexdigest()[:VERSION_CHARS]


def model_size_bytes(path: str | Path) -> int:
    """Bytes on disk of the files needed for prediction."""
    return sum(p.stat().st_size for p in model_files(path))


def train_seconds(path: str | Path) -> float | None:
    """Training time recorded in the folder (baseline.json or BERT's metrics.json), if any; for an
    ensemble, its members' summed (None when one is unknown) plus the fitting."""
    path = Path(path)
    family = folder_family(path)
    if family == "ensemble":
        meta = _read_json(path / ENSEMBLE_FILE)
        if not isinstance(meta, dict) or not isinstance(meta.get("members"), list):
            return None
        parts = [train_seconds(m) for m in member_paths(path, meta)]
        fit = (meta.get("fit") or {}).get("seconds", 0.0)
        return None if None in parts else float(sum(p or 0.0 for p in parts)) + float(fit or 0.0)
    info = _read_json(path / (BASELINE_FILE if family == "baseline" else "metrics.json"))
    value = info.get("train_seconds") if isinstance(info, dict) else None
    return float(value) if isinstance(value, int | float) else None
