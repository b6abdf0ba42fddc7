"""Crash safety: atomic writes survive interruption; a SIGKILLed run resumes to the same result."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from cls_app.fileio import atomic_open, write_json
from cls_app.modeling.bert import BertClassifier, parameter_groups, scratch_config
from cls_app.training.checkpoint import find_checkpoint, restore_checkpoint, save_checkpoint

from .conftest import ROOT, TINY_MODEL_ARGS, run_main, toy_texts, write_csv

# --------------------------------------------------------------------------- atomic writes


def test_atomic_open_exception_keeps_old_file(tmp_path: Path) -> None:
    target = tmp_path / "report.txt"
    target.write_text("old complete content\n")
    with pytest.raises(RuntimeError), atomic_open(target) as fh:
        fh.write("new half")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "old complete content\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.txt"]  # temp file removed


_WRITER = """
import sys, time
from cls_app.fileio import atomic_open
with atomic_open(sys.argv[1]) as fh:
    fh.write("x" * 100_000)
    fh.flush()
    print("writing", flush=True)
    time.sleep(60)
    fh.write("end")
"""


def test_sigkill_during_write_keeps_old_file(tmp_path: Path) -> None:
    target = tmp_path / "model_output.json"
    write_json(target, {"complete": True})
    before = target.read_bytes()
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(target)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
        # the half-written data exists under a temporary name, not under the target's name
        temps = [p for p in tmp_path.iterdir() if p.name != target.name]
        assert temps and temps[0].stat().st_size >= 100_000
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert target.read_bytes() == before


def test_checkpoint_round_trip_restores_optimizer_and_rng(tmp_path: Path) -> None:
    def make():
        torch.manual_seed(0)
        model = BertClassifier(scratch_config(30, ["a", "b"], layers=1, hidden=16, heads=2))
        opt = torch.optim.AdamW(parameter_groups(model, 0.01), lr=1e-3)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 / (1 + s))
        return model, opt, sched

    def step(model, opt, sched):
        model.train()
        ids = torch.randint(5, 30, (4, 7))
        loss = model(ids).logsumexp(-1).mean()  # dropout draws from the torch RNG
        loss.backward()
        opt.step()
        sched.step()
        opt.zero_grad()
        return loss.item()

    model, opt, sched = make()
    step(model, opt, sched)
    save_checkpoint(tmp_path / "ckpt", model, opt, sched, {"epoch": 0, "batch": 1, "step": 1}, None)
    expected = [step(model, opt, sched) for _ in range(3)]

    model2, opt2, sched2 = make()
    restored = restore_checkpoint(tmp_path / "ckpt", model2, opt2, sched2)
    assert restored.state["step"] == 1
    assert [step(model2, opt2, sched2) for _ in range(3)] == expected


# --------------------------------------------------------------------------- kill and resume


def _train_args(files: dict[str, Path], out: Path) -> list[str]:
    return [
        "train", "--train", str(files["train"]), "--dev", str(files["dev"]), "--test", str(files["test"]),
        "--out", str(out), "--epochs", "2", "--batch-size", "8", "--lr", "2e-3", "--patience", "0",
        "--eval-every", "30", "--save-every", "5", "--threads", "1", "--seed", "7", *TINY_MODEL_ARGS,
    ]


def _comparable_log(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "train_log.csv").drop(columns=["samples_per_s", "elapsed_s"])


def _comparable_metrics(out: Path) -> dict:
    m = json.loads((out / "metrics.json").read_text())
    return {k: m[k] for k in ("dev", "test", "best_step", "best_epoch", "steps", "stopped_early")}


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_matches_uninterrupted_run(tmp_path: Path, capsys, caplog) -> None:
    files = {split: write_csv(tmp_path / f"{split}.csv", *toy_texts(n, seed))
             for split, n, seed in (("train", 480, 1), ("dev", 60, 2), ("test", 60, 3))}
    steps_per_epoch = 480 // 8

    ref = tmp_path / "reference"
    rc, _, err = run_main(capsys, *_train_args(files, ref))
    assert rc == 0, err
    assert not (ref / "checkpoint").exists()  # removed once the run finished

    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, str(ROOT / "run.py"), *_train_args(files, out)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    killed_at = None
    try:
        deadline = time.monotonic() + 240
        while proc.poll() is None and time.monotonic() < deadline:
            ckpt = find_checkpoint(out)
            try:
                state = json.loads((ckpt / "state.json").read_text()) if ckpt else None
            except (OSError, ValueError):  # being swapped in right now
                state = None
            # second epoch, mid-epoch: a dev evaluation and a best model already exist
            if state and state["epoch"] == 1 and 0 < state["batch"] < steps_per_epoch - 10:
                os.kill(proc.pid, signal.SIGKILL)
                killed_at = state["step"]
                break
            time.sleep(0.01)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert killed_at is not None and proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert not (out / "metrics.json").exists()
    # also as if killed in the instant a new checkpoint was being swapped in, with a half-written file left
    shutil.rmtree(out / ".checkpoint.old", ignore_errors=True)
    os.replace(out / "checkpoint", out / ".checkpoint.old")
    (out / ".model.safetensors.x1y2.tmp").write_bytes(b"half")

    caplog.set_level(logging.INFO, logger="cls_app")
    rc, _, err = run_main(capsys, "train", "--resume", str(out))
    assert rc == 0, err
    assert "resumed from" in caplog.text

    assert _comparable_metrics(out) == _comparable_metrics(ref)
    pd.testing.assert_frame_equal(_comparable_log(out), _comparable_log(ref))
    a, b = load_file(str(out / "model.safetensors")), load_file(str(ref / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((out / "metrics.json").read_text())["resumed"] is True
    assert not (out / "checkpoint").exists() and not (out / ".checkpoint.old").exists()
    assert not list(out.glob(".*.tmp"))


def test_resume_errors(tmp_path: Path, toy_files, capsys) -> None:
    rc, _, err = run_main(capsys, "train", "--resume", str(tmp_path / "nothing"))
    assert rc == 2 and "training_args.json" in err

    out = tmp_path / "m"
    rc, _, err = run_main(capsys, "train", "--train", str(toy_files["train"]), "--out", str(out), "--epochs", "1",
                          "--save-every", "3", "--keep-checkpoint", *TINY_MODEL_ARGS)
    assert rc == 0, err
    assert (out / "checkpoint" / "state.json").is_file()  # kept on request
    rc, _, err = run_main(capsys, "train", "--resume", str(out), "--epochs", "9")
    assert rc == 2 and "--epochs" in err and "training_args.json" in err

    # starting a new run over an unfinished one (killed before metrics.json) needs --overwrite
    (out / "metrics.json").unlink()
    rc, _, err = run_main(capsys, "train", "--train", str(toy_files["train"]), "--out", str(out), *TINY_MODEL_ARGS)
    assert rc == 2 and "--resume" in err and "--overwrite" in err

    # a corrupt checkpoint is a clear error, not a traceback
    (out / "checkpoint" / "optimizer.pt").write_bytes(b"not a checkpoint")
    rc, _, err = run_main(capsys, "train", "--resume", str(out))
    assert rc == 2 and "optimizer.pt" in err

    shutil.rmtree(out / "checkpoint")
    rc, _, err = run_main(capsys, "train", "--resume", str(out))
    assert rc == 2 and "stopped before its first save" in err


def test_atomic_writes_keep_the_usual_file_mode(tmp_path) -> None:
    """Files and folders written atomically get the umask's mode, not mkstemp's private 0600."""
    import os
    import stat

    from cls_app.fileio import atomic_dir, write_text

    old = os.umask(0o022)
    try:
        write_text(tmp_path / "a.txt", "x")
        with atomic_dir(tmp_path / "d") as d:
            (d / "f").write_text("y")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o755
