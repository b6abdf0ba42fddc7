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
import sys, time
from cls_app.locks import run_lock
with run_lock(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(120)
"""


def _hold(target: Path) -> subprocess.Popen:
    """A real second process holding the lock of ``target`` (until killed)."""
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(target)], cwd=ROOT, stdout=subprocess.PIPE,
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
