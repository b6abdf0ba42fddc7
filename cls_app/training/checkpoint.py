"""Resumable training checkpoints: ``OUT/checkpoint/``, written as a whole or not at all.

A checkpoint folder holds everything needed to continue a run exactly where it stopped:

* ``config.json``, ``model.safetensors`` -- the current weights (``save_pretrained``);
* ``best_model.safetensors`` -- the best weights so far, unless they are the current ones;
* ``optimizer.pt``, ``scheduler.pt`` -- AdamW and LR-scheduler state dicts (tensors and
  plain Python values only; read back with ``torch.load(weights_only=True)``);
* ``rng.safetensors`` -- the torch and NumPy random states (``state.json`` keeps Python's);
* ``state.json`` -- the data position (epoch, next batch), step counters, best dev metric,
  early-stopping counter, training log history;
* whatever the caller adds (the training pipeline adds ``vocab.txt``).

The folder is built under a temporary name and swapped into place (:func:`atomic_dir`), so a
run killed while saving leaves the previous checkpoint intact. Nothing here unpickles
arbitrary objects.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ..errors import UserError
from ..fileio import atomic_dir, write_json

log = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoint"
STATE_FILE = "state.json"
CHECKPOINT_VERSION = 1


def checkpoint_path(out_dir: str | Path) -> Path:
    """The checkpoint folder of a training output folder."""
    return Path(out_dir) / CHECKPOINT_DIR


def find_checkpoint(out_dir: str | Path) -> Path | None:
    """The complete checkpoint in ``out_dir``, or None.

    :func:`atomic_dir` moves the old folder aside for an instant while swapping in the new
    one; a run killed in that instant leaves ``.checkpoint.old``, which is used then.
    """
    for path in (checkpoint_path(out_dir), Path(out_dir) / f".{CHECKPOINT_DIR}.old"):
        if (path / STATE_FILE).is_file():
            return path
    return None


def rng_state() -> tuple[dict[str, torch.Tensor], dict]:
    """Torch and NumPy random states as tensors, Python's as JSON."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    tensors = {
        "torch": torch.get_rng_state(),
        "numpy_keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
    }
    py_version, py_state, py_gauss = random.getstate()
    info = {
        "numpy": {"kind": kind, "pos": int(pos), "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "python": {"version": py_version, "state": list(py_state), "gauss": py_gauss},
    }
    return tensors, info


def set_rng_state(tensors: dict[str, torch.Tensor], info: dict) -> None:
    """Restore what :func:`rng_state` captured."""
    torch.set_rng_state(tensors["torch"])
    n = info["numpy"]
    keys = tensors["numpy_keys"].numpy().astype(np.uint32)
    np.random.set_state((n["kind"], keys, n["pos"], n["has_gauss"], n["gauss"]))
    p = info["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))


def _contiguous(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().contiguous().cpu() for k, v in state.items()}


def save_checkpoint(
    path: str | Path,
    model: Any,  # a transformers PreTrainedModel
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    state: dict,
    best_state: dict[str, torch.Tensor] | None,
    extra: Callable[[Path], None] | None = None,
) -> Path:
    """Write a complete checkpoint folder at ``path`` (replacing the previous one atomically)."""
    tensors, rng_info = rng_state()
    with atomic_dir(path) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        if best_state is not None:
            save_file(_contiguous(best_state), str(tmp / "best_model.safetensors"))
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
        save_file(tensors, str(tmp / "rng.safetensors"))
        if extra is not None:
            extra(tmp)
        write_json(tmp / STATE_FILE, {"version": CHECKPOINT_VERSION, **state, "rng": rng_info})
    return Path(path)


def read_state(path: str | Path) -> dict:
    """``state.json`` of a checkpoint folder; a :class:`UserError` when unreadable."""
    file = Path(path) / STATE_FILE
    try:
        state = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(
            f"{file}: cannot read the checkpoint state ({exc}); start the run again without --resume"
        ) from None
    if not isinstance(state, dict) or state.get("version") != CHECKPOINT_VERSION:
        raise UserError(
            f"{file}: checkpoint format {state.get('version') if isinstance(state, dict) else None!r} is not "
            f"{CHECKPOINT_VERSION}; start the run again without --resume"
        )
    return state


def _torch_load(file: Path) -> dict:
    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # missing, truncated or not a plain state dict
        raise UserError(f"{file}: cannot load ({type(exc).__name__}); start the run again without --resume") from None


def _safetensors(file: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(file))
    except Exception as exc:
        raise UserError(f"{file}: cannot load ({type(exc).__name__}); start the run again without --resume") from None


@dataclass
class Restored:
    """What :func:`restore_checkpoint` read back besides the objects it loaded into."""

    state: dict
    best_state: dict[str, torch.Tensor] | None


def restore_checkpoint(
    path: str | Path,
    model: Any,  # a transformers PreTrainedModel
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
) -> Restored:
    """Load weights, optimizer, scheduler and random states from ``path``; return the rest."""
    path = Path(path)
    state = read_state(path)
    weights = _safetensors(path / "model.safetensors")
    try:
        model.load_state_dict(weights, strict=True)
        optimizer.load_state_dict(_torch_load(path / "optimizer.pt"))
        scheduler.load_state_dict(_torch_load(path / "scheduler.pt"))
    except (RuntimeError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{path}: checkpoint does not fit this model ({first}); start the run again") from None
    best = path / "best_model.safetensors"
    best_state = _safetensors(best) if best.is_file() else None
    set_rng_state(_safetensors(path / "rng.safetensors"), state["rng"])
    log.info("resumed from %s: epoch %d, batch %d, step %d", path, state["epoch"], state["batch"], state["step"])
    return Restored(state=state, best_state=best_state)
