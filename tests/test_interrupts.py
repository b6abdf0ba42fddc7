"""Ctrl-C and SIGTERM: a run ends within seconds with one line and exit 128+N, training keeps a
resumable checkpoint of the exact position, nothing half-written or locked is left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cls_app.training.checkpoint import find_checkpoint

from .conftest import ROOT, TINY_MODEL_ARGS, run_main, toy_texts, write_csv
from .fuzzing import left_behind


def _files(folder: Path, n_train: int = 480) -> dict[str, Path]:
    return {split: write_csv(folder / f"{split}.csv", *toy_texts(n, seed))
            for split, n, seed in (("train", n_train, 1), ("dev", 60, 2), ("test", 60, 3))}


def _train_args(files: dict[str, Path], out: Path, *extra: str) -> list[str]:
    return ["train", "--train", str(files["train"]), "--dev", str(files["dev"]), "--test", str(files["test"]),
            "--out", str(out), "--batch-size", "8", "--lr", "2e-3", "--patience", "0", "--threads", "1",
            "--seed", "7", "--no-cache", *TINY_MODEL_ARGS, *extra]


def _comparable(out: Path) -> dict:
    m = json.loads((out / "metrics.json").read_text())
    log = (out / "train_log.csv").read_text().splitlines()
    # the log without its timing columns (samples_per_s, elapsed_s: the last two)
    return {**{k: m[k] for k in ("dev", "test", "best_step", "best_epoch", "steps", "stopped_early")},
            "log": [",".join(line.split(",")[:-2]) for line in log]}


def _wait_for(proc: subprocess.Popen, condition, seconds: float = 240) -> bool:
    deadline = time.monotonic() + seconds
    while proc.poll() is None and time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def _popen(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(ROOT / "run.py"), *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_sigint_during_train_saves_a_checkpoint_and_resume_finishes(tmp_path: Path, capsys) -> None:
    files = _files(tmp_path, n_train=160)
    out = tmp_path / "run"
    # no periodic checkpoints (--save-every 0): a checkpoint in epoch 1 can only be the one the interrupt writes
    proc = _popen(_train_args(files, out, "--epochs", "2", "--eval-every", "5", "--save-every", "0"))
    try:
        started = _wait_for(proc, lambda: (out / "train_log.csv").is_file())  # after the first evaluation
        assert started, "the run ended before it could be interrupted"
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert took < 20
    last = err.strip().splitlines()[-1]
    assert last == f"interrupted by SIGINT; continue this run with `python run.py train --resume {out}`"
    assert "Traceback" not in err
    ckpt = find_checkpoint(out)
    assert ckpt is not None
    state = json.loads((ckpt / "state.json").read_text())
    assert state["epoch"] == 0 and state["step"] >= 5 and not state["done"]  # mid-epoch, where it was
    assert not (out / "metrics.json").exists()
    assert left_behind(tmp_path) == [] and not list(tmp_path.glob(".*.lock"))

    rc, _, err = run_main(capsys, "train", "--resume", str(out))
    assert rc == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["resumed"] is True and metrics["steps"] == 2 * 160 // 8
    assert not (out / "checkpoint").exists() and left_behind(tmp_path) == []


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory) -> tuple[dict[str, Path], dict]:
    """An uninterrupted tiny run to compare interrupted-and-resumed runs with."""
    folder = tmp_path_factory.mktemp("ref")
    files = _files(folder, n_train=96)
    from cls_app.commands import main

    assert main(_train_args(files, folder / "out", "--epochs", "3", "--eval-every", "4", "--save-every", "5")) == 0
    return files, _comparable(folder / "out")


@pytest.mark.slow
@settings(max_examples=5, deadline=None, derandomize=True)
@given(where=st.sampled_from(["step", "evaluation", "best save"]), nth=st.integers(1, 10))
def test_interrupt_anywhere_then_resume_equals_the_uninterrupted_run(reference_run, where, nth,
                                                                      tmp_path_factory) -> None:
    """A SIGINT delivered during the nth step, dev evaluation or best-model save: the resumed run ends
    exactly as the uninterrupted one (same log, metrics and steps)."""
    from cls_app.commands import main
    from cls_app.training import trainer as trainer_mod

    files, expected = reference_run
    out = tmp_path_factory.mktemp("int") / "out"
    target = {"step": "_step", "evaluation": "_dev_metrics", "best save": "_commit_evaluation"}[where]
    original = getattr(trainer_mod.Trainer, target)
    calls = {"n": 0}

    def interrupting(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == nth:
            os.kill(os.getpid(), signal.SIGINT)  # the CLI's handler turns it into Interrupted
        return original(self, *args, **kwargs)

    setattr(trainer_mod.Trainer, target, interrupting)
    try:
        rc = main(_train_args(files, out, "--epochs", "3", "--eval-every", "4", "--save-every", "5"))
    finally:
        setattr(trainer_mod.Trainer, target, original)
    if calls["n"] < nth:  # fewer calls than nth in the whole run: it just finished
        assert rc == 0
    else:
        assert rc == 130
        state = json.loads((out / "checkpoint" / "state.json").read_text())
        if where == "step":  # the step under way is finished and counted, then the run stops
            assert state["step"] == nth
        elif where == "evaluation":  # cut short: done again first on resume
            assert state["pending_eval"] is not None and len(state["history"]) == nth - 1
        else:  # the evaluation's bookkeeping and best-model save are finished first
            assert state["pending_eval"] is None and len(state["history"]) == nth
        assert main(["train", "--resume", str(out)]) == 0
    assert _comparable(out) == expected


@pytest.mark.slow
def test_sigterm_during_predict_leaves_the_previous_output(tmp_path: Path, capsys) -> None:
    files = _files(tmp_path, n_train=96)
    model = tmp_path / "model"
    rc, _, err = run_main(capsys, *_train_args(files, model, "--epochs", "1"))
    assert rc == 0, err
    big = write_csv(tmp_path / "big.csv", *toy_texts(60_000, 9))
    output = tmp_path / "pred.csv"
    output.write_text("previous,complete\n1,2\n")
    proc = _popen(["predict", "--model", str(model), "--input", str(big), "--output", str(output),
                   "--chunk-size", "256", "--threads", "1"])
    try:
        started = _wait_for(proc, lambda: any(p.name.startswith(".pred.csv.") and p.name.endswith(".tmp")
                                              for p in tmp_path.iterdir()))
        assert started, "predict ended before it could be interrupted"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err
    assert err.strip().splitlines()[-1] == "interrupted by SIGTERM" and "Traceback" not in err
    assert output.read_text() == "previous,complete\n1,2\n"
    assert left_behind(tmp_path) == [] and not list(tmp_path.glob(".*.lock"))
