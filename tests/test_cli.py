"""End to end through run.py as a user runs it: train, then evaluate."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from .conftest import TINY_MODEL_ARGS, run_cli, run_main


@pytest.mark.slow
def test_train_then_evaluate(tmp_path, toy_files, capsys) -> None:
    out = tmp_path / "model"
    rc, _, err = run_main(capsys, "train", "--train", str(toy_files["train"]), "--dev", str(toy_files["dev"]),
                          "--test", str(toy_files["test"]), "--out", str(out), "--epochs", "5",
                          "--batch-size", "16", "--lr", "2e-3", "--no-cache", *TINY_MODEL_ARGS)
    assert rc == 0, err
    for name in ("config.json", "vocab.txt", "model.safetensors", "training_args.json",
                 "metrics.json", "train_log.csv"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] >= 0.9
    assert len(pd.read_csv(out / "train_log.csv")) >= 1

    rc, stdout, err = run_main(capsys, "evaluate", "--model", str(out), "--data", str(toy_files["test"]),
                               "--out", str(tmp_path / "report"))
    assert rc == 0, err
    assert "confusion matrix" in stdout and "正面" in stdout
    png = tmp_path / "report" / "confusion_matrix.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    cm = pd.read_csv(tmp_path / "report" / "confusion_matrix.csv", index_col=0)
    assert list(cm.columns) == ["正面", "负面"] and cm.to_numpy().sum() == 60
    report = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert report["accuracy"] == metrics["test"]["accuracy"]


def test_train_without_dev_holds_out_part_of_train(tmp_path, toy_files, capsys) -> None:
    out = tmp_path / "m"
    rc, _, err = run_main(capsys, "train", "--train", str(toy_files["train"]), "--out", str(out), "--epochs", "1",
                          "--no-cache", *TINY_MODEL_ARGS)
    assert rc == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["dev_rows"] == 24 and metrics["train_rows"] == 216


@pytest.mark.slow
def test_user_errors_are_one_line_without_traceback(tmp_path, toy_files, capsys) -> None:
    r = run_cli("train", "--train", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "m0"))  # a real process
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and "missing.csv" in r.stderr
    rc, _, err = run_main(capsys, "evaluate", "--model", str(tmp_path / "no_model"), "--data", str(toy_files["test"]))
    assert rc == 2 and "Traceback" not in err and "no_model" in err
    rc, _, err = run_main(capsys, "train", "--train", str(toy_files["train"]), "--out", str(tmp_path / "m"),
                          "--max-len", "4096", *TINY_MODEL_ARGS)
    assert rc == 2 and "position limit" in err and "Traceback" not in err
