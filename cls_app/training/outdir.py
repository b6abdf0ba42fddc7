"""The output folder of a training run: refuse to clobber an unfinished run, clear an old one,
recognise a resumable checkpoint as belonging to the same data."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

from ..errors import UserError
from ..io.records import LabeledData
from ..modeling.folder import MODEL_FILES
from .checkpoint import find_checkpoint, read_state

log = logging.getLogger(__name__)


def data_fingerprint(*parts: LabeledData | list[str]) -> str:
    """A hash of the training data, to refuse resuming on changed files."""
    h = hashlib.sha256()
    for part in parts:
        items = part if isinstance(part, list) else [*part.texts, "\x01", *part.labels]
        for item in items:
            h.update(item.encode("utf-8", "surrogatepass"))
            h.update(b"\x00")
        h.update(b"\x02")
    return h.hexdigest()


def check_out_dir(out: Path, overwrite: bool) -> None:
    """Refuse to clobber an unfinished run unless asked; say how to resume it."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file, not a folder; choose a folder for the model")
    ckpt = find_checkpoint(out)
    if ckpt is None or overwrite:
        return
    state = read_state(ckpt)
    if state.get("done") and (out / "metrics.json").is_file():
        return  # a finished run whose checkpoint was kept (--keep-checkpoint)
    raise UserError(
        f"{out} holds an unfinished run (checkpoint at epoch {state.get('epoch')}, step {state.get('step')}); "
        f"continue it with `train --resume {out}`, or pass --overwrite to start over, or choose another --out"
    )


# what the main job writes (the BERT's files, and with --with-baselines the other kinds, their ensemble,
# comparison and recommendation): a new run removes the earlier run's before it writes anything
RUN_FILES = (*MODEL_FILES, "training_args.json", "metrics.json", "train_log.csv", "best.json", "job.json",
             "ood.safetensors", "ood.json")
RUN_DIRS = ("test_eval", "checkpoint", ".checkpoint.old", "ensemble", "baselines", "comparison")


def remove_stale_temps(out: Path) -> None:
    """Temporary files and folders a killed run left behind (never visible under a final name)."""
    if not out.is_dir():
        return
    for path in out.iterdir():
        if path.name.startswith(".") and (path.name.endswith(".tmp") or path.name.startswith(".save.")):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def clear_out_dir(out: Path) -> None:
    """Remove what an earlier run wrote to ``out`` (config.json first, so the folder stops looking like a model)."""
    remove_stale_temps(out)
    old = [name for name in (*RUN_FILES, *RUN_DIRS) if (out / name).exists()]
    if not old:
        return
    log.warning("%s: replacing the earlier run's files (%s)", out, ", ".join(old))
    for name in ("config.json", *RUN_FILES):
        (out / name).unlink(missing_ok=True)
    for name in RUN_DIRS:
        shutil.rmtree(out / name, ignore_errors=True)


def read_run_info(folder: Path) -> dict:
    try:
        return json.loads((folder / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise UserError(
            f"{folder}: the checkpoint is incomplete (run.json); start the run again without --resume"
        ) from None
