"""One run per output: the lock beside each output, with real second processes."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cls_app.errors import UserError
from cls_app.locks import lock_path, run_lock

from .conftest import ROOT

_HOLDER = """
import contextlib, sys, time
from cls_app.locks import run_lock
with contextlib.ExitStack() as stack:
    for target in sys.argv[1:]:
        stack.enter_context(run_lock(target))
    print("locked", flush=True)
    time.sleep(120)
"""


def _hold(*targets: Path) -> subprocess.Popen:
    """A real second process holding the locks of ``targets`` (until killed)."""
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, *map(str, targets)], cwd=ROOT, stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout.readline().strip() == "locked"
    return proc


def _stop(proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
    proc.wait(timeout=30)


def test_second_process_is_refused_and_a_dead_holders_lock_is_taken_over(tmp_path: Path, caplog) -> None:
    out = tmp_path / "model"
    proc = _hold(out)
    try:
        # the same folder under other spellings is the same lock
        os.symlink(tmp_path, tmp_path / "link")
        for spelling in (out, tmp_path / "." / "model", tmp_path / "link" / "model"):
            with pytest.raises(UserError) as info, run_lock(spelling):
                pass
            message = str(info.value)
            assert f"PID {proc.pid}" in message and "in use by another run" in message and "--out" in message
        with run_lock(tmp_path / "other"):  # another folder is free
            pass
    finally:
        _stop(proc)  # SIGKILL: no chance to clean up, the file stays
    assert lock_path(out).is_file()
    caplog.set_level(logging.WARNING, logger="cls_app")
    with run_lock(out) as lock:
        assert lock.held
        assert f"PID {proc.pid}" in caplog.text and "taking over" in caplog.text
    assert not lock_path(out).exists()  # released on exit


def test_lock_released_on_error_and_by_a_holder_ending_normally(tmp_path: Path) -> None:
    out = tmp_path / "pred.csv"
    with pytest.raises(RuntimeError), run_lock(out, flag="--output"):
        raise RuntimeError("boom")
    assert not lock_path(out).exists()
    proc = _hold(out)
    try:
        with pytest.raises(UserError, match="choose another --output"), run_lock(out, flag="--output"):
            pass
    finally:
        _stop(proc, signal.SIGTERM)  # default SIGTERM: killed, like SIGKILL
    with run_lock(out, flag="--output"):
        pass


def test_every_writing_command_refuses_an_output_in_use(tmp_path: Path, toy_files, capsys) -> None:
    """A real second process holds each output; the command is refused before doing any work."""
    from .conftest import TINY_MODEL_ARGS, run_main

    model = tmp_path / "model"
    rc, _, err = run_main(capsys, "train", "--train", str(toy_files["train"]), "--out", str(model), "--epochs", "1",
                          "--no-cache", *TINY_MODEL_ARGS)
    assert rc == 0, err
    before = {p.name: p.stat().st_mtime_ns for p in model.iterdir()}
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("这个好\n这个差\n" * 20, encoding="utf-8")
    cases = {
        "train": (model, ["train", "--train", str(toy_files["train"]), "--out", str(model), "--overwrite",
                          *TINY_MODEL_ARGS], "--out"),
        "resume": (model, ["train", "--resume", str(model)], "--resume folder"),
        "baseline": (tmp_path / "base", ["baseline", "--train", str(toy_files["train"]), "--out",
                                         str(tmp_path / "base")], "--out"),
        "pretrain": (tmp_path / "pre", ["pretrain", "--corpus", str(corpus), "--out", str(tmp_path / "pre"),
                                        "--steps", "1"], "--out"),
        "predict": (tmp_path / "pred.csv", ["predict", "--model", str(model), "--input", str(toy_files["test"]),
                                            "--output", str(tmp_path / "pred.csv")], "--output"),
        "predict --text": (tmp_path / "t.csv", ["predict", "--model", str(model), "--text", "好",
                                                "--output", str(tmp_path / "t.csv")], "--output"),
    }
    proc = _hold(*{target for target, _, _ in cases.values()})
    try:
        results = {name: run_main(capsys, *args) for name, (_, args, _) in cases.items()}
    finally:
        _stop(proc)
    for name, (_, _, flag) in cases.items():
        rc, _, err = results[name]
        assert rc == 2, (name, err)
        lines = err.strip().splitlines()
        assert lines[-1].startswith("error: ") and f"PID {proc.pid}" in lines[-1], (name, err)
        assert f"wait for it or choose another {flag}" in lines[-1], (name, err)
        assert "Traceback" not in err
    assert {p.name: p.stat().st_mtime_ns for p in model.iterdir()} == before  # the model was not touched
    assert not (tmp_path / "base").exists() and not (tmp_path / "pre").exists()
    assert not (tmp_path / "pred.csv").exists()


def test_predict_refuses_an_output_that_is_its_input(tmp_path: Path, toy_files, capsys) -> None:
    from .conftest import TINY_MODEL_ARGS, run_main

    model = tmp_path / "model"
    rc, _, err = run_main(capsys, "train", "--train", str(toy_files["train"]), "--out", str(model), "--epochs", "1",
                          "--no-cache", *TINY_MODEL_ARGS)
    assert rc == 0, err
    data = toy_files["test"]
    original = data.read_bytes()
    os.link(data, tmp_path / "hardlink.csv")
    os.symlink(data, tmp_path / "symlink.csv")
    for output in (data, tmp_path / "." / data.name, tmp_path / "hardlink.csv", tmp_path / "symlink.csv"):
        rc, _, err = run_main(capsys, "predict", "--model", str(model), "--input", str(data), "--output", str(output))
        assert rc == 2 and "would overwrite the input" in err, (output, err)
    assert data.read_bytes() == original
