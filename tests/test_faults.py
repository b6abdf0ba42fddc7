"""Disk full and I/O errors at every write site, injected where data becomes durable and visible
(:func:`cls_app.fileio._sync` -- the write -- and :func:`cls_app.fileio._publish` -- the rename).

Each case: the command ends with exit status 2 and one line ``error: cannot write PATH: REASON``
naming the final path, no temporary file or lock is left behind, and the previous output is
intact and loadable. ``FAULT_MATRIX`` is the matrix in docs/reliability.md.
"""

from __future__ import annotations

import errno
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

import cls_app.fileio as fileio

from .conftest import TINY_MODEL_ARGS, run_main, toy_texts, write_csv
from .fuzzing import left_behind

FAULTS = {  # name -> (where it strikes, errno)
    "ENOSPC on write": ("sync", errno.ENOSPC),
    "EIO on write": ("sync", errno.EIO),
    "ENOSPC on rename": ("publish", errno.ENOSPC),
}


@dataclass
class Site:
    """One write site: the command that writes it, the file or folder name the fault hits."""

    name: str
    hit: str  # file or folder name (final name) the fault strikes
    previous: str | None  # what must survive (relative to the case folder); None: a new output


SITES = [
    Site("train: model folder", "model.safetensors", None),
    Site("train: checkpoint", "checkpoint", None),
    Site("train: train_log.csv", "train_log.csv", None),
    Site("train: metrics.json", "metrics.json", None),
    Site("train: test report", "report.txt", None),
    Site("predict --output", "pred.csv", "pred.csv"),
    Site("evaluate report", "report.txt", "eval"),
    Site("baseline folder", "char_lr", "base/char_lr"),
    Site("pretrain save", "pretrain_state.pt", None),
]


def _hits(path: Path, name: str) -> bool:
    """``path`` is ``name`` or a temporary stand-in for it (``.NAME.xxxx.tmp``)."""
    return path.name == name or path.name.startswith(f".{name}.")


def inject(monkeypatch: pytest.MonkeyPatch, fault: str, name: str) -> list[Path]:
    """Make the first write (or rename) of ``name`` fail with ``fault``; returns the paths hit."""
    stage, code = FAULTS[fault]
    hit: list[Path] = []
    original = getattr(fileio, f"_{stage}")

    def failing(*paths: Path) -> None:
        target = paths[-1]  # _sync(tmp) / _publish(tmp, final)
        if not hit and _hits(target, name):
            hit.append(target)
            raise OSError(code, os.strerror(code))
        original(*paths)

    monkeypatch.setattr(fileio, f"_{stage}", failing)
    return hit


def _digest(path: Path) -> dict[str, str]:
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {str(p.relative_to(path.parent)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    """Toy data and a trained tiny model."""
    folder = tmp_path_factory.mktemp("faults")
    files = {split: write_csv(folder / f"{split}.csv", *toy_texts(n, seed))
             for split, n, seed in (("train", 96, 1), ("dev", 30, 2), ("test", 30, 3))}
    (folder / "corpus.txt").write_text("\n".join(toy_texts(80, 4)[0]) + "\n", encoding="utf-8")
    from cls_app.commands import main

    assert main(["-q", "train", "--train", str(files["train"]), "--dev", str(files["dev"]), "--out",
                 str(folder / "model"), "--epochs", "1", "--no-cache", *TINY_MODEL_ARGS]) == 0
    return {**files, "model": folder / "model", "corpus": folder / "corpus.txt"}


def command(site: Site, w: dict[str, Path], case: Path) -> list[str]:
    train = ["-q", "train", "--train", str(w["train"]), "--dev", str(w["dev"]), "--out", str(case / "run"),
             "--epochs", "1", "--batch-size", "16", "--save-every", "2", "--no-cache", "--threads", "1",
             *TINY_MODEL_ARGS]
    if site.name.startswith("train"):
        return train + (["--test", str(w["test"])] if "test" in site.name else [])
    if site.name.startswith("predict"):
        return ["-q", "predict", "--model", str(w["model"]), "--input", str(w["test"]), "--output",
                str(case / "pred.csv"), "--threads", "1"]
    if site.name.startswith("evaluate"):
        return ["-q", "evaluate", "--model", str(w["model"]), "--data", str(w["test"]), "--out", str(case / "eval")]
    if site.name.startswith("baseline"):
        return ["-q", "baseline", "--train", str(w["train"]), "--dev", str(w["dev"]), "--out", str(case / "base"),
                "--models", "char_lr"]
    return ["-q", "pretrain", "--corpus", str(w["corpus"]), "--out", str(case / "pre"), "--steps", "2",
            "--save-every", "1", "--batch-size", "4", "--max-len", "32", "--layers", "1", "--hidden", "32",
            "--heads", "2", "--intermediate", "64", "--min-freq", "1", "--threads", "1"]


def _loadable(path: Path) -> bool:
    if path.suffix == ".csv":
        import pandas as pd

        return len(pd.read_csv(path)) == 30
    if (path / "metrics.json").is_file() and not (path / "config.json").exists():
        return (path / "report.txt").is_file()
    from cls_app.models import load

    return load(str(path), batch_size=8, threads=1).predict_proba(["这个好"]).shape == (1, 2)


def run_case(site: Site, fault: str, w: dict[str, Path], case: Path, capsys, monkeypatch) -> dict:
    """Run one (site, fault) case; return what happened (asserting nothing)."""
    args = command(site, w, case)
    before = None
    if site.previous is not None:
        rc, _, err = run_main(capsys, *args)
        assert rc == 0, err
        before = _digest(case / site.previous)
    with monkeypatch.context() as m:
        hit = inject(m, fault, site.hit)
        rc, out, err = run_main(capsys, *args)
    lines = [line for line in err.splitlines() if line.strip()]
    return {
        "rc": rc, "hit": hit, "last": lines[-1] if lines else "", "traceback": "Traceback" in err,
        "errors": sum(line.startswith("error:") for line in lines),
        "left": left_behind(case) + [p.name for p in case.rglob(".*.lock")],
        "previous_intact": None if before is None else _digest(case / site.previous) == before,
        "previous_loadable": None if before is None else _loadable(case / site.previous),
    }


@pytest.mark.slow
@pytest.mark.parametrize("site", SITES, ids=[s.name for s in SITES])
def test_write_fault_gives_one_line_and_leaves_nothing_half_written(site: Site, world, tmp_path, capsys,
                                                                  monkeypatch) -> None:
    for i, fault in enumerate(FAULTS):
        case = tmp_path / f"case{i}"
        case.mkdir()
        r = run_case(site, fault, world, case, capsys, monkeypatch)
        reason = os.strerror(FAULTS[fault][1])
        assert r["hit"], f"{site.name}: nothing named {site.hit} was written"
        assert r["rc"] == 2 and not r["traceback"] and r["errors"] == 1, (fault, r)
        assert r["last"].startswith(f"error: cannot write {case}") and r["last"].endswith(f"{site.hit}: {reason}"), \
            (fault, r["last"])
        assert r["left"] == [], (fault, r["left"])
        if site.previous is not None:
            assert r["previous_intact"] and r["previous_loadable"], (fault, r)


def test_library_write_errors_are_recognised(tmp_path: Path) -> None:
    """safetensors reports the errno in its message; torch.save only 'unexpected pos': a full disk then."""
    err = fileio.write_error(RuntimeError("Error while serializing: I/O error: No space left on device (os error 28)"),
                             tmp_path / "m.safetensors")
    assert str(err) == f"cannot write {tmp_path / 'm.safetensors'}: No space left on device"
    assert fileio.write_error(RuntimeError("unexpected pos 576 vs 534"), tmp_path / "x.pt") is None  # disk not full
    assert fileio.write_error(ValueError("a bug"), tmp_path / "x") is None
    assert fileio.write_error(OSError(errno.ENOENT, "No such file"), tmp_path / "x") is None
